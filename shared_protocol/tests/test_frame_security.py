from shared_protocol import (
    AuthError,
    DecodeError,
    ReplayError,
    ReplayGuard,
    SchemaError,
    decode_frame,
    encode_frame,
)
from shared_protocol.cobs import decode as cobs_decode
from shared_protocol.cobs import encode as cobs_encode
from shared_protocol.tests.samples import DEV, KEY, hello, report
from shared_protocol.tests.support import raises


def test_tampering_is_detected():
    wire = bytearray(encode_frame(report(), KEY))
    raw = bytearray(cobs_decode(bytes(wire[:-1])))
    for pos in (0, 3, 8, 12, len(raw) // 2, len(raw) - 1):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        e = raises(Exception, decode_frame, cobs_encode(bytes(bad)) + b"\x00", {DEV: KEY})
        assert isinstance(e, (AuthError, DecodeError, SchemaError)), (pos, e)


def test_wrong_key_unknown_device_and_crc_misuse():
    wire = encode_frame(report(), KEY)
    raises(AuthError, decode_frame, wire, {DEV: b"\x00" * 32})
    e = raises(AuthError, decode_frame, wire, {})
    assert "unknown device" in str(e)
    raises(AuthError, encode_frame, report(), None)  # reports need a key
    raw = bytearray(cobs_decode(encode_frame(hello(), None)[:-1]))
    raw[-1] ^= 0xFF
    e = raises(AuthError, decode_frame, cobs_encode(bytes(raw)) + b"\x00", {})
    assert "CRC" in str(e)


def test_replay_guard_window():
    g = ReplayGuard(window=8)
    for c in (5, 7, 6, 20):
        g.check(DEV, c)
    raises(ReplayError, g.check, DEV, 7)  # 7 is outside the window now (20 - 7 >= 8)
    raises(ReplayError, g.check, DEV, 20)
    g.check(DEV, 19)
    raises(ReplayError, g.check, DEV, 19)
    g.check(DEV + 1, 20)  # per device
    assert g.seen(DEV, 20) and not g.seen(DEV, 21)


def test_replayed_frame_rejected_after_authentication():
    g = ReplayGuard()
    wire = encode_frame(report(9), KEY)
    decode_frame(wire, {DEV: KEY}, g)
    raises(ReplayError, decode_frame, wire, {DEV: KEY}, g)
    # a forged frame does not poison the guard
    raises(AuthError, decode_frame, encode_frame(report(10), b"\x01" * 32), {DEV: KEY}, g)
    decode_frame(encode_frame(report(10), KEY), {DEV: KEY}, g)


def test_forged_keyless_frame_cannot_lock_a_device_out():
    g = ReplayGuard()
    forged = encode_frame(hello(counter=0xFFFFFFFF), None)  # anyone can compute a CRC
    assert decode_frame(forged, {DEV: KEY}, g)["auth"] == "crc"
    assert decode_frame(encode_frame(report(counter=7), KEY), {DEV: KEY}, g)["counter"] == 7


def test_restored_guard_rejects_every_counter_up_to_the_saved_top():
    g = ReplayGuard()
    wire = encode_frame(report(counter=40), KEY)
    decode_frame(wire, {DEV: KEY}, g)
    g2 = ReplayGuard()
    g2.restore(g.state())
    raises(ReplayError, decode_frame, wire, {DEV: KEY}, g2)
    raises(ReplayError, decode_frame, encode_frame(report(counter=39), KEY), {DEV: KEY}, g2)
    assert decode_frame(encode_frame(report(counter=41), KEY), {DEV: KEY}, g2)["counter"] == 41
