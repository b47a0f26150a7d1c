"""Property tests of the wire format (CPython, hypothesis).

- the node's own CBOR codec and cbor2 agree both ways, byte for byte (canonical mode);
- random and mutated bytes never make a decoder raise anything but ProtocolError, with
  either CBOR backend, and never hang;
- random valid reports round-trip through frames.
"""

import math

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.cbor_codec import loads as cbor2_loads
from shared_protocol import ProtocolError, cbor, decode_frame, encode_frame, frame
from shared_protocol.errors import DecodeError, SizeError
from shared_protocol.quantities import all_quantities

KEY = bytes(range(32))
DEV = 77
MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=40)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False)
)
keys = st.integers(min_value=-1000, max_value=1000) | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=30,
)


def _depth(v):
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


@MANY
@given(values)
def test_own_encoder_matches_cbor2_canonical_bytes(v):
    if _depth(v) > cbor.MAX_DEPTH:
        return
    own = cbor.dumps(v)
    assert own == cbor2.dumps(v, canonical=True)
    assert cbor2.loads(own) == v


@MANY
@given(values)
def test_own_decoder_reads_what_cbor2_writes(v):
    if _depth(v) > cbor.MAX_DEPTH:
        return
    data = cbor2.dumps(v, canonical=True)
    assert cbor.loads(data) == v
    assert cbor2_loads(data) == v


@MANY
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_decode_errors(data):
    for loads in (cbor.loads, cbor2_loads):
        try:
            loads(data)
        except (DecodeError, SizeError):
            pass


def _frames():
    report = {
        "type": "report", "device_id": DEV, "counter": 3, "start": 1750000000, "interval_min": 15,
        "samples": [15, 15],
        "stats": {"air_temperature": {"mean": [20.0, 21.5], "min": [19.5, 21.0], "max": [20.5, 22.0]}},
        "health": {"time": 1750001800, "battery_v": 3.9},
    }
    hello = {"type": "hello", "device_id": DEV, "counter": 1, "fw_version": "1", "hw": "v", "provisioned": False}
    return [encode_frame(report, KEY), encode_frame(hello, None)]


def _decode_both(data):
    """decode_frame with cbor2 (the gateway) and with the node's own codec."""
    for loads in (cbor2_loads, cbor.loads):
        saved = frame.loads
        frame.loads = loads
        try:
            decode_frame(data, {DEV: KEY})
        except ProtocolError:
            pass
        finally:
            frame.loads = saved


@MANY
@given(st.binary(max_size=1200))
def test_random_bytes_into_decode_frame(data):
    _decode_both(data)


@MANY
@given(st.sampled_from(_frames()), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
       st.integers(0, 300))
def test_mutated_frames_into_decode_frame(wire, flips, cut):
    data = bytearray(wire)
    for pos, val in flips:
        data[pos % len(data)] = val
    if cut:
        data = data[: max(1, len(data) - cut)]
    _decode_both(bytes(data))


@MANY
@given(st.integers(1, 12), values)
def test_authenticated_garbage_payloads_only_raise_protocol_errors(msg_type, payload):
    """Payloads that pass the HMAC reach the schema layer: any content must be handled."""
    import struct

    from shared_protocol import auth, cobs

    if _depth(payload) > cbor.MAX_DEPTH:
        return
    body = struct.pack(">BBBII", 1, msg_type, 0, DEV, 9) + cbor2.dumps(payload, canonical=True)
    raw = body + auth.tag(KEY, body)
    if len(raw) > frame.MAX_FRAME:
        return
    _decode_both(cobs.encode(raw) + b"\x00")


QUANTS = [q for q in all_quantities()]


@st.composite
def reports(draw):
    n = draw(st.integers(1, 8))
    samples = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    stats = {}
    for q in draw(st.lists(st.sampled_from(QUANTS), unique=True, max_size=8)):
        _, name, _, dec, lo, hi = q
        step = 10.0 ** (-dec)
        means, mins, maxs, counts = [], [], [], []
        for _ in range(n):
            if draw(st.booleans()) and draw(st.booleans()):
                means.append(None), mins.append(None), maxs.append(None), counts.append(0)
                continue
            a, b, c = sorted(draw(st.integers(int(math.ceil(lo / step)), int(hi / step))) for _ in range(3))
            r = [a * step if dec >= 0 else float(a * 10 ** (-dec)) for a in (a, b, c)]
            mins.append(r[0]), means.append(r[1]), maxs.append(r[2]), counts.append(draw(st.integers(0, 60)))
        stats[name] = {"mean": means, "min": mins, "max": maxs, "count": counts}
    return {"type": "report", "device_id": DEV, "counter": draw(st.integers(0, 2**32 - 1)),
            "start": draw(st.integers(0, 2**32 - 1)), "interval_min": 15, "samples": samples, "stats": stats}


@settings(max_examples=300, deadline=None)
@given(reports())
def test_reports_roundtrip(msg):
    try:
        wire = encode_frame(msg, KEY)
    except SizeError:
        return
    got = decode_frame(wire, {DEV: KEY})
    for name, s in msg["stats"].items():
        if all(m is None for m in s["mean"]):
            assert name not in got["stats"]  # no data at all: left out
            continue
        g = got["stats"][name]
        for col in ("mean", "min", "max"):
            for a, b in zip(s[col], g[col], strict=True):
                assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9, abs=1e-9)
        assert [c if m is not None else 0 for c, m in zip(s["count"], s["mean"], strict=True)] == g["count"]


def test_the_gateway_plugs_cbor2_into_frames():
    from gateway.cbor_codec import dumps as cbor2_dumps
    from gateway.cbor_codec import install

    saved = frame.dumps, frame.loads
    try:
        install()
        assert frame.loads is cbor2_loads and frame.dumps is cbor2_dumps
        wire = encode_frame(_frames_msgs_report(), KEY)
        assert decode_frame(wire, {DEV: KEY})["type"] == "report"
    finally:
        frame.use_codec(*saved)
    assert (frame.dumps, frame.loads) == saved


def _frames_msgs_report():
    return {"type": "report", "device_id": DEV, "counter": 3, "start": 1750000000, "interval_min": 15,
            "samples": [15], "stats": {"ndvi": {"mean": [0.7]}}}
