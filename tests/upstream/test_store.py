"""The store on SQLite and PostgreSQL: normalised tables, idempotent ingest, devices, bad batches."""

import json

import numpy as np
import pytest

from gateway.stream import OUT_OF_RANGE, batch_document
from upstream import rollup
from upstream.devices import import_devices
from upstream.errors import BadBatch, DevicesFileError
from upstream.normalise import parse_payload
from upstream.store import open_store

T0 = 1780272000  # 2026-06-01 00:00 UTC


def _iso(t):
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def rows(source="node-7", n=4, t0=T0, flags=0):
    return [(source, "node", "air_temperature", "degC", _iso(t0 + 900 * i), 20.0 + i, 19.5 + i, 20.5 + i, 15, flags,
             "mean", 0) for i in range(n)]  # fmt: skip


def health(dev=7, t=T0 + 3600, soc=80.0, **kw):
    rec = {"kind": "node_health", "source": "node-%d" % dev, "device": dev, "ts": _iso(t), "battery_v": 3.9,
           "battery_soc": soc, "solar_a": 0.2, "power_mode": "full", "reset_cause": "deepsleep", "tilt_deg": 1.2,
           "link": {"tx_frames": 5, "acked_frames": 4, "retries": 1, "rx_bad": 0}, "faults": [], "via": "north",
           "key": "node-%d/node_health/%s" % (dev, _iso(t))}  # fmt: skip
    rec.update(kw)
    return rec


RECORDS = [
    health(),
    health(t=T0 + 7200, soc=78.0, faults=["ir_canopy"]),
    {"kind": "node_daily", "source": "node-7", "device": 7, "ts": _iso(T0), "date": T0 // 86400, "ndvi_midday": 0.71,
     "intervals": 96, "canopy_t_min": 14.0, "canopy_t_max": 31.0, "key": "node-7/node_daily/%s" % _iso(T0)},
    {"kind": "field_daily", "source": "node-7", "field": "North", "date": "2026-06-01", "ts": _iso(T0), "et0_mm": 4.1,
     "key": "node-7/field_daily/2026-06-01"},
    {"kind": "onboarding_report", "device": "node-7", "verdict": "pass", "ts": _iso(T0 - 86400),
     "checks": [{"name": "tilt", "value": 1.1, "ok": True}], "customer": "Acme Farms"},
    {"kind": "node_hello", "source": "node-7", "device": 7, "fw_version": "1.4.2", "hw": "esp32s3", "ts": _iso(T0),
     "key": "node-7/node_hello/x"},
    {"kind": "gateway_health", "source": "gateway-gw-1", "ts": _iso(T0 + 3600), "uptime_s": 12.0,
     "key": "gateway-gw-1/gateway_health/%s" % _iso(T0 + 3600)},
]  # fmt: skip


def doc(seq, readings=None, records=None, gateway="gw-1"):
    return batch_document(gateway, seq, 900, rows() if readings is None else readings,
                          RECORDS if records is None else records)  # fmt: skip


def test_a_batch_lands_in_the_normalised_tables(store_url):
    with open_store(store_url) as s:
        res = s.ingest(parse_payload(doc(1), "gw-1:1"), via="test")
        assert (res.readings, res.records, res.duplicate) == (4, len(RECORDS), False)
        got = s.backend.execute("SELECT source, quantity, unit, ts, value, min, max, n, flags, rule, rev FROM "
                                "reading_rows ORDER BY ts")  # fmt: skip
        assert got[0] == ("node-7", "air_temperature", "degC", T0, 20.0, 19.5, 20.5, 15, 0, "mean", 0)
        assert s.count("health") == 3 and s.count("daily") == 2 and s.count("onboarding") == 1
        h = s.backend.execute("SELECT battery_soc, power_mode, retries, faults, gateway FROM health WHERE "
                              "kind = 'node_health' ORDER BY ts")  # fmt: skip
        assert h == [(80.0, "full", 1.0, None, "gw-1"), (78.0, "full", 1.0, "ir_canopy", "gw-1")]
        gw = s.backend.execute("SELECT extra FROM health WHERE kind = 'gateway_health'")[0][0]
        assert json.loads(gw)["uptime_s"] == 12.0
        d = s.devices()
        i = d["device"].index("node-7")
        assert d["customer"][i] == "Acme Farms" and d["field"][i] == "North" and d["firmware"][i] == "1.4.2"
        assert d["install_verdict"][i] == "PASS" and d["install_tilt_deg"][i] == 1.1 and d["gateway"][i] == "gw-1"
        assert d["kind"][d["device"].index("gateway-gw-1")] == "gateway"
        day = s.backend.execute("SELECT n, soc_min, soc_last, retries_sum, faults_n, faults_last FROM health_day")
        assert day == [(2.0, 78.0, 78.0, 2.0, 1.0, "ir_canopy")]


def test_duplicates_are_dropped_per_batch_and_per_row(store_url):
    with open_store(store_url) as s:
        first = s.ingest(parse_payload(doc(1)))
        again = s.ingest(parse_payload(doc(1)))
        assert again.duplicate and again.readings == again.records == 0
        # a re-batched gateway: the same rows and records under a new batch key, plus one new of each
        more = rows(n=5) + rows(source="node-8", n=1)
        res = s.ingest(parse_payload(doc(2, readings=more, records=RECORDS + [health(t=T0 + 10800)])))
        assert (res.readings, res.duplicate_readings) == (2, 4)
        assert (res.records, res.duplicate_records) == (1, len(RECORDS))
        assert s.count("readings") == first.readings + 2 and s.count("batches") == 2
        assert s.backend.execute("SELECT n FROM health_day")[0][0] == 3.0  # the duplicates were not rolled up twice


def test_a_revision_is_a_new_reading(store_url):
    r = rows(n=1)
    rev = [r[0][:11] + (1,)]
    with open_store(store_url) as s:
        s.ingest(parse_payload(doc(1, readings=r, records=[])))
        assert s.ingest(parse_payload(doc(2, readings=rev, records=[]))).readings == 1


@pytest.mark.parametrize(
    "payload, key, reason",
    [
        (b"", None, "empty body"),
        (b"\xff\x00garbage", None, "not a batch document"),
        (b'{"v": 1, "batch": "gw-1:1", "grid_s": 900, "records": [{"source": "n"}]}', None, "records[0]: no 'kind'"),
        (b'{"v": 1, "batch": "gw-1:1", "grid_s": 900, "records": [{"kind": "x"}]}', None, "records[0]: no device"),
        (b'{"v": 1, "batch": "gw-1:1", "grid_s": 900}', "gw-1:2", "does not match"),
        (b'{"v": 2, "batch": "gw-1:1", "grid_s": 900}', None, "'v'"),
        (b'{"v": 1, "batch": "gw-1:1", "grid_s": 900, "readings": {"runs": {"source": ["a"], "sensor": ["b"], '
         b'"quantity": ["c"], "unit": ["1"], "rule": ["mean"], "flags": [0], "rev": [0], "count": [2]}, "ts": [1], '
         b'"value": [1], "min": [1], "max": [1], "n": [1]}}', None, "'readings.ts': 1 entries, expected 2"),
        (b'{"v": 1, "batch": "gw-1:1", "grid_s": 900, "records": [{"kind": "node_health", "source": "node-1", '
         b'"ts": "yesterday"}]}', None, "records[0].ts"),
        (b'{"v": 1, "batch": "gw-1:1", "grid_s": 900, "records": [{"kind": "node_health", "source": "node-1", '
         b'"ts": 5, "battery_soc": "full"}]}', None, "records[0].battery_soc: expected a number"),
    ],
)  # fmt: skip
def test_bad_batches_name_what_is_wrong(payload, key, reason):
    with pytest.raises(BadBatch) as e:
        parse_payload(payload, key)
    assert reason in e.value.reason, e.value.reason


def test_a_bad_batch_is_kept_for_inspection_and_stores_nothing(tmp_path):
    with open_store("sqlite:///%s" % (tmp_path / "u.db")) as s:
        s.reject("http", "gw-1:9", "records[0]: no 'kind'", b"\x01\x02")
        assert s.backend.execute("SELECT batch, reason, payload FROM rejected_batches") == [
            ("gw-1:9", "records[0]: no 'kind'", b"\x01\x02")
        ]
        assert s.count("readings") == 0


def test_an_import_wins_over_records_and_names_bad_lines(store_url, tmp_path):
    csv = tmp_path / "devices.csv"
    csv.write_text("device,customer,field,lat,lon\nnode-7,Hillside Farms,Block A,45.5,9.2\n1009,Oak Co-op,,,\n")
    with open_store(store_url) as s:
        assert import_devices(s, csv) == 2
        s.ingest(parse_payload(doc(1)))  # its records say customer "Acme Farms", field "North"
        d = s.devices()
        i = d["device"].index("node-7")
        assert (d["customer"][i], d["field"][i], d["lat"][i], d["assigned_by"][i]) == (
            "Hillside Farms",
            "Block A",
            45.5,
            "import",
        )
        assert d["customer"][d["device"].index("node-1009")] == "Oak Co-op"
    bad = tmp_path / "bad.csv"
    bad.write_text("device,customer,lat\nnode-1,A,45\nnode-2,B,north\n")
    with pytest.raises(DevicesFileError, match=r"bad.csv:3: lat: expected a number, got 'north'"):
        import_devices(None, bad)
    toml = tmp_path / "devices.toml"
    toml.write_text('[[devices]]\ndevice = "node-3"\ncustomer = "C"\nshoe_size = 3\n')
    with pytest.raises(DevicesFileError, match=r"devices\[0\]: unknown column"):
        import_devices(None, toml)


def test_the_rollup_is_exact_however_the_records_arrive(tmp_path):
    rng = np.random.default_rng(1)
    recs = [
        health(
            dev=1 + i % 3,
            t=T0 + 3600 * (i // 3),
            soc=float(rng.integers(20, 100)),
            tilt_deg=float(rng.normal(2, 0.3)),
            power_mode=["full", "saver"][i % 2],
        )
        for i in range(150)
    ]
    rng.shuffle(recs)
    with open_store("sqlite:///%s" % (tmp_path / "u.db")) as s:
        for k in range(0, 150, 17):  # out of order, across days, in uneven batches
            s.ingest(parse_payload(doc(k, readings=[], records=recs[k : k + 17])))
        inc = s.backend.execute("SELECT * FROM health_day ORDER BY device_id, day")
        rollup.rebuild(s.backend)
        again = s.backend.execute("SELECT * FROM health_day ORDER BY device_id, day")
        num = lambda rs: np.array([[np.nan if v is None else v for v in r if not isinstance(v, str)] for r in rs])
        assert np.allclose(num(again), num(inc), equal_nan=True)  # sums may differ in the last bit: order
        assert sum(r[2] for r in inc) == 150


def test_out_of_range_flags_travel(store_url):
    with open_store(store_url) as s:
        s.ingest(parse_payload(doc(1, readings=rows(flags=OUT_OF_RANGE), records=[])))
        assert {r[0] for r in s.backend.execute("SELECT flags FROM readings")} == {OUT_OF_RANGE}


def test_the_install_checks_onboarding_report_sets_verdict_tilt_and_failed_checks(tmp_path):
    from upstream.health import assess

    checks = [
        {"name": "level", "status": "PASS", "measured": 1.4, "expected": "<= 2 deg", "fix": ""},
        {"name": "spectral", "status": "FAIL", "measured": "none", "fix": "reseat the cable"},
    ]
    rec = {"kind": "onboarding_report", "source": "node-9", "device": 9, "ts": _iso(T0), "target": "port x",
           "key": "node-9/onboarding_report/%s" % _iso(T0), "verdict": "FAIL", "checks": checks}  # fmt: skip
    with open_store("sqlite:///%s" % (tmp_path / "u.db")) as s:
        s.ingest(parse_payload(doc(1, readings=[], records=[rec, health(dev=9, t=T0 + 86400)])))
        d = s.devices()
        i = d["device"].index("node-9")
        assert (d["install_verdict"][i], d["install_tilt_deg"][i]) == ("FAIL", 1.4)
        fh = assess(s, now=T0 + 86400 + 600)
        row = next(r for r in fh.attention if r["device"] == "node-9")
        assert row["cause"] == "install_failed" and row["evidence"]["failed_checks"] == ["spectral: reseat the cable"]
