"""`fieldline bench firmware`: the node's heap, code, uplink, accuracy and power-cut figures.

    figures = run(days=3)       # dict; `fieldline bench firmware --json` prints it

Everything runs the real firmware (compiled .mpy) on the MicroPython unix port as a
virtual node against the CPython peer over a pty, at full simulation speed:

* heap: one day with ``--stats``. ``fw_code`` is what importing the firmware takes;
  ``sim_code``/``sim_data`` are the board layer and simulation living in the same process;
  ``live_peak`` is the live heap at the app's busiest moments (Board.heap_mark) above code
  and simulation: the working heap. ``peak_heap_bytes`` = fw_code + working.
* ``min_heap_kb``: binary search (to 1 KB) over ``-X heapsize`` for the smallest heap that completes
  the day, minus the simulation's footprint (sim_code + sim_data), which a real board does
  not carry; ``min_heap_kb_with_sim`` is the raw figure.
* accuracy: ``days`` simulated days; every daily summary the node sent is compared with
  the field model's truth for that day (run on CPython, same seed and site), clear days only.
* power cuts: the flash-log campaign (sim/powercut.py) inside MicroPython, plus
  ``node_powercuts``: whole-node runs cut at random flash writes, checking that every
  acknowledged record reached the gateway.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

from tools.mpy import compile_tree
from tools.paths import ROOT, micropython_exe
from tools.virtual_field.node import DAY, START, SimClock, VirtualNode, default_config, write_config
from tools.virtual_field.peer import NodePeer, PtyLink

BUDGETS = {
    "min_heap_kb": 128,
    "working_heap_peak_bytes": 16384,
    "uplink_bytes_per_node_day": 4096,
    "ndvi_abs_err": 0.02,
    "canopy_temp_abs_err_c": 0.3,
    "powercut_records_lost": 0,
}


def run_node(days, heap="1M", seed=1, faults=None, stats=True, start=START, workdir=None, sleep="advance",
             lat=52.0, lon=5.0, timeout=900, provision=True, peer_class=None):
    """Run one virtual node for ``days`` against a peer; returns (node, peer, link, elapsed_s)."""
    work = workdir or tempfile.mkdtemp(prefix="fl-node-")
    cfg = default_config(seed, lat=lat, lon=lon)
    conf = write_config(os.path.join(work, "config.json"), cfg) if provision else None
    state = os.path.join(work, "state")
    link = PtyLink()
    peer = (peer_class or NodePeer)(link, {cfg["device_id"]: bytes.fromhex(cfg["key"])}, clock=SimClock(state))
    node = VirtualNode(link.slave_path, state, seed=seed, config=conf, until=start + int(days * DAY), heap=heap,
                       stats=stats, faults=faults, start=start, sleep=sleep, lat=lat, lon=lon)
    t0 = time.monotonic()
    node.start()
    try:
        while node.alive() and time.monotonic() - t0 < timeout:
            peer.pump(0.05)
        peer.pump(0.2)
    finally:
        node.stop()
        link.close()
    elapsed = time.monotonic() - t0
    if workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return node, peer, link, elapsed


def _stats(node):
    s = node.stats_line()
    if not s:
        raise RuntimeError("the virtual node printed no @@STATS line:\n" + node.text()[-2000:])
    return {k: int(v) for k, v in s.items()}


def min_heap_kb(days=1.0, lo=96, hi=512, seed=1):
    """Smallest -X heapsize (KB, to 1 KB) that completes ``days`` with diagnostics (binary search)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        node, peer, _, _ = run_node(days, heap="%dK" % mid, seed=seed, stats=False, peer_class=_AskingPeer)
        ok = node.returncode == 0 and len(peer.of_type("report")) >= int(23 * days)
        if ok:
            hi = mid
        else:
            lo = mid
    return hi


def code_bytes():
    """Total size of the .mpy files a real board gets (firmware without the virtual board and sim)."""
    build = compile_tree()
    total = 0
    for top in ("fieldnode", "shared_protocol"):
        for dirpath, _dirs, files in os.walk(os.path.join(build, top)):
            if os.sep + "tests" in dirpath or dirpath.endswith(os.path.join("boards", "virtual")):
                continue
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files if f.endswith(".mpy"))
    return total


def truth_days(seed, start, days, lat=52.0, lon=5.0):
    """Per UTC day: (truth_day dict, canopy mean over all minutes) from the field model on CPython."""
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    from sim.field import FieldModel
    from sim.truth import Truth

    fm = FieldModel(lat, lon, 10.0, seed)
    out = {}
    for d in range(days):
        t0 = start + d * DAY
        truth = Truth()
        canopy = [None] * 1440
        for i in range(1440):
            fm.update(truth, t0 + 60 * i)
            canopy[i] = truth.canopy_c
        out[t0 // DAY] = (fm.truth_day(t0 + DAY // 2), sum(canopy) / 1440.0)
    return out


def accuracy(peer, seed, start, days):
    """Worst |node - truth| of midday NDVI and daily canopy temperature over clear days."""
    dailies = [m.get("daily") for m in peer.of_type("report")] + peer.of_type("daily")
    truth = truth_days(seed, start, days)
    ndvi_err = canopy_err = 0.0
    clear = 0
    rows = []
    for d in dailies:
        if not d or d["date"] not in truth:
            continue
        t, canopy_mean = truth[d["date"]]
        row = {"date": d["date"], "clear": t["clear"]}
        if d.get("ndvi_midday") is not None:
            row["ndvi"] = (d["ndvi_midday"], round(t["ndvi_midday"], 4))
        if d.get("canopy_t_mean") is not None:
            row["canopy"] = (d["canopy_t_mean"], round(canopy_mean, 3))
        rows.append(row)
        if not t["clear"]:
            continue
        clear += 1
        if "ndvi" in row:
            ndvi_err = max(ndvi_err, abs(row["ndvi"][0] - row["ndvi"][1]))
        if "canopy" in row:
            canopy_err = max(canopy_err, abs(row["canopy"][0] - row["canopy"][1]))
    return round(ndvi_err, 4), round(canopy_err, 3), clear, rows


def flashlog_campaign(trials=200, seed=1):
    build = compile_tree()
    img = tempfile.mktemp(prefix="fl-pc-", suffix=".img")
    code = ("from sim.powercut import powercut_campaign\n"
            "t, lost = powercut_campaign(%r, %d, %d)\nprint('@@PC', t, lost)\n" % (img, trials, seed))
    r = subprocess.run([micropython_exe(), "-X", "heapsize=512K", "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, MICROPYPATH=build), cwd=build, timeout=600)
    for line in r.stdout.splitlines():
        if line.startswith("@@PC "):
            t, lost = line.split()[1:]
            return int(t), int(lost)
    raise RuntimeError("power-cut campaign failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])


class _AskingPeer(NodePeer):
    """A peer that also asks the node for every diagnostics item (the heap day includes answering)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        for hour in range(3):
            self.request({"type": "diag_request", "req_id": hour, "items": []})


def run(days=3, seed=1, heap_search=True, trials=200):
    node, peer, link, elapsed = run_node(1, seed=seed, peer_class=_AskingPeer)
    st = _stats(node)
    reports = peer.of_type("report")
    fig = {
        "fw_code_heap_bytes": st["fw_code"],
        "sim_code_heap_bytes": st["sim_code"],
        "sim_data_bytes": st["sim_data"],
        "working_heap_peak_bytes": st["live_peak"],
        "peak_heap_bytes": st["fw_code"] + st["live_peak"],
        "code_bytes": code_bytes(),
        "reports_per_day": len(reports),
        "diag_responses": len(peer.of_type("diag_response")),
        "sim_days_per_minute": round(60.0 / elapsed, 2),
    }
    # steady-state uplink: day 2 of a 2-day run (day 1 starts with hello and time sync)
    node2, peer2, link2, _ = run_node(2, seed=seed, stats=False)
    day2 = [m for m in peer2.messages if m["rx_time"] >= START + DAY]
    fig["uplink_bytes_per_node_day"] = _wire_bytes(day2, peer2)
    fig["uplink_frames_per_node_day"] = len(day2)
    if heap_search:
        total = min_heap_kb(1.0, seed=seed)
        fig["min_heap_kb_with_sim"] = total
        fig["min_heap_kb"] = total - int(math.ceil((st["sim_code"] + st["sim_data"]) / 1024.0))
    nodeA, peerA, _, _ = run_node(days, seed=seed, stats=False)
    ndvi_err, canopy_err, clear, rows = accuracy(peerA, seed, START, days)
    fig["ndvi_abs_err"] = ndvi_err
    fig["canopy_temp_abs_err_c"] = canopy_err
    fig["clear_days"] = clear
    fig["daily_rows"] = rows
    t, lost = flashlog_campaign(trials, seed)
    fig["powercut_trials"] = t
    fig["powercut_records_lost"] = lost
    fig["budgets"] = BUDGETS
    fig["within_budget"] = all(
        k in fig and (fig[k] == v if k == "powercut_records_lost" else fig[k] <= v) for k, v in BUDGETS.items()
    )
    return fig


def _wire_bytes(messages, peer):
    """Bytes on the wire of ``messages``: re-encoding is exact (deterministic CBOR), plus framing."""
    from shared_protocol import encode_frame

    total = 0
    for m in messages:
        dev = m["device_id"]
        msg = {k: v for k, v in m.items() if k not in ("auth", "rx_time")}
        total += len(encode_frame(msg, peer.keyring[dev]))
    return total


if __name__ == "__main__":
    print(json.dumps(run(days=int(sys.argv[1]) if len(sys.argv) > 1 else 3), indent=1))
