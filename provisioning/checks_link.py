"""Install checks on the node's link: frame loss and signal, the key it shares with the gateway, data reaching upstream.

    burst = run_burst(session, n=10, timeout_s=2.0)         # n diagnostics round trips
    check_link(burst, node_link); check_key(session.keyed, ...); check_upstream(node_link, node_log, view)

Thresholds, and why:

- Loss: the node delivers each record with up to 3 attempts (fieldnode.link), so a round-trip loss q
  leaves a record for the next wake with probability q^3: 0.1 % at q = 10 %, 2.7 % at 30 %, 12.5 % at
  50 %, and every retry keeps the node awake (0.4 + 0.8 + 1.6 s of listening). PASS <= 10 %, WARN
  <= 30 %, FAIL above, over the burst's round trips (a loss is no answer within the timeout; an
  answer that comes later, at the node's next listening window, is late, not lost). The node's own
  counts since boot (retries, failed deliveries, rejected frames) are shown beside it; they are not
  judged here, because a gateway that does not acknowledge (wrong key) makes them look like loss.
- Signal, when the link reports one (radio modems): PASS >= -100 dBm, WARN to -110 dBm (a few dB of
  fade margin above the typical sensitivity), FAIL below.
- Key: any frame of the node that authenticates with the registry's key proves the keys match (a tag
  cannot be forged), and so does any record the gateway acknowledged (the node accepts only acks that
  authenticate with its own key); two or more that do not, and none that does, mean the node was
  provisioned with another key (a single bad one may be a frame damaged on the link: WARN), and so do
  failed deliveries while the gateway counts forged frames. (The gateway's /status lists a device
  once any frame of it decoded, keyless ones included, so it proves nothing about the key.)
- Upstream: the node's records must have been acknowledged by the gateway (its link counts
  acked_frames, its log holds nothing pending), the gateway must list the device, and its outbox must
  be forwarded (empty) with an uplink connected.
"""

import statistics
import time

from provisioning.checks_result import FAIL, PASS, WARN, Result, not_checked

LOSS_PASS = 0.10
LOSS_WARN = 0.30
RSSI_PASS_DBM = -100
RSSI_WARN_DBM = -110


class Burst:
    """Round trips of a burst: ``rtts`` (seconds, None = lost), ``late`` (lost ones answered afterwards),
    ``unmade`` (not tried: the time budget ran out; counted lost)."""

    def __init__(self, rtts, late=0, unmade=0):
        self.rtts, self.late, self.unmade = list(rtts), late, unmade

    @property
    def sent(self):
        return len(self.rtts)

    @property
    def lost(self):
        return sum(1 for r in self.rtts if r is None) - self.late

    @property
    def loss(self):
        return self.lost / self.sent if self.sent else 0.0

    def median_ms(self):
        ok = [r for r in self.rtts if r is not None]
        return 1000.0 * statistics.median(ok) if ok else None


def run_burst(session, n=10, timeout_s=1.0, window_s=10.0, budget_s=None, progress=None):
    """``n`` diagnostics round trips, one after the other; ``progress(i)`` after each. After ``budget_s``
    the round trips not yet made count as lost (a node that rarely gets a request through).

    A listening node answers within ``timeout_s``; one that is not (asleep, or busy waiting for the
    gateway) answers the requests waiting for it when it next listens, at most ``window_s`` later, in
    the order they came. So a request is lost once a later one was answered; while 3 are unresolved
    the burst waits for the node rather than pile up requests it would drop (it keeps 4)."""
    ids, rtts, unmade = [], [], 0
    end = None if budget_s is None else time.monotonic() + budget_s
    for i in range(n):
        if end is not None and time.monotonic() >= end:
            unmade = n - i
            rtts += [None] * unmade
            break
        rtts.append(session.round_trip(["clock"], timeout_s))
        ids.append(session.req_id)
        open_ids = _unresolved(session, ids)
        if len(open_ids) >= 3:
            left = window_s if end is None else max(0.0, min(window_s, end - time.monotonic()))
            _await_any(session, open_ids, left)
        if progress is not None:
            progress(i + 1)
    if _unresolved(session, ids):
        over = end is not None and time.monotonic() >= end
        for _ in range(1 if over else 2):  # a probe: once it is answered, every earlier request it got was too
            probe = session.send_request(["clock"])
            if _await_any(session, [probe], 2 * timeout_s if over else window_s):
                break
    late = sum(1 for r, t in zip(ids, rtts, strict=False) if t is None and session.answers.get(r))
    return Burst(rtts, late, unmade)


def _unresolved(session, ids):
    """The requests in ``ids`` sent after the last one answered and not answered themselves."""
    last = max((i for i, r in enumerate(ids) if session.answers.get(r)), default=-1)
    return [r for r in ids[last + 1 :] if not session.answers.get(r)]


def _await_any(session, req_ids, wait_s):
    end = time.monotonic() + wait_s
    while not any(session.answers.get(r) for r in req_ids):
        if time.monotonic() >= end:
            return False
        session.pump(0.05)
    return True


def _node_counts(node_link):
    if not node_link:
        return "node link counts: -"
    d = node_link
    return "node since boot: %s sent, %s acknowledged, %s retries, %s failed, %s rejected" % (
        d.get("tx_frames"),
        d.get("acked_frames"),
        d.get("retries"),
        d.get("failed"),
        d.get("rx_bad"),
    )


def check_link(burst, node_link=None):
    node_link = node_link or {}
    rssi = node_link.get("rssi_dbm")
    med = burst.median_ms()
    measured = "%d of %d round trips lost%s, median %s; signal %s; %s" % (
        burst.lost,
        burst.sent,
        (" (%d more answered late)" % burst.late if burst.late else "")
        + (" (%d of them not tried: the node answered too rarely)" % burst.unmade if burst.unmade else ""),
        "-" if med is None else "%.0f ms" % med,
        "not reported by this link" if rssi is None else "%d dBm" % rssi,
        _node_counts(node_link),
    )
    expected = "<= %.0f %% lost (warns up to %.0f %%)%s" % (
        100 * LOSS_PASS,
        100 * LOSS_WARN,
        ", signal >= %d dBm" % RSSI_PASS_DBM if rssi is not None else "",
    )
    if burst.sent == 0:
        return not_checked("link", "No round trips were made (--burst 0)", expected)
    weak = ("raise the antenna above the crop, point it at the gateway, check its cable and connector, or add a "
            "repeater between node and gateway")  # fmt: skip
    status = PASS if burst.loss <= LOSS_PASS else WARN if burst.loss <= LOSS_WARN else FAIL
    fix = ""
    if status != PASS:
        fix = "%d of %d round trips to the node were lost (%.0f %%): the link to the gateway is poor; %s" % (
            burst.lost,
            burst.sent,
            100 * burst.loss,
            weak,
        )
    if rssi is not None and rssi < RSSI_PASS_DBM:
        sig = FAIL if rssi < RSSI_WARN_DBM else WARN
        if sig == FAIL or status == PASS:
            status, fix = sig, "The signal is weak (%d dBm; >= %d dBm expected): %s" % (rssi, RSSI_PASS_DBM, weak)
    return Result("link", status, measured, expected, fix)


def key_mismatch(keyed):
    """True when the node's frames prove a key other than the registry's (see check_key)."""
    return sum(1 for _, v in keyed if v == "bad") >= 2 and not any(v == "ok" for _, v in keyed)


def check_key(keyed, registry_key_known, in_registry=None, view=None, node_link=None):
    """``keyed``: (type, "ok"|"bad"|"unknown") of the node's authenticated frames heard on the link;
    ``node_link``: the node's link counts (an acknowledged record proves the gateway has its key)."""
    ok = sum(1 for _, v in keyed if v == "ok")
    bad = sum(1 for _, v in keyed if v == "bad")
    node_link = node_link or {}
    acked, failed = node_link.get("acked_frames") or 0, node_link.get("failed") or 0
    forged = view.rejected.get("forged", 0) if view is not None else 0
    parts = []
    if registry_key_known:
        parts.append("%d of %d authenticated frames verify with the registry's key" % (ok, ok + bad))
    parts.append("the gateway acknowledged %d of the node's records (%d deliveries failed)" % (acked, failed))
    if view is not None:
        parts.append("gateway rejected %d frames as forged" % forged)
    measured = "; ".join(parts)
    expected = "the node's frames authenticate with the gateway's key"
    reprovision = ("re-provision the node (fieldline provision) so that it and the gateway's registry hold the same "
                   "key, or put the node's key into the registry")  # fmt: skip
    if in_registry is False:
        return Result("key", FAIL, measured, expected,
                      "The gateway's registry has no entry for this device: the gateway drops all its frames; add it "
                      "(fieldline provision writes it)")  # fmt: skip
    if ok or acked:  # a verified tag, or an ack the node verified with its own key: the keys match
        return Result("key", PASS, measured, expected)
    if bad >= 2 or (failed and forged):
        return Result("key", FAIL, measured, expected,
                      "The node signs its frames with another key than the gateway's registry holds for it (wrong "
                      "key): the gateway rejects everything it sends; " + reprovision)  # fmt: skip
    if bad == 1:
        return Result("key", WARN, measured, expected,
                      "One frame of the node did not authenticate with the registry's key (damaged on the link, or a "
                      "wrong key); check again, and if it repeats " + reprovision)  # fmt: skip
    return not_checked("key", "Nothing proved the node and the gateway share a key (no record acknowledged yet, no "
                       "authenticated frame heard); pass --registry (the gateway's devices.toml) or --gateway, or "
                       "check again once the node has reported", expected)  # fmt: skip


def check_upstream(node_link=None, node_log=None, view=None, gateway_error=None, seen_upstream=None):
    node_link, node_log = node_link or {}, node_log or {}
    acked, pending = node_link.get("acked_frames"), node_log.get("pending")
    node = "node: %s records acknowledged by the gateway, %s pending" % (
        "?" if acked is None else acked,
        "?" if pending is None else pending,
    )
    expected = "records acknowledged, the device seen by the gateway, its outbox forwarded"
    if view is None:
        if gateway_error:
            return Result("upstream", WARN, node, expected,
                          "The gateway could not be asked (%s): check it is on and reachable from here, and the token; "
                          "then check again" % gateway_error)  # fmt: skip
        return not_checked("upstream", "The gateway was not asked whether the node's data reaches upstream; pass "
                           "--gateway URL (and --token) to check it", expected)  # fmt: skip
    measured = node + "; " + view.describe()
    if seen_upstream is not None:
        measured += "; upstream %s the device's records" % ("received" if seen_upstream else "has NOT received")
    if not view.seen:
        return Result("upstream", FAIL, measured, expected,
                      "The gateway has not received any authenticated frame from this node (it rejected %s): see the "
                      "key and link checks" % (", ".join("%d %s" % (n, k) for k, n in view.rejected.items()) or
                                               "nothing"))  # fmt: skip
    if not acked:
        return Result("upstream", FAIL, measured, expected,
                      "The gateway hears the node but has not acknowledged any of its records: see the key check (a "
                      "wrong key looks like this), then the gateway's log (store full?) and the link")  # fmt: skip
    if not view.forwarded or not view.connected or seen_upstream is False:
        return Result("upstream", WARN, measured, expected,
                      "The gateway keeps the node's data but has not forwarded it yet (uplink %s): check the gateway's "
                      "internet connection; nothing is lost, it is sent when the uplink is back"
                      % ("connected" if view.connected else "down"))  # fmt: skip
    return Result("upstream", PASS, measured, expected)
