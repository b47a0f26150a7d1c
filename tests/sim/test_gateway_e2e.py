"""The gateway end to end: real firmware nodes on ptys -> gateway process -> real Mosquitto.

Done-when tests of issue 4: every interval summary arrives exactly once after dedup, in one
stream; and the same with 20% of frames damaged on the link, the gateway SIGKILLed mid-forward
and the broker down for a simulated day. Forged and replayed frames are rejected and counted.
"""

import os
import signal
import time

import pytest
import serial

from shared_protocol import encode_frame
from tools.virtual_field.farm import VirtualFarm
from tools.virtual_field.node import DAY, START

pytestmark = pytest.mark.sim

SPEED = 1500  # simulated seconds per real second: a day in ~1 min, paced on one timeline
REPORT_SLACK_S = 3 * 3600  # intervals closed in the last hours may still sit in a node's flash


def _skipped(vn):
    """Interval starts a node's clock jumped over: it stepped forward at a time sync (a node that
    lagged the field's shared timeline under load). The node does not report those intervals.
    A step at boot (the first wake syncs before it samples: a node that started late) also skips
    the interval the node booted in: it never sampled it."""
    out = set()
    for before_ms, step_ms in vn.clock_steps():
        if step_ms <= 0:
            continue
        t0, t1 = before_ms / 1000.0, (before_ms + step_ms) / 1000.0
        cell = (int(t0) // 900 + 1) * 900
        if int(t0) <= vn.start_epoch:
            out.add(int(t0) // 900 * 900)
        while cell <= t1:
            out.add(cell)
            cell += 900
    return out


def _check_every_interval_once(farm, readings, days):
    """Every 15-minute cell every node sampled, from the start to near the end: present, one value."""
    for i, seed in enumerate(farm.seeds):
        skipped = _skipped(farm.nodes[i])
        expected = [t for t in range(START, START + int(days * DAY) - REPORT_SLACK_S, 900) if t not in skipped]
        assert len(expected) > 0.9 * (days * DAY - REPORT_SLACK_S) / 900, "node %d skipped %d intervals" % (
            seed, len(skipped))
        src = farm.source_of(seed)
        cells = {}
        for (s, sensor, q, ts, rule, rev), vals in readings.items():
            if s == src and q == "air_temperature" and rev == 0:
                assert sensor == "node" and rule == "mean"
                cells[ts] = vals
        missing = [t for t in expected if t not in cells]
        assert not missing, "node %d: %d of %d intervals missing upstream, first %s; gateway log:\n%s" % (
            seed, len(missing), len(expected), missing[:5], farm.gateway_log()[-2000:])
        for t in expected:
            values = {v[0] for v in cells[t]}
            assert len(values) == 1, "node %d cell %d arrived with different values %s" % (seed, t, values)
            assert cells[t][0][1] > 0, "node %d cell %d has n = 0" % (seed, t)
        # every quantity of the node is on the grid with one value per key (no conflicting duplicates)
    conflicts = {k: v for k, v in readings.items() if len({x[0] for x in v}) > 1}
    assert not conflicts, "keys with two values after dedup: %s" % list(conflicts.items())[:3]


def test_three_nodes_one_stream_every_interval_once(tmp_path):
    farm = VirtualFarm(tmp_path / "farm", seeds=(1, 2, 3), days=1.0, speed=SPEED)
    try:
        farm.start()
        assert farm.wait_nodes(600) == [0, 0, 0], [farm.node_log(i)[-1500:] for i in range(3)]
        st = farm.wait_drained(60)
        readings, records, batches = farm.received()
    finally:
        farm.stop()
    assert batches > 0
    _check_every_interval_once(farm, readings, 1.0)
    # one stream: all three nodes, their health, and the gateway's own health in the same batches
    sources = {k[0] for k in readings}
    assert {farm.source_of(s) for s in (1, 2, 3)} <= sources
    kinds = {r["kind"] for r in records}
    assert {"node_health", "gateway_health"} <= kinds, kinds
    assert {"battery_soc", "battery_voltage", "ndvi", "canopy_temperature"} <= {k[2] for k in readings}
    assert st["rejected_frames"] == {}, st["rejected_frames"]


def test_faulty_link_gateway_killed_broker_down_nothing_lost(tmp_path):
    days = 2.0
    farm = VirtualFarm(tmp_path / "farm", seeds=(4, 5, 6), days=days, speed=SPEED, fault_rate=0.2)
    try:
        farm.start()
        # let the nodes run a while, then kill the gateway in the middle of its work
        _wait_batches(farm, 3, 60)
        farm.kill_gateway(signal.SIGKILL)
        farm.start_gateway()
        # upstream outage for about a simulated day: the outbox holds it; then the broker is back
        farm.broker.stop()
        time.sleep(DAY / SPEED)
        st = farm.status()
        assert st["outbox"]["batches"] > 0, st["outbox"]
        assert st["uplinks"][0]["connected"] is False
        farm.kill_gateway(signal.SIGKILL)  # killed again with a full outbox
        farm.start_gateway()
        farm.broker.start()
        time.sleep(0.3)
        farm.kill_gateway(signal.SIGKILL)  # and once more while the backlog drains
        farm.start_gateway()
        assert all(rc == 0 for rc in farm.wait_nodes(900)), [farm.node_log(i)[-1500:] for i in range(3)]
        st = farm.wait_drained(120)
        readings, _records, _batches = farm.received()
        proxy_stats = [p.stats for p in farm.proxies]
    finally:
        farm.stop()
    faults = sum(s["drop"] + s["corrupt"] + s["duplicate"] + s["reorder"] for s in proxy_stats)
    frames = sum(s["frames_up"] + s["frames_down"] for s in proxy_stats)
    assert faults > 0.1 * frames, proxy_stats  # the link really was bad
    _check_every_interval_once(farm, readings, days)
    assert farm.gw_starts == 4
    assert st["rejected_frames"].get("framing", 0) + st["rejected_frames"].get("forged", 0) + st[
        "rejected_frames"].get("decode", 0) + st["rejected_frames"].get("replayed", 0) > 0, st["rejected_frames"]


def _wait_batches(farm, n, timeout_s):
    end = time.time() + timeout_s
    while len(farm.sub.payloads) < n:
        if time.time() > end:
            raise AssertionError("only %d batches upstream after %d s:\n%s" % (
                len(farm.sub.payloads), timeout_s, farm.gateway_log()[-2000:]))
        time.sleep(0.1)


def test_forged_and_replayed_frames_are_rejected_and_counted(tmp_path):
    # no nodes: the test is the node, writing frames straight into the gateway's link
    farm = VirtualFarm(tmp_path / "farm", seeds=(7,), days=0.01, speed=SPEED)
    try:
        farm.start()
        farm.wait_nodes(120)
        cfg = farm.configs[0]
        dev, key = cfg["device_id"], bytes.fromhex(cfg["key"])
        port = serial.Serial(farm.proxies[0].node_path, timeout=0.5)
        hello = {"type": "hello", "device_id": dev, "fw_version": "9.9.9", "hw": "test", "provisioned": True,
                 "ack_req": True}
        good = encode_frame(dict(hello, counter=900000), key)
        forged = encode_frame(dict(hello, counter=900001), bytes(32))  # the wrong key
        port.write(good + good + forged)  # the second `good` is a replay
        port.flush()
        deadline = time.time() + 10
        while time.time() < deadline:
            rej = farm.status()["rejected_frames"]
            if rej.get("replayed") and rej.get("forged"):
                break
            time.sleep(0.1)
        port.close()
        assert rej.get("replayed") == 1 and rej.get("forged") == 1, rej
        assert os.path.exists(os.path.join(farm.work, "gwdata", "gateway.db"))
    finally:
        farm.stop()
