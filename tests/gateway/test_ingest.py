"""Ingest.process (dedup, bulk decode with gateway.columns, align, one write) against the
one-by-one path: decode_frame, then Aligner.add_series per quantity; and the node clock model.

Reports are real frames (tools.bench.gateway.make_frames and encode_frame), intakes are built
as the node source builds them (Intake with the report's undecoded ``stats_raw``), the store is
a real SQLite file and the rows compared are the ones in the outbox batches.
"""

import functools
import json
import random
from collections import Counter

import cbor2
import pytest

from gateway import wire
from gateway.align import Aligner, rows_of
from gateway.clocks import NodeClocks
from gateway.columns import RawRows
from gateway.ingest import Ingest
from gateway.sources.base import Intake
from gateway.sources.node import source_name
from gateway.store import KIND_HEALTH, KIND_INTERVAL, Store
from gateway.stream import CLOCK_CORRECTED, CLOCK_UNSYNCED, GAP, LATE, SENSOR_FAULT, iso, parse_batch
from shared_protocol import ProtocolError, auth, cobs, decode_frame, encode_frame
from shared_protocol.quantities import INTERVAL_QUANTITIES, RANGED, by_name
from tools.bench.gateway import START, make_frames, node_keyring

G = 900
ROW_FIELDS = ("source", "sensor", "quantity", "unit", "ts", "value", "min", "max", "n", "flags", "rule", "rev")
KEYS = node_keyring(12)


# ---- building reports and intakes ----
def report_frame(dev, counter, start, rnd, n=4, nulls=(), counts=None, quantities=INTERVAL_QUANTITIES, span_min=15):
    """A report like the firmware's: every interval quantity, ranged ones with min/max; ``nulls``:
    (quantity, interval) without data; ``counts``: a count list that differs from the samples."""
    stats = {}
    for name in quantities:
        _, _, _, dec, lo, hi = by_name(name)
        step = 10.0 ** (-dec)
        mid = lo + (hi - lo) * (0.3 + 0.4 * rnd.random())
        means = [round(mid + (hi - lo) * 0.001 * i, max(dec, 0)) for i in range(n)]
        s = {"mean": means}
        if name in RANGED:
            s["min"] = [m - 3 * step for m in means]
            s["max"] = [m + 2 * step for m in means]
        if counts is not None:
            s["count"] = list(counts)
        for q, i in nulls:
            if q == name:
                for c in s:
                    s[c][i] = None if c != "count" else 0
        stats[name] = s
    msg = {
        "type": "report",
        "device_id": dev,
        "counter": counter,
        "ack_req": True,
        "start": start,
        "interval_min": span_min,
        "samples": [15] * n,
        "stats": stats,
    }
    return encode_frame(msg, KEYS[dev])


def resign(data, mutate):
    """The same frame with its CBOR payload changed by ``mutate`` and authenticated again (an authentic
    frame carrying a value the wire format forbids)."""
    raw = cobs.decode(data[:-1])
    payload = cbor2.loads(raw[11:-8])
    mutate(payload)
    body = raw[:11] + cbor2.dumps(payload)
    dev = int.from_bytes(raw[3:7], "big")
    return cobs.encode(body + auth.tag(KEYS[dev], body), True)


def resend(data, counter):
    """The same report again under a new frame counter (the node's ack was lost)."""
    msg = decode_frame(data, KEYS)
    del msg["auth"]
    msg["counter"] = counter
    return encode_frame(msg, KEYS[msg["device_id"]])


def intake_of(data, flags=0, qflags=None, shift_s=0.0):
    """An Intake as gateway.sources.node builds it from a report (stats left undecoded)."""
    m = wire.decode_fast(data, KEYS)
    span = m["interval_min"] * 60
    starts = [m["start"] + i * span for i in range(len(m["samples"]))]
    block = ("node", starts, span, m["stats_raw"], qflags or {}, shift_s, m["samples"])
    return Intake(source_name(m["device_id"]), block, (), (), (m["device_id"], m["counter"], 0.0, data), flags)


# ---- the two paths ----
def reference_rows(items, grid_s=G, rules=None):
    """``items``: (wire, flags, qflags) in arrival order -> rows via decode_frame + add_series."""
    al = Aligner(grid_s, rules)
    for data, flags, qflags in items:
        try:
            m = decode_frame(data, KEYS)
        except ProtocolError:
            continue
        span = m["interval_min"] * 60
        starts = [m["start"] + i * span for i in range(len(m["samples"]))]
        for q, s in m["stats"].items():
            src = source_name(m["device_id"])
            al.add_series(
                src,
                "node",
                q,
                starts,
                span,
                s["mean"],
                s.get("min"),
                s.get("max"),
                s["count"],
                flags | qflags.get(q, 0),
            )
    return Counter(row_key(r) for r in rows_of(al.take()))


def row_key(r):
    return tuple(r[f] for f in ROW_FIELDS)


def outbox_rows(store, after=0):
    """Every reading row in the outbox batches with seq > ``after``, as dicts."""
    rows = []
    for b in store.pending(limit=100000, after=after):
        rows.extend(parse_batch(b.payload)[1])
    return rows


def ingest_rows(store):
    return Counter(row_key(r) for r in outbox_rows(store))


@pytest.fixture
def store(tmp_path):
    st = Store(str(tmp_path / "gw.db"))
    yield st
    st.close()


@functools.lru_cache(maxsize=1)
def mixed_traffic():
    """(wire, flags, qflags) in arrival order: six make_frames nodes (one unsynced, one with a sensor
    fault) and four odd ones: counts always unlike the samples, null intervals, lost reports (gaps),
    starts off the grid. Two days, one report per hour per node."""
    frames, keys = make_frames(6, 2)
    assert all(KEYS[d] == k for d, k in keys.items())
    per_round = {}
    for i, (dev, data) in enumerate(frames):
        per_round.setdefault(i // 6, []).append((dev, data))
    rnd = random.Random(7)
    items = []
    for r in sorted(per_round):
        start = START + r * 4 * G
        for dev, data in per_round[r]:
            flags = CLOCK_UNSYNCED if dev == 1001 else 0
            qflags = {"ndvi": SENSOR_FAULT} if dev == 1002 else {}
            items.append((data, flags, qflags))
        c = r + 1
        items.append((report_frame(1006, c, start, rnd, counts=[15, 14, 15, 13]), 0, {}))
        nulls = [("air_temperature", 1), ("ndvi", 3)] if r % 3 == 0 else []
        items.append((report_frame(1007, c, start, rnd, nulls=nulls), 0, {}))
        if r % 5 != 2:
            items.append((report_frame(1008, c, start, rnd), 0, {}))
        items.append((report_frame(1009, c, start + 60, rnd), 0, {}))
    return items


# ---- bulk path == one-by-one path ----
@pytest.mark.parametrize("grid_s", [900, 3600])
def test_process_gives_the_rows_of_add_series_one_by_one(tmp_path, grid_s):
    items = mixed_traffic()
    rules = {"canopy_temperature": "max"}  # a rule the column fast path cannot take
    st = Store(str(tmp_path / "gw.db"))
    ing = Ingest(st, Aligner(grid_s, rules), "gw-1")
    intakes = [intake_of(d, f, q) for d, f, q in items]
    for i in range(0, len(intakes), 50):
        assert ing.process(intakes[i : i + 50]) is True
    assert [it.bad for it in intakes] == [None] * len(intakes)
    got, expected = ingest_rows(st), reference_rows(items, grid_s, rules)
    assert sum(expected.values()) > 3000
    assert got == expected, "only in ingest: %s\nonly one by one: %s" % (
        list((got - expected).items())[:5],
        list((expected - got).items())[:5],
    )
    flags = Counter(k[9] for k in got)
    assert flags[GAP] and flags[CLOCK_UNSYNCED] and flags[SENSOR_FAULT]  # the mix did reach the rows
    assert ing.rows == sum(got.values()) and ing.duplicates == 0 and ing.bad == 0


def test_bulk_path_is_taken_for_regular_reports():
    """RawRows puts continuing grid-cell series into the aligner's columns (append_columns), not add_series."""
    frames, _ = make_frames(3, 1)
    al = Aligner(G)
    raw = RawRows(al)
    for j, (_, data) in enumerate(frames):
        it = intake_of(data)
        _, starts, span, stats_raw, qflags, _, samples = it.block
        raw.add(j, it.source, 0, starts, span, samples, stats_raw, qflags)
    assert raw.decode_align(al) == set()
    assert al.chunks and not al.cols["ts"]  # everything came as numpy chunks: the column path
    rows = rows_of(al.take())
    assert len(rows) == len(frames) * 4 * len(INTERVAL_QUANTITIES)
    assert Counter(row_key(r) for r in rows) == reference_rows([(d, 0, {}) for _, d in frames])


def test_rows_come_out_once_across_calls(store):
    items = mixed_traffic()[:300]
    ing = Ingest(store, Aligner(G), "gw-1")
    for i in range(0, len(items), 7):
        assert ing.process([intake_of(d, f, q) for d, f, q in items[i : i + 7]])
    keys = Counter((r["source"], r["sensor"], r["quantity"], r["ts"], r["rule"], r["rev"]) for r in outbox_rows(store))
    assert keys and max(keys.values()) == 1
    assert sum(keys.values()) == ing.rows
    batches = store.pending(limit=1000)
    assert [b.seq for b in batches] == list(range(1, len(batches) + 1))
    assert sum(b.count for b in batches) == ing.rows


def test_reports_of_one_series_with_different_shapes_in_one_call(store):
    """A quantity whose counts differ from the samples in one report only (the count column comes and
    goes) is the same series: three reports in a row must give rev 0 rows, no LATE."""
    rnd = random.Random(3)
    dev = 1010
    items = [
        (report_frame(dev, 1, START, rnd), 0, {}),
        (report_frame(dev, 2, START + 4 * G, rnd, counts=[15, 14, 15, 15]), 0, {}),
        (report_frame(dev, 3, START + 8 * G, rnd), 0, {}),
    ]
    ing = Ingest(store, Aligner(G), "gw-1")
    ing.process([intake_of(d) for d, _, _ in items])
    rows = outbox_rows(store)
    assert [(r["quantity"], r["ts"], r["rev"], r["flags"]) for r in rows if r["rev"] or r["flags"]] == []
    assert Counter(row_key(r) for r in rows) == reference_rows(items)


# ---- bad reports ----
def test_one_bad_value_among_400_reports_refuses_that_report_only(store):
    frames, _ = make_frames(10, 2)
    frames = frames[:401]
    k = 203
    bad_dev = frames[k][0]

    def too_hot(p):
        p[3][by_name("air_temperature")[0]][0] += 100000  # first mean 10000 degC above: out of range

    frames[k] = (bad_dev, resign(frames[k][1], too_hot))
    with pytest.raises(ProtocolError):
        decode_frame(frames[k][1], KEYS)
    bad_msg = wire.decode_fast(frames[k][1], KEYS)  # authentic, and its shape is fine
    bad_cells = {iso(bad_msg["start"] + i * G) for i in range(4)}
    ing = Ingest(store, Aligner(G), "gw-1")
    intakes = [intake_of(d) for _, d in frames]
    assert ing.process(intakes) is True
    assert [j for j, it in enumerate(intakes) if it.bad] == [k]
    assert intakes[k].bad == "schema" and ing.bad == 1
    src = source_name(bad_dev)
    db = store.db
    assert (
        db.execute(
            "SELECT count(*) FROM frames WHERE device = ? AND counter = ?", (bad_dev, bad_msg["counter"])
        ).fetchone()[0]
        == 0
    )
    assert (
        db.execute(
            "SELECT count(*) FROM records WHERE source = ? AND start <= ? AND end > ?",
            (src, bad_msg["start"] + 3 * G, bad_msg["start"]),
        ).fetchone()[0]
        == 0
    )
    rows = outbox_rows(store)
    of_bad = [r for r in rows if r["source"] == src and r["ts"] in bad_cells]
    assert all(r["value"] is None and r["flags"] == GAP for r in of_bad)  # at most the gap the next report leaves
    data_rows = [r for r in rows if r["value"] is not None]
    assert len(data_rows) == 400 * 4 * len(INTERVAL_QUANTITIES)
    assert store.counts() == {"frames": 400, "records": 400}
    assert Counter(row_key(r) for r in rows) == reference_rows([(d, 0, {}) for _, d in frames])
    # the refused intervals were not marked as stored: the node's corrected resend goes in
    fixed = report_frame(bad_dev, 10**6, bad_msg["start"], random.Random(1))
    again = [intake_of(fixed)]
    before = store.depth()[0]
    ing.process(again)
    assert again[0].bad is None and store.depth()[0] == before + 1
    new_rows = outbox_rows(store, after=before)
    assert {r["ts"] for r in new_rows if r["value"] is not None} == bad_cells


def test_a_report_whose_deltas_overflow_int64_is_refused(store):
    """decode_frame refuses it (a mean of about -9.2e17 degC); the numpy path must too, not wrap around."""
    data = report_frame(1011, 1, START, random.Random(2), n=2, quantities=("air_temperature",))

    def wrap(p):
        p[3][8] = [200, 2**63 - 1, 0, 300, 0, 0]  # mean 20.0, then +2**63-1 (min offset 300 wraps back too)

    data = resign(data, wrap)
    with pytest.raises(ProtocolError):
        decode_frame(data, KEYS)
    ing = Ingest(store, Aligner(G), "gw-1")
    it = intake_of(data)
    ing.process([it])
    assert it.bad == "schema"
    assert store.counts() == {"frames": 0, "records": 0} and store.depth()[0] == 0


# ---- dedup ----
def test_a_resent_report_stores_nothing_new(store):
    rnd = random.Random(5)
    first = report_frame(1010, 1, START, rnd)
    resent = resend(first, 2)
    assert resent != first and decode_frame(resent, KEYS)["stats"] == decode_frame(first, KEYS)["stats"]
    ing = Ingest(store, Aligner(G), "gw-1")
    ing.process([intake_of(first)])
    records, depth = store.counts()["records"], store.depth()
    it = intake_of(resent)
    ing.process([it])
    assert it.bad is None
    assert ing.duplicates == 4
    assert store.counts()["records"] == records and store.depth() == depth
    ing.process([intake_of(resend(first, 3))] * 2)
    assert ing.duplicates == 12 and store.depth() == depth


def test_a_report_overlapping_a_stored_one_stores_only_the_new_intervals(store):
    rnd = random.Random(6)
    ing = Ingest(store, Aligner(G), "gw-1")
    ing.process([intake_of(report_frame(1010, 1, START, rnd))])
    seq = store.depth()[0]
    ing.process([intake_of(report_frame(1010, 2, START + 2 * G, rnd))])  # overlaps the first by two intervals
    assert ing.duplicates == 2
    rows = outbox_rows(store, after=seq)
    assert {r["ts"] for r in rows} == {iso(START + 4 * G), iso(START + 5 * G)}
    assert {(r["rev"], r["flags"]) for r in rows} == {(0, 0)}
    assert len(rows) == 2 * len(INTERVAL_QUANTITIES)
    assert store.new_starts("node-1010", KIND_INTERVAL, [START + i * G for i in range(7)]) == [START + 6 * G]


def test_a_report_overlapping_one_in_the_same_call(store):
    """Two reports of one node in one call, the second overlapping the first by two intervals (a node
    resending while the first is still queued): the rows of one-by-one, all rev 0."""
    rnd = random.Random(8)
    first = report_frame(1010, 1, START, rnd)
    second = report_frame(1010, 2, START + 2 * G, rnd)
    ing = Ingest(store, Aligner(G), "gw-1")
    ing.process([intake_of(first), intake_of(second)])
    assert ing.duplicates == 2
    rows = outbox_rows(store)
    assert [(r["quantity"], r["ts"], r["rev"], r["flags"]) for r in rows if r["rev"] or r["flags"]] == []
    assert sorted({r["ts"] for r in rows}) == [iso(START + i * G) for i in range(6)]


def test_other_records_are_deduplicated_by_kind_and_start(store):
    ing = Ingest(store, Aligner(G), "gw-1")
    rec = {"key": "node-1/node_health/x", "battery_v": 3.9}
    it = Intake("node-1", None, [("node", "battery_voltage", 3.9, START, None, 0)], [(KIND_HEALTH, START, rec)])
    ing.process([it])
    (b,) = store.pending()
    _, rows, records = parse_batch(b.payload)
    assert records == [rec] and [(r["quantity"], r["value"]) for r in rows] == []  # the reading's cell is open
    ing.process([Intake("node-1", None, (), [(KIND_HEALTH, START, rec)])])
    assert ing.duplicates == 1 and len(store.pending()) == 1
    ing.process([], now=START + 10**6)  # the clock closes the reading's cell
    (_, rows, records) = parse_batch(store.pending()[-1].payload)
    assert [(r["quantity"], r["value"], r["ts"]) for r in rows] == [("battery_voltage", 3.9, iso(START))]


# ---- full store, restart ----
def test_a_full_store_refuses_and_writes_nothing(tmp_path):
    st = Store(str(tmp_path / "gw.db"), max_bytes=200_000)
    al = Aligner(G)
    ing = Ingest(st, al, "gw-1")
    st.write(payload_for=lambda s: bytes(180_000), items=1)  # an outbox nobody drained
    before = (st.counts(), st.depth())
    its = [intake_of(d) for _, d in make_frames(2, 1)[0][:4]]
    assert ing.process(its) is False
    assert (st.counts(), st.depth()) == before
    assert ing.refused_intakes == 4 and all(it.bad is None for it in its)
    assert al.take()["ts"].size == 0 and al.series == {}  # nothing was aligned either
    st.close()


def test_restart_restores_series_and_dedup(tmp_path):
    """Half the traffic, a restart (new Store, new Aligner restored from the store's state), the rest:
    the same rows as one uninterrupted one-by-one run (no false gap, nothing twice)."""
    items = [x for x in mixed_traffic() if x[1] == 0 and not x[2]]
    path = str(tmp_path / "gw.db")
    half = len(items) // 2
    st = Store(path)
    ing = Ingest(st, Aligner(G), "gw-1")
    ing.process([intake_of(d) for d, _, _ in items[:half]])
    st.close()
    st = Store(path)
    al = Aligner(G)
    sources = {source_name(wire.decode_fast(d, KEYS)["device_id"]) for d, _, _ in items}
    for src in sources:
        al.restore(src, st.get_state("align." + src))
    ing = Ingest(st, al, "gw-1")
    ing.process([intake_of(d) for d, _, _ in items[half - 10 : half]])  # the last ten again: acks were lost
    assert ing.duplicates == sum(len(wire.decode_fast(d, KEYS)["samples"]) for d, _, _ in items[half - 10 : half])
    ing.process([intake_of(d) for d, _, _ in items[half:]])
    assert ingest_rows(st) == reference_rows(items)
    st.close()


def test_an_overlapping_resend_after_a_restart_is_deduplicated(tmp_path):
    rnd = random.Random(9)
    path = str(tmp_path / "gw.db")
    st = Store(path)
    Ingest(st, Aligner(G), "gw-1").process([intake_of(report_frame(1010, 1, START, rnd))])
    st.close()
    st = Store(path)
    al = Aligner(G)
    al.restore("node-1010", st.get_state("align.node-1010"))
    ing = Ingest(st, al, "gw-1")
    seq = st.depth()[0]
    ing.process([intake_of(report_frame(1010, 2, START + 2 * G, rnd))])
    assert ing.duplicates == 2
    rows = outbox_rows(st, after=seq)
    assert {r["ts"] for r in rows} == {iso(START + 4 * G), iso(START + 5 * G)}
    assert not [r for r in rows if r["flags"] & LATE]
    st.close()


def test_clock_shift_moves_the_cells_and_flags_them(store):
    rnd = random.Random(4)
    data = report_frame(1010, 1, START + 4 * G, rnd)
    ing = Ingest(store, Aligner(G), "gw-1")
    ing.process([intake_of(data, flags=CLOCK_CORRECTED, shift_s=float(G))])  # the node runs 15 min fast
    rows = outbox_rows(store)
    assert {r["ts"] for r in rows} == {iso(START + i * G) for i in range(3, 7)}
    assert {r["flags"] for r in rows} == {CLOCK_CORRECTED}
    # dedup uses the node's own stamps: the same report again is a duplicate
    ing.process([intake_of(resend(data, 2), flags=CLOCK_CORRECTED, shift_s=float(G))])
    assert ing.duplicates == 4


# ---- node clocks ----
def test_no_correction_before_two_syncs():
    c = NodeClocks()
    assert c.shift(7, START) == 0.0 and not c.synced(7)
    assert c.observe(7, node_ms=(START + 2.5) * 1000, gateway_s=START) == pytest.approx(2.5)
    assert c.synced(7)
    assert c.shift(7, START + 86400) == 0.0


def test_drift_from_two_syncs_and_the_shift_it_gives():
    c = NodeClocks()
    c.observe(7, node_ms=START * 1000, gateway_s=START)
    # a day later the node is 4.32 s ahead: 4.32 / 86400 = 50 ppm
    g2 = START + 86400
    assert c.observe(7, node_ms=(g2 + 4.32) * 1000, gateway_s=g2) == pytest.approx(4.32)
    assert c.describe(7)["drift_ppm"] == pytest.approx(50.0) and c.describe(7)["syncs"] == 2
    assert c.shift(7, g2 + 3600) == pytest.approx(50e-6 * 3600)  # 0.18 s an hour after the sync
    assert c.shift(7, g2 + 86400) == pytest.approx(4.32)
    assert c.shift(7, g2 - 100) == 0.0  # before the last sync the node was stepped: no correction
    assert c.shift(8, g2 + 3600) == 0.0  # another node


def test_a_close_or_wild_sync_keeps_the_drift():
    c = NodeClocks()
    c.observe(7, node_ms=START * 1000, gateway_s=START)
    c.observe(7, node_ms=(START + 3600 - 0.36) * 1000, gateway_s=START + 3600)  # -100 ppm
    assert c.describe(7)["drift_ppm"] == pytest.approx(-100.0)
    c.observe(7, node_ms=(START + 3900 + 5) * 1000, gateway_s=START + 3900)  # 300 s later: too close to tell
    assert c.describe(7)["drift_ppm"] == pytest.approx(-100.0)
    c.observe(7, node_ms=(START + 7600 + 60) * 1000, gateway_s=START + 7600)  # 60 s in an hour: a step, not drift
    assert c.describe(7)["drift_ppm"] == pytest.approx(-100.0)
    assert c.shift(7, START + 7600 + 1000) == pytest.approx(-100e-6 * 1000)


def test_clock_state_round_trip():
    c = NodeClocks()
    c.observe(7, node_ms=START * 1000, gateway_s=START)
    c.observe(7, node_ms=(START + 86400 + 8.64) * 1000, gateway_s=START + 86400)
    c.observe(9, node_ms=START * 1000, gateway_s=START)
    c2 = NodeClocks()
    c2.restore(json.loads(json.dumps(c.state())))  # the store keeps it as JSON
    for dev in (7, 9):
        assert c2.describe(dev) == c.describe(dev)
        assert c2.shift(dev, START + 2 * 86400) == c.shift(dev, START + 2 * 86400)
    assert c2.shift(7, START + 2 * 86400) == pytest.approx(8.64)
    c2.restore(None)  # nothing stored yet
    assert c2.synced(7)
