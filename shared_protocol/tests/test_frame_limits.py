from shared_protocol import (
    Deframer,
    FramingError,
    SchemaError,
    SizeError,
    decode_frame,
    encode_frame,
)
from shared_protocol.tests.samples import DEV, KEY, hello, report
from shared_protocol.tests.support import raises


def test_schema_errors_name_the_field():
    m = report()
    m["stats"]["air_temperature"]["mean"][0] = 99.0
    e = raises(SchemaError, encode_frame, m, KEY)
    assert "air_temperature" in str(e) and "mean" in str(e)
    m = hello()
    del m["hw"]
    e = raises(SchemaError, encode_frame, m, KEY)
    assert "hw" in str(e)
    m = hello()
    m["colour"] = "red"
    assert "colour" in str(raises(SchemaError, encode_frame, m, KEY))
    m = hello()
    m["counter"] = -1
    assert "counter" in str(raises(SchemaError, encode_frame, m, KEY))


def test_size_limits():
    big = {"type": "diag_response", "device_id": DEV, "counter": 1, "req_id": 1, "items": {}}
    for i in range(6):  # 6 x 200 bytes > the 1024-byte frame limit
        big["items"]["k%d" % i] = "x" * 200
    raises(SizeError, encode_frame, big, KEY)
    raises(SizeError, decode_frame, b"\x01" * 3000, {})


def test_garbage_raises_only_protocol_errors():
    from shared_protocol import ProtocolError

    samples = [b"", b"\x00", b"\x01", b"\x02\x01\x00", b"\xff" * 20, b"\x05abc", bytes(range(1, 40))]
    for s in samples:
        raises(ProtocolError, decode_frame, s, {DEV: KEY})
    raises(ProtocolError, decode_frame, "not bytes", {})
    raises(FramingError, decode_frame, b"\x03a\x00b\x00", {})


def test_deframer_resynchronises_after_noise():
    d = Deframer(max_wire=200)
    a = encode_frame(hello(1), None)
    b = encode_frame(hello(2), None)
    stream = b"\x13\x37noise" + b"\x00" + a + b"\xaa" * 300 + b"\x00" + b
    frames = []
    for i in range(0, len(stream), 7):
        frames += d.feed(stream[i : i + 7])
    good = []
    for f in frames:
        try:
            good.append(decode_frame(f, {})["counter"])
        except Exception:
            pass
    assert good == [1, 2]
    assert d.oversized == 1
