"""Clock drift and resync: a node whose clock is set wrong and runs fast is corrected at every time sync.

Virtual boards only (the drift and the offset are injected); on a real board the same figures come
from the health records' ``clock_offset_ms`` over a long run (the soak). Worst clock error: the
largest correction the node applied (@@STEP: its clock minus the gateway's just before a sync).
"""

import pytest

from hil_tests.rig.field import health_records, intervals
from tools.virtual_field.node import START

pytestmark = pytest.mark.sim
DRIFT_PPM = 400  # 34.6 s a day: a cheap crystal in the cold, and then some
OFFSET_S = 120  # the clock set two minutes wrong at provisioning
NOON = START + 12 * 3600  # boot at noon: the drift builds up for 12 h until the midnight resync


@pytest.mark.virtual_only("injects clock drift and a wrong initial clock into the virtual board")
@pytest.mark.bench(days=0.55, start=NOON, faults={"clock_drift_ppm": DRIFT_PPM, "clock_offset_s": OFFSET_S})
def test_clock_drift_and_offset_are_corrected_at_resync(bench):
    bench.run_to_end()
    steps = bench.board.node.clock_steps()  # (node clock ms before, step ms) of every correction
    bench.check(len(steps) >= 2, "clock corrections: at boot and at the day's resync", ">= 2", steps)
    first = steps[0][1] / 1000.0
    bench.check(abs(first + OFFSET_S) < 2, "the first sync takes out the provisioning offset", -OFFSET_S, first)
    daily = [s / 1000.0 for _, s in steps[1:]]
    want = DRIFT_PPM * 1e-6 * (86400 - NOON % 86400)  # the drift from the boot sync at noon to midnight
    bench.check(all(abs(d + want) < 2 for d in daily), "the midnight resync takes out the drift since noon",
                "-%.1f s (+-2 s)" % want, daily)  # fmt: skip
    worst = max(abs(s) for _, s in steps[1:]) / 1000.0
    bench.figure("worst_clock_error_s", round(worst, 3))
    hs = health_records(bench.messages)
    offsets = [h["clock_offset_ms"] for h in hs]
    bench.check(any(abs(o / 1000.0 + want) < 2 for o in offsets), "health reports the midnight correction",
                "clock_offset_ms ~ %d" % (-want * 1000), offsets[-10:])  # fmt: skip
    starts = [s for s, _, _ in intervals(bench.of_type("report"))]
    bench.check(all(s % 900 == 0 for s in starts), "interval stamps on the 15-minute grid after the steps",
                "aligned", [s for s in starts if s % 900][:5])  # fmt: skip
    bench.check(bench.peer.errors == {}, "no frame rejected", {}, bench.peer.errors)


@pytest.mark.virtual_only("injects clock drift into the virtual board")
@pytest.mark.bench(days=0.06, start=START + 23 * 3600, faults={"clock_drift_ppm": 2000})
def test_no_interval_twice_when_a_resync_steps_the_clock_back(bench):
    bench.run_to_end()  # boot sync at 23:00, 7 s of drift by midnight, the day's resync steps it back
    steps = [s for _, s in bench.board.node.clock_steps()]
    bench.check(any(s < -1000 for s in steps), "a backward step at the midnight resync", "< -1 s", steps)
    iv = intervals(bench.of_type("report"))
    seen = {}
    for start, n, _ in iv:
        seen.setdefault(start, set()).add(n)
    twice = {s: sorted(v) for s, v in seen.items() if len(v) > 1}
    bench.check(not twice, "each interval closed once (one sample count per start)", "no start twice", twice)
