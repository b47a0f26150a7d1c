"""BLE source: the RuuviTag DF5 decoder against Ruuvi's test vectors, config errors, and the source
fed by the fake bleak backend (tools.virtual_field.ble_sim.SimScanner): no radio needed."""

import asyncio

import pytest
from bleak import BleakScanner
from bleak.backends.device import BLEDevice

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.sources.ble import DecodeError, decode_ruuvi, decode_ruuvi_df5, make_source, normalise_mac
from gateway.stream import OUT_OF_RANGE
from tools.virtual_field.ble_sim import SimField, SimRuuviTag, SimScanner, advertisement, encode_ruuvi_df5

# ruuvi/ruuvi-sensor-protocols dataformat_05.md "Test vectors" (from the ruuvitag-sensor project)
VALID = "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"
MAXIMUM = "057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F"
MINIMUM = "058001000000008001800180010000000000CBB8334C884F"
INVALID = "058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF"
MAC_A, MAC_B = "CB:B8:33:4C:88:4F", "C0:FF:EE:00:00:02"


def test_df5_valid_data():
    assert decode_ruuvi_df5(bytes.fromhex(VALID)) == {
        "data_format": 5, "temperature_c": 24.3, "humidity_pct": 53.49, "pressure_pa": 100044,
        "acceleration_mg": (4, -4, 1036), "battery_v": 2.977, "tx_power_dbm": 4, "movement_counter": 66,
        "measurement_sequence": 205, "mac": "CB:B8:33:4C:88:4F",
    }  # fmt: skip


def test_df5_maximum_values():
    v = decode_ruuvi_df5(bytes.fromhex(MAXIMUM))
    assert (v["temperature_c"], v["humidity_pct"], v["pressure_pa"]) == (163.835, 163.835, 115534)
    assert v["acceleration_mg"] == (32767, 32767, 32767)
    assert (v["battery_v"], v["tx_power_dbm"], v["movement_counter"], v["measurement_sequence"]) == (
        3.646, 20, 254, 65534)  # fmt: skip


def test_df5_minimum_values():
    v = decode_ruuvi_df5(bytes.fromhex(MINIMUM))
    assert (v["temperature_c"], v["humidity_pct"], v["pressure_pa"]) == (-163.835, 0.0, 50000)
    assert v["acceleration_mg"] == (-32767, -32767, -32767)
    assert (v["battery_v"], v["tx_power_dbm"], v["movement_counter"], v["measurement_sequence"]) == (1.6, -40, 0, 0)
    assert v["mac"] == MAC_A


def test_df5_invalid_values_are_none():
    v = decode_ruuvi_df5(bytes.fromhex(INVALID))
    assert v.pop("data_format") == 5 and v.pop("acceleration_mg") == (None, None, None)
    assert v == dict.fromkeys(v)  # every other field None


@pytest.mark.parametrize("vector", [VALID, MAXIMUM, MINIMUM, INVALID])
def test_sim_encoder_round_trips_the_vectors(vector):
    v = decode_ruuvi_df5(bytes.fromhex(vector))
    del v["data_format"]
    assert encode_ruuvi_df5(**v).hex().upper() == vector


@pytest.mark.parametrize(
    "payload, kind, words",
    [
        (bytes.fromhex(VALID)[:23], "length", "24 bytes"),
        (bytes.fromhex(VALID) + b"\0", "length", "25 bytes"),
        (b"", "length", "0 bytes"),
        (b"\x03" + bytes.fromhex(VALID)[1:], "format", "first byte 0x05"),
    ],
)
def test_df5_malformed_payloads_raise(payload, kind, words):
    with pytest.raises(DecodeError, match=words) as e:
        decode_ruuvi_df5(payload)
    assert isinstance(e.value, ValueError) and e.value.kind == kind


def test_ruuvi_dispatch_names_the_unsupported_format():
    with pytest.raises(DecodeError, match="format 3") as e:
        decode_ruuvi(bytes.fromhex("0300FF6300008001800180010000"))
    assert e.value.kind == "format"
    with pytest.raises(DecodeError, match="0 bytes"):
        decode_ruuvi(b"")


def test_normalise_mac():
    assert normalise_mac("cb-b8-33-4c-88-4f") == normalise_mac("cbb8334c884f") == MAC_A
    assert normalise_mac("CB:B8:33:4C:88") is None and normalise_mac("CB:B8-33:4C:88:4F") is None


# ---- config ----

HEAD = '[gateway]\nid = "gw-1"\n\n[[sources]]\nkind = "ble"\nname = "orchard"\n'


def _cfg(body):
    return parse_config(HEAD + body).sources[0]


def test_config_tags_and_defaults():
    s = _cfg('[[sources.tags]]\nmac = "cb:b8:33:4c:88:4f"\nname = "row3"\n[[sources.tags]]\nmac = "%s"\n' % MAC_B)
    assert s.kind == "ble" and s.name == "orchard"
    assert s.options["tags"] == {MAC_A: {"index": 0, "name": "row3", "decoder": "ruuvi"},
                                 MAC_B: {"index": 1, "name": MAC_B, "decoder": "ruuvi"}}  # fmt: skip
    assert (s.options["backend"], s.options["all_ruuvi"], s.options["stale_s"]) == ("bleak", False, 300.0)
    assert _cfg("all_ruuvi = true\n").options["tags"] == {}


@pytest.mark.parametrize(
    "body, key, line, words",
    [
        ('[[sources.tags]]\nmac = "CB:B8:33:4C:88"\n', "sources[0].tags[0].mac", 8, "MAC address"),
        ('[[sources.tags]]\nmac = "%s"\n[[sources.tags]]\nmac = "%s"\n' % (MAC_A, MAC_A.lower()),
         "sources[0].tags[1].mac", 10, "tags[0] has it"),
        ('[[sources.tags]]\nmac = "%s"\ndecoder = "xiaomi"\n' % MAC_A, "sources[0].tags[0].decoder", 9, '"ruuvi"'),
        ('[[sources.tags]]\nmac = "%s"\nname = "a"\n[[sources.tags]]\nmac = "%s"\nname = "a"\n' % (MAC_A, MAC_B),
         "sources[0].tags[1].name", 12, "unique among tags"),
        ("", "sources[0].tags", 4, "all_ruuvi = true"),
        ('all_ruuvi = true\nstale = 30\n', "sources[0].stale", 8, "stale_s"),
        ('all_ruuvi = true\nbackend = "nowhere:Scanner"\n', "sources[0].backend", 8, "importable"),
        ('all_ruuvi = true\nbackend = "gateway.config:TomlDoc"\n', "sources[0].backend", 8, "BaseBleakScanner"),
        ('all_ruuvi = true\n[sources.backend_args]\ntags = 2\n', "sources[0].backend_args", 8, "custom backend"),
    ],
)  # fmt: skip
def test_config_errors_name_key_and_line(body, key, line, words):
    with pytest.raises(ConfigError) as e:
        _cfg(body)
    assert (e.value.key, e.value.line) == (key, line), str(e.value)
    assert words in str(e.value)


# ---- the source on the fake backend ----


class FakeCtx:
    def __init__(self, t=1780272000.0):
        self.t, self.intakes, self.rejected, self.full = t, [], {}, False

    def now(self):
        return self.t

    def submit(self, intake):
        self.intakes.append(intake)

    def saturated(self):
        return self.full

    def count_rejected(self, kind):
        self.rejected[kind] = self.rejected.get(kind, 0) + 1


def _source(ctx, tags=(MAC_A, MAC_B), **backend_args):
    body = "".join('[[sources.tags]]\nmac = "%s"\nname = "tag%d"\n' % (m, i) for i, m in enumerate(tags))
    return make_source(_cfg("stale_s = 60\n" + body), ctx, backend=SimScanner, backend_args=backend_args)


def _readings(ctx):
    return [r for it in ctx.intakes for r in it.readings]


def test_source_uses_bleak_scanner_with_the_injected_backend():
    src = _source(FakeCtx())
    assert isinstance(src.scanner, BleakScanner) and src.scanner.backend_id == "SimScanner"


def test_scripted_adverts_readings_dedup_corrupt_and_unknown():
    ctx = FakeCtx()
    a5 = bytes.fromhex(VALID)
    b7 = encode_ruuvi_df5(20.0, 101.5, 99000, (0, 0, 1000), 3.0, 4, 1, 7, MAC_B)
    script = [
        (0, MAC_A, advertisement(a5, -61)),
        (0, MAC_A, advertisement(a5, -63)),  # same measurement again
        (0, MAC_A, advertisement(a5[:10], -62)),  # corrupted: truncated
        (0, MAC_B, advertisement(b7, -80)),
        (0, "AA:AA:AA:AA:AA:AA", advertisement(encode_ruuvi_df5(1, 2, 3e4 + 5e4, mac="AA:AA:AA:AA:AA:AA"))),
        (0, "11:22:33:44:55:66", advertisement(b"\x01\x02", manufacturer_id=0x004C)),  # not a Ruuvi
        (0, MAC_A, advertisement(a5[:16] + b"\x00\xce" + a5[18:], -60)),  # next measurement
    ]

    async def main():
        src = _source(ctx, script=script)
        await src.start()
        await asyncio.sleep(0.05)
        h = src.health()
        await src.stop()
        return h

    h = asyncio.run(main())
    rs = _readings(ctx)
    assert len(ctx.intakes) == 3
    assert rs[:4] == [("tag0", "air_temperature", 24.3, ctx.t, "degC", 0),
                      ("tag0", "relative_humidity", 53.49, ctx.t, "%", 0),
                      ("tag0", "air_pressure", 100044.0, ctx.t, "Pa", 0),
                      ("tag0", "battery_voltage", 2.977, ctx.t, "V", 0)]  # fmt: skip
    assert ("tag1", "relative_humidity", 101.5, ctx.t, "%", OUT_OF_RANGE) in rs
    assert (h["decoded"], h["duplicates"], h["undecodable"]) == (3, 1, {"length": 1})
    assert (h["unknown_ignored"], h["other_ignored"], h["connected"]) == (1, 1, True)
    assert h["tags"][MAC_A]["rssi_dbm"] == -60 and h["tags"][MAC_A]["sequence"] == 206
    assert h["tags"][MAC_B]["last_seen"] == ctx.t and ctx.rejected == {"ble_length": 1}


def test_simulated_field_two_tags_over_time_stale_and_corrupted():
    ctx = FakeCtx()
    t0 = ctx.t
    tag_a = SimRuuviTag(MAC_A, seed=1, measure_every_s=5.0, adverts_per_measurement=4, rssi_dbm=-65)
    tag_b = SimRuuviTag(MAC_B, seed=2, measure_every_s=5.0, adverts_per_measurement=4, rssi_dbm=-85)
    tag_b.silent.append((t0 + 300, t0 + 10**6))  # tag B goes quiet after five minutes
    field = SimField([tag_a, tag_b], corrupt_fraction=0.1)

    async def main():
        src = _source(ctx, field=field, clock=ctx.now, poll_s=0.001)
        await src.start()
        healths = []
        for _ in range(120):  # 600 s of field time, 5 s per step
            await asyncio.sleep(0.002)
            ctx.t += 5.0
            if ctx.t - t0 in (200.0, 600.0):
                await asyncio.sleep(0.01)
                healths.append(src.health())
        await src.stop()
        return src, healths

    src, (h200, h600) = asyncio.run(main())
    assert field.corrupted > 0 and sum(h600["undecodable"].values()) == field.corrupted
    assert h600["duplicates"] > h600["decoded"] > 100  # ~4 adverts per measurement
    assert {it.readings[0][0] for it in ctx.intakes} == {"tag0", "tag1"}
    assert h200["stale"] == [] and h600["stale"] == ["tag1"]
    assert h600["tags"][MAC_B]["last_seen"] <= t0 + 300 and h600["tags"][MAC_A]["stale"] is False
    assert -69 <= h600["tags"][MAC_A]["rssi_dbm"] <= -61
    temps = [r[2] for r in _readings(ctx) if r[0] == "tag0" and r[1] == "air_temperature"]
    assert len(set(temps)) > 10 and all(-30 < t < 50 for t in temps)


def test_adapter_missing_at_start_is_retried_not_raised():
    ctx = FakeCtx()
    script = [(0, MAC_A, advertisement(bytes.fromhex(VALID)))]

    async def main():
        src = make_source(_cfg('retry_s = 0.01\n[[sources.tags]]\nmac = "%s"\n' % MAC_A), ctx, backend=SimScanner,
                          backend_args={"script": script, "fail_starts": 3})  # fmt: skip
        await src.start()
        await asyncio.sleep(0.2)
        h = src.health()
        await src.stop()
        return h

    h = asyncio.run(main())
    assert h["start_failures"] == 3 and h["connected"] and h["decoded"] == 1
    assert _readings(ctx)[0][0] == MAC_A  # no name configured: the sensor is the MAC


def test_saturated_engine_drops_and_counts():
    ctx = FakeCtx()
    ctx.full = True
    src = _source(ctx)
    src._on_advertisement(BLEDevice(MAC_A, None, None), advertisement(bytes.fromhex(VALID)))
    assert ctx.intakes == [] and src.health()["dropped_saturated"] == 1


def test_all_ruuvi_accepts_unconfigured_tags_by_payload_mac():
    ctx = FakeCtx()
    src = make_source(_cfg("all_ruuvi = true\n"), ctx, backend=SimScanner)
    # on macOS the address is a CoreBluetooth UUID: the payload's MAC names the tag
    src._on_advertisement(BLEDevice("5A0F3C2E-0000-4000-8000-00000000ABCD", None, None),
                          advertisement(bytes.fromhex(VALID)))  # fmt: skip
    assert _readings(ctx)[0][0] == MAC_A and MAC_A in src.health()["tags"]


def test_config_named_sim_backend_builds_its_own_field():
    text = HEAD + 'backend = "tools.virtual_field.ble_sim:SimScanner"\nall_ruuvi = true\n'
    text += "[sources.backend_args]\ntags = 2\nseed = 3\ncorrupt_fraction = 0.05\n"
    scfg = parse_config(text).sources[0]
    ctx = FakeCtx()
    src = make_source(scfg, ctx)
    backend = src.scanner._backend
    assert isinstance(backend, SimScanner) and len(backend.field.tags) == 2
    adverts = backend.field.adverts_between(ctx.t, ctx.t + 60)
    for _, address, adv in adverts:
        backend.emit(address, adv)
    h = src.health()
    assert len(h["tags"]) == 2 and h["decoded"] >= 20 and h["decoded"] + h["duplicates"] + sum(
        h["undecodable"].values()) == len(adverts)  # fmt: skip


def test_engine_builds_the_source_from_config_and_stores_its_readings(tmp_path):
    from gateway.engine import Gateway

    text = '[gateway]\nid = "gw-t"\ndata_dir = "data"\n[status]\nport = 0\n'
    text += '[[sources]]\nkind = "ble"\nname = "ble"\nbackend = "tools.virtual_field.ble_sim:SimScanner"\n'
    text += "all_ruuvi = true\n[sources.backend_args]\ntags = 2\nmeasure_every_s = 0.1\npoll_s = 0.01\n"
    text += '[[uplinks]]\nkind = "file"\npath = "stream.jsonl"\n'
    (tmp_path / "devices.toml").write_text("")
    gw = Gateway(parse_config(text, base_dir=str(tmp_path)))

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if gw.ingest.stored_intakes >= 6:
                break
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(main())
    h = gw.sources[0].health()
    assert gw.ingest.stored_intakes >= 6 and len(h["tags"]) == 2 and h["duplicates"] > 0, h
