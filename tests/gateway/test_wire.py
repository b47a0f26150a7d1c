"""gateway.wire is held to shared_protocol.decode_frame: the same dict or the same error class.

Golden vectors, a few hundred generated reports (null intervals, counts that differ from the
samples, health and daily riding along) and mutated frames (bit flips, truncation, wrong key,
bad COBS, re-signed payloads with forbidden values) go through both decoders; the replay guard
must end in the same state, and decode_fast + stats_of must give decode_frame's statistics.
"""

import json
import os
import struct

import cbor2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway import wire
from shared_protocol import ProtocolError, ReplayGuard, auth, cobs, decode_frame, encode_frame
from shared_protocol.errors import AuthError, ReplayError, SchemaError, SizeError
from shared_protocol.quantities import all_quantities

VECTORS = os.path.join(os.path.dirname(__file__), "..", "..", "shared_protocol", "vectors", "frames.jsonl")
KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
DEV = 4242
KEYRING = {DEV: KEY}
START = 1780272000  # 2026-06-01 00:00 UTC
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# ---- helpers ----
def outcome(fn, *args):
    """("ok", result) or ("raised", exception class): what a decoder did with a frame."""
    try:
        return ("ok", fn(*args))
    except ProtocolError as e:
        return ("raised", type(e))


def fast_then_stats(data, keyring, guard=None):
    """decode_fast + stats_of, shaped like decode_frame's result."""
    msg = wire.decode_fast(data, keyring, guard)
    if "stats_raw" in msg:
        msg = dict(msg)
        msg["stats"] = wire.stats_of(msg)
        del msg["stats_raw"]
    return msg


def guard_view(guard, dev=DEV, top=200):
    """Everything observable about a ReplayGuard for one device."""
    return guard.state(), [guard.seen(dev, c) for c in range(0, top)]


def assert_same(data, keyring=KEYRING):
    """decode, decode_fast+stats_of and decode_frame agree (result or error class and guard state)."""
    g_ref, g_fast, g_bulk = ReplayGuard(), ReplayGuard(), ReplayGuard()
    ref = outcome(decode_frame, data, keyring, g_ref)
    got = outcome(wire.decode, data, keyring, g_fast)
    bulk = outcome(fast_then_stats, data, keyring, g_bulk)
    assert got == ref, "wire.decode %r, decode_frame %r" % (got, ref)
    assert bulk == ref, "decode_fast+stats_of %r, decode_frame %r" % (bulk, ref)
    assert guard_view(g_fast) == guard_view(g_ref)
    assert guard_view(g_bulk) == guard_view(g_ref)
    return ref


def sign(payload_bytes, counter=7, dev=DEV, key=KEY, tid=2, flags=0, version=1):
    """A frame around an arbitrary CBOR payload, authenticated with ``key``."""
    body = struct.pack(">BBBII", version, tid, flags, dev, counter) + payload_bytes
    return cobs.encode(body + auth.tag(key, body), True)


def payload_of(data):
    """The CBOR payload of a valid HMAC frame, decoded (integer keys, wire rows)."""
    raw = cobs.decode(data[:-1])
    return cbor2.loads(raw[11:-8])


def report(counter=7, n=4, **over):
    msg = {
        "type": "report",
        "device_id": DEV,
        "counter": counter,
        "ack_req": True,
        "start": START,
        "interval_min": 15,
        "samples": [15] * n,
        "stats": {
            "air_temperature": {
                "mean": [20.1, 20.5, None, 21.0][:n],
                "min": [19.9, 20.3, None, 20.9][:n],
                "max": [20.3, 20.8, None, 21.2][:n],
                "count": [15, 15, 0, 14][:n],
            },
            "ndvi": {"mean": [0.712, 0.715, 0.716, 0.713][:n], "min": [0.7] * n, "max": [0.72] * n},
            "relative_humidity": {"mean": [55.5, 56.0, 56.5, 57.0][:n]},
            "air_pressure": {"mean": [101320.0, 101330.0, 101310.0, 101300.0][:n], "count": [15, 14, 15, 15][:n]},
        },
    }
    msg.update(over)
    return msg


# ---- golden vectors ----
def golden():
    with open(VECTORS) as f:
        lines = [json.loads(line) for line in f if line[:1] == "{"]
    keyring = {int(d): bytes.fromhex(k) for d, k in lines[0]["keyring"].items()}
    return keyring, [v for v in lines if "hex" in v]


def test_golden_vectors_decode_alike():
    keyring, vecs = golden()
    kinds = {"ok": 0, "raised": 0}
    for v in vecs:
        ref = assert_same(bytes.fromhex(v["hex"]), keyring)
        kinds[ref[0]] += 1
        if "error" in v:
            assert ref[0] == "raised", v["name"]
    assert kinds["ok"] >= 12 and kinds["raised"] >= 20
    reports = [v for v in vecs if v.get("message", {}).get("type") == "report"]
    assert reports, "the golden file holds no report: the fast path is not exercised"
    for v in reports:  # the fast path really took them (not only the fallback)
        msg = wire.decode_fast(bytes.fromhex(v["hex"]), keyring)
        assert "stats_raw" in msg, v["name"]


# ---- generated valid reports ----
QUANTITIES = all_quantities()


def _raw_bounds(dec, lo, hi):
    if dec >= 0:
        return int(round(lo * 10**dec)), int(round(hi * 10**dec))
    return int(round(lo / 10 ** (-dec))), int(round(hi / 10 ** (-dec)))


def _value(raw, dec):
    return raw / 10**dec if dec >= 0 else float(raw * 10 ** (-dec))


def quantity_stats(rnd, q, samples):
    """Statistics of one quantity: null intervals, ranged or not, counts that may differ from samples."""
    _, name, _, dec, lo, hi = q
    rlo, rhi = _raw_bounds(dec, lo, hi)
    ranged = rnd.random() < 0.5
    with_counts = rnd.random() < 0.5
    means, mins, maxs, counts = [], [], [], []
    for i in range(len(samples)):
        if rnd.random() < 0.2:  # an interval without data
            means.append(None)
            mins.append(None)
            maxs.append(None)
            counts.append(0)
            continue
        m = rnd.choice([rlo, rhi, rnd.randint(rlo, rhi)])
        a, b = rnd.randint(rlo, m), rnd.randint(m, rhi)
        means.append(_value(m, dec))
        mins.append(_value(a, dec))
        maxs.append(_value(b, dec))
        counts.append(rnd.choice([samples[i], samples[i], max(0, samples[i] - 1), 0, 65535]))
    s = {"mean": means}
    if ranged:
        s["min"], s["max"] = mins, maxs
    if with_counts:
        s["count"] = counts
    return name, s


HEALTHS = (
    None,
    {"time": START + 3600, "battery_v": 3.912, "power_mode": "full", "faults": ["gnss"]},
    {"battery_soc": 81.0, "link": {"tx_frames": 24, "rssi_dbm": -71}, "clock_offset_ms": -120, "faults": []},
)
DAILIES = (None, {"date": 20605, "gdd": 12.34, "ndvi_midday": 0.71, "rh_min": 41.5})


@st.composite
def reports(draw):
    """A valid report frame (the values come from a seeded Random: cheap to draw, reproducible)."""
    rnd = draw(st.randoms(use_true_random=False))
    n = rnd.choice([1, 2, 4, 4, 4, 8, 32])
    samples = [rnd.choice([15, 15, 15, 14, 1, 0, 65535]) for _ in range(n)]
    qs = rnd.sample(QUANTITIES, rnd.randint(0, 8 if n <= 4 else 3))
    msg = {
        "type": "report",
        "device_id": DEV,
        "counter": rnd.randint(1, 0xFFFFFFFF),
        "start": rnd.choice([0, START, 0xFFFFFFFF, rnd.randint(0, 0xFFFFFFFF)]),
        "interval_min": rnd.choice([1, 5, 15, 15, 60, 1440]),
        "samples": samples,
        "stats": dict(quantity_stats(rnd, q, samples) for q in qs),
    }
    if rnd.random() < 0.5:
        msg["ack_req"] = True
    health, daily = rnd.choice(HEALTHS), rnd.choice(DAILIES)
    if health:
        msg["health"] = health
    if daily:
        msg["daily"] = daily
    try:
        return encode_frame(msg, KEY)
    except SizeError:
        assume(False)


@SETTINGS
@given(reports())
def test_generated_reports_decode_alike(data):
    ref = assert_same(data)
    assert ref[0] == "ok"  # valid by construction: a test that compares two errors proves little


def test_generation_covers_the_interesting_shapes():
    """The generator yields null intervals, count columns, unranged rows and health/daily (else the
    property test above would hold the fast path to decode_frame on easy cases only)."""
    seen = set()

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(reports())
    def collect(data):
        p = payload_of(data)
        n = len(p[2])
        for row in p[3].values():
            k = len(row) // n
            seen.add("k%d" % k)
            if None in row:
                seen.add("null")
        if 4 in p:
            seen.add("health")
        if 5 in p:
            seen.add("daily")

    collect()
    assert {"k1", "k2", "k3", "k4", "null", "health", "daily"} <= seen


# ---- mutated frames ----
def test_bit_flips_truncation_wrong_key_and_bad_cobs():
    base = encode_frame(report(), KEY)
    assert assert_same(base)[0] == "ok"
    bodies = []
    for i in range(len(base) - 1):
        for bit in (0, 3, 7):
            m = bytearray(base)
            m[i] ^= 1 << bit
            bodies.append(bytes(m))
    bodies += [base[:i] for i in range(0, len(base), 3)]  # truncated (with and without delimiter)
    bodies += [base[:-1] + b"\x00" * 2, b"\x00" + base, base[:10] + b"\x00" + base[10:]]  # stray zeros
    bodies += [bytes([0xFF]) + base[1:], bytes([len(base) + 5]) + base[1:]]  # COBS code past the end
    bodies.append(encode_frame(report(), OTHER_KEY))  # wrong key
    bodies.append(encode_frame(report(device_id=DEV + 1), KEY))  # device not in the keyring
    kinds = set()
    for b in bodies:
        ref = assert_same(b)
        kinds.add(ref[1] if ref[0] == "raised" else "ok")
    assert AuthError in kinds and len(kinds) >= 3


REPORT_PAYLOAD = {0: START, 1: 15, 2: [15, 15], 3: {8: [201, 4, 1, 2, 3, 1], 4: [712, 3]}}

# (name, payload) re-signed with the right key: every one breaks a rule of the wire format
FORBIDDEN = [
    ("mean_above_range", {**REPORT_PAYLOAD, 3: {8: [702, 0, 0, 0, 0, 0]}}),
    ("mean_below_range", {**REPORT_PAYLOAD, 3: {8: [-602, 0, 0, 0, 0, 0]}}),
    ("delta_out_of_range", {**REPORT_PAYLOAD, 3: {8: [201, 600, 1, 2, 3, 1]}}),
    ("max_above_range", {**REPORT_PAYLOAD, 3: {8: [690, 0, 0, 0, 50, 0]}}),
    ("negative_offset", {**REPORT_PAYLOAD, 3: {8: [201, 4, -1, 2, 3, 1]}}),
    ("float_mean", {**REPORT_PAYLOAD, 3: {8: [201.0, 4, 1, 2, 3, 1]}}),
    ("float_offset", {**REPORT_PAYLOAD, 3: {8: [201, 4, 1.5, 2, 3, 1]}}),
    ("bool_mean", {**REPORT_PAYLOAD, 3: {8: [201, True, 1, 2, 3, 1]}}),
    ("float_start", {**REPORT_PAYLOAD, 0: float(START)}),
    ("float_interval", {**REPORT_PAYLOAD, 1: 15.0}),
    ("float_sample", {**REPORT_PAYLOAD, 2: [15, 15.0]}),
    ("interval_too_long", {**REPORT_PAYLOAD, 1: 1441}),
    ("negative_start", {**REPORT_PAYLOAD, 0: -1}),
    ("sample_too_big", {**REPORT_PAYLOAD, 2: [15, 65536]}),
    ("count_too_big", {**REPORT_PAYLOAD, 3: {16: [201, 4, 70000, 15]}}),
    ("count_negative", {**REPORT_PAYLOAD, 3: {16: [201, 4, -1, 15]}}),
    ("row_length", {**REPORT_PAYLOAD, 3: {8: [201, 4, 1, 2, 3]}}),
    ("five_columns", {**REPORT_PAYLOAD, 3: {8: [201, 4, 1, 2, 3, 1, 0, 0, 0, 0]}}),
    ("unknown_quantity", {**REPORT_PAYLOAD, 3: {99: [201, 4]}}),
    ("text_quantity_key", {**REPORT_PAYLOAD, 3: {"8": [201, 4]}}),
    ("min_without_mean", {**REPORT_PAYLOAD, 3: {8: [201, None, 1, 2, 3, 1]}}),
    ("stats_not_map", {**REPORT_PAYLOAD, 3: [[201, 4]]}),
    ("samples_empty", {**REPORT_PAYLOAD, 2: [], 3: {8: [201]}}),
    ("missing_stats", {0: START, 1: 15, 2: [15, 15]}),
    ("text_top_key", {**REPORT_PAYLOAD, "x": 1}),
    ("health_bad_field", {**REPORT_PAYLOAD, 4: {1: 3.9}}),
    ("health_not_map", {**REPORT_PAYLOAD, 4: [1]}),
    ("daily_missing_date", {**REPORT_PAYLOAD, 5: {5: 1234}}),
    ("bool_top_key", {0: START, True: 15, 2: [15, 15], 3: REPORT_PAYLOAD[3]}),
    ("float_top_key", {0: START, 1.0: 15, 2: [15, 15], 3: REPORT_PAYLOAD[3]}),
    ("false_top_key", {False: START, 1: 15, 2: [15, 15], 3: REPORT_PAYLOAD[3]}),
]


@pytest.mark.parametrize("name,payload", FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_forbidden_values_resigned_fail_alike(name, payload):
    data = sign(cbor2.dumps(payload))
    ref = assert_same(data)
    assert ref[0] == "raised", "decode_frame accepted %s" % name


def test_resigned_valid_payload_with_extra_keys_decodes_alike():
    """Unknown integer keys are kept under "extra" by decode_frame: the fast path must give the same."""
    for payload in (
        {**REPORT_PAYLOAD, 9: "x"},
        {**REPORT_PAYLOAD, 4: {0: START, 20: [1, 2]}},
        {**REPORT_PAYLOAD, 3: {8: [201, None, 1, None, 3, None]}},  # a null interval, ranged
        {**REPORT_PAYLOAD, 3: {16: [201, None, 15, 0]}},  # a null interval with a count column
    ):
        ref = assert_same(sign(cbor2.dumps(payload)))
        assert ref[0] == "ok"


def test_null_interval_count_is_zero_whatever_the_wire_says():
    """stats_from_wire ignores the count of an interval without a mean (it is 0): so must the fast path."""
    for count in (5, None, -1, 70000, 2.5):
        data = sign(cbor2.dumps({**REPORT_PAYLOAD, 3: {16: [201, None, 15, count]}}))
        ref = assert_same(data)
        assert ref[0] == "ok" and ref[1]["stats"]["dew_point"]["count"] == [15, 0], count


def test_cbor_level_faults_fail_alike():
    good = cbor2.dumps(REPORT_PAYLOAD)
    dup = b"\xa5" + good[1:] + cbor2.dumps(1) + cbor2.dumps(15)  # five entries, key 1 twice
    indefinite = good.replace(b"\x82\x0f\x0f", b"\x9f\x0f\x0f\xff")  # samples as an indefinite array
    assert indefinite != good
    tagged = cbor2.dumps({**REPORT_PAYLOAD, 0: cbor2.CBORTag(1, START)})
    for payload in (dup, indefinite, tagged, good + b"\x00", good[:-1], b"", b"\xf7", cbor2.dumps([1, 2])):
        assert assert_same(sign(payload))[0] == "raised", payload.hex()
    for flags, version, tid in ((1, 1, 2), (4, 1, 2), (0, 2, 2), (0, 1, 99)):  # CRC flag, unknown flag, version, type
        assert assert_same(sign(good, flags=flags, version=version, tid=tid))[0] == "raised"


@st.composite
def mutated(draw):
    """A valid report frame, then its payload mutated at one place and re-signed with the right key."""
    msg = report(counter=draw(st.integers(1, 100)), n=draw(st.integers(1, 4)))
    p = payload_of(encode_frame(msg, KEY))
    junk = st.one_of(
        st.integers(-(2**64), 2**64 - 1),
        st.integers(-3000, 3000),
        st.floats(allow_nan=False, allow_infinity=False),
        st.none(),
        st.booleans(),
        st.text(max_size=3),
        st.lists(st.integers(0, 20), max_size=3),
    )
    where = draw(st.sampled_from(["row", "null", "top", "samples", "extra_top", "extra_stats", "health"]))
    if where == "null":  # an interval loses its mean (and min/max); a count column keeps its count
        row = p[3][draw(st.sampled_from(sorted(p[3])))]
        n = len(p[2])
        i = draw(st.integers(0, n - 1))
        for c in (0, 1, 2) if len(row) // n >= 3 else (0,):
            row[c * n + i] = None
    elif where == "row":
        qid = draw(st.sampled_from(sorted(p[3])))
        row = p[3][qid]
        row[draw(st.integers(0, len(row) - 1))] = draw(junk)
    elif where == "top":
        p[draw(st.sampled_from([0, 1, 2, 3]))] = draw(junk)
    elif where == "samples":
        p[2][draw(st.integers(0, len(p[2]) - 1))] = draw(junk)
    elif where == "extra_top":
        p[draw(st.integers(4, 12))] = draw(junk)
    elif where == "extra_stats":
        p[3][draw(st.integers(0, 30))] = draw(junk)
    else:
        p[4] = {draw(st.integers(0, 16)): draw(junk)}
    return sign(cbor2.dumps(p), counter=msg["counter"])


@SETTINGS
@given(mutated())
def test_resigned_mutations_decode_alike(data):
    assert_same(data)


# ---- replay guard ----
def test_replay_guard_moves_alike_and_refuses_a_replay():
    frames = [encode_frame(report(counter=c), KEY) for c in (5, 9, 7, 7, 9, 300, 8, 280)]
    bad = sign(cbor2.dumps({**REPORT_PAYLOAD, 3: {8: [900, 0, 0, 0, 0, 0]}}), counter=400)
    frames.append(bad)  # authentic with a forbidden value: decode_frame moves the window first
    frames.append(encode_frame(report(counter=400), KEY))  # so its counter is spent
    g_ref, g_fast, g_bulk = ReplayGuard(), ReplayGuard(), ReplayGuard()
    results = []
    for f in frames:
        ref = outcome(decode_frame, f, KEYRING, g_ref)
        assert outcome(wire.decode, f, KEYRING, g_fast) == ref
        assert outcome(fast_then_stats, f, KEYRING, g_bulk) == ref
        assert guard_view(g_fast, top=500) == guard_view(g_ref, top=500)
        assert guard_view(g_bulk, top=500) == guard_view(g_ref, top=500)
        results.append(ref[0] if ref[0] == "ok" else ref[1])
    assert results == ["ok", "ok", "ok", ReplayError, ReplayError, "ok", ReplayError, "ok", SchemaError, ReplayError]


def test_forged_frame_does_not_move_the_window():
    g = ReplayGuard()
    with pytest.raises(AuthError) as e:
        wire.decode(encode_frame(report(counter=50), OTHER_KEY), KEYRING, g)
    assert type(e.value) is AuthError
    assert g.state() == {}
    assert wire.decode(encode_frame(report(counter=50), KEY), KEYRING, g)["counter"] == 50


# ---- decode_fast + stats_of ----
def test_decode_fast_defers_the_statistics():
    data = encode_frame(report(), KEY)
    ref = decode_frame(data, KEYRING)
    msg = wire.decode_fast(data, KEYRING)
    assert "stats" not in msg and set(msg["stats_raw"]) == {4, 8, 9, 10}
    assert {k: v for k, v in msg.items() if k != "stats_raw"} == {k: v for k, v in ref.items() if k != "stats"}
    assert wire.stats_of(msg) == ref["stats"]
    assert ref["stats"]["air_temperature"]["count"] == [15, 15, 0, 14]
    assert ref["stats"]["air_temperature"]["mean"][2] is None
    assert ref["stats"]["air_pressure"]["mean"] == [101320.0, 101330.0, 101310.0, 101300.0]


def test_stats_of_raises_the_schema_error_of_decode_frame():
    data = sign(cbor2.dumps({**REPORT_PAYLOAD, 3: {8: [201, 900, 1, 2, 3, 1]}}))
    with pytest.raises(SchemaError) as ref:
        decode_frame(data, KEYRING)
    msg = wire.decode_fast(data, KEYRING)  # the shape is fine: the value is checked by stats_of
    with pytest.raises(SchemaError) as got:
        wire.stats_of(msg)
    assert str(got.value) == str(ref.value)


def test_non_report_frames_are_decode_frames():
    hello = {"type": "hello", "device_id": DEV, "counter": 3, "fw_version": "1.0", "hw": "v", "provisioned": True}
    for data in (encode_frame(hello, KEY), encode_frame(dict(hello, provisioned=False), None)):
        assert assert_same(data)[0] == "ok"
        assert wire.decode_fast(data, KEYRING) == decode_frame(data, KEYRING)
