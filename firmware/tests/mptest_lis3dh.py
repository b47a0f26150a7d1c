"""LIS3DH driver against its register-level model: init, burst reads, tilt, faults."""

import math

from fieldnode.drivers.lis3dh import LIS3DH
from fieldnode.errors import BusError, NotReadyError, RangeError, StuckError
from sim.chips.lis3dh import LIS3DHModel
from sim.i2c import SimI2C
from sim.truth import Truth


def _rig(seed=1):
    truth = Truth()
    bus = SimI2C()
    model = bus.attach(LIS3DHModel(truth, seed=seed))
    acc = LIS3DH(bus, sleep_ms=lambda ms: None).init()
    return truth, bus, model, acc


def _lean(truth, deg, azimuth_deg):
    r, a = math.radians(deg), math.radians(azimuth_deg)
    truth.accel_g = (math.sin(r) * math.cos(a), math.sin(r) * math.sin(a), math.cos(r))


def test_init_writes_reference_configuration():
    _, _, model, _ = _rig()
    assert model.regs[0x20] == 0x57  # 100 Hz, XYZ on, LPen 0
    assert model.regs[0x23] == 0x88  # BDU, HR, +-2 g
    assert model.regs[0x24] == 0x00  # BOOT cleared itself


def test_read_g_flat():
    _, _, _, acc = _rig()
    x, y, z = acc.read_g()
    assert abs(x) < 0.01 and abs(y) < 0.01 and abs(z - 1.0) < 0.01, (x, y, z)


def test_burst_read_is_12_bit_left_justified():
    _, bus, _, _ = _rig()
    raw = bus.readfrom_mem(0x18, 0x28 | 0x80, 6)
    for i in range(0, 6, 2):
        assert raw[i] & 0x0F == 0, raw
    z = raw[4] | (raw[5] << 8)
    assert abs((z >> 4) - 1000) < 10, z


def test_auto_increment_only_with_msb():
    _, bus, _, _ = _rig()
    raw = bus.readfrom_mem(0x18, 0x28, 6)  # no MSB: X_L six times
    assert raw == bytes([raw[0]]) * 6, raw
    raw = bus.readfrom_mem(0x18, 0x28 | 0x80, 6)
    assert raw[5] != raw[4] or raw[5] != raw[0], raw


def test_tilt_within_half_degree():
    truth, _, _, acc = _rig()
    for deg in (0, 10, 45):
        for az in (0, 30, 135, 270):
            _lean(truth, deg, az)
            tilt = acc.tilt_deg()
            assert abs(tilt - deg) < 0.5, (deg, az, tilt)


def test_model_honours_mode_and_scale():
    _, bus, model, _ = _rig()
    bus.writeto_mem(0x18, 0x23, b"\x98")  # HR, +-4 g: 2 mg/digit
    raw = bus.readfrom_mem(0x18, 0xA8, 6)
    assert abs(((raw[4] | raw[5] << 8) >> 4) - 500) < 6
    bus.writeto_mem(0x18, 0x20, b"\x5f")  # low-power, +-2 g: 8 bit, 16 mg/digit
    bus.writeto_mem(0x18, 0x23, b"\x80")
    raw = bus.readfrom_mem(0x18, 0xA8, 6)
    assert raw[4] == 0 and abs(raw[5] - 62) <= 2, raw
    bus.writeto_mem(0x18, 0x0F, b"\x00")  # WHO_AM_I is read-only
    assert model.regs[0x0F] == 0x33


def test_wrong_chip_rejected():
    truth = Truth()
    bus = SimI2C()
    model = bus.attach(LIS3DHModel(truth))
    model.regs[0x0F] = 0x32
    try:
        LIS3DH(bus, sleep_ms=lambda ms: None).init()
    except RangeError as e:
        assert "0x32" in str(e)
    else:
        assert False, "expected RangeError"


def test_nack_is_bus_error():
    _, _, model, acc = _rig()
    model.nack = True
    try:
        acc.read_g()
    except BusError as e:
        assert "0x18" in str(e)
    else:
        assert False, "expected BusError"


def test_powered_down_is_not_ready():
    _, _, _, acc = _rig()
    acc.power_down()
    try:
        acc.read_g()
    except NotReadyError:
        pass
    else:
        assert False, "expected NotReadyError"
    acc.init()
    acc.read_g()


def test_moving_or_garbage_is_range_error():
    truth, _, model, acc = _rig()
    truth.accel_g = (0.3, 0.0, 1.7)  # the pole is being shaken
    for setup in (None, "garbage"):
        if setup:
            truth.accel_g = (0.0, 0.0, 1.0)
            model.garbage = True
        try:
            acc.tilt_deg()
        except RangeError as e:
            assert "g" in str(e)
        else:
            assert False, "expected RangeError"


def test_stuck_detected_but_static_noise_is_not():
    _, _, model, acc = _rig()
    for _ in range(200):
        acc.read_g()
    model.stuck = True
    try:
        for _ in range(25):
            acc.read_g()
    except StuckError:
        pass
    else:
        assert False, "expected StuckError"
