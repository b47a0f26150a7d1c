"""`fieldline bench fleet`: the CSM's fleet view, measured: ranking speed, ingest rate, fault detection.

    fig = run()                                  # dict of figures; small=True for the test suite

rank_10k_s_sqlite / rank_10k_s_postgresql: a simulated fleet of ``rank_devices`` (10,000) nodes x
``rank_days`` (30) days of hourly health (7.2 M records, no readings) is loaded into a fresh store
on each backend (a PostgreSQL server started for the run, tools/virtual_field/postgres.py), then
upstream.health.assess ranks it: best of ``repeats`` wall-clock runs (the first run is reported too).
ingest_rows_per_s: CBOR batch documents as gateways send them (15-minute readings + hourly health)
through the receiver's path -- parse, validate, drop duplicates, one transaction per batch -- into
SQLite. Detection: a fleet of ``devices`` x ``days`` with every fault kind injected (FAULTS) is
replayed in ``step_h``-hour steps; after each step the health is assessed and the alert engine run,
as a receiver would. A fault counts as detected when an alert with its cause opened on its device
within 24 simulated hours of its start; a false alert is one opened on a device while no injected
fault was active on it (alerting starts after the first simulated day, which has no baseline).
"""

import os
import shutil
import tempfile
import time

import numpy as np

from upstream.alerts import AlertEngine
from upstream.health import assess
from upstream.simulate import DAY, HOUR, START, Fleet, populate
from upstream.store import open_store

BUDGETS = {"rank_10k_s": 3.0, "faults_detected_share": 1.0, "false_alerts_per_100_device_days": 1.0}


def time_rank(url, devices, days, seed=1, repeats=3, faults="all:0.5%"):
    """Load a fleet into a fresh store at ``url``; return (load seconds, first rank s, best rank s, rows)."""
    fleet = Fleet(devices=devices, days=days, faults=faults, seed=seed, readings=False)
    with open_store(url) as store:
        t0 = time.perf_counter()
        populate(store, fleet, step_s=DAY)
        load_s = time.perf_counter() - t0
        if store.dialect == "postgresql":
            store.backend.execute("ANALYZE")
        times = []
        rows = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            fh = assess(store, now=fleet.end)
            times.append(time.perf_counter() - t0)
            rows = len(fh.attention)
        health_rows = store.count("health")
    return load_s, times[0], min(times), rows, health_rows


def detection(url, devices=120, days=10, seed=3, faults="all:2", step_h=3):
    """Replay a fleet with injected faults, alerting after each step; return the detection figures."""
    fleet = Fleet(devices=devices, days=days, faults=faults, seed=seed, readings=True)
    with open_store(url) as store:
        engine = AlertEngine(store, sinks=[])
        evals = []

        def on_step(t):
            if t < fleet.start + DAY:
                return
            t0 = time.perf_counter()
            engine.evaluate(assess(store, now=t), now=t)
            evals.append(time.perf_counter() - t0)

        populate(store, fleet, step_s=step_h * HOUR, on_step=on_step)
        alerts = store.backend.execute(
            "SELECT d.device, a.cause, a.opened_at FROM alerts a JOIN devices d ON d.id = a.device_id"
        )
    return score(fleet, alerts, evals)


def score(fleet, alerts, evals=()):
    """Detection figures from the ground truth and the alerts [(device, cause, opened_at)]."""
    truth = {r["device"]: r for r in fleet.truth}
    detected, missed, delays = [], [], []
    for r in fleet.truth:
        start = max(r["start"], fleet.start + DAY)  # faults present from the start are judged from alerting's start
        hits = [t for d, c, t in alerts if d == r["device"] and c == r["fault"] and start - HOUR <= t <= start + DAY]
        if hits:
            detected.append(r)
            delays.append((min(hits) - start) / 3600.0)
        else:
            missed.append("%s %s from %s" % (r["device"], r["fault"], r["start_iso"]))
    false, secondary = [], 0
    for d, c, t in alerts:
        r = truth.get(d)
        if r is None or t < r["start"]:
            false.append("%s %s at %s" % (d, c, time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(t))))
        elif c != r["fault"]:
            secondary += 1
    device_days = fleet.n * (fleet.days - 1)
    return {
        "fleet_devices": fleet.n,
        "fleet_days": fleet.days,
        "faults_injected": len(fleet.truth),
        "faults_detected_within_24h": len(detected),
        "detection_delay_h_median": round(float(np.median(delays)), 1) if delays else None,
        "detection_delay_h_max": round(float(max(delays)), 1) if delays else None,
        "missed": missed,
        "false_alerts": len(false),
        "false_alerts_per_100_device_days": round(100.0 * len(false) / max(device_days, 1), 3),
        "false_alert_examples": false[:5],
        "secondary_alerts": secondary,
        "evaluate_s_mean": round(float(np.mean(evals)), 3) if len(evals) else None,
    }


def ingest_rate(url, gateways=4, batches_per_gateway=6, nodes=50, hours=6, seed=5):
    """Rows per second through parse + validate + dedup + commit (one transaction per batch)."""
    from gateway.stream import batch_document
    from upstream.normalise import parse_payload

    rng = np.random.default_rng(seed)
    qs = ("air_temperature", "relative_humidity", "canopy_temperature", "incident_shortwave", "ndvi",
          "air_pressure", "reflected_shortwave", "chlorophyll_index")  # fmt: skip
    docs = []
    for g in range(gateways):
        for b in range(batches_per_gateway):
            t0 = START + b * hours * HOUR
            cells = np.arange(t0, t0 + hours * HOUR, 900)
            runs = {"source": [], "sensor": [], "quantity": [], "unit": [], "rule": [], "flags": [], "rev": [],
                    "count": []}  # fmt: skip
            for node in range(nodes):
                for q in qs:
                    for k, v in (
                        ("source", "node-%d" % (g * 1000 + node)),
                        ("sensor", "node"),
                        ("quantity", q),
                        ("unit", "1"),
                        ("rule", "mean"),
                        ("flags", 0),
                        ("rev", 0),
                        ("count", len(cells)),
                    ):
                        runs[k].append(v)  # fmt: skip
            m = nodes * len(qs) * len(cells)
            vals = rng.normal(20, 2, m)
            cols = {"runs": runs, "ts": np.tile(cells, nodes * len(qs)), "value": vals, "min": vals - 0.5,
                    "max": vals + 0.5, "n": np.full(m, 15)}  # fmt: skip
            recs = [{"kind": "node_health", "source": "node-%d" % (g * 1000 + node), "ts": int(t),
                     "battery_soc": 80.0, "solar_a": 0.1, "power_mode": "full", "link": {"tx_frames": 4, "retries": 0},
                     "key": "node-%d/node_health/%d" % (g * 1000 + node, t)}
                    for node in range(nodes) for t in range(t0, t0 + hours * HOUR, HOUR)]  # fmt: skip
            docs.append(batch_document("gw-%d" % g, b, 900, cols, recs))
    with open_store(url) as store:
        rows = 0
        t0 = time.perf_counter()
        for doc in docs:
            res = store.ingest(parse_payload(doc))
            rows += res.readings + res.records
        dt = time.perf_counter() - t0
        dup0 = time.perf_counter()
        for doc in docs[:4]:  # the same batches again: dropped at the batch key
            assert store.ingest(parse_payload(doc)).duplicate
        dup_s = (time.perf_counter() - dup0) / len(docs[:4])
    return rows / dt, rows, dup_s


def run(small=False, rank_devices=10000, rank_days=30, devices=120, days=10, seed=3, postgresql=True, repeats=3):
    """All figures (see the module doc). ``small``: a quick run for the tests (not the budgets' sizes)."""
    ingest = {}
    if small:
        rank_devices, rank_days, devices, days, repeats = 300, 10, 60, 8, 1
        ingest = {"gateways": 2, "batches_per_gateway": 3, "nodes": 20}
    work = tempfile.mkdtemp(prefix="fieldline-bench-fleet-")
    fig = {"rank_devices": rank_devices, "rank_days": rank_days}
    try:
        load_s, first, best, rows, n = time_rank("sqlite:///" + os.path.join(work, "rank.db"), rank_devices,
                                                 rank_days, repeats=repeats)  # fmt: skip
        fig.update({"health_records": n, "load_s_sqlite": round(load_s, 1), "rank_10k_s_sqlite": round(best, 3),
                    "rank_first_s_sqlite": round(first, 3), "attention_rows": rows})  # fmt: skip
        os.remove(os.path.join(work, "rank.db"))
        if postgresql:
            fig.update(_postgresql(rank_devices, rank_days, repeats))
        rate, rows, dup_s = ingest_rate("sqlite:///" + os.path.join(work, "ingest.db"), **ingest)
        fig.update({"ingest_rows_per_s": round(rate), "ingest_rows": rows, "duplicate_batch_s": round(dup_s, 4)})
        det = detection("sqlite:///" + os.path.join(work, "detect.db"), devices=devices, days=days, seed=seed)
        fig.update(det)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fig["budgets"] = BUDGETS
    return fig


def _postgresql(rank_devices, rank_days, repeats):
    from tools.virtual_field.postgres import PostgresServer, missing_binaries

    missing = missing_binaries()
    if missing:
        return {"rank_10k_s_postgresql": None, "postgresql_skipped": "not installed: %s" % ", ".join(missing)}
    with PostgresServer() as pg:
        url = pg.create_database("bench_fleet")
        load_s, first, best, _rows, _n = time_rank(url, rank_devices, rank_days, repeats=repeats)
    return {"load_s_postgresql": round(load_s, 1), "rank_10k_s_postgresql": round(best, 3),
            "rank_first_s_postgresql": round(first, 3)}  # fmt: skip
