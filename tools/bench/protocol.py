"""`fieldline bench protocol`: bytes on the wire per node-day, and codec speed on both runtimes.

    figures = run()          # dict; `fieldline bench protocol --json` prints it

The day is tools.bench.protocol_day: 24 hourly report frames (4 interval summaries of
the full quantity set + the hourly health record; the last also carries the daily
summary), framed, tagged and COBS-encoded exactly as the node sends them. The same
messages as compact JSON give the comparison a user would otherwise make.
"""

import json
import os
import subprocess
import tempfile
import time

from gateway.cbor_codec import install as _use_cbor2
from shared_protocol import decode_frame, encode_frame
from tools.bench.protocol_day import QUANTITY_SET, day_messages
from tools.mpy import compile_tree
from tools.paths import micropython_exe

_use_cbor2()  # CPython encodes and decodes as the gateway does: with cbor2

KEY = bytes(range(32))
BUDGET_BYTES_PER_NODE_DAY = 4096

_MP_SCRIPT = r"""
import json, sys, time, gc
from shared_protocol import encode_frame, decode_frame
msgs = json.load(open(sys.argv[1]))
key = bytes(range(32))
ring = {msgs[0]["device_id"]: key}
frames = [encode_frame(m, key) for m in msgs]
gc.collect()
n = 0
t0 = time.ticks_us()
while time.ticks_diff(time.ticks_us(), t0) < 1500000:
    for m in msgs:
        encode_frame(m, key)
    n += len(msgs)
enc = n * 1e6 / time.ticks_diff(time.ticks_us(), t0)
n = 0
t0 = time.ticks_us()
while time.ticks_diff(time.ticks_us(), t0) < 1500000:
    for f in frames:
        decode_frame(f, ring)
    n += len(frames)
dec = n * 1e6 / time.ticks_diff(time.ticks_us(), t0)
print("MPBENCH", enc, dec, sum(len(f) for f in frames))
"""


def _rate(fn, items, seconds=1.0):
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for it in items:
            fn(it)
        n += len(items)
    return n / (time.perf_counter() - t0)


def _micropython_rates(msgs):
    build = compile_tree()
    with tempfile.TemporaryDirectory() as tmp:
        mfile = os.path.join(tmp, "msgs.json")
        with open(mfile, "w") as f:
            json.dump(msgs, f)
        script = os.path.join(tmp, "bench_mp.py")
        with open(script, "w") as f:
            f.write(_MP_SCRIPT)
        r = subprocess.run(
            [micropython_exe(), "-X", "heapsize=512K", script, mfile],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, MICROPYPATH=build),
        )
    for line in r.stdout.splitlines():
        if line.startswith("MPBENCH"):
            _, enc, dec, nbytes = line.split()
            return float(enc), float(dec), int(nbytes)
    raise RuntimeError("micropython bench failed:\n" + r.stdout + r.stderr)


def run(seed=1, micropython=True):
    msgs = day_messages(seed=seed)
    frames = [encode_frame(m, KEY) for m in msgs]
    ring = {msgs[0]["device_id"]: KEY}
    day_bytes = sum(len(f) for f in frames)
    json_bytes = sum(len(json.dumps(m, separators=(",", ":"))) for m in msgs)
    one = dict(msgs[12])
    one.pop("health", None)
    one["samples"] = one["samples"][:1]
    one["stats"] = {q: {k: v[:1] for k, v in s.items()} for q, s in one["stats"].items()}
    single = len(encode_frame(one, KEY))
    bare = [{k: v for k, v in m.items() if k not in ("health", "daily")} for m in msgs]
    amortised = sum(len(encode_frame(m, KEY)) for m in bare) / 96  # framing shared by 4 intervals
    out = {
        "quantities": list(QUANTITY_SET),
        "frames_per_node_day": len(frames),
        "bytes_per_interval_summary": single,
        "bytes_per_interval_summary_in_hourly_batch": round(amortised, 1),
        "bytes_per_node_day": day_bytes,
        "json_bytes_per_node_day": json_bytes,
        "json_to_wire_ratio": round(json_bytes / day_bytes, 2),
        "budget_bytes_per_node_day": BUDGET_BYTES_PER_NODE_DAY,
        "within_budget": day_bytes <= BUDGET_BYTES_PER_NODE_DAY,
        "cpython_encode_frames_per_s": round(_rate(lambda m: encode_frame(m, KEY), msgs)),
        "cpython_decode_frames_per_s": round(_rate(lambda f: decode_frame(f, ring), frames)),
        "cpython_json_dumps_per_s": round(_rate(lambda m: json.dumps(m, separators=(",", ":")), msgs)),
    }
    if micropython:
        enc, dec, mp_bytes = _micropython_rates(msgs)
        out["micropython_encode_frames_per_s"] = round(enc)
        out["micropython_decode_frames_per_s"] = round(dec)
        out["micropython_bytes_per_node_day"] = mp_bytes  # same bytes on both runtimes
    return out
