"""The golden frames in shared_protocol/vectors/frames.jsonl, on both runtimes."""

import shared_protocol.stats  # noqa: F401  (load all code before the big vectors: small heaps fragment)
import shared_protocol.stats_decode  # noqa: F401
from shared_protocol import ProtocolError, decode_frame, encode_frame
from shared_protocol.tests.support import close, unhex, vectors


def _keyring():
    for v in vectors("frames.jsonl"):
        if "keyring" in v:
            kr = {}
            for dev in v["keyring"]:
                kr[int(dev)] = bytes.fromhex(v["keyring"][dev])
            return kr
    raise AssertionError("no keyring line in frames.jsonl")


def test_valid_frames_decode_to_their_messages():
    kr = _keyring()
    n = 0
    for v in vectors("frames.jsonl"):
        if "message" not in v:
            continue
        got = decode_frame(bytes.fromhex(v["hex"]), kr)
        assert close(got, v["message"]), v["name"]
        n += 1
        got = v = None  # release before the next vector is read (small heap)
    assert n >= 12


def test_messages_encode_to_the_exact_golden_bytes():
    kr = _keyring()
    for v in vectors("frames.jsonl"):
        if "message" not in v:
            continue
        msg = unhex(v["message"])
        key = None if msg.pop("auth") == "crc" else kr[msg["device_id"]]
        assert encode_frame(msg, key).hex() == v["hex"], v["name"]
        msg = v = None


def test_rejected_frames_fail_with_the_named_kind():
    kr = _keyring()
    n = 0
    for v in vectors("frames.jsonl"):
        if "error" not in v:
            continue
        try:
            decode_frame(bytes.fromhex(v["hex"]), kr)
        except ProtocolError as e:
            assert e.kind == v["error"], (v["name"], e.kind, str(e))
        else:
            raise AssertionError("%s decoded but must be rejected (%s)" % (v["name"], v["why"]))
        n += 1
    assert n >= 20
