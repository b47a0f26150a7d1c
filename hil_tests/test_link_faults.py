"""Link faults with the gateway in the loop: loss, corruption, duplication, reordering and a long disconnection
between the node and the real gateway process; every sampled interval must reach the upstream (Mosquitto)
exactly once after dedup.

The attenuated-link test runs on both targets (a real board with --attenuator: its port relayed
through the same frame-fault proxy) with the suite as the gateway; the gateway-in-the-loop test needs
the virtual board (BenchFarm, rig/farm.py, on tools.virtual_field.farm.VirtualFarm, runs its own node).
"""

import os

import pytest

from hil_tests.rig.farm import BenchFarm, check_every_interval_once, upstream_values
from hil_tests.rig.field import intervals

pytestmark = pytest.mark.sim


@pytest.mark.virtual_only("the gateway-in-the-loop farm runs its own virtual node")
def test_lossy_link_and_long_disconnection_every_interval_upstream_once(logdir, figures):
    days = 0.6
    # reports every 30 min: ~70 frames up and down in 14 h, a third of them damaged (every kind, several times)
    farm = BenchFarm(os.path.join(logdir, "farm"), seed=3, days=days, fault_rate=0.3, intervals={"report_min": 30})
    t0 = farm.start_epoch
    farm.disconnect_between(t0 + 5 * 3600, t0 + 7 * 3600)  # the link pulled for 2 hours at dawn
    try:
        farm.start()
        rcs = farm.wait_nodes(300)
        assert rcs == [0], "expected the node to finish its day (exit 0); received %s\n%s" % (
            rcs, farm.node_log(0)[-1500:])  # fmt: skip
        st = farm.wait_drained(60)
        cells = farm.upstream_cells()
        stats = dict(farm.proxies[0].stats)
    finally:
        farm.stop()
    faults = sum(stats[k] for k in ("drop", "corrupt", "duplicate", "reorder"))
    expected = farm.expected_cells()
    figures.update(link_faults_injected=faults, intervals_expected=len(expected),
                   intervals_upstream=len([t for t in expected if t in upstream_values(cells)]),
                   disconnected_h=round(farm.disconnected_s / 3600, 1))  # fmt: skip
    assert faults > 0.1 * (stats["frames_up"] + stats["frames_down"]), "expected a bad link; received %s" % stats
    assert farm.disconnected_s >= 1.5 * 3600, "expected a 2-hour disconnection; received %.0f s" % farm.disconnected_s
    for kind in ("drop", "corrupt", "duplicate", "reorder"):
        assert stats[kind] > 0, "expected every fault kind injected; received %s" % stats
    missing, twice = check_every_interval_once(farm, cells, expected)
    figures["duplicates"] = len(twice)
    rej = st["rejected_frames"]
    assert sum(rej.values()) > 0, "expected the gateway to reject damaged frames; received %s" % rej


@pytest.mark.bench(days=0.5, intervals={"report_min": 30}, real_s=0)
def test_attenuated_link_every_interval_once_at_the_gateway_end(bench):
    att = bench.attenuator
    if att is None:
        pytest.skip("needs the link attenuator on a real board: pass --attenuator (docs/bench-rig.md)")
    bench.expect("report", 60 if bench.is_virtual else 900, what="no report before the faults start")
    att.set(0.3)  # a third of the frames dropped, corrupted, duplicated or held back, both ways
    bench.wait_sim(3 * 3600)
    att.disconnect()  # the cable pulled for an hour
    bench.wait_sim(3600)
    att.reconnect()
    bench.wait_sim(3600)
    att.set(0.0)
    last = max(s for s, _, _ in intervals(bench.of_type("report")))
    bench.expect("report", 60 if bench.is_virtual else 1800, where=lambda m: any(m["samples"]) and m["start"] > last,
                 what="no report after the link healed")  # fmt: skip
    stats = att.stats
    bench.figure("link_faults_injected", att.faults_injected())
    bench.check(att.faults_injected() >= 5 and stats["paused_bytes_up"] > 0, "a bad link, then none",
                ">= 5 faults and bytes lost while disconnected", stats)  # fmt: skip
    cells = {}
    for start, n, _ in intervals(bench.of_type("report")):
        cells.setdefault(start, set()).add(n)
    starts = sorted(cells)
    twice = {s: sorted(v) for s, v in cells.items() if len(v) > 1}
    gaps = [(a, b) for a, b in zip(starts, starts[1:], strict=False) if b - a != 900]
    bench.check(not twice and not gaps, "every interval at the gateway end once (after dedup), none missing",
                "consecutive, one content each", {"twice": twice, "gaps": gaps[:5]})  # fmt: skip
    bench.check(sum(bench.peer.errors.values()) > 0, "damaged frames rejected, not decoded", "> 0 rejections",
                bench.peer.errors)  # fmt: skip
