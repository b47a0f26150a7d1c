"""Modbus RTU source: register decoding, the config schema, and the source on a simulated bus.

The sim tests run gateway.sources.modbus against tools.virtual_field.modbus_sim on a real pty:
an anemometer (slave 1) and a wind vane (slave 2) on one bus, with injected faults.
"""

import asyncio
import time

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.sources.modbus import (
    Register,
    classify_failure,
    crc16,
    decode_words,
    make_source,
    plan_requests,
    register_value,
)
from gateway.stream import OUT_OF_RANGE, SUSPECT
from tools.virtual_field.modbus_sim import ModbusBus, rtu_frame

# ---- decoding (hand-computed vectors) ----


@pytest.mark.parametrize(
    "words, type_, order, expected",
    [
        ([0x0025], "uint16", "big", 37),  # DFRobot SEN0483 reply 00 25 = 3.7 m/s x 10
        ([0xFFFE], "uint16", "big", 65534),
        ([0xFFFE], "int16", "big", -2),
        ([0x8000], "int16", "big", -32768),
        ([0x0001, 0x0002], "uint32", "big", 65538),
        ([0x0002, 0x0001], "uint32", "little", 65538),
        ([0xFFFF, 0xFFFE], "int32", "big", -2),
        ([0xFFFE, 0xFFFF], "int32", "little", -2),
        ([0x8000, 0x0000], "uint32", "big", 2147483648),
        ([0x4283, 0x0000], "float32", "big", 65.5),  # 0x42830000
        ([0x0000, 0x4283], "float32", "little", 65.5),
        ([0xC2F6, 0xE979], "float32", "big", -123.456),  # 0xC2F6E979
        ([0xE979, 0xC2F6], "float32", "little", -123.456),
    ],
)
def test_decode_words(words, type_, order, expected):
    assert decode_words(words, type_, order) == pytest.approx(expected, rel=1e-6)


def _reg(**kw):
    base = dict(function=3, address=0, type="uint16", word_order="big", scale=1.0, offset=0.0,
                quantity="wind_speed", unit="m s-1")  # fmt: skip
    base.update(kw)
    return Register(**base)


def test_register_value_scale_offset_and_range():
    assert register_value(_reg(scale=0.1), [0x0025]) == (pytest.approx(3.7), 0)
    assert register_value(_reg(type="int16", scale=0.1, offset=-40.0), [0x0190]) == (pytest.approx(0.0), 0)
    assert register_value(_reg(scale=0.1, lo=0.0, hi=60.0), [700])[1] == OUT_OF_RANGE
    assert register_value(_reg(type="int16", lo=0.0), [0xFFFF])[1] == OUT_OF_RANGE


def test_plan_reads_contiguous_registers_together():
    regs = [
        _reg(address=0),
        _reg(address=1, type="float32", quantity="wind_direction"),  # 1-2: joins 0
        _reg(address=4, quantity="air_temperature"),  # a gap: a new read
        _reg(function=4, address=3, quantity="relative_humidity"),  # another function
    ]
    plan = [(fc, start, count, [r.quantity for r in rs]) for fc, start, count, rs in plan_requests(regs)]
    assert plan == [
        (3, 0, 3, ["wind_speed", "wind_direction"]),
        (3, 4, 1, ["air_temperature"]),
        (4, 3, 1, ["relative_humidity"]),
    ]
    many = [_reg(address=a, quantity="q%d" % a) for a in range(130)]
    assert [(s, c) for _, s, c, _ in plan_requests(many)] == [(0, 125), (125, 5)]


def test_crc16_reference_vectors():
    assert rtu_frame(bytes.fromhex("010300000001"))[-2:] == bytes.fromhex("840A")
    assert rtu_frame(bytes.fromhex("0203020025")) == bytes.fromhex("02030200253D9F")
    assert rtu_frame(bytes.fromhex("018302")) == bytes.fromhex("018302C0F1")
    assert crc16(bytes.fromhex("02030200253D9F")) == 0


def test_classify_failure():
    good = bytes.fromhex("02030200253D9F")
    assert classify_failure([], 2, 3, 1) == "timeout"
    assert classify_failure([good[:-1] + b"\x00"], 2, 3, 1) == "crc"
    assert classify_failure([bytes.fromhex("028302C0F0")], 2, 3, 1) == "crc"  # an exception with a bad CRC
    assert classify_failure([b"\x00\xff\xaa\x55"], 2, 3, 1) == "garbage"
    assert classify_failure([good[:-1] + b"\x00"], 7, 3, 1) == "garbage"  # another slave's frame


# ---- configuration ----

CONFIG = """\
[gateway]
id = "gw-1"

[[sources]]
kind = "modbus"
name = "mast"
port = "/dev/ttyUSB0"
interval_s = 30

[[sources.devices]]
slave = 1
sensor = "anemometer"

[[sources.devices.registers]]
address = 0
scale = 0.1
quantity = "wind_speed"
lo = 0
hi = 60

[[sources.devices]]
slave = 2
sensor = "vane"

[[sources.devices.registers]]
function = 4
address = 0
type = "float32"
word_order = "little"
quantity = "wind_direction"
unit = "deg"
"""


def test_config_valid():
    s = parse_config(CONFIG).sources[0]
    assert (s.kind, s.name, s.port, s.baudrate) == ("modbus", "mast", "/dev/ttyUSB0", 9600)
    o = s.options
    assert (o["parity"], o["stopbits"], o["interval_s"], o["timeout_s"], o["retries"]) == ("N", 1, 30.0, 1.0, 2)
    anemo, vane = o["devices"]
    assert (anemo.slave, anemo.sensor, vane.slave) == (1, "anemometer", 2)
    assert anemo.registers[0] == _reg(scale=0.1, lo=0.0, hi=60.0)
    r = vane.registers[0]
    assert (r.function, r.type, r.word_order, r.quantity, r.unit) == (4, "float32", "little", "wind_direction", "deg")


def _replace(old, new, nth=1):
    i = -1
    for _ in range(nth):
        i = CONFIG.index(old, i + 1)
    return CONFIG[:i] + new + CONFIG[i + len(old) :]


@pytest.mark.parametrize(
    "text, key, line, expected",
    [
        (_replace('type = "float32"', 'type = "float64"'), "sources[0].devices[1].registers[0].type", 28, "int16"),
        (_replace("address = 0\nscale", "scale"), "sources[0].devices[0].registers[0].address", 14, "required"),
        (_replace("slave = 2", "slave = 248"), "sources[0].devices[1].slave", 22, "1..247"),
        (_replace("slave = 2", "slave = 0"), "sources[0].devices[1].slave", 22, "1..247"),
        (_replace("slave = 2", "slave = 1"), "sources[0].devices[1].slave", 22, "unique"),
        (_replace("function = 4", "function = 6"), "sources[0].devices[1].registers[0].function", 26, "3, 4"),
        (
            _replace('word_order = "little"', 'word_order = "middle"'),
            "sources[0].devices[1].registers[0].word_order",
            29,
            '"big", "little"',
        ),
        (
            _replace('type = "float32"\nword_order = "little"', 'word_order = "big"'),
            "sources[0].devices[1].registers[0].word_order",
            28,
            "16-bit",
        ),
        (_replace('unit = "deg"', 'unit = "rad"'), "sources[0].devices[1].registers[0].unit", 31, "deg"),
        (
            _replace('quantity = "wind_speed"', 'quantity = "windspeed"'),
            "sources[0].devices[0].registers[0].quantity",
            17,
            "known quantity",
        ),
        (_replace("hi = 60", "hi = -1"), "sources[0].devices[0].registers[0].hi", 19, "above lo"),
        (_replace("scale = 0.1", "scale = 0"), "sources[0].devices[0].registers[0].scale", 16, "other than 0"),
        (_replace("interval_s = 30", "interval = 30"), "sources[0].interval", 8, "interval_s"),
        (
            CONFIG + '\n[[sources.devices.registers]]\naddress = 1\nfunction = 4\nquantity = "wind_speed"\n',
            "sources[0].devices[1].registers[1].address",
            34,
            "overlap",
        ),
        (
            CONFIG + '\n[[sources.devices.registers]]\naddress = 2\nfunction = 4\nquantity = "wind_direction"\n',
            "sources[0].devices[1].registers[1].quantity",
            36,
            "not read twice",
        ),
        (CONFIG.split("[[sources.devices]]")[0], "sources[0].devices", 4, "at least one"),
    ],
)
def test_config_errors_name_key_and_line(text, key, line, expected):
    with pytest.raises(ConfigError) as e:
        parse_config(text, path="gateway.toml")
    assert (e.value.key, e.value.line) == (key, line), str(e.value)
    assert expected in e.value.expected, str(e.value)
    assert str(e.value).startswith("gateway.toml:%d: %s: expected" % (line, key))


# ---- the source on a simulated bus ----


class Ctx:
    """What a source sees of the engine: intakes collected, the wall clock."""

    def __init__(self):
        self.intakes = []
        self.rejected = {}

    def now(self):
        return time.time()

    def submit(self, intake):
        self.intakes.append(intake)

    def saturated(self):
        return False

    def count_rejected(self, kind):
        self.rejected[kind] = self.rejected.get(kind, 0) + 1

    def readings(self, sensor=None, since=0):
        return [r for it in self.intakes[since:] for r in it.readings if sensor in (None, r[0])]


BUS_TOML = """
[[sources]]
kind = "modbus"
name = "mast"
port = "%(port)s"
interval_s = 0.1
timeout_s = 0.15
retries = 1
backoff_max_s = 0.4
reopen_s = 0.2

[[sources.devices]]
slave = 1
sensor = "anemometer"
[[sources.devices.registers]]
address = 0
scale = 0.1
quantity = "wind_speed"
lo = 0
hi = 60
%(extra)s
[[sources.devices]]
slave = 2
sensor = "vane"
[[sources.devices.registers]]
function = 4
address = 0
type = "float32"
quantity = "wind_direction"
"""


@pytest.fixture
def bus():
    b = ModbusBus().start()
    yield b
    b.stop()
    print("bus %s received %d bytes: %s" % (b.path, len(b.received), b.received[-64:].hex(" ")))


def run_source(bus, script, extra="", port=None):
    """Run a ModbusSource on ``bus`` while ``script(src, ctx)`` (a coroutine) runs; return ctx, health."""
    text = '[gateway]\nid = "gw-1"\n' + BUS_TOML % {"port": port or bus.path, "extra": extra}
    ctx = Ctx()

    async def main():
        src = make_source(parse_config(text).sources[0], ctx)
        await src.start()
        try:
            await script(src, ctx)
        finally:
            await src.stop()
        return src.health()

    health = asyncio.run(main())
    print("health:", health)
    return ctx, health


async def until(cond, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in %.1f s" % timeout_s
        await asyncio.sleep(0.02)


@pytest.mark.sim
def test_wind_readings_from_two_slaves(bus):
    async def script(src, ctx):
        await until(lambda: len(ctx.readings("anemometer")) >= 3 and len(ctx.readings("vane")) >= 6)

    ctx, health = run_source(bus, script)
    speeds = [r for r in ctx.readings("anemometer")]
    assert all(r[1:2] + r[4:] == ("wind_speed", "m s-1", 0) for r in speeds), speeds
    assert all(0.0 <= r[2] <= 60.0 for r in speeds)
    dirs = [r for r in ctx.readings("vane") if r[1] == "wind_direction"]
    assert dirs and all(r[4:] == ("deg", 0) and 0.0 <= r[2] < 360.0 for r in dirs), dirs
    assert ctx.intakes[0].source == "mast"
    assert health["kind"] == "modbus" and health["opens"] == 1 and not health["errors"]
    assert health["devices"]["1"]["last_good"] and health["devices"]["2"]["consecutive_failures"] == 0


@pytest.mark.sim
@pytest.mark.parametrize("fault, kind", [("crc", "crc"), ("timeout", "timeout"), ("garbage", "garbage"),
                                         ("exception", "exception_6")])  # fmt: skip
def test_fault_counted_flagged_and_recovered(bus, fault, kind):
    async def script(src, ctx):
        await until(lambda: len(ctx.readings("anemometer")) >= 1)
        bus.inject(1, fault, count=2, code=6)  # 1 + retries: the whole poll fails
        await until(lambda: src.health()["devices"]["1"]["consecutive_failures"] >= 1)
        failed_at = len(ctx.intakes)
        assert src.health()["devices"]["1"]["last_error"] == kind
        await until(lambda: ctx.readings("anemometer", since=failed_at))
        await until(lambda: src.health()["devices"]["1"]["consecutive_failures"] == 0)

    ctx, health = run_source(bus, script)
    assert health["devices"]["1"]["errors"] == {kind: 2}
    assert health["errors"] == {kind: 2} and ctx.rejected == {"modbus_" + kind: 2}
    assert not health["devices"]["2"]["errors"]


@pytest.mark.sim
def test_one_bad_answer_is_retried_within_the_poll(bus):
    async def script(src, ctx):
        await until(lambda: len(ctx.readings("anemometer")) >= 1)
        bus.inject(1, "crc")
        await until(lambda: src.health()["errors"])
        await until(lambda: len(ctx.readings("anemometer")) >= 4)

    _, health = run_source(bus, script)
    assert health["devices"]["1"]["errors"] == {"crc": 1}
    assert health["devices"]["1"]["consecutive_failures"] == 0


@pytest.mark.sim
def test_partial_poll_flags_readings_suspect_and_bad_address_is_exception_2(bus):
    extra = '[[sources.devices.registers]]\naddress = 7\nquantity = "air_temperature"\n'  # unmapped

    async def script(src, ctx):
        await until(lambda: len(ctx.readings("anemometer")) >= 2)

    ctx, health = run_source(bus, script, extra)
    assert health["devices"]["1"]["errors"]["exception_2"] >= 2
    assert all(r[5] & SUSPECT for r in ctx.readings("anemometer"))
    assert not any(r[5] & SUSPECT for r in ctx.readings("vane"))


@pytest.mark.sim
def test_out_of_range_is_flagged(bus):
    bus.pin(1, 3, 0, 700)  # 70.0 m/s, above hi = 60

    async def script(src, ctx):
        await until(lambda: ctx.readings("anemometer"))

    ctx, _ = run_source(bus, script)
    r = ctx.readings("anemometer")[0]
    assert r[2] == pytest.approx(70.0) and r[5] == OUT_OF_RANGE


@pytest.mark.sim
def test_dead_slave_does_not_stall_the_other(bus):
    bus.kill(1)

    async def script(src, ctx):
        t0 = time.monotonic()
        await asyncio.sleep(1.5)
        vane = [r for r in ctx.readings("vane") if r[1] == "wind_direction"]
        # the vane keeps its 0.1 s interval but for the dead slave's backed-off attempts (2 x 0.15 s each)
        assert len(vane) >= 5, "vane read %d times in %.1f s" % (len(vane), time.monotonic() - t0)
        h = src.health()["devices"]["1"]
        assert h["consecutive_failures"] >= 2 and h["last_good"] is None
        attempts = bus.slaves[1].requests
        assert attempts <= 2 * 6, "a dead slave is polled with backoff, not every interval (%d)" % attempts
        bus.revive(1)
        await until(lambda: ctx.readings("anemometer"), timeout_s=2.0)

    ctx, health = run_source(bus, script)
    assert set(health["devices"]["1"]["errors"]) == {"timeout"}
    assert health["devices"]["1"]["consecutive_failures"] == 0


@pytest.mark.sim
def test_missing_port_is_reopened_until_it_appears(bus, tmp_path):
    link = tmp_path / "ttyRS485"  # as udev's /dev/serial/by-id/... symlinks

    async def script(src, ctx):
        await asyncio.sleep(0.5)
        assert not src.health()["connected"] and not ctx.intakes
        link.symlink_to(bus.path)
        await until(lambda: ctx.readings("anemometer") and ctx.readings("vane"))

    _, health = run_source(bus, script, port=str(link))
    assert health["opens"] == 1
