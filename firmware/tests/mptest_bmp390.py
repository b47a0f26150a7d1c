"""BMP390 driver against its register model and a published compensation vector."""

from fieldnode.drivers.bmp390 import BMP390, compensate, parse_calibration
from fieldnode.errors import BusError, NotReadyError, RangeError, StuckError
from sim.chips.bmp390 import NVM, BMP390Model
from sim.i2c import SimI2C
from sim.truth import Truth


class Clock:
    def __init__(self, rate=1.0):
        self.ms = 0.0
        self.rate = rate
        self.slept = 0

    def now(self):
        return self.ms

    def sleep(self, ms):
        self.slept += ms
        self.ms += ms * self.rate


def _setup(rate=1.0, chip_id=0x60, **kw):
    t = Truth()
    t.pressure_pa, t.air_c = 98765.4, 17.25
    clk = Clock(rate)
    bus = SimI2C()
    model = bus.attach(BMP390Model(t, clock=clk.now, chip_id=chip_id))
    return t, model, BMP390(bus, sleep_ms=clk.sleep, **kw), clk


def _expect(cls, fn):
    try:
        fn()
    except cls as e:
        return e
    assert False, "expected " + cls.__name__


def test_published_compensation_vector():
    # elixir-sensors/bmp3xx: a real chip's NVM and data bytes 97 9F 6D 73 D8 85
    cal = parse_calibration(NVM)
    assert cal[0] == 27427 * 256.0 and cal[3] == (-164 - 16384) / 1048576.0 and cal[13] == -60 / 2.0**65
    pa, t = compensate(cal, 0x6D9F97, 0x85D873)
    assert abs(t - 30.499314453874284) < 1e-9, t
    assert abs(pa - 100876.00634692199) < 1e-6, pa


def test_calibration_signedness():
    # all-0xFF NVM: unsigned fields read 65535, signed ones -1 (datasheet types u16/i16/i8)
    cal = parse_calibration(b"\xff" * 21)
    want = (65535 * 256.0, 65535 / 2.0**30, -1 / 2.0**48, -16385 / 2.0**20, -16385 / 2.0**29, -1 / 2.0**32,
            -1 / 2.0**37, 65535 * 8.0, 65535 / 64.0, -1 / 256.0, -1 / 32768.0, -1 / 2.0**48, -1 / 2.0**48,
            -1 / 2.0**65)  # fmt: skip
    for i in range(14):
        assert cal[i] == want[i], (i, cal[i], want[i])


def test_model_inverts_the_compensation():
    _, m, _, _ = _setup()
    cal = parse_calibration(NVM)
    for pa, tc in ((30000.0, -40.0), (101325.0, 20.0), (125000.0, 85.0), (70000.0, -10.0)):
        p_raw, t_raw = m.raw_for(pa, tc)
        assert 0 < p_raw < 1 << 24 and 0 < t_raw < 1 << 24
        p2, t2 = compensate(cal, p_raw, t_raw)
        assert abs(p2 - pa) < 0.02 and abs(t2 - tc) < 0.001, (pa, tc, p2, t2)


def test_values_track_truth():
    t, m, baro, clk = _setup()
    for pa, tc in ((98765.4, 17.25), (101325.0, 20.0), (84000.0, -25.5), (112000.0, 48.0)):
        t.pressure_pa, t.air_c = pa, tc
        p2, t2 = baro.measure()
        assert abs(p2 - pa) < 2.0, (p2, pa)
        assert abs(t2 - tc) < 0.05, (t2, tc)
    assert m.conversions == 4 and clk.slept == 4 * 19  # x8/x1: 18.969 ms per conversion


def test_forced_mode_and_config_registers():
    _, m, baro, _ = _setup(osr_p=5, osr_t=1)
    baro.measure()
    assert m.regs[0x1C] == (1 << 3) | 5  # osr_t x2, osr_p x32
    assert m.regs[0x1F] == 0  # IIR off
    assert m.regs[0x1B] & 0x30 == 0  # back to sleep after the forced conversion
    assert m.regs[0x03] & 0x60 == 0  # drdy cleared by the data read
    assert baro.wait_ms == 70  # 234 + 392 + 32*2020 + 163 + 2*2020 us


def test_burst_read_auto_increments():
    t, m, _, _ = _setup()
    bus = SimI2C()
    bus.attach(m)
    assert bus.readfrom_mem(0x77, 0x31, 21) == NVM
    assert bus.readfrom_mem(0x77, 0x00, 1) == b"\x60"


def test_bmp388_id_accepted():
    _, _, baro, _ = _setup(chip_id=0x50)
    assert baro.init() is baro


def test_wrong_chip_id_is_range_error():
    _, _, baro, _ = _setup(chip_id=0x58)  # a BMP280 on the same address
    e = _expect(RangeError, baro.measure)
    assert "chip id 0x58" in str(e)


def test_slow_chip_is_polled():
    _, _, baro, clk = _setup(rate=0.95)  # 19 ms of sleep pass as 18.05 ms on the chip
    pa, _ = baro.measure()
    assert abs(pa - 98765.4) < 2.0
    assert clk.slept == 20


def test_never_ready_is_not_ready_error():
    _, _, baro, _ = _setup(rate=0.0)
    e = _expect(NotReadyError, baro.measure)
    assert "drdy" in str(e)


def test_nack_is_bus_error():
    _, m, baro, _ = _setup()
    m.nack = True
    e = _expect(BusError, baro.init)
    assert e.chip == "bmp390" and "0x77" in str(e)


def test_garbage_is_range_error():
    _, m, baro, _ = _setup()
    m.garbage = True
    e = _expect(RangeError, baro.measure)
    assert "outside" in str(e)


def test_out_of_range_pressure_is_range_error():
    t, _, baro, _ = _setup()
    t.pressure_pa = 20000.0  # 12 km up: beyond the chip's 300..1250 hPa
    e = _expect(RangeError, baro.measure)
    assert "pressure" in str(e)


def test_stuck_raw_values():
    _, m, baro, _ = _setup()
    baro.measure()
    m.stuck = True
    _expect(StuckError, lambda: [baro.measure() for _ in range(30)])


def test_steady_weather_is_not_stuck():
    _, _, baro, _ = _setup()
    for _ in range(60):
        baro.measure()
