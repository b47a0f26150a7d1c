"""SHT4x driver against its command-level model, Sensirion's CRC examples and the datasheet formulas."""

from fieldnode.drivers.sht4x import SHT4x, crc8
from fieldnode.errors import BusError, CrcError, NotReadyError, RangeError, StuckError
from sim.chips.sht4x import SHT4xModel
from sim.i2c import SimI2C
from sim.truth import Truth


class Clock:
    """A sim clock: the driver's sleep advances it by ``rate`` times the asked ms."""

    def __init__(self, rate=1.0):
        self.ms = 0.0
        self.rate = rate
        self.slept = 0

    def now(self):
        return self.ms

    def sleep(self, ms):
        self.slept += ms
        self.ms += ms * self.rate


def _setup(rate=1.0, air_c=21.3, rh_pct=55.0):
    t = Truth()
    t.air_c, t.rh_pct = air_c, rh_pct
    clk = Clock(rate)
    bus = SimI2C()
    model = bus.attach(SHT4xModel(t, clock=clk.now))
    return t, model, SHT4x(bus, sleep_ms=clk.sleep), clk


def _expect(cls, fn):
    try:
        fn()
    except cls as e:
        return e
    assert False, "expected " + cls.__name__


def test_crc_published_examples():
    assert crc8(b"\xbe\xef") == 0x92  # Sensirion datasheet example
    assert crc8(b"\x00\x00") == 0x81
    assert crc8(b"\x12\xbe\xef", 1) == 0x92  # offset into a buffer, as the driver uses it


def test_conversion_formula():
    # full-scale words from the datasheet formulas: T = -45 + 175 S/65535, RH = -6 + 125 S/65535
    t = SHT4x(_FixedBus(b"\x66\x66\x93\x80\x00\xa2"), sleep_ms=lambda ms: None)
    tc, rh = t.measure()
    assert abs(tc - (-45 + 175 * 0x6666 / 65535)) < 1e-9 and abs(rh - (-6 + 125 * 0x8000 / 65535)) < 1e-9


class _FixedBus:
    def __init__(self, data):
        self.data = data

    def writeto(self, addr, buf):
        pass

    def readfrom_into(self, addr, buf):
        buf[:] = self.data


def test_values_track_truth():
    t, _, sht, clk = _setup()
    for air, rh in ((21.3, 55.0), (-12.5, 92.0), (38.0, 12.5)):
        t.air_c, t.rh_pct = air, rh
        tc, rhm = sht.measure()
        assert abs(tc - air) < 0.05, (tc, air)
        assert abs(rhm - rh) < 0.1, (rhm, rh)
    assert clk.slept == 27  # 9 ms each: the datasheet wait, no extra polls


def test_rh_clamped_at_saturation():
    t, _, sht, _ = _setup(rh_pct=102.0)  # condensing fog reads a little over 100 %
    assert sht.measure()[1] == 100.0
    t.rh_pct = -2.0
    assert sht.measure()[1] == 0.0


def test_serial_and_reset():
    _, m, sht, _ = _setup()
    assert sht.serial() == m.serial
    sht.reset()
    assert sht.measure()


def test_slow_chip_is_polled_until_ready():
    _, _, sht, clk = _setup(rate=0.8)  # 9 ms of sleep pass as 7.2 ms on the chip
    tc, _ = sht.measure()
    assert abs(tc - 21.3) < 0.05
    assert clk.slept == 11  # 9 + two 1 ms polls


def test_never_ready_is_not_ready_error():
    _, _, sht, _ = _setup(rate=0.0)
    e = _expect(NotReadyError, sht.measure)
    assert "0xfd" in str(e)


def test_read_without_command_is_nacked():
    bus = SimI2C()
    bus.attach(SHT4xModel(Truth()))
    try:
        bus.readfrom(0x44, 6)
    except OSError as e:
        assert e.args[0] == 19
        return
    assert False, "expected OSError(19)"


def test_nack_is_bus_error():
    _, m, sht, _ = _setup()
    m.nack = True
    e = _expect(BusError, sht.measure)
    assert e.chip == "sht4x" and "0x44" in str(e)


def test_bad_crc_is_crc_error():
    _, m, sht, _ = _setup()
    m.bad_crc = True
    e = _expect(CrcError, sht.measure)
    assert "expected CRC" in str(e)


def test_garbage_is_range_error():
    _, m, sht, _ = _setup()
    m.garbage = True
    _expect(RangeError, sht.measure)


def test_far_outside_rh_is_range_error():
    sht = SHT4x(_FixedBus(b"\x66\x66\x93\xff\xff\xac"), sleep_ms=lambda ms: None)  # 119 %RH
    e = _expect(RangeError, sht.measure)
    assert "humidity" in str(e)


def test_stuck_raw_words():
    _, m, sht, _ = _setup()
    sht.measure()
    m.stuck = True
    e = _expect(StuckError, lambda: [sht.measure() for _ in range(30)])
    assert "same raw value" in str(e)


def test_steady_air_is_not_stuck():
    _, _, sht, _ = _setup()
    for _ in range(100):  # constant truth: sensor noise keeps raw words changing
        sht.measure()
