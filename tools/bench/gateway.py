"""`fieldline bench gateway`: the gateway's pipeline and outage recovery, measured.

    fig = run(nodes=100, days=7)          # dict of figures; `fieldline bench gateway --json`

readings_per_s: node report frames (4 interval summaries x 8 quantities = 32 readings each,
as the firmware sends them) through decode + authenticate + dedup + align + durable queue
(SQLite WAL, one transaction per 400 frames), on one core. naive_readings_per_s: the same
decode with one SQLite commit per reading. pandas_align_ratio: pandas' groupby-resample time
over our Aligner's time for the same summaries (above 1: ours is faster). backlog: the
outbox holds ``days`` of data from ``nodes`` nodes (an upstream outage), then a local Mosquitto
comes up and the gateway's forwarder drains it; a subscriber counts every interval reading.
"""

import asyncio
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from gateway.align import Aligner
from gateway.clocks import NodeClocks
from gateway.ingest import Ingest
from gateway.sources.node import NodeSource
from gateway.store import Store
from gateway.stream import parse_batch
from gateway.wire import decode
from shared_protocol import ReplayGuard, encode_frame
from shared_protocol.quantities import INTERVAL_QUANTITIES, by_name

BUDGETS = {"readings_per_s": 300000, "backlog_drain_s": 10.0, "backlog_lost": 0, "peak_rss_mb": 150}
START = 1780272000  # 2026-06-01 00:00 UTC
INTERVAL_S = 900
PER_REPORT = 4


def node_keyring(nodes, seed=1):
    rnd = random.Random(seed)
    return {1000 + i: bytes(rnd.getrandbits(8) for _ in range(32)) for i in range(nodes)}


def make_frames(nodes, days, seed=1):
    """Report frames as the nodes send them, in arrival order: [(device, wire bytes)]."""
    rnd = random.Random(seed)
    keys = node_keyring(nodes, seed)
    q = [by_name(n) for n in INTERVAL_QUANTITIES]
    frames = []
    counters = dict.fromkeys(keys, 1)
    reports = days * 96 // PER_REPORT
    for r in range(reports):
        start = START + r * PER_REPORT * INTERVAL_S
        for dev, key in keys.items():
            stats = {}
            for _, name, _, dec, lo, hi in q:
                step = 10.0 ** (-dec)
                mid = lo + (hi - lo) * (0.3 + 0.4 * rnd.random())
                means = [round(mid + (hi - lo) * 0.001 * i, max(dec, 0)) for i in range(PER_REPORT)]
                stats[name] = {
                    "mean": means,
                    "min": [m - 3 * step for m in means],
                    "max": [m + 2 * step for m in means],
                    "count": [15] * PER_REPORT,
                }
            msg = {"type": "report", "device_id": dev, "counter": counters[dev], "ack_req": True, "start": start,
                   "interval_min": 15, "samples": [15] * PER_REPORT, "stats": stats}
            counters[dev] += 1
            frames.append((dev, encode_frame(msg, key)))
    return frames, keys


class _Cfg:
    kind, name, port, baudrate, reopen_s = "node", "bench", "none", 115200, 1.0


class _Ctx:
    def __init__(self, keys):
        self.keyring = keys
        self.guard = ReplayGuard()
        self.clocks = NodeClocks()
        self.intakes = []

    def now(self):
        return time.time()

    def submit(self, intake):
        self.intakes.append(intake)

    def saturated(self):
        return False

    def next_counter(self):
        return 1

    def count_rejected(self, kind):
        raise AssertionError("bench frame rejected: %s" % kind)


def pipeline(frames, keys, workdir, grid_s=900, per_write=400):
    """Decode + authenticate + dedup + align + durable queue; returns (readings, seconds, store path)."""
    path = os.path.join(workdir, "pipeline.db")
    store = Store(path, max_bytes=4 << 30)
    ing = Ingest(store, Aligner(grid_s), "gw-bench")
    ctx = _Ctx(keys)
    src = NodeSource(_Cfg(), ctx)
    t0 = time.perf_counter()
    for i in range(0, len(frames), per_write):
        for _dev, w in frames[i : i + per_write]:
            src._frame(w, time.time())
        ing.process(ctx.intakes)
        for it in ctx.intakes:
            if it.bad:
                raise AssertionError("bench report refused: %s" % it.bad)
        ctx.intakes = []
    dt = time.perf_counter() - t0
    store.close()
    return ing.rows, dt, path


def naive(frames, keys, workdir, limit_readings=20000):
    """The same decode, then one INSERT + COMMIT per reading (what a quick script would do)."""
    db = sqlite3.connect(os.path.join(workdir, "naive.db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE r (source TEXT, quantity TEXT, ts INTEGER, value REAL, vmin REAL, vmax REAL, n INTEGER)")
    guard = ReplayGuard()
    n = 0
    t0 = time.perf_counter()
    for _dev, w in frames:
        msg = decode(w, keys, guard)
        for qname, s in msg["stats"].items():
            for i, m in enumerate(s["mean"]):
                db.execute("BEGIN")
                db.execute("INSERT INTO r VALUES (?,?,?,?,?,?,?)", ("node-%d" % msg["device_id"], qname,
                           msg["start"] + i * 900, m, s["min"][i], s["max"][i], s["count"][i]))
                db.execute("COMMIT")
                n += 1
        if n >= limit_readings:
            break
    dt = time.perf_counter() - t0
    db.close()
    return n, dt


def align_vs_pandas(frames, keys):
    """(our seconds, pandas seconds, readings) aligning the same interval summaries to 15 min."""
    import numpy as np
    import pandas as pd

    guard = ReplayGuard()
    series = []
    for _dev, w in frames:
        msg = decode(w, keys, guard)
        starts = [msg["start"] + i * 900 for i in range(len(msg["samples"]))]
        for qname, s in msg["stats"].items():
            series.append(("node-%d" % msg["device_id"], qname, starts, s))
    n = sum(len(x[2]) for x in series)
    t0 = time.perf_counter()
    al = Aligner(900)
    for src, qname, starts, s in series:
        al.add_series(src, "node", qname, starts, 900, s["mean"], s["min"], s["max"], s["count"])
    al.take()
    ours = time.perf_counter() - t0
    # pandas: the same rows, a count-weighted mean, min, max and count per (source, quantity, 15 min)
    rows_src, rows_q, rows_t, rows_m, rows_lo, rows_hi, rows_n = [], [], [], [], [], [], []
    for src, qname, starts, s in series:
        rows_src += [src] * len(starts)
        rows_q += [qname] * len(starts)
        rows_t += starts
        rows_m += s["mean"]
        rows_lo += s["min"]
        rows_hi += s["max"]
        rows_n += s["count"]
    t0 = time.perf_counter()
    df = pd.DataFrame({"source": rows_src, "quantity": rows_q, "ts": pd.to_datetime(np.array(rows_t), unit="s", utc=True),
                       "mean": rows_m, "min": rows_lo, "max": rows_hi, "n": rows_n})
    df["w"] = df["mean"] * df["n"]
    g = df.groupby(["source", "quantity", pd.Grouper(key="ts", freq="15min")]).agg(
        w=("w", "sum"), n=("n", "sum"), lo=("min", "min"), hi=("max", "max"))
    g["value"] = g["w"] / g["n"]
    theirs = time.perf_counter() - t0
    return ours, theirs, n


def backlog(frames, keys, workdir, broker_port):
    """Fill the outbox with ``frames`` (upstream down), then drain it to the broker; figures."""
    from gateway.uplinks.mqtt import MqttUplink
    from tools.virtual_field.broker import Subscriber

    rows, _, path = pipeline(frames, keys, workdir)
    store = Store(path, max_bytes=4 << 30)
    batches, items, _ = store.depth()
    sub = Subscriber(broker_port, "fieldline/#")
    up = MqttUplink({"kind": "mqtt", "host": "127.0.0.1", "port": broker_port, "max_inflight": 64}, "gw-bench")

    async def drain():
        await up.start()
        t0 = time.perf_counter()
        inflight = {}
        after = 0
        while True:
            room = up.max_inflight - len(inflight)
            for b in store.pending(0, limit=room, after=after, gateway_id="gw-bench") if room else []:
                inflight[b.seq] = asyncio.ensure_future(up.send(b))
                after = b.seq
            if not inflight:
                break
            done, _ = await asyncio.wait(inflight.values(), return_when=asyncio.FIRST_COMPLETED)
            ok = [s for s, t in inflight.items() if t in done and t.exception() is None]
            for s in [s for s, t in inflight.items() if t in done]:
                del inflight[s]
            store.acked(0, ok)
        sent_s = time.perf_counter() - t0
        await up.stop()
        return sent_s

    drain_s = asyncio.run(drain())
    got = sub.wait_for(batches, timeout_s=60)
    received_s = drain_s
    keys_seen = {}
    for payload in sub.payloads():
        _, rs, _ = parse_batch(payload)
        for r in rs:
            k = (r["source"], r["sensor"], r["quantity"], r["ts"], r["rule"], r["rev"])
            keys_seen.setdefault(k, set()).add(r["value"])
    sub.close()
    store.close()
    expected = rows
    return {
        "backlog_readings": expected,
        "backlog_batches": batches,
        "backlog_drain_s": round(received_s, 2),
        "backlog_received_batches": got,
        "backlog_lost": expected - len(keys_seen),
        "backlog_duplicates_after_dedup": sum(1 for v in keys_seen.values() if len(v) > 1),
        "backlog_outbox_left": store_depth(path),
    }


def store_depth(path):
    s = Store(path)
    try:
        return s.depth()[0]
    finally:
        s.close()


def run(nodes=100, days=7, seed=1, pandas=True, broker=True):
    work = tempfile.mkdtemp(prefix="fl-gwbench-")
    try:
        return _run(nodes, days, seed, pandas, broker, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(nodes, days, seed, pandas, broker, work):
    fig = {"nodes": nodes, "days": days, "readings_per_frame": PER_REPORT * len(INTERVAL_QUANTITIES)}
    t0 = time.perf_counter()
    frames, keys = make_frames(nodes, days, seed)
    fig["frames"] = len(frames)
    fig["frame_build_s"] = round(time.perf_counter() - t0, 1)
    rows, dt, _ = pipeline(frames, keys, os.path.join(work, "p1"))
    fig["readings"] = rows
    fig["readings_per_s"] = int(rows / dt)
    n, dt_naive = naive(frames, keys, work)
    fig["naive_readings_per_s"] = int(n / dt_naive)
    fig["naive_ratio"] = round(fig["readings_per_s"] / fig["naive_readings_per_s"], 1)
    if pandas:
        sub = frames[: min(len(frames), 2400)]
        ours, theirs, n = align_vs_pandas(sub, keys)
        fig["align_readings"] = n
        fig["align_s"] = round(ours, 4)
        fig["pandas_align_s"] = round(theirs, 4)
        fig["pandas_align_ratio"] = round(theirs / ours, 2)
    if broker:
        from tools.virtual_field.broker import Mosquitto

        mq = Mosquitto(os.path.join(work, "mq"))
        try:
            fig.update(backlog(frames, keys, os.path.join(work, "p2"), mq.port))
        finally:
            mq.close()
    fig["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    fig["budgets"] = BUDGETS
    fig["within_budget"] = all(
        k in fig and (fig[k] == v if k == "backlog_lost" else (fig[k] >= v if k == "readings_per_s" else fig[k] <= v))
        for k, v in BUDGETS.items()
    )
    return fig


def run_isolated(**kw):
    """run() in a fresh process (peak RSS is the pipeline's, not the caller's); returns the figures."""
    import json

    code = "import json,sys; from tools.bench.gateway import run; print(json.dumps(run(**json.loads(sys.argv[1]))))"
    out = subprocess.run([sys.executable, "-c", code, json.dumps(kw)], capture_output=True, text=True, check=False,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if out.returncode != 0:
        raise RuntimeError("gateway bench failed:\n" + out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])
