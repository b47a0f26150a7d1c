"""Alerts: each diagnosis opens an alert once, keeps it while the condition holds, closes it when it clears.

    engine = AlertEngine(store, sinks=[LogSink(), WebhookSink("https://hooks.example/fieldline", token="...")])
    changes = engine.evaluate(assess(store))        # {"opened": [...], "closed": [...]}; stored in ``alerts``

Hysteresis: a rule fires at its level-2 threshold and holds at a looser level-1 one (upstream/diagnoses.py);
an open alert stays open while the rule is at level 1 or 2 and closes only after the rule has been
clear (level 0) for the device's own hold time, max(2 x its expected reporting interval, 3 h): a rare
reporter or a node in saver mode is not closed and reopened between two of its records. Silence
is judged against the device's cadence too (upstream/health.py), so thresholds suit devices that
report rarely. Deliveries: LogSink logs each change once; WebhookSink POSTs JSON and, when the
hook is down, is retried at the next evaluation (``notified_open``/``notified_close`` in the store)
with explicit limits (``timeout_s`` per attempt).
"""

import json
import logging
import time
import urllib.error
import urllib.request

import numpy as np

from upstream.diagnoses import CAUSES
from upstream.health import evidence_text

log = logging.getLogger("fieldline.upstream.alerts")
MIN_HOLD_S = 3 * 3600


def _iso(t):
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


class LogSink:
    """Each opened/closed alert as one log line (never retried)."""

    retry = False

    def deliver(self, event):
        level = logging.WARNING if event["event"] == "alert_open" else logging.INFO
        log.log(level, "%s %s %s (%s): %s", event["event"], event["device"], event["cause"], event["customer"],
                event["evidence_text"])  # fmt: skip
        return True


class WebhookSink:
    """POST each event as JSON to ``url`` (Authorization: Bearer ``token`` if given); False when it failed."""

    retry = True

    def __init__(self, url, token=None, timeout_s=5.0):
        if not str(url).startswith(("http://", "https://")):
            raise ValueError("webhook url must start with http:// or https://, got %r" % (url,))
        self.url, self.token, self.timeout_s = url, token, timeout_s
        self.sent = 0
        self.failed = 0
        self.last_error = None

    def deliver(self, event):
        body = json.dumps(event, separators=(",", ":")).encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={"Content-Type": "application/json"})
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                ok = 200 <= resp.status < 300
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            ok, self.last_error = False, str(e)
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.warning("webhook %s: %s not delivered (%s); retried at the next evaluation", self.url,
                        event["event"], self.last_error or "non-2xx")  # fmt: skip
        return ok


class AlertEngine:
    """See the module doc. ``causes``: the diagnoses that alert (default: all)."""

    def __init__(self, store, sinks=None, causes=None):
        self.store = store
        self.sinks = list(sinks) if sinks is not None else [LogSink()]
        self.causes = tuple(causes) if causes else tuple(CAUSES)

    def open_alerts(self):
        """{(device_id, cause): (alert id, opened_at, last_firing_at)} of the alerts not closed."""
        rows = self.store.backend.execute(
            "SELECT id, device_id, cause, opened_at, last_firing_at FROM alerts WHERE closed_at IS NULL"
        )
        return {(int(d), c): (int(i), o, f) for i, d, c, o, f in rows}

    def evaluate(self, fh, now=None):
        """Open, keep and close alerts from a FleetHealth; deliver the changes. Returns {"opened", "closed"}."""
        now = int(fh.now if now is None else now)
        data, m = fh.data, fh.metrics
        hold_s = np.maximum(2 * m["expected_s"], MIN_HOLD_S)
        self._retry_pending(fh)
        current = self.open_alerts()
        opened, closed, keep = [], [], []
        b = self.store.backend
        with self.store.transaction():
            for cause in self.causes:
                f = fh.findings.get(cause)
                if f is None:
                    continue
                fire = np.flatnonzero(f.level == 2)
                for i in fire.tolist():
                    key = (int(data.ids[i]), cause)
                    if key in current:
                        continue
                    ev = f.evidence(i)
                    rows = b.execute(
                        "INSERT INTO alerts (device_id, cause, severity, opened_at, last_firing_at, evidence, action,"
                        " notified_open, notified_close) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0) RETURNING id",
                        (key[0], cause, CAUSES[cause].severity, now, now, json.dumps(ev), CAUSES[cause].action),
                    )
                    opened.append(self._event("alert_open", rows[0][0], i, fh, cause, ev, now, None))
            for (dev, cause), (aid, opened_at, last) in current.items():
                i = data.pos[dev] if dev < len(data.pos) else -1
                f = fh.findings.get(cause)
                if i < 0 or f is None:
                    continue
                if f.level[i] >= 1:
                    keep.append((now, aid))
                elif now - last >= hold_s[i]:
                    b.execute("UPDATE alerts SET closed_at = ? WHERE id = ?", (now, aid))
                    ev = json.loads(b.execute("SELECT evidence FROM alerts WHERE id = ?", (aid,))[0][0] or "{}")
                    closed.append(self._event("alert_closed", aid, i, fh, cause, ev, opened_at, now))
            if keep:
                b.executemany("UPDATE alerts SET last_firing_at = ? WHERE id = ?", keep)
        self._deliver(opened + closed)
        return {"opened": opened, "closed": closed}

    def _event(self, kind, aid, i, fh, cause, ev, opened_at, closed_at):
        d = fh.data
        return {
            "event": kind, "id": int(aid), "device": str(d.names[i]), "customer": str(d.customer[i]),
            "field": str(d.field[i]), "cause": cause, "title": CAUSES[cause].title,
            "severity": CAUSES[cause].severity, "opened_at": _iso(opened_at), "closed_at": _iso(closed_at),
            "evidence": ev, "evidence_text": evidence_text(cause, ev), "action": CAUSES[cause].action,
        }  # fmt: skip

    def _deliver(self, events, retry_only=False):
        for ev in events:
            ok = True
            for sink in self.sinks:
                if retry_only and not sink.retry:
                    continue
                delivered = sink.deliver(ev)
                if sink.retry:
                    ok &= bool(delivered)
            if ok:
                col = "notified_open" if ev["event"] == "alert_open" else "notified_close"
                with self.store.transaction():
                    self.store.backend.execute("UPDATE alerts SET %s = 1 WHERE id = ?" % col, (ev["id"],))

    def _retry_pending(self, fh):
        if not any(s.retry for s in self.sinks):
            return
        rows = self.store.backend.execute(
            "SELECT id, device_id, cause, opened_at, closed_at, evidence, notified_open, notified_close FROM alerts"
            " WHERE notified_open = 0 OR (closed_at IS NOT NULL AND notified_close = 0)"
        )
        events = []
        for aid, dev, cause, opened_at, closed_at, ev, n_open, n_close in rows:
            i = fh.data.pos[dev] if dev < len(fh.data.pos) else -1
            if i < 0:
                continue
            ev = json.loads(ev or "{}")
            if not n_open:
                events.append(self._event("alert_open", aid, i, fh, cause, ev, opened_at, None))
            if closed_at is not None and not n_close:
                events.append(self._event("alert_closed", aid, i, fh, cause, ev, opened_at, closed_at))
        self._deliver(events, retry_only=True)


def alert_history(store, device=None):
    """Every alert (newest first) as dicts: device, cause, opened_at, closed_at, evidence, action."""
    sql = ("SELECT a.id, d.device, a.cause, a.severity, a.opened_at, a.last_firing_at, a.closed_at, a.evidence,"
           " a.action FROM alerts a JOIN devices d ON d.id = a.device_id")  # fmt: skip
    params = ()
    if device is not None:
        sql += " WHERE d.device = ?"
        params = (device,)
    rows = store.backend.execute(sql + " ORDER BY a.opened_at DESC, a.id DESC", params)
    keys = ("id", "device", "cause", "severity", "opened_at", "last_firing_at", "closed_at", "evidence", "action")
    out = []
    for r in rows:
        d = dict(zip(keys, r, strict=True))
        d["evidence"] = json.loads(d["evidence"] or "{}")
        out.append(d)
    return out
