"""Uplinks against real sinks: a JSON Lines file, a real Mosquitto broker (plain and TLS), a real aiohttp server.

    .venv/bin/python -m pytest tests/gateway/test_uplinks.py -q          # all (about 8 s)
    .venv/bin/python -m pytest tests/gateway/test_uplinks.py -m unit     # the file sink and the factory only

Every scenario runs under ``run()`` (asyncio.run with a hard deadline), so a hung upstream fails the
test with a message instead of stalling the suite; broker logs show up with a failing test.
"""

import asyncio
import json
import os
import socket
import ssl
import time

import pytest
from aiohttp import web

from gateway.config import parse_config
from gateway.errors import ConfigError, UplinkError
from gateway.stream import batch_document, parse_batch, readings_from_rows, to_json
from gateway.uplinks import make_uplink
from gateway.uplinks.base import Batch
from gateway.uplinks.file import FileUplink
from gateway.uplinks.http import HttpUplink
from gateway.uplinks.mqtt import MqttUplink
from tools.virtual_field.broker import Subscriber, client_tls_context, free_port, make_certs

GW = "gw-1"
TOPIC = "fieldline/gw-1/stream"
START = 1750000500
SCENARIO_TIMEOUT_S = 20.0


def rows(n):
    """``n`` aligned rows (READING_FIELDS order) of one series, a grid cell apart."""
    return [
        ["node-7", "node", "air_temperature", "degC", START + 900 * i, 21.4 + i / 100, 21.2, 21.6, 15, 0, "mean", 0]
        for i in range(n)
    ]


def make_batch(seq, readings=None, fmt="cbor"):
    """A batch as the outbox hands it over: CBOR document by default (gateway.stream.batch_document)."""
    readings = readings_from_rows(rows(3)) if readings is None else readings
    payload = batch_document(GW, seq, 900, readings, [{"key": "health:%d" % seq, "battery_soc": 0.81}], fmt=fmt)
    return Batch(seq=seq, key="%s:%d" % (GW, seq), payload=payload, count=len(readings["ts"]))


def run(coro, timeout_s=SCENARIO_TIMEOUT_S):
    async def bounded():
        async with asyncio.timeout(timeout_s):
            return await coro

    return asyncio.run(bounded())


async def wait_until(predicate, timeout_s, what, uplink):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("%s not within %.1f s; uplink state: %s" % (what, timeout_s, uplink.state()))
        await asyncio.sleep(0.02)


async def send_timed(uplink, batch):
    """(error or None, seconds send took)."""
    t0 = time.monotonic()
    try:
        await uplink.send(batch)
    except UplinkError as e:
        return e, time.monotonic() - t0
    return None, time.monotonic() - t0


# ---------------------------------------------------------------- file sink (unit)


@pytest.fixture
def fsync_calls(monkeypatch):
    """The inode of every file os.fsync is called on (the real fsync still runs)."""
    calls = []
    real_fsync = os.fsync

    def spy(fd):
        calls.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n"), "file does not end with a newline: %r" % data[-80:]
    return data[:-1].split(b"\n")


def test_file_lines_are_the_payloads_each_fsynced_before_send_returns(tmp_path, fsync_calls):
    path = tmp_path / "up" / "stream.jsonl"  # the folder does not exist yet
    up = FileUplink(path)
    batches = [make_batch(i) for i in range(5)]

    async def scenario():
        await up.start()
        for i, b in enumerate(batches):
            await up.send(b)
            assert fsync_calls == [os.stat(path).st_ino] * (i + 1)  # fsynced before send returned
        await up.stop()

    run(scenario())
    lines = read_lines(path)
    assert lines == [to_json(b.payload) for b in batches]  # the CBOR documents, one JSON line each
    assert [json.loads(line)["batch"] for line in lines] == ["gw-1:%d" % i for i in range(5)]
    assert [parse_batch(line)[1] for line in lines] == [parse_batch(b.payload)[1] for b in batches]
    st = up.state()
    assert (st["kind"], st["sent_batches"], st["failed_batches"], st["last_error"]) == ("file", 5, 0, None)
    assert st["last_ok"] is not None and st["connected"] is False  # closed by stop()


def test_file_fsync_false_writes_without_fsync(tmp_path, fsync_calls):
    path = tmp_path / "stream.jsonl"
    up = make_uplink({"kind": "file", "path": str(path), "fsync": False}, GW)

    async def scenario():
        await up.start()
        await up.send(make_batch(1))

    run(scenario())
    assert read_lines(path) == [to_json(make_batch(1).payload)]
    assert fsync_calls == []


def test_file_rotates_to_dot_1_past_max_mb_keeping_whole_lines(tmp_path):
    path = tmp_path / "stream.jsonl"
    batches = [make_batch(i) for i in range(12)]
    line_bytes = len(to_json(batches[0].payload)) + 1
    max_mb = 3.5 * line_bytes / (1024 * 1024)  # three lines fit, the fourth rotates
    up = make_uplink({"kind": "file", "path": str(path), "max_mb": max_mb}, GW)

    async def scenario():
        await up.start()
        for b in batches:
            await up.send(b)

    run(scenario())
    current, older = read_lines(path), read_lines(str(path) + ".1")
    assert sorted(os.listdir(tmp_path)) == ["stream.jsonl", "stream.jsonl.1"]  # .1 was replaced, never .2
    assert older + current == [to_json(b.payload) for b in batches[-len(older + current) :]]  # newest, in order
    assert len(older) == 3 and 1 <= len(current) <= 3
    assert os.path.getsize(path) <= max_mb * 1024 * 1024 and os.path.getsize(str(path) + ".1") <= max_mb * 1024 * 1024


def test_file_closes_a_torn_last_line_before_appending(tmp_path):
    path = tmp_path / "stream.jsonl"
    path.write_bytes(to_json(make_batch(0).payload) + b"\n" + b'{"v":1,"gateway":"gw-1","readi')  # power cut
    up = FileUplink(path)

    async def scenario():
        await up.start()
        await up.send(make_batch(1))

    run(scenario())
    expected = [to_json(make_batch(0).payload), b'{"v":1,"gateway":"gw-1","readi', to_json(make_batch(1).payload)]
    assert read_lines(path) == expected


def test_file_start_survives_an_unusable_path_and_send_raises(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    up = FileUplink(blocker / "stream.jsonl")

    async def scenario():
        await up.start()  # must not raise: the sink may come back (an SD card mounted late)
        with pytest.raises(UplinkError, match="not-a-folder"):
            await up.send(make_batch(1))

    run(scenario())
    st = up.state()
    assert st["connected"] is False and st["failed_batches"] == 1 and "not-a-folder" in st["last_error"]


def test_file_writes_a_json_document_as_is():
    batch = make_batch(3, fmt="json")
    assert batch.payload[:1] == b"{" and to_json(batch.payload) == batch.payload


@pytest.mark.parametrize(
    "payload, why",
    [(b'{"a":\n1}', "several lines"), (b"\xff\x00 not cbor", "not a batch document")],
    ids=["json-over-two-lines", "garbage"],
)
def test_file_refuses_a_payload_that_is_not_a_one_line_document(tmp_path, payload, why):
    up = FileUplink(tmp_path / "stream.jsonl")

    async def scenario():
        await up.start()
        with pytest.raises(UplinkError, match=why):
            await up.send(Batch(seq=1, key="gw-1:1", payload=payload, count=0))
        await up.send(make_batch(2))  # the sink still works

    run(scenario())
    assert read_lines(tmp_path / "stream.jsonl") == [to_json(make_batch(2).payload)]


# ---------------------------------------------------------------- factory and options (unit)


def test_make_uplink_builds_each_kind_with_its_defaults(tmp_path):
    f = make_uplink({"kind": "file", "path": str(tmp_path / "x.jsonl")}, GW)
    m = make_uplink({"kind": "mqtt", "host": "127.0.0.1"}, GW)
    mt = make_uplink({"kind": "mqtt", "host": "127.0.0.1", "tls": {"insecure": True}, "topic": "farm/{gateway}"}, GW)
    h = make_uplink({"kind": "http", "url": "https://ingest.example/v1"}, GW)
    assert (type(f), type(m), type(h)) == (FileUplink, MqttUplink, HttpUplink)
    assert (m.port, m.topic, m.client_id, m.max_inflight, m.timeout_s) == (1883, TOPIC, "fieldline-gw-1", 32, 10.0)
    assert (mt.port, mt.topic, mt.where) == (8883, "farm/gw-1", "mqtts://127.0.0.1:8883")
    assert (h.max_inflight, h.timeout_s) == (4, 10.0)
    for up in (f, m, h):
        assert (up.backoff_min_s, up.backoff_max_s) == (1.0, 60.0)  # the engine reads these
        st = up.state()
        assert {"kind", "connected", "sent_batches", "failed_batches", "last_error", "last_ok"} <= set(st)
        assert st["kind"] == up.kind and st["connected"] is False and st["sent_batches"] == 0
        json.dumps(st)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"kind": "ftp"}, "uplinks.kind: expected one of file, mqtt, http, got 'ftp'"),
        ({"path": "x"}, "config: uplinks.kind: expected one of file, mqtt, http"),
        ({"kind": "mqtt"}, "uplinks.host: expected the MQTT broker's host name"),
        ({"kind": "mqtt", "host": "h", "max_inflght": 4}, "uplinks.max_inflght: expected one of the mqtt uplink's"),
        ({"kind": "mqtt", "host": "h", "port": 70000}, "uplinks.port: expected an integer >= 1 and <= 65535"),
        ({"kind": "mqtt", "host": "h", "topic": "a/#"}, "uplinks.topic: expected a topic name without wildcards"),
        ({"kind": "mqtt", "host": "h", "tls": {"cert": "c.pem"}}, "uplinks.tls.cert: expected cert and key together"),
        ({"kind": "mqtt", "host": "h", "tls": {"ca": "/nonexistent/ca.pem"}}, "uplinks.tls.ca: expected a readable"),
        ({"kind": "mqtt", "host": "h", "tls": {"cafile": "x"}}, "uplinks.tls.cafile: expected one of ca, cert"),
        ({"kind": "http", "url": "ftp://x/"}, "uplinks.url: expected an http:// or https:// URL"),
        ({"kind": "http", "url": "http://x/", "tls": {}}, "uplinks.tls: expected an https:// url"),
        ({"kind": "http", "url": "http://x/", "timeout_s": "10"}, "uplinks.timeout_s: expected a number > 0.0"),
        ({"kind": "file", "path": "x", "backoff_min_s": 0}, "uplinks.backoff_min_s: expected a number > 0.0"),
        ({"kind": "file", "path": "x", "backoff_min_s": 5, "backoff_max_s": 1}, "uplinks.backoff_max_s: expected"),
        ({"kind": "file", "path": "x", "fsync": "yes"}, "uplinks.fsync: expected true or false"),
    ],
)
def test_make_uplink_rejects_bad_options_naming_the_key(options, message):
    with pytest.raises(ConfigError) as e:
        make_uplink(options, GW)
    assert message in str(e.value)


def test_make_uplink_takes_what_the_config_loader_produces(tmp_path, certs):
    text = """
[gateway]
id = "gw-7"
[[uplinks]]
kind = "file"
path = "out/stream.jsonl"
max_mb = 64
backoff_min_s = 2.0
[[uplinks]]
kind = "mqtt"
host = "broker.example"
keepalive_s = 0
tls = { ca = "%(ca)s", cert = "%(cert)s", key = "%(key)s" }
[[uplinks]]
kind = "http"
url = "https://ingest.example/v1/batches"
token = "t"
tls = true
""" % {"ca": certs["ca"], "cert": certs["client_cert"], "key": certs["client_key"]}
    cfg = parse_config(text, base_dir=tmp_path)
    f, m, h = (make_uplink(u, cfg.gateway_id) for u in cfg.uplinks)
    assert (f.path, f.max_bytes, f.backoff_min_s) == (str(tmp_path / "out" / "stream.jsonl"), 64 << 20, 2.0)
    assert (m.where, m.topic, m.client_id, m.keepalive_s) == (
        "mqtts://broker.example:8883",
        "fieldline/gw-7/stream",
        "fieldline-gw-7",
        0,
    )
    assert (h.url, h.max_inflight) == ("https://ingest.example/v1/batches", 4)


# ---------------------------------------------------------------- MQTT against a real Mosquitto (sim)


def mqtt_uplink(broker, **options):
    opts = {"kind": "mqtt", "host": "127.0.0.1", "port": broker.port, "timeout_s": 2.0}
    opts.update(backoff_min_s=0.05, backoff_max_s=0.2)
    opts.update(options)
    return make_uplink(opts, GW)


@pytest.mark.sim
def test_mqtt_subscriber_gets_exactly_the_payload_at_qos1(mosquitto):
    sub = Subscriber(mosquitto.port, "fieldline/#")
    up = mqtt_uplink(mosquitto)
    batch = make_batch(7)

    async def scenario():
        await up.start()
        assert up.state()["connected"] is True  # start() waited for the first CONNACK
        await up.send(batch)
        await up.stop()

    try:
        run(scenario())
        sub.wait_for(1, timeout_s=5)
        time.sleep(0.1)  # a duplicate would arrive right behind
        assert sub.messages == [(TOPIC, 1, batch.payload)]
    finally:
        sub.close()
    st = up.state()
    assert (st["sent_batches"], st["failed_batches"], st["last_error"]) == (1, 0, None) and st["last_ok"]


@pytest.mark.sim
def test_mqtt_200_concurrent_100kb_sends_all_acknowledged_and_received(mosquitto):
    readings = readings_from_rows(rows(1600))  # ~114 KB of CBOR a batch, like a day of a busy field
    batches = [make_batch(i, readings) for i in range(200)]
    assert len(batches[0].payload) > 100_000
    sub = Subscriber(mosquitto.port, TOPIC)
    up = mqtt_uplink(mosquitto, timeout_s=10.0)
    peak_inflight = []

    async def sample_inflight():
        while True:
            peak_inflight.append(up.state()["inflight"])
            await asyncio.sleep(0.001)

    async def scenario():
        await up.start()
        sampler = asyncio.create_task(sample_inflight())
        t0 = time.monotonic()
        results = await asyncio.gather(*(up.send(b) for b in batches), return_exceptions=True)
        elapsed = time.monotonic() - t0
        sampler.cancel()
        await up.stop()
        return results, elapsed

    try:
        results, elapsed = run(scenario())
        assert [r for r in results if r is not None] == []
        got = sub.wait_for(200, timeout_s=10)
        assert sorted(got) == sorted(b.payload for b in batches)  # each exactly once, byte for byte
    finally:
        sub.close()
    assert up.state()["sent_batches"] == 200
    assert 1 < max(peak_inflight) <= 32  # really concurrent, never past max_inflight
    assert elapsed < 10, "200 x 100 KB took %.1f s" % elapsed


@pytest.mark.sim
def test_mqtt_send_fails_within_timeout_when_the_broker_stops(mosquitto):
    up = mqtt_uplink(mosquitto, timeout_s=1.0)

    async def scenario():
        await up.start()
        await up.send(make_batch(1))
        mosquitto.stop()
        err, took = await send_timed(up, make_batch(2))
        assert isinstance(err, UplinkError), "send to a stopped broker returned normally"
        assert took < 1.0 + 0.5, "send took %.2f s with timeout_s 1.0" % took
        await wait_until(lambda: not up.state()["connected"], 2.0, "state shows disconnected", up)
        err, took = await send_timed(up, make_batch(3))  # now it fails fast, without waiting
        assert "not connected to mqtt://127.0.0.1:%d" % mosquitto.port in str(err) and took < 0.1
        await up.stop()

    run(scenario())
    st = up.state()
    assert (st["sent_batches"], st["failed_batches"], st["connected"]) == (1, 2, False)
    assert "mqtt://127.0.0.1" in st["last_error"]


@pytest.mark.sim
def test_mqtt_reconnects_by_itself_when_the_broker_returns_on_the_same_port(mosquitto):
    up = mqtt_uplink(mosquitto)

    async def scenario():
        await up.start()
        mosquitto.stop()
        await wait_until(lambda: not up.state()["connected"], 3.0, "disconnect noticed", up)
        with pytest.raises(UplinkError, match="not connected"):
            await up.send(make_batch(1))
        mosquitto.start()  # same port; start() on the uplink is NOT called again
        await wait_until(lambda: up.state()["connected"], 5.0, "reconnected", up)
        sub = await asyncio.to_thread(Subscriber, mosquitto.port, TOPIC)
        try:
            await up.send(make_batch(1))
            assert await asyncio.to_thread(sub.wait_for, 1, 5.0) == [make_batch(1).payload]
        finally:
            sub.close()
        await up.stop()

    run(scenario())
    assert up.state()["sent_batches"] == 1 and up.state()["failed_batches"] == 1


@pytest.mark.sim
def test_mqtt_start_does_not_raise_with_the_broker_down_and_connects_later(mosquitto):
    mosquitto.stop()
    up = mqtt_uplink(mosquitto)

    async def scenario():
        t0 = time.monotonic()
        await up.start()
        assert time.monotonic() - t0 < 2.0, "start() should return after the first refused attempt"
        st = up.state()
        assert st["connected"] is False and "Connection refused" in st["last_error"], st
        with pytest.raises(UplinkError, match="Connection refused"):
            await up.send(make_batch(1))
        mosquitto.start()
        await wait_until(lambda: up.state()["connected"], 5.0, "connected once the broker is up", up)
        await up.send(make_batch(1))
        await up.stop()

    run(scenario())


@pytest.mark.sim
def test_mqtt_no_puback_from_a_hung_broker_is_an_error_after_timeout_s(mosquitto):
    up = mqtt_uplink(mosquitto, timeout_s=0.5)

    async def scenario():
        await up.start()
        mosquitto.pause()
        try:
            err, took = await send_timed(up, make_batch(1))
        finally:
            mosquitto.resume()
        assert isinstance(err, UplinkError) and "batch gw-1:1: no PUBACK from mqtt://127.0.0.1" in str(err), err
        assert 0.5 <= took < 1.5, took
        await up.stop()

    run(scenario())


@pytest.mark.sim
def test_mqtt_pending_send_fails_at_once_when_the_connection_drops(mosquitto):
    up = mqtt_uplink(mosquitto, timeout_s=5.0)

    async def scenario():
        await up.start()
        mosquitto.pause()  # the PUBLISH goes out, no PUBACK comes back
        pending = asyncio.create_task(send_timed(up, make_batch(1)))
        await wait_until(lambda: up.state()["inflight"] == 1, 2.0, "send in flight", up)
        mosquitto.kill()  # the connection drops while the send waits for its PUBACK
        err, took = await pending
        assert isinstance(err, UplinkError) and "disconnected from mqtt://127.0.0.1" in str(err), err
        assert took < 2.0, "a dropped link should fail the send well before timeout_s (took %.2f s)" % took
        await up.stop()

    run(scenario())


@pytest.mark.sim
def test_mqtt_username_and_password_are_used_and_a_refusal_is_named(mosquitto_users):
    good = mqtt_uplink(mosquitto_users, username="gw-1", password="right")
    bad = mqtt_uplink(mosquitto_users, username="gw-1", password="wrong")

    async def scenario():
        await good.start()
        await bad.start()
        await good.send(make_batch(1))
        with pytest.raises(UplinkError, match="broker refused the connection: Not authorized"):
            await bad.send(make_batch(1))
        await good.stop()
        await bad.stop()

    run(scenario())
    assert good.state()["sent_batches"] == 1 and "Not authorized" in bad.state()["last_error"]


@pytest.mark.sim
def test_mqtt_tls_with_the_right_ca_and_a_client_certificate(mosquitto_tls, certs):
    sub = Subscriber(mosquitto_tls.port, TOPIC, tls_context=client_tls_context(certs))
    tls = {"ca": certs["ca"], "cert": certs["client_cert"], "key": certs["client_key"]}
    up = mqtt_uplink(mosquitto_tls, tls=tls)

    async def scenario():
        await up.start()
        await up.send(make_batch(1))
        await up.stop()

    try:
        run(scenario())
        assert sub.wait_for(1, timeout_s=5) == [make_batch(1).payload]
    finally:
        sub.close()
    assert up.state()["broker"] == "mqtts://127.0.0.1:%d" % mosquitto_tls.port


@pytest.mark.sim
def test_mqtt_tls_with_a_wrong_ca_says_certificate_verify_failed(mosquitto_tls, certs, tmp_path):
    other = make_certs(tmp_path / "other-ca")
    up = mqtt_uplink(mosquitto_tls, tls={"ca": other["ca"], "cert": certs["client_cert"], "key": certs["client_key"]})

    async def scenario():
        await up.start()  # must not raise
        with pytest.raises(UplinkError) as e:
            await up.send(make_batch(1))
        await up.stop()
        return str(e.value)

    message = run(scenario())
    assert "TLS: certificate verify failed" in message, message
    assert "TLS: certificate verify failed" in up.state()["last_error"]


@pytest.mark.sim
def test_mqtt_tls_without_the_required_client_certificate_names_tls(mosquitto_tls, certs):
    up = mqtt_uplink(mosquitto_tls, tls={"ca": certs["ca"]})

    async def scenario():
        await up.start()
        await wait_until(lambda: up.state()["last_error"], 3.0, "a connection error", up)
        with pytest.raises(UplinkError) as e:
            await up.send(make_batch(1))
        await up.stop()
        return str(e.value)

    message = run(scenario())
    assert "TLS" in message and "certificate required" in message, message


# ---------------------------------------------------------------- HTTP against a real aiohttp server (sim)


class Upstream:
    """An aiohttp server on 127.0.0.1 that records each POST and answers ``status`` with ``body``."""

    def __init__(self, status=200, body="stored", delay_s=0.0, ssl_context=None):
        self.status, self.body, self.delay_s, self.ssl_context = status, body, delay_s, ssl_context
        self.requests = []  # (headers, body bytes)
        self.active = self.peak_active = 0

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/v1/batches", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)  # do not wait out a slow handler
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock, ssl_context=self.ssl_context)
        await site.start()
        scheme = "https" if self.ssl_context else "http"
        self.url = "%s://127.0.0.1:%d/v1/batches" % (scheme, sock.getsockname()[1])
        return self

    async def __aexit__(self, *exc):
        await self._runner.cleanup()

    async def _handle(self, request):
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            self.requests.append((dict(request.headers), await request.read()))
            await asyncio.sleep(self.delay_s)
            return web.Response(status=self.status, text=self.body)
        finally:
            self.active -= 1


def server_tls_context(certs, require_client_cert=False):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs["ca"])
    ctx.load_cert_chain(certs["server_cert"], certs["server_key"])
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    return ctx


async def post_once(upstream_kw, **options):
    """Start an Upstream and an HttpUplink, send one batch: (error or None, upstream, uplink state)."""
    async with Upstream(**upstream_kw) as server:
        up = make_uplink({"kind": "http", "url": server.url, "timeout_s": 2.0, **options}, GW)
        await up.start()
        err, _ = await send_timed(up, make_batch(5))
        state = up.state()
        await up.stop()
        return err, server, state


@pytest.mark.sim
def test_http_posts_the_payload_with_idempotency_key_and_bearer_token():
    err, server, st = run(post_once({}, token="s3cret"))
    assert err is None
    [(headers, body)] = server.requests
    assert body == make_batch(5).payload
    assert headers["Idempotency-Key"] == "gw-1:5"
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"] == "application/cbor"  # the outbox's CBOR document, byte for byte
    assert (st["connected"], st["sent_batches"], st["failed_batches"]) == (True, 1, 0)


@pytest.mark.sim
def test_http_sends_a_json_document_as_application_json():
    async def scenario():
        async with Upstream() as server:
            up = HttpUplink(server.url)
            await up.start()
            await up.send(make_batch(1, fmt="json"))
            await up.stop()
            return server

    [(headers, body)] = run(scenario()).requests
    assert headers["Content-Type"] == "application/json" and body == make_batch(1, fmt="json").payload


@pytest.mark.sim
def test_http_500_is_an_uplink_error_with_the_status_and_the_start_of_the_body():
    body = "database is locked; " + "x" * 400
    err, server, st = run(post_once({"status": 500, "body": body}))
    assert isinstance(err, UplinkError) and len(server.requests) == 1
    assert "500 Internal Server Error" in str(err) and body[:200] in str(err) and body[:201] not in str(err)
    assert "Authorization" not in server.requests[0][0]  # no token configured, none sent
    assert st["failed_batches"] == 1 and st["connected"] is True  # the server answered: the link is up


@pytest.mark.sim
def test_http_409_means_upstream_already_has_the_batch_so_it_is_acknowledged():
    err, _, st = run(post_once({"status": 409, "body": "duplicate batch gw-1:5"}))
    assert err is None and st["sent_batches"] == 1 and st["failed_batches"] == 0


@pytest.mark.sim
def test_http_server_down_is_an_uplink_error_and_disconnected():
    up = HttpUplink("http://127.0.0.1:%d/v1/batches" % free_port(), timeout_s=2.0)

    async def scenario():
        await up.start()
        err, took = await send_timed(up, make_batch(1))
        await up.stop()
        return err, took

    err, took = run(scenario())
    assert isinstance(err, UplinkError) and "127.0.0.1" in str(err) and took < 2.0, (err, took)
    assert up.state()["connected"] is False and up.state()["failed_batches"] == 1


@pytest.mark.sim
def test_http_a_slow_server_is_an_uplink_error_after_timeout_s():
    async def scenario():
        async with Upstream(delay_s=1.0) as server:
            up = HttpUplink(server.url, timeout_s=0.3)
            await up.start()
            err, took = await send_timed(up, make_batch(1))
            await up.stop()
            return err, took

    err, took = run(scenario())
    assert isinstance(err, UplinkError) and "within 0.3 s" in str(err) and took < 1.5, (err, took)


@pytest.mark.sim
def test_http_concurrent_sends_stay_within_max_inflight():
    async def scenario():
        async with Upstream(delay_s=0.05) as server:
            up = HttpUplink(server.url, max_inflight=3)
            await up.start()
            await asyncio.gather(*(up.send(make_batch(i)) for i in range(12)))
            await up.stop()
            return server

    server = run(scenario())
    assert sorted(h["Idempotency-Key"] for h, _ in server.requests) == sorted("gw-1:%d" % i for i in range(12))
    assert server.peak_active == 3


@pytest.mark.sim
def test_https_with_the_right_ca_and_a_client_certificate(certs):
    tls = {"ca": certs["ca"], "cert": certs["client_cert"], "key": certs["client_key"]}
    err, server, st = run(post_once({"ssl_context": server_tls_context(certs, require_client_cert=True)}, tls=tls))
    assert err is None and server.requests[0][1] == make_batch(5).payload and st["sent_batches"] == 1


@pytest.mark.sim
def test_https_with_a_wrong_ca_says_certificate_verify_failed(certs, tmp_path):
    other = make_certs(tmp_path / "other-ca")
    err, server, st = run(post_once({"ssl_context": server_tls_context(certs)}, tls={"ca": other["ca"]}))
    assert isinstance(err, UplinkError) and "TLS: certificate verify failed" in str(err), err
    assert server.requests == [] and st["connected"] is False
