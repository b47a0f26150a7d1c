"""AS7341 driver against the register-level model: ID, SMUX map, basic counts, auto-gain, faults."""

from fieldnode.drivers.as7341 import AS7341
from fieldnode.errors import BusError, NotReadyError, RangeError, StuckError
from sim.chips.as7341 import RESPONSIVITY, AS7341Model, responsivity_for_unit
from sim.i2c import SimI2C
from sim.truth import CLEAR, NIR, Truth

REFLECTANCE = (0.04, 0.06, 0.05, 0.09, 0.12, 0.08, 0.05, 0.04, 0.07, 0.45)


def _nosleep(ms):
    pass


def _sun(level=1.5):
    t = Truth()
    for i in range(10):
        t.incident_band[i] = level
        t.canopy_band[i] = level
        t.reflectance[i] = REFLECTANCE[i]
    return t


def _rig(truth, role="up", responsivity=None, gain=8):
    bus = SimI2C()
    model = bus.attach(AS7341Model(truth, role=role, responsivity=responsivity))
    return model, AS7341(bus, sleep_ms=_nosleep, gain=gain)


def _close(a, b, rel):
    return abs(a - b) <= rel * abs(b)


def _mean(spec, n, out, acc):
    for i in range(10):
        acc[i] = 0.0
    for _ in range(n):
        spec.read_basic(out)
        for i in range(10):
            acc[i] += out[i] / n
    return acc


def test_id_power_on_and_wrong_id():
    model, spec = _rig(_sun())
    spec.init()
    assert model.regs[0x80] & 0x01 and model.regs[0x81] == spec.atime == 35
    assert model.regs[0xCA] | model.regs[0xCB] << 8 == spec.astep == 999
    assert _close(spec.integration_ms(), 100.08, 1e-3) and spec.full_scale() == 36000
    model.garbage = True
    try:
        spec.init()
        assert False, "expected RangeError"
    except RangeError as e:
        assert "0xff" in str(e)


def test_smux_halves_map_every_channel():
    t = _sun()
    for i in range(10):
        t.incident_band[i] = 0.05 * (i + 1)  # a different level per band
    model, spec = _rig(t, responsivity=[10.0] * 10)
    spec.init()
    out = spec.read_basic([0.0] * 10)
    assert model.smux[0x0E] == 0x24 and model.smux[0x13] == 0x06  # the high set, last written
    for i in range(10):
        assert _close(out[i], 10.0 * t.incident_band[i], 0.02), (i, out[i])
    assert out[NIR] > out[CLEAR] > out[7]


def test_basic_counts_proportional_and_gain_independent():
    t = _sun(0.2)
    model, spec = _rig(t, gain=4)
    spec.init()
    spec.auto_gain = False
    out, a, b = [0.0] * 10, [0.0] * 10, [0.0] * 10
    _mean(spec, 2, out, a)
    for i in range(10):
        assert _close(a[i], 0.2 * RESPONSIVITY[i], 0.02), (i, a[i])
    spec.set_gain(32)
    spec.set_integration(17, 999)  # 50 ms, full scale 18000
    assert model.regs[0xAA] == 6 and not spec.saturated
    _mean(spec, 2, out, b)
    for i in range(10):
        assert _close(b[i], a[i], 0.015), (i, a[i], b[i])
    t.incident_band[:] = [0.4] * 10
    _mean(spec, 2, out, b)
    for i in range(10):
        assert _close(b[i], 2 * a[i], 0.015), (i, a[i], b[i])


def test_autogain_full_sun_and_dim_light():
    t = _sun(1.5)
    model, spec = _rig(t, gain=512)
    spec.init()
    out = spec.read_basic([0.0] * 10)
    assert not spec.saturated and 4 <= spec.gain <= 16, spec.gain
    for i in range(10):
        assert _close(out[i], 1.5 * RESPONSIVITY[i], 0.02), (i, out[i])
    t.incident_band[:] = [0.002] * 10  # deep dusk
    spec.read_basic(out)
    assert spec.gain >= 256 and not spec.saturated, spec.gain
    for i in range(10):
        assert _close(out[i], 0.002 * RESPONSIVITY[i], 0.05), (i, out[i])
    spec.auto_gain = False  # fixed gain in full sun: flagged, clipped
    t.incident_band[:] = [1.5] * 10
    spec.read_basic(out)
    assert spec.saturated
    spec.auto_gain = True  # too bright to range in 5 tries: clipped, flagged, scaled with the gain used
    t.incident_band[:] = [200.0] * 10
    spec.set_gain(512)
    spec.read_basic(out)
    assert spec.saturated and spec.gain == (1 << model.regs[0xAA]) / 2 == 2
    assert _close(out[CLEAR], 36000 / (2 * spec.integration_ms()), 0.001)


def test_down_over_up_recovers_reflectance():
    t = _sun(1.2)
    t.lens_transmission = 0.9
    resp = responsivity_for_unit(7)
    _, up = _rig(t, "up", resp)
    _, down = _rig(t, "down", resp)
    up.init()
    down.init()
    out, u, d = [0.0] * 10, [0.0] * 10, [0.0] * 10
    _mean(up, 4, out, u)
    _mean(down, 4, out, d)
    for i in range(10):
        assert _close(d[i] / u[i] / 0.9, REFLECTANCE[i], 0.01), (i, d[i] / u[i])
    t.swap_spectral = True  # installed the wrong way round: "reflectance" above 1
    up.read_basic(u)
    down.read_basic(d)
    for i in range(10):
        assert _close(d[i] / u[i] * REFLECTANCE[i] * 0.9, 1.0, 0.02), (i, d[i] / u[i])


def test_unit_responsivity_is_calibratable():
    resp = responsivity_for_unit(3)
    assert resp != list(RESPONSIVITY)
    _, spec = _rig(_sun(1.0), responsivity=resp)
    spec.init()
    out = spec.read_basic([0.0] * 10)
    for i in range(10):
        assert _close(resp[i], RESPONSIVITY[i], 0.05)
        assert _close(out[i], resp[i], 0.015), (i, out[i], resp[i])


def test_nack_is_bus_error():
    model, spec = _rig(_sun())
    spec.init()
    model.nack = True
    for fn in (spec.init, lambda: spec.read_basic([0.0] * 10)):
        try:
            fn()
            assert False, "expected BusError"
        except BusError as e:
            assert "0x39" in str(e)


def test_stuck_trips_in_light_never_in_darkness():
    t = _sun(1.0)
    model, spec = _rig(t)
    spec.init()
    out = spec.read_basic([0.0] * 10)
    model.stuck = True
    try:
        for _ in range(25):
            spec.read_basic(out)
        assert False, "expected StuckError"
    except StuckError:
        pass
    t = _sun(0.0)  # night: the chip legitimately reads the same dark counts
    model, spec = _rig(t)
    spec.init()
    spec.read_basic(out)
    model.stuck = True
    for _ in range(60):
        spec.read_basic(out)
    assert spec.gain == 512


def test_never_ready_and_garbage_data():
    model, spec = _rig(_sun())
    spec.init()
    model.never_ready = True
    try:
        spec.read_basic([0.0] * 10)
        assert False, "expected NotReadyError"
    except NotReadyError as e:
        assert "AVALID" in str(e)
    model.never_ready = False
    model.garbage = True  # data above the full scale of ATIME/ASTEP is impossible
    try:
        spec.read_basic([0.0] * 10)
        assert False, "expected RangeError"
    except RangeError as e:
        assert "full scale 36000" in str(e)


def test_model_smux_needs_the_reference_bytes():
    bus = SimI2C()
    t = _sun(1.0)
    bus.attach(AS7341Model(t, responsivity=[10.0] * 10))
    bus.writeto_mem(0x39, 0x80, b"\x01")
    bus.writeto_mem(0x39, 0x81, b"\x23")  # ATIME 35: 100 ms, full scale 36000
    bus.writeto_mem(0x39, 0xAA, b"\x00")  # 0.5x
    bus.writeto_mem(0x39, 0xAF, b"\x10")
    bus.writeto_mem(0x39, 0x00, b"\x00\x00\x00\x40\x02\x00\x10\x03\x50\x10\x03\x00\x00\x00\x23\x00\x00\x50\x00\x06")
    bus.writeto_mem(0x39, 0x80, b"\x11")  # SMUXEN with the published 0x23 typo at 0x0E
    bus.writeto_mem(0x39, 0x80, b"\x03")
    bus.readfrom_mem(0x39, 0xA3, 2)
    d = bus.readfrom_mem(0x39, 0x95, 12)
    f7, f8 = d[4] | d[5] << 8, d[6] | d[7] << 8
    assert f7 > 1.4 * f8  # F8-right lands on the F7 ADC
