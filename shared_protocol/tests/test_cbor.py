from shared_protocol import cbor
from shared_protocol.errors import DecodeError, SizeError
from shared_protocol.tests.support import raises

# RFC 8949 Appendix A examples (those inside the supported subset).
RFC_EXAMPLES = [
    (0, "00"),
    (1, "01"),
    (10, "0a"),
    (23, "17"),
    (24, "1818"),
    (25, "1819"),
    (100, "1864"),
    (1000, "1903e8"),
    (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"),
    (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"),
    (-10, "29"),
    (-100, "3863"),
    (-1000, "3903e7"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"),
    ("a", "6161"),
    ("IETF", "6449455446"),
    ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ([], "80"),
    ([1, 2, 3], "83010203"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    ({}, "a0"),
    ({1: 2, 3: 4}, "a201020304"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
]

FLOAT_DECODE = [
    ("f90000", 0.0),
    ("f93c00", 1.0),
    ("f93e00", 1.5),
    ("f97bff", 65504.0),
    ("f90001", 5.960464477539063e-08),
    ("f9c400", -4.0),
    ("fa47c35000", 100000.0),
    ("fb3ff199999999999a", 1.1),
    ("fbc010666666666666", -4.1),
]


def test_rfc8949_examples_encode_and_decode():
    for value, hx in RFC_EXAMPLES:
        assert cbor.dumps(value).hex() == hx, (value, hx)
        assert cbor.loads(bytes.fromhex(hx)) == value, hx
    long_list = list(range(1, 26))
    assert cbor.dumps(long_list).hex() == "98190102030405060708090a0b0c0d0e0f101112131415161718181819"


def test_floats_decode_all_widths():
    for hx, value in FLOAT_DECODE:
        assert cbor.loads(bytes.fromhex(hx)) == value, hx


def test_floats_use_shortest_exact_width():
    assert cbor.dumps(1.5).hex() == "f93e00"
    assert cbor.dumps(65504.0).hex() == "f97bff"
    assert cbor.dumps(5.960464477539063e-08).hex() == "f90001"
    assert cbor.dumps(100000.0).hex() == "fa47c35000"
    assert cbor.dumps(1.1).hex() == "fb3ff199999999999a"
    assert cbor.dumps(float("inf")).hex() == "f97c00"
    for x in (0.0, 1.5, -4.1, 3.14159, 1e300, -65504.0, 0.333251953125):
        assert cbor.loads(cbor.dumps(x)) == x


def test_map_keys_sorted_length_first_like_cbor2_canonical():
    assert cbor.dumps({10: 1, 1: 2, -1: 3, "a": 4, 100: 5}).hex() == "a501020a012003186405616104"


def test_unsupported_items_are_named():
    e = raises(DecodeError, cbor.loads, bytes.fromhex("9f0102ff"))  # indefinite array
    assert "indefinite" in str(e)
    e = raises(DecodeError, cbor.loads, bytes.fromhex("c11a514b67b0"))  # tag 1
    assert "tag" in str(e)
    e = raises(DecodeError, cbor.loads, bytes.fromhex("f7"))  # undefined
    assert "simple value 23" in str(e)
    raises(DecodeError, cbor.loads, bytes.fromhex("1c"))  # reserved additional info


def test_truncated_and_trailing():
    raises(DecodeError, cbor.loads, b"")
    raises(DecodeError, cbor.loads, bytes.fromhex("1903"))
    raises(DecodeError, cbor.loads, bytes.fromhex("6449455"[:6]))
    e = raises(DecodeError, cbor.loads, bytes.fromhex("0000"))
    assert "trailing" in str(e)


def test_huge_declared_lengths_fail_before_allocating():
    # array of 2**32-1 items, map of 2**63 pairs, 4 GB byte string: all in a few bytes
    for hx in ("9affffffff", "bb7fffffffffffffff", "5affffffff00", "7b0000000100000000"):
        e = raises(DecodeError, cbor.loads, bytes.fromhex(hx))
        assert "remain" in str(e), hx


def test_deep_nesting_is_size_error():
    deep = b"\x81" * 200 + b"\x00"
    raises(SizeError, cbor.loads, deep)
    ok = b"\x81" * 8 + b"\x00"  # MAX_DEPTH (a private const on MicroPython)
    assert cbor.loads(ok) is not None


def test_bad_utf8_and_bad_keys():
    raises(DecodeError, cbor.loads, bytes.fromhex("62c328"))
    raises(DecodeError, cbor.loads, bytes.fromhex("a18001"))  # array as map key
    raises(DecodeError, cbor.loads, bytes.fromhex("a201020103"))  # duplicate key


def test_encode_rejects_what_it_cannot_write():
    raises(DecodeError, cbor.dumps, 2**64)
    raises(DecodeError, cbor.dumps, object())
