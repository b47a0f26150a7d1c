"""Power cuts: the flash log's campaign (hundreds of cuts at random writes), the whole node cut at random flash
writes, and the bench relay cutting a running node.

Promises checked: no record that was stored is lost, none is corrupted, the frame counter never goes
back (no frame of the node rejected as a replay), and the node always boots again.
"""

import random

import pytest

from hil_tests.rig.campaign import flash_campaign
from hil_tests.rig.field import POWER_ON_CAUSES, intervals

pytestmark = pytest.mark.sim
NODE_CUTS = 8  # cuts of the whole node in the quick profile (the soak adds its own)
CUT_SCHEDULE = [random.Random(11).randint(5, 60) for _ in range(NODE_CUTS)]  # flash writes after each boot


@pytest.mark.virtual_only("cuts the power at a chosen flash write of the virtual flash")
def test_flash_log_survives_hundreds_of_power_cuts(request, figures):
    trials = request.config.getoption("--powercut-trials") or (2000 if request.config.getoption("--soak") else 300)
    fig = flash_campaign(trials, seed=1)
    figures.update(trials=fig["trials"], records_lost=fig["lost"], records_corrupted=fig["corrupt"],
                   torn_writes=fig["torn"], records_checked=fig["checked"])  # fmt: skip
    assert fig["trials"] == trials, "expected %d trials, the campaign ran %s" % (trials, fig)
    assert fig["lost"] == 0 and fig["corrupt"] == 0, (
        "expected no stored record lost and no corrupt region; received %s" % fig
    )
    assert fig["torn"] > trials // 2, "expected most cuts to tear a write (a real test of the log); received %s" % fig


def dedup_intervals(reports):
    """{start: set of (samples, air mean)} over every copy of every interval received."""
    out = {}
    for m in reports:
        means = m["stats"].get("air_temperature", {}).get("mean", [None] * len(m["samples"]))
        for j, (start, n, _) in enumerate(intervals([m])):
            out.setdefault(start, set()).add((n, means[j]))
    return out


@pytest.mark.virtual_only("cuts the power at chosen flash writes (powercut_at_write)")
@pytest.mark.bench(days=0.5, cut_schedule=CUT_SCHEDULE)
def test_node_cut_at_random_flash_writes_always_boots_and_loses_nothing_stored(bench):
    def log_after_each_boot():
        boots = len(bench.of_type("hello"))
        if boots > asked[0]:
            asked[0] = boots
            bench.peer.request({"type": "diag_request", "req_id": 1000 + boots, "items": ["log"]})
        return False

    asked = [0]
    while not bench.board.done():
        bench.peer.wait(log_after_each_boot, 0.2)
    bench.run_to_end()
    node = bench.board.node
    cuts = node.restarts["power_on"]
    bench.figure("node_power_cuts", cuts)
    bench.check(cuts >= NODE_CUTS // 2, "power cuts of the node", ">= %d" % (NODE_CUTS // 2), cuts)
    hellos = bench.of_type("hello")
    bench.check(len(hellos) == cuts + 1 and all(h["reset_cause"] == "power_on" for h in hellos),
                "a hello (power_on) after every boot", cuts + 1, [h["reset_cause"] for h in hellos])  # fmt: skip
    bench.check(bench.peer.errors == {}, "no frame rejected: the counter never went back", {}, bench.peer.errors)
    logs = [r["items"]["log"] for r in bench.of_type("diag_response") if "log" in (r.get("items") or {})]
    bench.check(logs and all(lg["corrupt"] == 0 for lg in logs), "the flash log after each boot",
                "no corrupt record", logs)  # fmt: skip
    cells = dedup_intervals(bench.of_type("report"))
    conflicts = {s: v for s, v in cells.items() if len(v) > 1}
    bench.figure("records_corrupted", len(conflicts))
    bench.check(not conflicts, "every copy of an interval has the same content", "one value per interval",
                sorted(conflicts.items())[:3])  # fmt: skip
    starts = sorted(cells)
    missing = sum((b - a) // 900 - 1 for a, b in zip(starts, starts[1:], strict=False))
    bench.figure("intervals_missing", missing)
    # only the record being appended when the power went can be missing: it was never stored
    bench.check(missing <= cuts, "intervals missing after %d cuts" % cuts, "<= %d (one torn append per cut)" % cuts,
                missing)  # fmt: skip


@pytest.mark.bench(days=0.2, sleep="exit", intervals={"report_min": 15}, real_s=0)
def test_relay_power_cycle_boots_and_keeps_the_stored_records(bench):
    if not bench.is_virtual:
        bench.reset()
    bench.expect("report", 120 if bench.is_virtual else 900, where=lambda m: m["samples"],
                 what="no report with intervals before the power cycle")  # fmt: skip
    before = {s for s, _, _ in intervals(bench.of_type("report"))}
    n_hello = len(bench.of_type("hello"))
    bench.power_cycle()
    hello = bench.expect("hello", 60, where=lambda m: bench.of_type("hello").index(m) >= n_hello,
                         what="no hello after the relay restored the power")  # fmt: skip
    causes = ("power_on",) if bench.is_virtual else POWER_ON_CAUSES
    bench.check(hello["reset_cause"] in causes, "the reset cause after the relay cycle", causes, hello)
    last = max(before)
    bench.expect("report", 120 if bench.is_virtual else 900, where=lambda m: m["samples"] and m["start"] > last,
                 what="no new interval reported after the power cycle")  # fmt: skip
    cells = dedup_intervals(bench.of_type("report"))
    bench.check(before <= set(cells), "intervals reported before the cut are still there", sorted(before),
                sorted(cells))  # fmt: skip
    bench.check(bench.peer.errors == {}, "no frame rejected after the cycle (counter kept)", {}, bench.peer.errors)
    if bench.is_virtual:
        bench.check(bench.board.node.restarts["power_on"] == 1, "one power-on restart", 1, bench.board.node.restarts)
