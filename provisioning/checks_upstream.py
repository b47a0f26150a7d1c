"""The gateway's side of an install: its /status, and the onboarding report that puts the verdict on record.

    gw = GatewayClient("http://192.168.4.1:8780", token="...")
    view = gw.view(device_id)                       # GatewayView: seen? rejected? outbox forwarded?
    rec = onboarding_report(results, device_id=..., when_utc=..., target="port /dev/ttyUSB0")
    path = save_report(rec, report_dir); gw.post_record(rec)    # archived first, then delivered

The report is a stream record (kind "onboarding_report", source "node-<id>", ts, key) posted to the
gateway's ``POST /records``: the gateway stores it in its durable outbox and forwards it upstream with
everything else, so the CSM's fleet view shows every install's verdict. Its key names the device and
the check's time, so a report sent twice is dropped upstream as a duplicate. It is saved locally
before it is sent: with no gateway in reach it waits on the installer's computer.
"""

import json
import os
import time
import urllib.error
import urllib.request

from provisioning.checks_result import CheckError, as_json

REPORT_KIND = "onboarding_report"


class GatewayUnreachable(CheckError):
    """The gateway's status endpoint did not answer (or refused); the message says why."""


class GatewayView:
    """What a gateway's /status says about one device."""

    def __init__(self, status, device_id):
        self.status = status
        self.device_id = device_id
        key = str(device_id)
        self.last_frame = None  # gateway clock (epoch s) of its last authenticated frame
        self.rejected = dict(status.get("rejected_frames") or {})
        for src in status.get("sources") or ():
            t = (src.get("devices") or {}).get(key)
            if t is not None and (self.last_frame is None or t > self.last_frame):
                self.last_frame = t
        box = status.get("outbox") or {}
        self.outbox_batches = box.get("batches", 0)
        self.outbox_oldest_s = box.get("oldest_age_s", 0.0)
        self.uplinks = list(status.get("uplinks") or ())

    @property
    def seen(self):
        return self.last_frame is not None

    @property
    def forwarded(self):
        """Everything stored was acknowledged upstream (the outbox is empty)."""
        return self.outbox_batches == 0

    @property
    def connected(self):
        return any(u.get("connected") for u in self.uplinks)

    def describe(self):
        ups = ", ".join("%s %s" % (u.get("kind"), "connected" if u.get("connected") else "DOWN") for u in self.uplinks)
        return "gateway %s: device %s; outbox %d batches%s; uplinks %s" % (
            self.status.get("gateway", "?"),
            "seen" if self.seen else "NOT seen",
            self.outbox_batches,
            " (oldest %.0f s)" % self.outbox_oldest_s if self.outbox_batches else "",
            ups or "none",
        )


class GatewayClient:
    """HTTP to a gateway's status endpoint (``url``: its base, e.g. http://host:8780, or .../status)."""

    def __init__(self, url, token="", timeout_s=5.0):
        url = url.rstrip("/")
        self.base = url[: -len("/status")] if url.endswith("/status") else url
        self.token, self.timeout_s = token or "", timeout_s

    def _request(self, path, body=None):
        req = urllib.request.Request(self.base + path, data=body, method="POST" if body is not None else "GET")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                why = json.loads(e.read()).get("error", e.reason)
            except ValueError:
                why = e.reason
            hint = " (pass --token)" if e.code == 401 else ""
            raise GatewayUnreachable("gateway %s%s: HTTP %d: %s%s" % (self.base, path, e.code, why, hint)) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise GatewayUnreachable("gateway %s%s: %s" % (self.base, path, getattr(e, "reason", e))) from None

    def status(self):
        return self._request("/status")

    def view(self, device_id):
        return GatewayView(self.status(), device_id)

    def post_record(self, record):
        """Hand ``record`` to the gateway's outbox; returns the key it stored it under."""
        return self._request("/records", json.dumps(record).encode())["stored"]


def onboarding_report(results, device_id, when_utc, target="", extra=None):
    """The stream record of one install check: verdict and every check, keyed by device and time."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(when_utc)))
    source = "node-%d" % device_id if device_id is not None else "node-unknown"
    rec = {"kind": REPORT_KIND, "source": source, "device": device_id, "ts": ts,
           "key": "%s/%s/%s" % (source, REPORT_KIND, ts), "target": target}  # fmt: skip
    rec.update(as_json(results))
    rec.update(extra or {})
    return rec


def save_report(record, report_dir):
    """Write ``record`` as JSON in ``report_dir`` (atomically); returns the path."""
    os.makedirs(report_dir, exist_ok=True)
    name = "%s-%s.json" % (record["source"], record["ts"].replace(":", ""))
    path = os.path.join(report_dir, name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path)
    return path


def default_report_dir():
    """$XDG_DATA_HOME/fieldline/reports (~/.local/share/fieldline/reports)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "fieldline", "reports")
