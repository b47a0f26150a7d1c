"""Alerts open once, hold while the condition holds (hysteresis), close when it clears; delivered to the log
and to a webhook (a real HTTP server on 127.0.0.1), retried when the webhook was down."""

import http.server
import json
import logging
import threading

import numpy as np
import pytest

from tests.upstream.test_health import write
from upstream.alerts import AlertEngine, LogSink, WebhookSink, alert_history
from upstream.health import assess
from upstream.store import open_store

T0 = 1780272000
H = 3600


class Hook:
    """A webhook receiver on 127.0.0.1: records every JSON body; ``down`` answers 503."""

    def __init__(self):
        self.events = []
        self.down = False
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.down:
                    self.send_response(503)
                else:
                    hook.events.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    h = Hook()
    yield h
    h.close()


def test_an_alert_opens_once_and_closes_when_the_condition_clears(tmp_path, hook, caplog):
    caplog.set_level(logging.INFO, logger="fieldline.upstream.alerts")
    with open_store("sqlite:///%s" % (tmp_path / "u.db")) as s:
        t = np.arange(T0, T0 + 3 * 86400, H)
        write(s, "a", "node-1", t, customer="Acme")
        write(s, "b", "node-2", t, customer="Acme")
        engine = AlertEngine(s, sinks=[LogSink(), WebhookSink(hook.url)])
        quiet_from = t[-1]
        for k in range(1, 12):  # node-1 goes quiet; evaluated hourly
            now = quiet_from + k * H
            write(s, "b%d" % k, "node-2", [now - 600])
            engine.evaluate(assess(s, now=now))
        opened = [e for e in hook.events if e["event"] == "alert_open"]
        assert [(e["device"], e["cause"]) for e in opened] == [("node-1", "silent")]  # once, not every hour
        assert opened[0]["evidence"]["hours_since_last"] >= 6 and opened[0]["customer"] == "Acme"
        assert "alert_open node-1 silent (Acme)" in caplog.text
        # it reports again: level 0 now, but the alert closes only after the hold time (3 h for hourly nodes)
        back = quiet_from + 12 * H
        for k in range(0, 6):
            now = back + k * H
            write(s, "c%d" % k, "node-1", [now - 300])
            write(s, "d%d" % k, "node-2", [now - 300])
            engine.evaluate(assess(s, now=now))
            closed = [e for e in hook.events if e["event"] == "alert_closed"]
            assert len(closed) == (1 if k >= 2 else 0), k  # 3 h after it last held (at back - 1 h)
        hist = alert_history(s, "node-1")
        assert len(hist) == 1 and hist[0]["closed_at"] == back + 2 * H and hist[0]["cause"] == "silent"


def test_a_webhook_that_was_down_gets_the_event_later(tmp_path, hook):
    with open_store("sqlite:///%s" % (tmp_path / "u.db")) as s:
        t = np.arange(T0, T0 + 2 * 86400, H)
        write(s, "a", "node-1", t)
        write(s, "b", "node-2", t)
        hook.down = True
        sink = WebhookSink(hook.url, timeout_s=2)
        engine = AlertEngine(s, sinks=[sink])
        now = t[-1] + 10 * H
        assert len(engine.evaluate(assess(s, now=now))["opened"]) == 2
        assert hook.events == [] and sink.failed == 2
        hook.down = False
        engine.evaluate(assess(s, now=now + H))
        assert sorted(e["device"] for e in hook.events) == ["node-1", "node-2"]
        engine.evaluate(assess(s, now=now + 2 * H))
        assert len(hook.events) == 2  # delivered once


def test_a_rare_reporter_is_not_closed_and_reopened_between_its_records(tmp_path):
    with open_store("sqlite:///%s" % (tmp_path / "u.db")) as s:
        t = np.arange(T0, T0 + 4 * 86400, 6 * H)  # every 6 h
        tilt = np.where(t >= T0 + 3 * 86400, 12.0, 1.0)  # knocked on day 3
        write(s, "a", "node-1", t, tilt_deg=tilt)
        engine = AlertEngine(s, sinks=[])
        opened = 0
        for k in range(0, 24):
            now = T0 + 3 * 86400 + k * H
            opened += len(engine.evaluate(assess(s, now=now))["opened"])
        assert opened == 1 and len(alert_history(s)) == 1 and alert_history(s)[0]["cause"] == "tilt_changed"
