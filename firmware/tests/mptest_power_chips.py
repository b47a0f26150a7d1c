"""MAX17048 fuel gauge and INA219 charge-current monitor against their register-level models."""

from fieldnode.drivers.ina219 import INA219
from fieldnode.drivers.max17048 import MAX17048
from fieldnode.errors import BusError, ConfigError, RangeError, StuckError
from sim.chips.ina219 import INA219Model
from sim.chips.max17048 import MAX17048Model
from sim.i2c import SimI2C
from sim.truth import Truth


def _expect(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return str(e)
    assert False, "expected %s" % exc.__name__


def _gauge():
    truth = Truth()
    bus = SimI2C()
    model = bus.attach(MAX17048Model(truth))
    return truth, bus, model, MAX17048(bus).init()


def _monitor(**kw):
    truth = Truth()
    bus = SimI2C()
    model = bus.attach(INA219Model(truth))
    naps = []
    mon = INA219(bus, sleep_ms=naps.append, **kw).init()
    return truth, bus, model, mon, naps


# -- MAX17048 ------------------------------------------------------------------


def test_max17048_values_against_truth():
    truth, _, _, gauge = _gauge()
    truth.battery_v, truth.soc_pct, truth.solar_a = 3.85, 72.5, 0.3
    assert abs(gauge.voltage_v() - 3.85) < 0.005
    assert abs(gauge.soc_pct() - 72.5) < 0.01
    assert abs(gauge.crate_pct_h() - 15.0) < 0.21  # 0.3 A into 2 Ah
    truth.solar_a = -0.05
    assert abs(gauge.crate_pct_h() + 2.5) < 0.21
    assert gauge.version & 0xFFF0 == 0x0010


def test_max17048_registers_are_big_endian():
    truth, bus, _, _ = _gauge()
    truth.soc_pct = 50.25
    raw = bus.readfrom_mem(0x36, 0x04, 2)
    assert raw == b"\x32\x40", raw
    raw = bus.readfrom_mem(0x36, 0x02, 2)
    assert abs(((raw[0] << 8) | raw[1]) * 78.125e-6 - truth.battery_v) < 0.005


def test_max17048_wrong_version_rejected():
    _, bus, model, _ = _gauge()
    model.regs[0x09] = 0x40
    assert "0x0040" in _expect(RangeError, MAX17048(bus).init)


def test_max17048_reset_command_nacks_and_resets():
    _, bus, model, _ = _gauge()
    bus.writeto_mem(0x36, 0x0C, b"\x50\x00")
    try:
        bus.writeto_mem(0x36, 0xFE, b"\x54\x00")
    except OSError:
        pass
    else:
        assert False, "the reset command should NACK"
    assert model.regs[0x0C] == 0x97 and model.regs[0x1A] == 0x01


def test_max17048_faults():
    truth, _, model, gauge = _gauge()
    model.garbage = True
    assert "VCELL" in _expect(RangeError, gauge.voltage_v)
    assert "SOC" in _expect(RangeError, gauge.soc_pct)
    model.garbage = False
    for _ in range(200):  # noisy but steady cell: no false stuck alarm
        gauge.voltage_v()
    model.stuck = True
    _expect(StuckError, lambda: [gauge.voltage_v() for _ in range(70)])
    model.nack = True
    assert "0x36" in _expect(BusError, gauge.soc_pct)


# -- INA219 --------------------------------------------------------------------


def test_ina219_calibration_math():
    cal, config, lsb = INA219.calibration(0.1, 1.0)  # 31 uA: Cal 13212, 160 mV range
    assert (cal, config) == (13212, 0x17FF), (cal, hex(config))
    assert abs(lsb - 31.0e-6) < 0.01e-6
    cal, config, lsb = INA219.calibration(0.05, 3.2768)  # 100 uA LSB (0.1 ohm would give 4096)
    assert (cal, config >> 11) == (8192, 3) and abs(lsb - 100e-6) < 1e-12, (cal, config, lsb)
    _expect(ConfigError, INA219.calibration, 0.1, 5.0)  # 500 mV > 320 mV


def test_ina219_writes_configuration_and_calibration():
    _, _, model, mon, _ = _monitor()
    assert model.regs[0] == mon.config == 0x17FF
    assert model.regs[5] == 13212


def test_ina219_values_against_truth():
    truth, _, _, mon, _ = _monitor()
    truth.battery_v = 4.05
    for amps in (0.5, 0.0123, -0.2, 0.0):
        truth.solar_a = amps
        i, v = mon.read()
        assert abs(i - amps) < 0.0005, (amps, i)
        assert abs(v - 4.05) < 0.008, v
    assert abs(mon.current_a()) < 0.0005 and abs(mon.bus_voltage_v() - 4.05) < 0.008


def test_ina219_current_register_as_the_chip_computes_it():
    truth, bus, model, mon, _ = _monitor()
    for amps in (0.731, -0.4):
        truth.solar_a = amps
        mon.read()
        shunt, current = model.regs[1], model.regs[4]
        shunt -= 0x10000 if shunt & 0x8000 else 0
        current -= 0x10000 if current & 0x8000 else 0
        mag = (abs(shunt) * 13212) >> 12
        assert current == (mag if shunt >= 0 else -mag), (shunt, current)
    raw = bus.readfrom_mem(0x40, 0x05, 2)
    assert raw == bytes([13212 >> 8, 13212 & 0xFF])


def test_ina219_constant_zero_at_night_is_fine():
    truth, _, model, mon, _ = _monitor()
    model.noise_shunt_v = model.noise_bus_v = 0.0
    truth.solar_a = 0.0
    first = mon.read()
    assert first[0] == 0.0 and abs(first[1] - 3.9) < 0.004, first
    for _ in range(100):
        assert mon.read() == first


def test_ina219_overflow_is_range_error():
    truth, _, _, mon, _ = _monitor(max_current_a=1.0)
    truth.solar_a = 1.5  # 150 mV fits the PGA, but CURRENT overflows int16
    assert "OVF" in _expect(RangeError, mon.read)


def test_ina219_brownout_recalibrates():
    truth, _, model, mon, _ = _monitor()
    truth.solar_a = 0.25
    model.power_cycle()
    assert abs(mon.current_a() - 0.25) < 0.0005
    assert mon.resets == 1 and model.regs[5] == 13212


def test_ina219_faults():
    truth, _, model, mon, naps = _monitor()
    mon.read()
    model.stuck = True
    assert "CNVR" in _expect(StuckError, mon.read)
    assert len(naps) == 32
    model.stuck = False
    model.garbage = True
    assert "bus" in _expect(RangeError, mon.read)
    model.nack = True
    assert "0x40" in _expect(BusError, mon.current_a)
