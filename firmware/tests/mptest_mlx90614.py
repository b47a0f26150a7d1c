"""MLX90614 driver against its SMBus model and the datasheet's published PEC examples."""

from fieldnode.drivers.mlx90614 import MLX90614, smbus_pec
from fieldnode.errors import BusError, CrcError, RangeError, StuckError
from sim.chips.mlx90614 import MLX90614Model
from sim.i2c import SimI2C
from sim.truth import Truth


def _setup(role="canopy", addr=0x5A, **truth):
    t = Truth()
    t.canopy_c, t.sky_c, t.emissivity, t.air_c = 24.0, -25.0, 0.97, 18.0
    for k in truth:
        setattr(t, k, truth[k])
    bus = SimI2C()
    model = bus.attach(MLX90614Model(t, role=role, addr=addr))
    return t, model, MLX90614(bus, addr=addr)


def _expect(name, fn):
    try:
        fn()
    except Exception as e:
        assert type(e).__name__ == name, "expected %s, got %r" % (name, e)
        return e
    assert False, "expected " + name


class _FixedBus:
    """Answers every readfrom_mem_into with fixed bytes (a logic-analyser capture)."""

    def __init__(self, data):
        self.data = data

    def readfrom_mem_into(self, addr, memaddr, buf):
        buf[:] = self.data


def test_pec_published_examples():
    assert smbus_pec(b"\xb4\x07\xb5\xd2\x3a") == 0x30  # datasheet: read Tobj1 at 0x5A
    assert smbus_pec(b"\xb4\x06\xb5\xdf\x3a") == 0xCF  # logic-analyser capture, Ta
    assert smbus_pec(b"\x00\x2e\x00\x00") == 0x6F  # Melexis app note: erase cell 0x0E
    assert smbus_pec(b"") == 0


def test_datasheet_word_converts():
    ir = MLX90614(_FixedBus(b"\xd2\x3a\x30"))  # 0x3AD2 = 15058 -> 301.16 K
    assert abs(ir.object_c() - 28.01) < 1e-9


def test_canopy_brightness_temperature():
    t, _, ir = _setup()
    k = 273.15
    e = t.emissivity
    tb = (e * (t.canopy_c + k) ** 4 + (1 - e) * (t.sky_c + k) ** 4) ** 0.25 - k
    assert tb < t.canopy_c - 0.5  # reflected cold sky pulls the reading down
    for _ in range(20):
        assert abs(ir.object_c() - tb) < 0.05
        assert abs(ir.ambient_c() - t.air_c) < 0.05


def test_sky_role_and_live_truth():
    t, _, ir = _setup(role="sky", addr=0x5B)  # the PEC covers the address: 0x5B must work too
    assert abs(ir.object_c() - t.sky_c) < 0.05
    t.sky_c = -41.5
    assert abs(ir.object_c() + 41.5) < 0.05


def test_emissivity_and_probe():
    _, _, ir = _setup()
    assert ir.probe()
    assert ir.emissivity() == 1.0


def test_nack_is_bus_error():
    _, m, ir = _setup()
    m.nack = True
    e = _expect("BusError", ir.object_c)
    assert isinstance(e, BusError) and e.chip == "mlx90614" and "0x5a" in str(e)


def test_bad_pec_is_crc_error():
    _, m, ir = _setup()
    m.bad_crc = True
    e = _expect("CrcError", ir.ambient_c)
    assert isinstance(e, CrcError) and "expected" in str(e)


def test_garbage_is_range_error():
    _, m, ir = _setup()
    m.garbage = True
    e = _expect("RangeError", ir.object_c)
    assert isinstance(e, RangeError) and "error flag" in str(e)
    e = _expect("RangeError", ir.ambient_c)
    assert "outside" in str(e)


def test_stuck_object_word():
    _, m, ir = _setup()
    ir.object_c()
    m.stuck = True
    try:
        for _ in range(200):
            ir.object_c()
    except StuckError as e:
        assert "same raw value" in str(e)
        return
    assert False, "expected StuckError"


def test_constant_ambient_is_not_stuck():
    _, _, ir = _setup()
    for _ in range(300):  # Ta is quiet and repeats: never a StuckError
        ir.ambient_c()
