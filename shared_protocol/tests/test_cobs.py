from shared_protocol import cobs
from shared_protocol.errors import FramingError
from shared_protocol.tests.support import raises


def test_known_encodings():
    # Examples from Cheshire & Baker's COBS paper / Wikipedia.
    cases = [
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    ]
    for raw, enc in cases:
        assert cobs.encode(raw) == enc, raw
        assert cobs.decode(enc) == raw, enc


def test_block_boundaries_254_255():
    for n in (253, 254, 255, 256, 508, 509):
        raw = bytes([(i % 255) + 1 for i in range(n)])
        enc = cobs.encode(raw)
        assert 0 not in enc
        assert len(enc) <= cobs.encoded_max_len(n)
        assert cobs.decode(enc) == raw
    raw = bytes(254) + b"\x01"
    assert cobs.decode(cobs.encode(raw)) == raw


def test_roundtrip_with_zeros_everywhere():
    for n in range(0, 40):
        raw = bytes([(i * 7) % 3 for i in range(n)])
        assert cobs.decode(cobs.encode(raw)) == raw


def test_malformed_is_framing_error():
    raises(FramingError, cobs.decode, b"")
    raises(FramingError, cobs.decode, b"\x05\x11\x22")  # announces more than present
    raises(FramingError, cobs.decode, b"\x03\x11\x00")  # zero inside
    raises(FramingError, cobs.decode, b"\x00")
