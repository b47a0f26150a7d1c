"""Fleet health: status against each device's own cadence and power mode, completeness, battery trend, ranking."""

import numpy as np
import pytest

from upstream.health import assess
from upstream.normalise import ParsedBatch
from upstream.store import open_store

T0 = 1780272000  # 2026-06-01 00:00 UTC
H = 3600


def write(store, key, device, times, mode="full", soc=None, customer=None, field=None, **cols):
    n = len(times)
    health = {"device": np.full(n, device, dtype=object), "kind": np.full(n, "node_health", dtype=object),
              "ts": np.asarray(times, dtype=np.int64), "power_mode": np.full(n, mode, dtype=object),
              "battery_soc": np.full(n, 80.0) if soc is None else np.asarray(soc, dtype=float),
              "solar_a": np.full(n, 0.1), "tx_frames": np.full(n, 4.0), "retries": np.zeros(n),
              "tilt_deg": np.full(n, 1.0)}  # fmt: skip
    health.update({k: np.asarray(v) for k, v in cols.items()})
    b = ParsedBatch(key=key, gateway="gw-1", grid_s=900, health=health)
    store.ingest(b)
    if customer or field:
        store.assign(device, "import", customer=customer, field=field)


@pytest.fixture
def store(tmp_path):
    with open_store("sqlite:///%s" % (tmp_path / "u.db")) as s:
        yield s


def test_status_follows_each_devices_cadence_and_power_mode(store):
    now = T0 + 10 * 86400
    hourly = np.arange(T0, now - 20 * 60, H)
    write(store, "a", "node-1", hourly)  # reported 20+ min ago, hourly: active
    write(store, "b", "node-2", hourly[hourly <= now - 4 * H])  # hourly, 4 h quiet: late
    write(store, "c", "node-3", hourly[hourly <= now - 9 * H])  # hourly, 9 h quiet: silent
    rare = np.arange(T0, now, 6 * H)
    write(store, "d", "node-4", rare[rare <= now - 9 * H])  # a 6-hourly reporter 9+ h quiet: active, no alarm
    write(store, "e", "node-5", hourly[hourly <= now - 5 * H], mode="saver")  # saver delivers every 4 h: active
    surv = np.arange(T0, now, 6 * H)
    write(store, "f", "node-6", surv[surv <= now - 12 * H], mode="survival")  # survival, 6 h: active at 12 h
    write(store, "g", "node-7", rare[rare <= now - 40 * H])  # even a rare reporter goes silent eventually
    fh = assess(store, now=now)
    status = dict(zip(fh.devices.tolist(), fh.metrics["status"].tolist(), strict=True))
    assert status == {"node-1": "active", "node-2": "late", "node-3": "silent", "node-4": "active",
                      "node-5": "active", "node-6": "active", "node-7": "silent"}  # fmt: skip
    cadence = dict(zip(fh.devices.tolist(), (fh.metrics["cadence_s"] / H).round(1).tolist(), strict=True))
    assert cadence["node-1"] == 1.0 and cadence["node-4"] == 6.0
    silent = {r["device"] for r in fh.attention if r["cause"] == "silent"}
    assert silent == {"node-3", "node-7"}
    row = next(r for r in fh.attention if r["device"] == "node-3")
    assert row["evidence"]["expected_every_h"] == 1.0 and row["evidence"]["hours_since_last"] >= 9
    assert "Check the gateway first" in row["action"]


def test_battery_trend_and_days_to_empty(store):
    now = T0 + 10 * 86400 + 12 * H
    t = np.arange(T0, now, H)
    days = (t - T0) / 86400.0
    soc = 95 - 6.0 * days + 8 * np.sin(2 * np.pi * days)  # loses 6 %/day beneath the diurnal cycle
    write(store, "a", "node-1", t, soc=np.round(soc))
    write(store, "b", "node-2", t)
    fh = assess(store, now=now)
    i = fh.devices.tolist().index("node-1")
    assert fh.metrics["battery_slope_pct_day"][i] == pytest.approx(-6.0, abs=0.4)
    assert fh.metrics["days_to_empty"][i] == pytest.approx(fh.metrics["battery_soc"][i] / 6.0, rel=0.1)
    assert np.isnan(fh.metrics["days_to_empty"][1])  # a steady battery has none


def test_customer_rollup_and_ranking_weigh_customer_impact(store):
    now = T0 + 5 * 86400
    t = np.arange(T0, now, H)
    # customer A: 2 of 2 devices silent (a field left blind); customer B: 1 of 4 silent
    for k, (cust, fld, quiet) in enumerate([("A", "A1", True), ("A", "A1", True), ("B", "B1", True),
                                            ("B", "B1", False), ("B", "B1", False), ("B", "B1", False)]):  # fmt: skip
        write(store, "b%d" % k, "node-%d" % k, t[t <= now - 12 * H] if quiet else t, customer=cust, field=fld)
    fh = assess(store, now=now)
    order = [r["device"] for r in fh.attention]
    assert order[:2] == ["node-0", "node-1"] and order[2] == "node-2"
    assert fh.attention[0]["score"] > fh.attention[2]["score"]
    cust = {c["customer"]: c for c in fh.customers}
    assert cust["A"]["silent"] == 2 and cust["A"]["needs_attention"] == 2 and cust["B"]["active"] == 3
    assert fh.customers[0]["customer"] == "A"


def test_completeness_counts_expected_intervals_per_day(store):
    from gateway.stream import batch_document
    from upstream.normalise import parse_payload

    now = T0 + 4 * 86400 + 10 * H
    write(store, "a", "node-1", np.arange(T0, now, H))
    recs = [{"kind": "node_daily", "source": "node-1", "date": T0 // 86400 + d, "intervals": iv,
             "key": "node-1/node_daily/%d" % d} for d, iv in ((1, 96), (2, 48), (3, 72))]  # fmt: skip
    store.ingest(parse_payload(batch_document("gw-1", 1, 900, [], recs)))
    fh = assess(store, now=now)
    days = fh.device("node-1")["completeness_days"]
    assert days[-3:] == [1.0, 0.5, 0.75] and fh.metrics["completeness_yesterday"][0] == 0.75


def test_a_lone_shaded_sensor_is_judged_against_clear_sky(store):
    from gateway.stream import batch_document
    from upstream.normalise import parse_payload

    now = T0 + 8 * 86400 + 6 * H
    recs = []
    for dev, mj in (("node-1", 11.0), ("node-2", 26.0)):  # 1 June, 45 N: clear sky ~31 MJ m-2
        write(store, dev, dev, np.arange(T0, now, H))
        store.assign(dev, "import", lat=45.0)
        recs += [{"kind": "node_daily", "source": dev, "date": T0 // 86400 + d, "intervals": 96, "incident_mj_m2": mj,
                  "key": "%s/node_daily/%d" % (dev, d)} for d in range(8)]  # fmt: skip
    store.ingest(parse_payload(batch_document("gw-1", 1, 900, [], recs)))
    fh = assess(store, now=now)
    level = dict(zip(fh.devices.tolist(), fh.level("sensor_shaded").tolist(), strict=True))
    assert level == {"node-1": 2, "node-2": 0}
    row = next(r for r in fh.attention if r["device"] == "node-1")
    assert row["cause"] == "sensor_shaded" and row["evidence"]["best_day_of_clear_sky"] < 0.5
