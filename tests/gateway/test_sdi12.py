"""SDI-12 source: the wire format (values, CRC), its config, and the source against a simulated adapter.

The sim tests run the source in an event loop against tools.virtual_field.sdi12_sim on a real pty,
with waits scaled by TIME_SCALE; a failing one prints the source's health and the simulator's log.
"""

import asyncio
import time

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError, SourceError
from gateway.sources.sdi12 import (
    Sdi12Error,
    Sdi12FormatError,
    Sdi12Source,
    calibrate,
    crc16,
    crc_chars,
    parse_measure,
    parse_values,
    strip_crc,
)
from gateway.stream import OUT_OF_RANGE, SUSPECT
from tools.virtual_field.sdi12_sim import Sdi12Sim, SimProbe, format_value

TIME_SCALE = 0.01

# ---- values ----


@pytest.mark.parametrize(
    "response, values",
    [
        ("0+1.23-4.5+6", [1.23, -4.5, 6.0]),
        ("0+1.23-4.5+6\r\n", [1.23, -4.5, 6.0]),
        ("a", []),
        ("Z-.5+1234567", [-0.5, 1234567.0]),
        ("1+2.7+85.2-0.2-2.7+770.5CAH\r\n", [2.7, 85.2, -0.2, -2.7, 770.5]),  # CRC tolerated
        ("0+3.14OqZ", [3.14]),
    ],
)
def test_parse_values(response, values):
    assert parse_values(response) == values


@pytest.mark.parametrize(
    "response, names",
    [
        ("", "address"),
        ("+1.2", "address"),
        ("01.2", "unexpected '1.2'"),
        ("0+1.2.3", "'+1.2.3'"),
        ("0+12345678", "1-7 digits"),
        ("0+", "'+'"),
        ("0+1.2#", "unexpected '#'"),
        ("0+1 +2", "unexpected ' '"),
    ],
)
def test_parse_values_rejects_malformed(response, names):
    with pytest.raises(Sdi12FormatError) as e:
        parse_values(response)
    assert names in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, SourceError)
    assert e.value.kind == "garbage"


def test_parse_measure():
    assert parse_measure("00013", "0", False) == (1, 3)
    assert parse_measure("100212", "1", True) == (2, 12)
    with pytest.raises(Sdi12Error) as e:
        parse_measure("20013", "1", False)
    assert e.value.kind == "wrong_address"
    with pytest.raises(Sdi12FormatError):
        parse_measure("1001", "1", False)


def test_format_value_fits_sdi12():
    for v in (2200.46, -0.2, 16.123456, 1234567.0, 0.0):
        assert parse_values("0" + format_value(v)) == [pytest.approx(v, abs=1e-3)]


# ---- CRC ----


def test_crc_reference_examples():
    assert crc16("1+2.7+85.2-0.2-2.7+770.5") == 0x3048
    assert crc_chars("1+2.7+85.2-0.2-2.7+770.5") == "CAH"  # Vaisala WMT700 manual
    assert crc16(b"0+3.14") == 0xFC5A
    assert crc_chars("0+3.14") == "OqZ"


def test_strip_crc():
    assert strip_crc("0+3.14OqZ") == "0+3.14"
    for bad in ("0+3.14OqY", "0+3.15OqZ", "0+3"):
        with pytest.raises(Sdi12Error) as e:
            strip_crc(bad)
        assert e.value.kind == "bad_crc"


def test_calibrate():
    assert calibrate(2.0, {"scale": 0.5, "offset": 0.1}) == pytest.approx(1.1)
    assert calibrate(2.0, {"coeffs": [1.0, 2.0, 3.0]}) == pytest.approx(1 + 4 + 12)


# ---- config ----

CONFIG = """\
[gateway]
id = "gw-1"

[[sources]]
kind = "sdi12"
name = "soil"
port = "/dev/ttyUSB1"
interval_s = 60
crc = true

[[sources.probes]]
address = "1"
sensor = "bed-3-10cm"
concurrent = true
values = [
  { index = 0, quantity = "soil_water_content", coeffs = [-0.05, 1.5e-4], lo = 0.0, hi = 0.6 },
  { index = 1, quantity = "soil_temperature", unit = "degC" },
]

[[sources.probes]]
address = "2"
crc = false
[[sources.probes.values]]
index = 2
quantity = "soil_bulk_ec"
scale = 1e-4
"""


def test_config_valid():
    (s,) = parse_config(CONFIG).sources
    assert (s.kind, s.name, s.port, s.baudrate) == ("sdi12", "soil", "/dev/ttyUSB1", 1200)
    o = s.options
    assert (o["interval_s"], o["timeout_s"], o["retries"], o["crc"], o["framing"]) == (60, 1.0, 2, True, "7E1")
    p1, p2 = o["probes"]
    assert (p1["address"], p1["sensor"], p1["concurrent"], p1["crc"]) == ("1", "bed-3-10cm", True, True)
    assert p1["values"][0]["coeffs"] == [-0.05, 1.5e-4] and p1["values"][0]["hi"] == 0.6
    assert p1["values"][1]["unit"] == "degC"
    assert (p2["sensor"], p2["concurrent"], p2["crc"]) == ("sdi12-2", False, False)
    assert p2["values"][0]["unit"] == "S m-1" and p2["values"][0]["scale"] == 1e-4


@pytest.mark.parametrize(
    "old, new, key, expected, line",
    [
        ('address = "2"', 'address = "1"', "sources[0].probes[1].address", "unique among probes", 21),
        ('address = "2"', 'address = "#"', "sources[0].probes[1].address", "0-9 A-Z a-z", 21),
        ('address = "2"', 'address = "12"', "sources[0].probes[1].address", "one character", 21),
        ('[[sources.probes.values]]\nindex = 2\nquantity = "soil_bulk_ec"\nscale = 1e-4\n', "",
         "sources[0].probes[1].values", "at least one", 20),  # missing: the table's header line
        ("index = 1,", "index = 0,", "sources[0].probes[0].values[1].index", "mapped once", 15),  # inline: its key
        ('quantity = "soil_bulk_ec"', 'quantity = "soil_salt"', "sources[0].probes[1].values[0].quantity",
         "known quantity", 25),
        ('unit = "degC"', 'unit = "K"', "sources[0].probes[0].values[1].unit", '"degC"', 15),
        ("interval_s = 60", "interval_s = 0.5", "sources[0].interval_s", "1..86400", 8),
        ("crc = true", 'crc = "yes"', "sources[0].crc", "true or false", 9),
        ("crc = true", "baudrate = 1201", "sources[0].baudrate", "one of 1200", 9),
        ("scale = 1e-4", "coeffs = [1]\nscale = 1", "sources[0].probes[1].values[0].coeffs", "not both", 26),
        ("scale = 1e-4", "scael = 1e-4", "sources[0].probes[1].values[0].scael", "did you mean 'scale'", 26),
        ('sensor = "bed-3-10cm"', 'sensor = "bed 3"', "sources[0].probes[0].sensor", "sensor name", 13),
    ],
)  # fmt: skip
def test_config_errors(old, new, key, expected, line):
    assert old in CONFIG
    with pytest.raises(ConfigError) as e:
        parse_config(CONFIG.replace(old, new, 1), path="gw.toml")
    err = e.value
    assert (err.key, err.line) == (key, line), str(err)
    assert expected in err.expected, str(err)
    assert str(err).startswith("gw.toml:%d: %s: expected " % (line, key))


def test_config_needs_probes():
    text = CONFIG.split("[[sources.probes]]")[0]
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert e.value.key == "sources[0].probes" and "at least one" in e.value.expected


# ---- the source against the simulated adapter ----


class FakeCtx:
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

    def readings(self, sensor=None):
        return [r for it in self.intakes for r in it.readings if sensor is None or r[0] == sensor]


SIM_CONFIG = """\
[[sources]]
kind = "sdi12"
name = "soil"
port = "%s"
timeout_s = 0.15
retries = 2

[[sources.probes]]
address = "1"
sensor = "conc"
concurrent = true
values = [
  { index = 0, quantity = "soil_water_content", coeffs = [-0.05, 1.5e-4], lo = 0.0, hi = 0.6 },
  { index = 1, quantity = "soil_temperature", hi = 10.0 },
  { index = 2, quantity = "soil_bulk_ec", scale = 1e-4 },
]

[[sources.probes]]
address = "2"
sensor = "crc"
crc = true
values = [
  { index = 0, quantity = "soil_water_content", coeffs = [-0.05, 1.5e-4] },
  { index = 2, quantity = "soil_bulk_ec", scale = 1e-4 },
]
"""


@pytest.fixture
def rig():
    sim = Sdi12Sim([SimProbe("1", ready_s=2), SimProbe("2", ready_s=1, temp_c=12.0)], time_scale=TIME_SCALE)
    sim.start()
    (scfg,) = parse_config('[gateway]\nid = "gw"\n' + SIM_CONFIG % sim.slave_path).sources
    scfg.options.update(interval_s=0.3, retry_s=0.1)  # below the config's 1 s floor: tests run fast
    ctx = FakeCtx()
    src = Sdi12Source(scfg, ctx, time_scale=TIME_SCALE)
    yield sim, src, ctx
    sim.stop()
    print("source health: %r" % (src.health(),))
    print("simulator stats: %r\nsimulator log (last 20): %r" % (sim.stats, sim.log[-20:]))


async def _until(pred, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


def _run(coro):
    asyncio.run(asyncio.wait_for(coro, 20))


@pytest.mark.sim
def test_polls_two_probes(rig):
    sim, src, ctx = rig

    async def go():
        await src.start()
        try:
            await _until(lambda: len(ctx.readings("conc")) >= 6 and len(ctx.readings("crc")) >= 4)
        finally:
            await src.stop()

    _run(go())
    by = {(r[0], r[1]): r for r in ctx.readings()}
    assert set(by) == {("conc", "soil_water_content"), ("conc", "soil_temperature"), ("conc", "soil_bulk_ec"),
                       ("crc", "soil_water_content"), ("crc", "soil_bulk_ec")}  # fmt: skip
    for (_, q), (_, _, _, ts, unit, _) in by.items():
        assert unit == {"soil_water_content": "m3 m-3", "soil_temperature": "degC", "soil_bulk_ec": "S m-1"}[q]
        assert abs(ts - time.time()) < 10
    vwc = by[("conc", "soil_water_content")][2]
    assert 0.2 < vwc < 0.35 and by[("conc", "soil_water_content")][5] == 0
    assert by[("conc", "soil_temperature")][5] == OUT_OF_RANGE  # 16 degC above hi = 10
    assert 0.03 < by[("crc", "soil_bulk_ec")][2] < 0.06
    h = src.health()
    assert h["connected"] is False  # stopped
    assert h["errors"] == {} and h["consecutive_failures"] == 0
    assert h["probes"]["1"]["last_good"] and h["probes"]["2"]["last_good"]
    assert sim.probes["1"].concurrent and not sim.probes["2"].concurrent and sim.probes["2"].crc
    assert sim.stats["dropped_input"] == sim.stats["dropped_output"] == 0


@pytest.mark.sim
@pytest.mark.parametrize(
    "address, fault, times",
    [
        ("1", "no_response", 1),
        ("1", "garbage", 1),
        ("2", "bad_crc", 1),
        ("2", "wrong_address", 1),
        ("1", "short_values", 1),
        ("2", "no_response", 6),  # beyond the retries: the poll fails, the probe is polled again later
    ],
)
def test_fault_is_counted_and_recovered(rig, address, fault, times):
    sim, src, ctx = rig
    sensor = {"1": "conc", "2": "crc"}[address]

    async def go():
        await src.start()
        try:
            await _until(lambda: src.health()["probes"][address]["last_good"])
            sim.inject(address, fault, times)
            await _until(lambda: src.errors.get(fault, 0) >= times)
            t_fault = time.time()
            await _until(lambda: (src.health()["probes"][address]["last_good"] or 0) > t_fault)
            if times > src.opts["retries"] + 1:
                assert ctx.rejected.get("sdi12_" + fault) == times
        finally:
            await src.stop()

    _run(go())
    h = src.health()
    assert h["probes"][address]["errors"][fault] == times
    assert h["probes"][address]["consecutive_failures"] == 0
    assert sim.stats[fault] == times
    assert ctx.rejected["sdi12_" + fault] == times
    assert not any(r[5] & SUSPECT for r in ctx.readings(sensor))  # a retry recovered every poll


@pytest.mark.sim
def test_failed_poll_counts_consecutive_failures(rig):
    sim, src, ctx = rig

    async def go():
        await src.start()
        try:
            sim.inject("2", "no_response", 100)
            await _until(lambda: src.health()["probes"]["2"]["consecutive_failures"] >= 2)
            assert src.health()["consecutive_failures"] >= 2
            assert ctx.readings("conc")  # the other probe keeps delivering
            sim.inject("2", "no_response", 0)
            await _until(lambda: src.health()["probes"]["2"]["consecutive_failures"] == 0)
        finally:
            await src.stop()

    _run(go())
    assert ctx.readings("crc")


@pytest.mark.sim
def test_short_values_beyond_retries_are_suspect(rig):
    sim, src, ctx = rig

    async def go():
        await src.start()
        try:
            sim.inject("2", "short_values", 3)  # the first try and both retries
            await _until(lambda: any(r[5] & SUSPECT for r in ctx.readings("crc")))
        finally:
            await src.stop()

    _run(go())
    suspect = [r for r in ctx.readings("crc") if r[5] & SUSPECT]
    assert {r[1] for r in suspect} == {"soil_water_content"}  # index 2 (EC) was the missing value
    assert src.errors["short_values"] == 3


@pytest.mark.sim
def test_change_address_and_identify(rig):
    sim, src, ctx = rig

    async def go():
        await src.start()
        try:
            await _until(lambda: src.health()["probes"]["2"]["last_good"])
            assert (await src.identify("2")).startswith("14FIELDLINSOIL3X100")
            await src.change_address("2", "b")
            assert "b" in sim.probes and "2" not in sim.probes
            t0 = time.time()
            await _until(lambda: (src.health()["probes"].get("b", {}).get("last_good") or 0) > t0)
            with pytest.raises(ValueError):
                await src.change_address("b", "1")  # taken by the other probe
        finally:
            await src.stop()

    _run(go())
    assert src.health()["errors"] == {}


@pytest.mark.sim
def test_absent_port_is_retried(tmp_path):
    (scfg,) = parse_config('[gateway]\nid = "gw"\n' + SIM_CONFIG % (tmp_path / "nope")).sources
    scfg.options.update(interval_s=0.3)
    ctx = FakeCtx()
    src = Sdi12Source(scfg, ctx, time_scale=TIME_SCALE)

    async def go():
        await src.start()
        await asyncio.sleep(0.2)
        assert src.health()["connected"] is False and src.opens == 0
        await src.stop()

    _run(go())
