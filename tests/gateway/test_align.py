"""Aligner: grid cells, rules, summaries and instantaneous readings, gaps, partial cells,
lateness and flush, revisions of late data, claim/append_columns, snapshot/restore; and the
batch document that carries its rows (gateway.stream).

Every expected value below is worked out by hand in the test.
"""

import json

import pytest

from gateway.align import Aligner, rows_of
from gateway.stream import GAP, LATE, PARTIAL, batch_document, iso, parse_batch, to_json

T0 = 1780272000  # 2026-06-01 00:00 UTC, a multiple of every grid below
SRC = "node-7"


def take_rows(al):
    return rows_of(al.take())


def one(rows, **match):
    """The only row whose fields equal ``match``."""
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, "%d rows match %r in %r" % (len(found), match, rows)
    return found[0]


def cells(rows):
    return [(r["ts"], r["value"], r["flags"], r["rev"]) for r in rows]


# ---- summaries ----
def test_a_summary_on_its_own_grid_is_one_row_at_its_cell():
    al = Aligner(900)
    al.add_series(SRC, "node", "air_temperature", [T0 + 900], 900, [20.5], [19.9], [21.2], [15])
    rows = take_rows(al)
    assert rows == [
        {
            "source": SRC,
            "sensor": "node",
            "quantity": "air_temperature",
            "unit": "degC",
            "rule": "mean",
            "flags": 0,
            "rev": 0,
            "ts": iso(T0 + 900),
            "value": 20.5,
            "min": 19.9,
            "max": 21.2,
            "n": 15,
        }
    ]
    assert take_rows(al) == []  # take() clears


def test_four_quarter_hours_on_an_hour_grid_make_one_count_weighted_row():
    al = Aligner(3600)
    starts = [T0, T0 + 900, T0 + 1800, T0 + 2700]
    al.add_series(
        SRC,
        "node",
        "air_temperature",
        starts,
        900,
        [10.0, 20.0, 30.0, 40.0],
        [9.0, 18.0, 29.0, 35.0],
        [11.0, 25.0, 31.0, 41.0],
        [15, 15, 10, 20],
    )
    (row,) = take_rows(al)
    # (10*15 + 20*15 + 30*10 + 40*20) / (15 + 15 + 10 + 20) = (150 + 300 + 300 + 800) / 60 = 1550 / 60
    assert row["value"] == pytest.approx(1550 / 60)
    assert (row["min"], row["max"], row["n"]) == (9.0, 41.0, 60)
    assert row["ts"] == iso(T0) and row["flags"] == 0 and row["rev"] == 0


def test_an_hour_cell_stays_open_until_its_last_quarter_arrives():
    al = Aligner(3600)
    al.add_series(SRC, "node", "ndvi", [T0, T0 + 900, T0 + 1800], 900, [0.6, 0.7, 0.8], None, None, [15, 15, 15])
    assert take_rows(al) == []
    al.add_series(SRC, "node", "ndvi", [T0 + 2700], 900, [0.9], None, None, [5])
    (row,) = take_rows(al)
    # (0.6*15 + 0.7*15 + 0.8*15 + 0.9*5) / 50 = (9 + 10.5 + 12 + 4.5) / 50 = 0.72
    assert row["value"] == pytest.approx(0.72)
    assert (row["min"], row["max"], row["n"]) == (0.6, 0.9, 50)  # unranged: the means bound the cell


@pytest.mark.parametrize(
    "rule,expected",
    [
        ("mean", (1.0 * 2 + 3.0 * 1 + 2.0 * 1) / 4),  # weighted by n: 7 / 4
        ("sum", 1.0 * 2 + 3.0 * 1 + 2.0 * 1),  # mean x n summed: 7
        ("last", 2.0),  # the latest span's mean (third start), whatever the arrival order
        ("min", 0.5),  # min of the mins
        ("max", 4.0),  # max of the maxs
    ],
)
def test_rules_on_summaries(rule, expected):
    al = Aligner(3600, rules={"precipitation": rule})
    # three summaries in one hour cell, arriving out of time order; spans cover 3 x 1200 s = the cell
    al.add_series("gauge-1", "tip", "precipitation", [T0 + 2400], 1200, [2.0], [1.0], [2.5], [1])
    al.add_series("gauge-1", "tip", "precipitation", [T0], 1200, [1.0], [0.5], [1.5], [2])
    al.add_series("gauge-1", "tip", "precipitation", [T0 + 1200], 1200, [3.0], [2.0], [4.0], [1])
    (row,) = take_rows(al)
    assert row["rule"] == rule and row["unit"] == "mm"
    assert row["value"] == pytest.approx(expected)
    assert (row["min"], row["max"], row["n"], row["flags"]) == (0.5, 4.0, 4, 0)


@pytest.mark.parametrize("rule,expected", [("mean", 2.0), ("sum", 6.0), ("last", 3.0), ("min", 1.0), ("max", 3.0)])
def test_rules_on_instantaneous_readings(rule, expected):
    al = Aligner(900, rules={"soil_temperature": rule})
    for value, dt in ((1.0, 100), (3.0, 700), (2.0, 300)):  # the reading at +700 s is the last one
        al.add("sdi12-1", "probe-1", "soil_temperature", value, T0 + dt)
    al.flush(now=T0 + 900 + al.lateness_s)
    (row,) = take_rows(al)
    assert row["value"] == pytest.approx(expected)
    assert (row["min"], row["max"], row["n"], row["rule"]) == (1.0, 3.0, 3, rule)


def test_default_rules_and_a_bad_rule():
    al = Aligner(900)
    assert al.rules["precipitation"] == "sum" and al.rules["battery_soc"] == "last"
    assert al.series_for(SRC, "node", "air_temperature").rule == "mean"
    with pytest.raises(ValueError, match="median"):
        Aligner(900, rules={"ndvi": "median"})
    with pytest.raises(ValueError):
        Aligner(7 * 60)  # does not divide a day


# ---- instantaneous readings, lateness, flush ----
def test_readings_fall_in_floor_cells():
    al = Aligner(900, lateness_s=0)
    for ts, v in ((T0 + 0.0, 1.0), (T0 + 899.999, 2.0), (T0 + 900, 10.0), (T0 + 1799, 20.0), (T0 + 1800, 99.0)):
        al.add("sdi12-1", "probe-1", "soil_temperature", v, ts)
    al.flush()  # lateness 0: cells the source moved past close; the cell of T0 + 1800 stays open
    assert cells(take_rows(al)) == [(iso(T0), 1.5, 0, 0), (iso(T0 + 900), 15.0, 0, 0)]


def test_readings_close_only_when_the_source_moved_lateness_past_them():
    al = Aligner(900, lateness_s=3600)
    al.add("sdi12-1", "probe-1", "soil_temperature", 10.0, T0 + 100)
    al.add("sdi12-1", "probe-1", "soil_temperature", 12.0, T0 + 500)
    assert al.flush() == 0 and take_rows(al) == []
    al.add("sdi12-1", "probe-1", "soil_temperature", 13.0, T0 + 900 + 3600 - 1)  # 1 s short
    assert al.flush() == 0 and take_rows(al) == []
    al.add("other-source", "probe-9", "soil_temperature", 5.0, T0 + 86400)  # another source's clock does not count
    assert al.flush() == 0 and take_rows(al) == []
    al.add("sdi12-1", "probe-1", "soil_temperature", 14.0, T0 + 900 + 3600)  # the cell end + lateness
    assert al.flush() == 1
    (row,) = take_rows(al)
    assert (row["ts"], row["value"], row["min"], row["max"], row["n"], row["flags"]) == (
        iso(T0),
        11.0,
        10.0,
        12.0,
        2,
        0,
    )


def test_flush_now_closes_by_the_clock():
    al = Aligner(900, lateness_s=3600)
    al.add("sdi12-1", "probe-1", "soil_temperature", 10.0, T0 + 100)
    assert al.flush(now=T0 + 900 + 3600 - 1) == 0
    assert al.flush(now=T0 + 900 + 3600) == 1
    assert cells(take_rows(al)) == [(iso(T0), 10.0, 0, 0)]


def test_a_summary_covering_part_of_a_cell_is_partial():
    al = Aligner(900, lateness_s=7200)
    al.add_series(SRC, "node", "air_temperature", [T0, T0 + 300], 300, [10.0, 13.0], [9.0, 12.0], [11.0, 14.0], [5, 10])
    assert take_rows(al) == [] and al.flush() == 0  # 600 of 900 s covered: open
    assert al.flush(now=T0 + 900 + 7200 - 1) == 0
    assert al.flush(now=T0 + 900 + 7200) == 1
    (row,) = take_rows(al)
    # (10*5 + 13*10) / 15 = 180 / 15 = 12
    assert (row["value"], row["min"], row["max"], row["n"]) == (12.0, 9.0, 14.0, 15)
    assert row["flags"] == PARTIAL


def test_three_five_minute_summaries_fill_a_cell_without_partial():
    al = Aligner(900)
    al.add_series(
        SRC, "node", "air_temperature", [T0, T0 + 300, T0 + 600], 300, [10.0, 13.0, 16.0], None, None, [5, 5, 5]
    )
    assert cells(take_rows(al)) == [(iso(T0), 13.0, 0, 0)]


def test_close_all_sends_every_open_cell():
    al = Aligner(900)
    al.add("sdi12-1", "probe-1", "soil_temperature", 10.0, T0 + 100)
    al.add_series(SRC, "node", "ndvi", [T0 + 900], 300, [0.5], None, None, [5])
    al.close_all()
    rows = take_rows(al)
    assert one(rows, quantity="soil_temperature")["flags"] == 0
    assert one(rows, quantity="ndvi")["flags"] == PARTIAL
    assert al.open == {}


# ---- gaps and revisions ----
def test_one_skipped_cell_is_one_gap_row():
    al = Aligner(900)
    al.add_series(SRC, "node", "air_temperature", [T0], 900, [20.0], [19.0], [21.0], [15])
    al.add_series(SRC, "node", "air_temperature", [T0 + 1800], 900, [22.0], [21.0], [23.0], [15])
    rows = take_rows(al)
    assert cells(rows) == [(iso(T0), 20.0, 0, 0), (iso(T0 + 900), None, GAP, 0), (iso(T0 + 1800), 22.0, 0, 0)]
    gap = rows[1]
    assert (gap["min"], gap["max"], gap["n"]) == (None, None, 0)
    assert al.gap_rows == 1


def test_a_null_interval_inside_a_report_is_a_gap_row():
    al = Aligner(900)
    al.add_series(
        SRC,
        "node",
        "air_temperature",
        [T0, T0 + 900, T0 + 1800],
        900,
        [20.0, None, 22.0],
        [19.0, None, 21.0],
        [21.0, None, 23.0],
        [15, 0, 15],
    )
    assert cells(take_rows(al)) == [(iso(T0), 20.0, 0, 0), (iso(T0 + 900), None, GAP, 0), (iso(T0 + 1800), 22.0, 0, 0)]


def test_late_data_for_a_sent_cell_is_a_revision():
    al = Aligner(900)
    al.add_series(SRC, "node", "air_temperature", [T0], 900, [20.0], [19.0], [21.0], [15])
    al.add_series(SRC, "node", "air_temperature", [T0 + 1800], 900, [22.0], [21.0], [23.0], [15])
    take_rows(al)
    al.add_series(SRC, "node", "air_temperature", [T0 + 900], 900, [21.0], [20.0], [22.0], [15])  # fills the gap
    al.add_series(SRC, "node", "air_temperature", [T0], 900, [20.2], [19.0], [21.0], [15])  # resent, changed
    al.add_series(SRC, "node", "air_temperature", [T0], 900, [20.4], [19.0], [21.0], [15])  # and again
    assert cells(take_rows(al)) == [
        (iso(T0 + 900), 21.0, LATE, 1),
        (iso(T0), 20.2, LATE, 1),
        (iso(T0), 20.4, LATE, 2),
    ]
    assert al.revisions == 3
    al.add_series(SRC, "node", "air_temperature", [T0 + 2700], 900, [23.0], [22.0], [24.0], [15])
    assert cells(take_rows(al)) == [(iso(T0 + 2700), 23.0, 0, 0)]  # the series goes on, unflagged


def test_late_instantaneous_reading_is_a_revision():
    al = Aligner(900, lateness_s=0)
    al.add("sdi12-1", "probe-1", "soil_temperature", 10.0, T0 + 100)
    al.add("sdi12-1", "probe-1", "soil_temperature", 11.0, T0 + 1000)
    al.flush()
    assert cells(take_rows(al)) == [(iso(T0), 10.0, 0, 0)]
    al.add("sdi12-1", "probe-1", "soil_temperature", 14.0, T0 + 200)  # late for the sent cell
    al.flush()
    assert cells(take_rows(al)) == [(iso(T0), 14.0, LATE, 1)]


def test_flags_ride_along_and_merge():
    al = Aligner(900)
    al.add_series(SRC, "node", "air_temperature", [T0], 900, [20.0], [19.0], [21.0], [15], flags=32)
    al.add_series(SRC, "node", "air_temperature", [T0 + 1800], 300, [20.0], [19.0], [21.0], [5], flags=16)
    al.flush(now=T0 + 10**6)
    rows = take_rows(al)
    assert one(rows, ts=iso(T0))["flags"] == 32
    assert one(rows, ts=iso(T0 + 900))["flags"] == GAP
    assert one(rows, ts=iso(T0 + 1800))["flags"] == 16 | PARTIAL


# ---- claim / append_columns ----
def test_claim_continues_a_series_and_refuses_a_hole():
    al = Aligner(900)
    assert al.claim(SRC, "node", "ndvi", T0, 4, 900) == "mean"
    assert al.series_for(SRC, "node", "ndvi").last == T0 + 3 * 900
    assert al.watermark[SRC] == T0 + 4 * 900
    assert al.claim(SRC, "node", "ndvi", T0 + 5 * 900, 4, 900) is None  # skips T0 + 4 * 900
    assert al.claim(SRC, "node", "ndvi", T0 + 3 * 900, 4, 900) is None  # overlaps what was claimed
    assert al.series_for(SRC, "node", "ndvi").last == T0 + 3 * 900  # refusals change nothing
    assert al.claim(SRC, "node", "ndvi", T0 + 4 * 900, 4, 900) == "mean"
    assert al.claim(SRC, "node", "ndvi", T0 + 8 * 900 + 60, 1, 900) is None  # not on the grid
    assert al.claim(SRC, "node", "ndvi", T0 + 8 * 900, 3, 300) is None  # not one cell per summary
    assert al.claim("gauge-1", "tip", "precipitation", T0, 1, 900) is None  # sum: not a summary's mean as is


def test_append_columns_rows_come_out_with_the_others():
    al = Aligner(900)
    al.add_series("node-1", "node", "ndvi", [T0], 900, [0.5], None, None, [15])
    assert al.claim("node-2", "node", "air_temperature", T0, 2, 900) == "mean"
    al.append_columns(
        {
            "source": ["node-2"],
            "quantity": ["air_temperature"],
            "flags": [0],
            "rule": ["mean"],
            "count": [2],
            "ts": [T0, T0 + 900],
            "value": [20.0, 21.0],
            "min": [19.0, 20.0],
            "max": [21.0, 22.0],
            "n": [15, 14],
        }
    )
    al.add_series("node-1", "node", "ndvi", [T0 + 900], 900, [0.6], None, None, [15])
    rows = take_rows(al)
    assert [(r["source"], r["quantity"], r["ts"], r["value"], r["n"]) for r in rows] == [
        ("node-1", "ndvi", iso(T0), 0.5, 15),
        ("node-2", "air_temperature", iso(T0), 20.0, 15),
        ("node-2", "air_temperature", iso(T0 + 900), 21.0, 14),
        ("node-1", "ndvi", iso(T0 + 900), 0.6, 15),
    ]
    assert one(rows, ts=iso(T0 + 900), source="node-2")["unit"] == "degC"
    # the claimed series continues without a gap
    al.add_series("node-2", "node", "air_temperature", [T0 + 1800], 900, [22.0], [21.0], [23.0], [15])
    assert cells(take_rows(al)) == [(iso(T0 + 1800), 22.0, 0, 0)]


# ---- snapshot / restore ----
def _through_json(snap):
    return json.loads(json.dumps(snap))  # the store keeps it as JSON text


def test_restore_continues_without_a_false_gap_and_keeps_open_cells():
    al = Aligner(900, lateness_s=7200)
    al.add_series(
        SRC, "node", "air_temperature", [T0, T0 + 900], 900, [20.0, 21.0], [19.0, 20.0], [21.0, 22.0], [15, 15]
    )
    al.add_series(SRC, "node", "ndvi", [T0 + 1800], 300, [0.5], None, None, [5])  # a third of a cell: open
    al.add(SRC, "probe", "soil_temperature", 10.0, T0 + 1900)  # open
    take_rows(al)
    snap = _through_json(al.snapshot(SRC))

    al2 = Aligner(900, lateness_s=7200)
    al2.restore(SRC, snap)
    al2.add_series(SRC, "node", "air_temperature", [T0 + 1800], 900, [22.0], [21.0], [23.0], [15])
    assert cells(take_rows(al2)) == [(iso(T0 + 1800), 22.0, 0, 0)]  # no gap before it
    al2.add_series(SRC, "node", "ndvi", [T0 + 2100, T0 + 2400], 300, [0.6, 0.7], None, None, [5, 5])
    al2.add(SRC, "probe", "soil_temperature", 14.0, T0 + 2000)
    al2.flush(now=T0 + 10**6)
    rows = take_rows(al2)
    ndvi = one(rows, quantity="ndvi")
    assert (ndvi["ts"], ndvi["value"], ndvi["n"], ndvi["flags"]) == (iso(T0 + 1800), pytest.approx(0.6), 15, 0)
    soil = one(rows, quantity="soil_temperature")
    assert (soil["ts"], soil["value"], soil["n"], soil["min"], soil["max"]) == (iso(T0 + 1800), 12.0, 2, 10.0, 14.0)
    # the restored series still knows what was sent: a hole is a gap, old data a revision
    al2.add_series(SRC, "node", "air_temperature", [T0 + 3600], 900, [23.0], [22.0], [24.0], [15])
    al2.add_series(SRC, "node", "air_temperature", [T0], 900, [20.5], [19.0], [21.0], [15])
    assert cells(take_rows(al2)) == [
        (iso(T0 + 2700), None, GAP, 0),
        (iso(T0 + 3600), 23.0, 0, 0),
        (iso(T0), 20.5, LATE, 1),
    ]


def test_restore_keeps_the_watermark():
    al = Aligner(900, lateness_s=3600)
    al.add("sdi12-1", "probe-1", "soil_temperature", 10.0, T0 + 100)
    al.add("sdi12-1", "probe-1", "soil_temperature", 11.0, T0 + 4400)
    al2 = Aligner(900, lateness_s=3600)
    al2.restore("sdi12-1", _through_json(al.snapshot("sdi12-1")))
    al2.add("sdi12-1", "probe-2", "soil_temperature", 5.0, T0 + 4500)  # another probe of the same source
    assert al2.flush() == 1  # the cell of T0 is now 900 + 3600 s behind the source
    assert cells(take_rows(al2)) == [(iso(T0), 10.0, 0, 0)]


def test_snapshot_is_per_source():
    al = Aligner(900)
    al.add_series("node-1", "node", "ndvi", [T0], 900, [0.5], None, None, [15])
    al.add("node-2", "probe", "soil_temperature", 3.0, T0)
    s1, s2 = al.snapshot("node-1"), al.snapshot("node-2")
    assert s1["last"] == {"node|ndvi": T0} and s1["open"] == []
    assert s2["last"] == {} and len(s2["open"]) == 1
    assert al.pop_dirty() == {"node-1", "node-2"} and al.pop_dirty() == set()


def test_restore_keeps_an_open_cells_unit():
    """A reading with an explicit unit (a quantity the gateway has no unit for) keeps it across a restart."""
    al = Aligner(900)
    al.add("modbus-1", "pyranometer", "leaf_wetness", 40.0, T0 + 10, unit="%")
    al2 = Aligner(900)
    al2.restore("modbus-1", _through_json(al.snapshot("modbus-1")))
    al2.add("modbus-1", "pyranometer", "leaf_wetness", 60.0, T0 + 20, unit="%")
    al2.close_all()
    (row,) = take_rows(al2)
    assert row["value"] == 50.0
    assert row["unit"] == "%"


# ---- the batch document (gateway.stream) ----
def test_batch_document_round_trips_cbor_and_json():
    al = Aligner(900)
    al.add_series(
        SRC, "node", "air_temperature", [T0, T0 + 1800], 900, [20.0, 22.0], [19.0, 21.0], [21.0, 23.0], [15, 15]
    )
    al.add_series(SRC, "node", "ndvi", [T0], 900, [0.5], None, None, [14])
    cols = al.take()
    expected = rows_of(cols)
    assert len(expected) == 4 and expected[1]["flags"] == GAP
    records = [{"key": "node-7/node_health/x", "battery_v": 3.9}]
    doc = batch_document("gw-1", 42, 900, cols, records)
    assert doc[:1] != b"{"  # CBOR
    meta, rows, recs = parse_batch(doc)
    assert meta == {"v": 1, "gateway": "gw-1", "batch": "gw-1:42", "grid_s": 900}
    assert rows == expected and recs == records
    line = to_json(doc)
    assert b"\n" not in line and b"NaN" not in line
    assert json.loads(line)["readings"]["value"][1] is None  # the gap's NaN is null in JSON
    assert parse_batch(line)[1] == expected
    assert parse_batch(batch_document("gw-1", 42, 900, cols, records, fmt="json"))[1] == expected
