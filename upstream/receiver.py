"""The upstream receiver: the gateways' batches in over MQTT and HTTP, into the store, exactly once.

    rx = Receiver("sqlite:///upstream.db", mqtt=("broker.example", 1883), http=("127.0.0.1", 8781))
    await rx.start(); ...; await rx.stop()          # rx.stats: batches, duplicates, bad, rows ...

MQTT: paho-mqtt with a persistent session (clean_session off, a fixed client id), subscribed at
QoS 1 to ``topic`` (default ``fieldline/+/stream``, the gateways' default). Messages are
acknowledged by hand, only after their batch was committed (or refused as bad), so a batch that
was in flight when the receiver died is delivered again, and dropped then as a duplicate.
HTTP (aiohttp): ``POST /batches`` (also ``/v1/batches``) with the CBOR or JSON document as body
and ``Idempotency-Key: <gateway>:<seq>``; answers 200 with counts after the commit, 409 for a batch
already stored (the gateway's uplink treats 409 as acknowledged), 400 with the reason for a bad
batch, 401 without the right bearer token, 503 if the store failed (retry). A token is required
when binding anything but a loopback address. ``GET /status`` returns the counters.
Duplicates are dropped per batch (its key) and per reading/record (their keys) inside new batches.
Every store call runs on one writer thread (SQLite's single writer; one transaction per batch).
Bad batches are counted, kept in ``rejected_batches`` with the reason, and never stop the receiver.
Optionally the alert engine runs every ``alerts_every_s`` on the same thread.
"""

import asyncio
import concurrent.futures
import hmac
import json
import logging
import time

from upstream.errors import BadBatch, ConfigError, StoreError
from upstream.normalise import parse_payload
from upstream.store import open_store

log = logging.getLogger("fieldline.upstream.receiver")
MAX_BODY = 64 << 20


def is_loopback(host):
    from gateway.config import is_loopback as _loop

    return _loop(host)


def parse_hostport(text, option, default_port):
    """ "HOST:PORT" (or "HOST") -> (host, port); ConfigError naming ``option`` otherwise."""
    host, _, port = str(text).rpartition(":") if ":" in str(text) else (str(text), "", "")
    if not host:
        host, port = port, ""
    try:
        p = int(port) if port else default_port
    except ValueError:
        raise ConfigError(option, "HOST:PORT with a numeric port", got=text) from None
    if not host or not 0 <= p <= 65535:
        raise ConfigError(option, "HOST:PORT", got=text)
    return host, p


class Receiver:
    """See the module doc. ``store``: a URL or an open Store (then not closed by stop())."""

    def __init__(self, store, mqtt=None, topic="fieldline/+/stream", http=None, token=None,
                 client_id="fieldline-upstream", mqtt_username=None, mqtt_password=None, alert_engine=None,
                 alerts_every_s=None):  # fmt: skip
        self._store_arg = store
        self.store = None
        self.mqtt, self.topic, self.http = mqtt, topic, http
        self.token = token or None
        if http is not None and not self.token and not is_loopback(http[0]):
            raise ConfigError("--token", "a bearer token when --http binds a non-loopback address", got=http[0])
        self.client_id = client_id
        self.mqtt_username, self.mqtt_password = mqtt_username, mqtt_password
        self.alert_engine, self.alerts_every_s = alert_engine, alerts_every_s
        self.stats = {"batches": 0, "duplicate_batches": 0, "bad_batches": 0, "store_errors": 0, "readings": 0,
                      "duplicate_readings": 0, "records": 0, "duplicate_records": 0, "mqtt_messages": 0,
                      "http_requests": 0, "unauthorized": 0, "last_error": None, "mqtt_connected": False}  # fmt: skip
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="fieldline-store")
        self._loop = None
        self._client = None
        self._runner = None
        self._tasks = set()
        self.http_port = None

    # ---- lifecycle ----
    async def start(self):
        self._loop = asyncio.get_running_loop()
        self.store = await self._run(self._open_store)
        if self.http is not None:
            await self._start_http()
        if self.mqtt is not None:
            self._start_mqtt()
        if self.alert_engine is not None and self.alerts_every_s:
            self._spawn(self._alert_loop())

    def _open_store(self):
        return open_store(self._store_arg) if isinstance(self._store_arg, str) else self._store_arg

    async def stop(self):
        for t in list(self._tasks):
            t.cancel()
        if self._client is not None:
            client, self._client = self._client, None
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self.store is not None and isinstance(self._store_arg, str):
            await self._run(self.store.close)
        self._pool.shutdown(wait=True)

    def _spawn(self, coro):
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _run(self, fn, *args):
        return await self._loop.run_in_executor(self._pool, fn, *args)

    # ---- one batch ----
    def _ingest_sync(self, payload, key, via):
        try:
            batch = parse_payload(payload, key)
        except BadBatch as e:
            try:
                self.store.reject(via, key, e.reason, payload)
            except Exception as store_e:  # noqa: BLE001 - keeping the bad payload is best effort
                log.warning("could not keep the bad batch for inspection: %s", store_e)
            return "bad", e
        return "stored", self.store.ingest(batch, via=via)

    async def ingest(self, payload, key=None, via="http"):
        """Store one batch; returns (outcome, detail): ("stored"|"duplicate", IngestResult), ("bad", BadBatch)
        or ("error", StoreError). Never raises for bad input."""
        try:
            outcome, detail = await self._run(self._ingest_sync, payload, key, via)
        except StoreError as e:
            self.stats["store_errors"] += 1
            self.stats["last_error"] = str(e)
            log.error("%s: %s", via, e)
            return "error", e
        s = self.stats
        if outcome == "bad":
            s["bad_batches"] += 1
            s["last_error"] = str(detail)
            log.warning("%s: bad batch refused: %s", via, detail)
            return outcome, detail
        if detail.duplicate:
            s["duplicate_batches"] += 1
            return "duplicate", detail
        s["batches"] += 1
        for k in ("readings", "duplicate_readings", "records", "duplicate_records"):
            s[k] += getattr(detail, k)
        return outcome, detail

    # ---- HTTP ----
    async def _start_http(self):
        from aiohttp import web

        app = web.Application(client_max_size=MAX_BODY)
        for path in ("/batches", "/v1/batches"):
            app.router.add_post(path, self._post_batch)
        app.router.add_get("/status", self._status)
        self._runner = web.AppRunner(app, access_log=logging.getLogger("fieldline.upstream.access"))
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.http[0], self.http[1])
        await site.start()
        self.http_port = self._runner.addresses[0][1]
        log.info("HTTP ingest on http://%s:%d/batches%s", self.http[0], self.http_port,
                 " (token)" if self.token else "")  # fmt: skip

    def _authorized(self, request):
        if not self.token:
            return True
        got = request.headers.get("Authorization", "")
        return got.startswith("Bearer ") and hmac.compare_digest(got[7:].encode(), self.token.encode())

    def _json(self, status, body):
        from aiohttp import web

        return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, separators=(",", ":")))

    async def _post_batch(self, request):
        self.stats["http_requests"] += 1
        if not self._authorized(request):
            self.stats["unauthorized"] += 1
            return self._json(401, {"error": "missing or wrong bearer token"})
        payload = await request.read()
        key = request.headers.get("Idempotency-Key") or None
        outcome, detail = await self.ingest(payload, key, via="http")
        if outcome == "bad":
            return self._json(400, {"error": detail.reason, "batch": detail.batch})
        if outcome == "error":
            return self._json(503, {"error": "store unavailable, retry: %s" % detail})
        if outcome == "duplicate":
            return self._json(409, {"batch": detail.batch, "duplicate": True})
        return self._json(200, detail.as_dict())

    async def _status(self, request):
        if not self._authorized(request):
            return self._json(401, {"error": "missing or wrong bearer token"})
        return self._json(200, dict(self.stats))

    # ---- MQTT ----
    def _start_mqtt(self):
        import paho.mqtt.client as mqtt

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                        manual_ack=True)  # fmt: skip
        if self.mqtt_username:
            c.username_pw_set(self.mqtt_username, self.mqtt_password)
        c.reconnect_delay_set(0.5, 30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.connect_async(self.mqtt[0], self.mqtt[1], keepalive=30)
        c.loop_start()
        self._client = c

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%d refused: %s", self.mqtt[0], self.mqtt[1], reason_code)
            return
        client.subscribe(self.topic, qos=1)
        self.stats["mqtt_connected"] = True
        log.info("MQTT: subscribed to %s on %s:%d as %s", self.topic, self.mqtt[0], self.mqtt[1], self.client_id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.stats["mqtt_connected"] = False

    def _on_message(self, client, userdata, msg):
        payload, mid, qos, topic = bytes(msg.payload), msg.mid, msg.qos, msg.topic
        try:
            self._loop.call_soon_threadsafe(self._spawn, self._mqtt_batch(client, payload, mid, qos, topic))
        except RuntimeError:  # the loop is gone: not acknowledged, the broker keeps it for the next session
            pass

    async def _mqtt_batch(self, client, payload, mid, qos, topic):
        self.stats["mqtt_messages"] += 1
        outcome, _detail = await self.ingest(payload, None, via="mqtt:" + topic)
        if outcome == "error":
            return  # not acknowledged: redelivered when the session resumes
        if qos > 0 and client is self._client:
            client.ack(mid, qos)

    # ---- alerts ----
    async def _alert_loop(self):
        from upstream.health import assess

        while True:
            await asyncio.sleep(self.alerts_every_s)
            try:
                await self._run(lambda: self.alert_engine.evaluate(assess(self.store)))
            except Exception as e:  # noqa: BLE001 - alerts must not stop the ingest
                log.error("alert evaluation failed: %s", e)


async def serve(receiver, stop):
    """Run ``receiver`` until the asyncio.Event ``stop`` is set."""
    await receiver.start()
    t0 = time.monotonic()
    try:
        await stop.wait()
    finally:
        await receiver.stop()
        log.info("receiver stopped after %.0f s: %s", time.monotonic() - t0, receiver.stats)
