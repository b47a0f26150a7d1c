"""MqttUplink: publish each batch at QoS 1 and return once the broker's PUBACK arrived (paho-mqtt 2.x).

    up = MqttUplink("broker.example", gateway_id="gw-1", tls={"ca": "/etc/fieldline/ca.pem"})
    await up.start(); await up.send(batch)      # UplinkError if not connected, lost, or no PUBACK in time

paho's network thread connects in the background (``connect_async`` + ``loop_start``) and
reconnects by itself with exponential backoff (``backoff_min_s`` .. ``backoff_max_s``), so a broker
that is down at start or goes away later needs nothing from the engine: ``send`` fails fast while
disconnected and works again once paho is back. Up to ``max_inflight`` sends may wait for their
PUBACK at once (an asyncio.Semaphore in front of paho's own in-flight window), which is how the
outbox drains a week's backlog at full speed. paho callbacks run in its thread; each one hands its
news to the event loop with ``call_soon_threadsafe``, and uplink state is only changed there.
Messages in flight when the link drops fail here, and paho re-sends them on reconnect: the
upstream may see a batch twice (same idempotency key), never zero times.
"""

import asyncio
import sys

import paho.mqtt.client as mqtt

from gateway.errors import ConfigError
from gateway.uplinks import UplinkStats, check_backoff, check_number, describe_tls_error, log, tls_context
from gateway.uplinks.base import Uplink

_CONN_LOST = 128  # paho's reason code for a dropped socket ("Unspecified error")


class MqttUplink(Uplink):
    """One MQTT broker; see the module doc."""

    kind = "mqtt"
    OPTIONS = (
        "host", "port", "topic", "client_id", "username", "password", "keepalive_s",
        "max_inflight", "timeout_s", "tls", "backoff_min_s", "backoff_max_s",
    )  # fmt: skip
    REQUIRED = {"host": "the MQTT broker's host name or address"}

    def __init__(
        self, host, gateway_id="gateway", port=None, topic="fieldline/{gateway}/stream",
        client_id="fieldline-{gateway}", username=None, password=None, keepalive_s=30,
        max_inflight=32, timeout_s=10.0, tls=None, backoff_min_s=1.0, backoff_max_s=60.0,
    ):  # fmt: skip
        self.host = host
        self._ssl = tls_context(tls) if tls is not None else None
        default_port = 8883 if self._ssl else 1883
        self.port = check_number(default_port if port is None else port, "port", 1, integer=True, maximum=65535)
        self.topic = _topic(topic, gateway_id)
        self.client_id = str(client_id).replace("{gateway}", gateway_id)
        self.username, self.password = username, password
        self.keepalive_s = check_number(keepalive_s, "keepalive_s", 0, integer=True, maximum=65535)  # 0: no pings
        self.max_inflight = check_number(max_inflight, "max_inflight", 1, integer=True)
        self.timeout_s = check_number(timeout_s, "timeout_s", 0.0, above=True)
        self.backoff_min_s, self.backoff_max_s = check_backoff(backoff_min_s, backoff_max_s)
        self._client = None
        self._loop = None
        self._inflight = None
        self._pending = {}  # mid -> future(None when acknowledged, else why not)
        self._connected = False
        self._link_error = None  # why the link is down, for "not connected" messages
        self._first_attempt = None
        self._socket_error = None  # paho thread only: its last error log line (e.g. a TLS alert)
        self._stats = UplinkStats(self.kind)

    @property
    def where(self):
        return "%s://%s:%d" % ("mqtts" if self._ssl else "mqtt", self.host, self.port)

    # ---- the Uplink contract (event loop side) ----

    async def start(self):
        """Start paho's thread; wait (at most timeout_s) for the first attempt, never raise if it fails."""
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._inflight = asyncio.Semaphore(self.max_inflight)
        self._first_attempt = asyncio.Event()
        self._client = self._make_client()
        self._client.connect_async(self.host, self.port, self.keepalive_s)
        self._client.loop_start()
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._first_attempt.wait()
        except TimeoutError:
            log.info("mqtt uplink: no answer from %s within %g s; still trying", self.where, self.timeout_s)

    async def send(self, batch):
        if self._client is None:
            raise self._stats.failed(batch, "not started")
        async with self._inflight:
            if not self._connected:
                raise self._stats.failed(
                    batch, "not connected to %s (%s)" % (self.where, self._link_error or "connecting")
                )
            mid, acked = self._publish(batch)
            try:
                failure = await asyncio.wait_for(acked, self.timeout_s)
            except TimeoutError:
                why = "no PUBACK from %s within %g s" % (self.where, self.timeout_s)
                raise self._stats.failed(batch, why) from None
            finally:
                self._pending.pop(mid, None)
        if failure is not None:
            raise self._stats.failed(batch, failure)
        self._stats.ok()

    async def stop(self):
        client, self._client = self._client, None
        if client is None:
            return
        self._connected = False
        self._fail_pending("uplink stopped")
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    def state(self):
        return self._stats.as_dict(self._connected, broker=self.where, topic=self.topic, inflight=len(self._pending))

    def _make_client(self):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.username is not None:
            c.username_pw_set(self.username, self.password)
        if self._ssl is not None:
            c.tls_set_context(self._ssl)
        c.max_inflight_messages_set(self.max_inflight)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(self.backoff_min_s, self.backoff_max_s)
        c.connect_timeout = self.timeout_s
        c.on_connect, c.on_connect_fail, c.on_disconnect = self._on_connect, self._on_connect_fail, self._on_disconnect
        c.on_publish, c.on_log = self._on_publish, self._on_log
        return c

    def _publish(self, batch):
        """Hand the batch to paho; the PUBACK resolves the returned future (registered before any await)."""
        info = self._client.publish(self.topic, batch.payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise self._stats.failed(batch, "paho refused it: %s" % mqtt.error_string(info.rc))
        acked = self._loop.create_future()
        self._pending[info.mid] = acked
        return info.mid, acked

    def _disconnected_text(self, detail):
        return "disconnected from %s: %s" % (self.where, detail)

    def _fail_pending(self, why):
        for acked in self._pending.values():
            if not acked.done():
                acked.set_result(why)

    # ---- paho's news, applied on the event loop ----

    def _connected_now(self, client, reason):
        if client is not self._client:
            return
        if reason.is_failure:  # worded like the disconnect that follows, so it is logged once
            self._link_down(client, self._disconnected_text(_refusal(reason)))
        else:
            self._connected, self._link_error = True, None
            log.info("mqtt uplink: connected to %s as %s", self.where, self.client_id)
        self._first_attempt.set()

    def _link_down(self, client, why):
        if client is not self._client:
            return
        if self._connected or why != self._link_error:
            self._stats.note_error(why)
        self._connected, self._link_error = False, why
        self._fail_pending(why)
        self._first_attempt.set()

    def _acked(self, client, mid, failure):
        acked = self._pending.get(mid)
        if acked is not None and not acked.done():
            acked.set_result(failure)

    def _on_loop(self, client, fn, *args):
        """From paho's thread: run ``fn(client, *args)`` on the event loop (stale clients are ignored there)."""
        try:
            self._loop.call_soon_threadsafe(fn, client, *args)
        except RuntimeError as e:  # the loop closed without stop(): nobody is waiting any more
            log.debug("mqtt uplink: event loop gone, dropping paho news (%s)", e)

    # ---- paho callbacks (its network thread) ----

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        # a refusal is followed by a disconnect, which should say why; a success clears old errors
        self._socket_error = _refusal(reason_code) if reason_code.is_failure else None
        self._on_loop(client, self._connected_now, reason_code)

    def _on_connect_fail(self, client, userdata):
        # paho calls this inside its ``except OSError:`` without passing the error: sys.exc_info() has it.
        exc = sys.exc_info()[1]
        why = describe_tls_error(exc) or (str(exc) if exc else "connection failed")
        self._on_loop(client, self._link_down, "cannot connect to %s: %s" % (self.where, why))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        detail, self._socket_error = _socket_detail(self._socket_error), None
        if detail is None:
            detail = "connection lost" if reason_code.value == _CONN_LOST else str(reason_code)
        self._on_loop(client, self._link_down, self._disconnected_text(detail))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        failure = "the broker's PUBACK says %s" % reason_code if reason_code.is_failure else None
        self._on_loop(client, self._acked, mid, failure)

    def _on_log(self, client, userdata, level, text):
        if level == mqtt.MQTT_LOG_ERR:
            self._socket_error = text
        log.debug("paho %s: %s", self.client_id, text)


def _refusal(reason_code):
    return "broker refused the connection: %s" % reason_code


def _socket_detail(text):
    """The last error paho logged before a disconnect, naming TLS when it came from the TLS layer."""
    if not text:
        return None
    return "TLS: " + text if "[SSL" in text else text


def _topic(topic, gateway_id):
    topic = str(topic).replace("{gateway}", gateway_id)
    if not topic or "#" in topic or "+" in topic:
        raise ConfigError("uplinks.topic", "a topic name without wildcards (# +)", got=topic)
    return topic
