"""The receiver end to end: the gateway's own MQTT and HTTP uplinks -> a real Mosquitto / aiohttp -> the store."""

import asyncio

import aiohttp
import pytest

from gateway.stream import batch_document
from gateway.uplinks.base import Batch
from gateway.uplinks.http import HttpUplink
from gateway.uplinks.mqtt import MqttUplink
from upstream.errors import ConfigError
from upstream.receiver import Receiver
from upstream.store import open_store

T0 = 1780272000


def _iso(t):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def make_batch(seq, gateway="gw-1", node=7, n=8):
    rows = [("node-%d" % node, "node", "air_temperature", "degC", _iso(T0 + 900 * (seq * n + i)), 20.0, 19.0, 21.0,
             15, 0, "mean", 0) for i in range(n)]  # fmt: skip
    recs = [{"kind": "node_health", "source": "node-%d" % node, "ts": _iso(T0 + 3600 * seq), "battery_soc": 80.0,
             "key": "node-%d/node_health/%s" % (node, _iso(T0 + 3600 * seq))}]  # fmt: skip
    payload = batch_document(gateway, seq, 900, rows, recs)
    return Batch(seq=seq, key="%s:%d" % (gateway, seq), payload=payload, count=n + 1)


async def _until(cond, timeout_s=10.0):
    t = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > t:
            raise AssertionError("condition not met within %.0f s" % timeout_s)
        await asyncio.sleep(0.05)


def test_mqtt_and_http_batches_are_stored_once(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "up.db")

    async def main():
        rx = Receiver(url, mqtt=("127.0.0.1", mosquitto.port), http=("127.0.0.1", 0), client_id="up-test")
        await rx.start()
        await _until(lambda: rx.stats["mqtt_connected"])
        up_mqtt = MqttUplink("127.0.0.1", gateway_id="gw-1", port=mosquitto.port)
        up_http = HttpUplink("http://127.0.0.1:%d/batches" % rx.http_port)
        await up_mqtt.start()
        await up_http.start()
        for seq in range(3):
            await up_mqtt.send(make_batch(seq))
        await up_mqtt.send(make_batch(1))  # a gateway retry after a lost PUBACK: same key
        await up_http.send(make_batch(2))  # the same batch over the other uplink: 409, acknowledged
        await up_http.send(make_batch(3))
        await _until(lambda: rx.stats["batches"] == 4 and rx.stats["duplicate_batches"] == 2)
        await up_mqtt.stop()
        await up_http.stop()
        stats = dict(rx.stats)
        await rx.stop()
        return stats

    stats = asyncio.run(main())
    assert stats["readings"] == 32 and stats["records"] == 4 and stats["bad_batches"] == 0, stats
    with open_store(url) as s:
        assert s.count("readings") == 32 and s.count("health") == 4 and s.count("batches") == 4


def test_http_answers_400_for_bad_batches_401_without_token_and_keeps_going(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "up.db")

    async def main():
        rx = Receiver(url, http=("127.0.0.1", 0), token="s3cret")
        await rx.start()
        base = "http://127.0.0.1:%d" % rx.http_port
        auth = {"Authorization": "Bearer s3cret"}
        out = {}
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/batches", data=make_batch(0).payload) as r:
                out["no_token"] = r.status
            async with http.post(base + "/batches", data=make_batch(0).payload,
                                 headers={"Authorization": "Bearer wrong"}) as r:  # fmt: skip
                out["wrong_token"] = r.status
            async with http.post(base + "/batches", data=b"\x00not cbor", headers=auth) as r:
                out["garbage"] = (r.status, (await r.json())["error"])
            b = make_batch(0)
            async with http.post(
                base + "/batches", data=b.payload, headers={**auth, "Idempotency-Key": "gw-1:99"}
            ) as r:
                out["wrong_key"] = (r.status, (await r.json())["error"])
            async with http.post(base + "/v1/batches", data=b.payload, headers={**auth, "Idempotency-Key": b.key}) as r:
                out["good"] = (r.status, await r.json())
            async with http.post(base + "/batches", data=b.payload, headers={**auth, "Idempotency-Key": b.key}) as r:
                out["again"] = r.status
            async with http.get(base + "/status", headers=auth) as r:
                out["status"] = await r.json()
        await rx.stop()
        return out

    out = asyncio.run(main())
    assert out["no_token"] == 401 and out["wrong_token"] == 401
    assert out["garbage"][0] == 400 and "not a batch document" in out["garbage"][1]
    assert out["wrong_key"][0] == 400 and "does not match" in out["wrong_key"][1]
    assert out["good"][0] == 200 and out["good"][1]["readings"] == 8
    assert out["again"] == 409
    assert out["status"]["bad_batches"] == 2 and out["status"]["batches"] == 1 and out["status"]["unauthorized"] == 2
    with open_store(url) as s:
        assert s.count("rejected_batches") == 2 and s.count("readings") == 8


def test_a_non_loopback_http_bind_needs_a_token():
    with pytest.raises(ConfigError, match="bearer token"):
        Receiver("sqlite://:memory:", http=("0.0.0.0", 8781))
    Receiver("sqlite://:memory:", http=("0.0.0.0", 8781), token="t")  # fine with one


def test_a_bad_mqtt_batch_is_counted_and_the_next_one_stored(mosquitto, tmp_path):
    import paho.mqtt.client as mqtt

    url = "sqlite:///%s" % (tmp_path / "up.db")

    async def main():
        rx = Receiver(url, mqtt=("127.0.0.1", mosquitto.port), client_id="up-bad")
        await rx.start()
        await _until(lambda: rx.stats["mqtt_connected"])
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        pub.publish("fieldline/gw-1/stream", b"\xa1\x61x\x01", qos=1).wait_for_publish(5)
        pub.publish("fieldline/gw-1/stream", make_batch(0).payload, qos=1).wait_for_publish(5)
        await _until(lambda: rx.stats["batches"] == 1 and rx.stats["bad_batches"] == 1)
        pub.loop_stop()
        pub.disconnect()
        await rx.stop()

    asyncio.run(main())


def test_batches_published_while_the_receiver_is_down_arrive_after_it_restarts(mosquitto, tmp_path):
    url = "sqlite:///%s" % (tmp_path / "up.db")

    async def main():
        rx = Receiver(url, mqtt=("127.0.0.1", mosquitto.port), client_id="up-durable")
        await rx.start()
        await _until(lambda: rx.stats["mqtt_connected"])
        await rx.stop()  # the persistent session stays at the broker
        up = MqttUplink("127.0.0.1", gateway_id="gw-1", port=mosquitto.port)
        await up.start()
        for seq in range(5):
            await up.send(make_batch(seq))
        await up.stop()
        rx2 = Receiver(url, mqtt=("127.0.0.1", mosquitto.port), client_id="up-durable")
        await rx2.start()
        await _until(lambda: rx2.stats["batches"] == 5)
        await rx2.stop()

    asyncio.run(main())
    with open_store(url) as s:
        assert s.count("batches") == 5
