"""Power modes as the battery falls and recovers: full -> saver -> survival with the solar panel covered,
then back up once it is uncovered; every change announced, no flapping, no sampling in survival.

Virtual boards only: the battery's charge (battery_soc) and the panel (solar_covered) are set in
the virtual field. The node runs with every sleep a process exit (sleep="exit"), so the panel can
be uncovered between two wakes without a reset.
"""

import pytest

from hil_tests.rig.field import health_records
from tools.virtual_field.node import START

pytestmark = pytest.mark.sim
EVENING = START + 18 * 3600  # 18:00 UTC: the battery falls overnight, the sun brings it back at noon


def _modes(bench):
    out = []
    for h in health_records(bench.messages):
        if not out or out[-1] != h["power_mode"]:
            out.append(h["power_mode"])
    return out


@pytest.mark.virtual_only("sets the battery's charge and covers the solar panel in the virtual field")
@pytest.mark.bench(days=1.0, start=EVENING, sleep="exit", faults={"battery_soc": 13, "solar_covered": 1})
def test_power_modes_step_down_and_recover_with_every_change_announced(bench):
    ok = bench.peer.wait(lambda: "survival" in _modes(bench), 120)
    bench.check(ok, "the node falls to survival with the panel covered", "full/saver -> survival", _modes(bench))
    fell = _modes(bench)
    bench.board.node.faults.pop("solar_covered", None)  # uncovered: the next wake sees the sun when it comes
    ok = bench.peer.wait(lambda: _modes(bench)[-1] == "full" and len(_modes(bench)) > len(fell), 120)
    bench.check(ok, "the node climbs back to full once the panel charges the battery", "survival -> ... -> full",
                _modes(bench))  # fmt: skip
    back = health_records(bench.messages)[-1]["time"]
    bench.peer.wait(lambda: any(any(m["samples"]) and m["start"] >= back for m in bench.of_type("report")), 60)
    bench.board.node.stop()
    modes = _modes(bench)
    order = {"full": 0, "saver": 1, "survival": 2}
    down = [m for m in modes[: modes.index("survival") + 1]]
    bench.check([order[m] for m in down] == sorted(order[m] for m in down), "on the way down: only steps down",
                "full -> saver -> survival", modes)  # fmt: skip
    bench.check(len(modes) <= 5, "no flapping at a threshold (hysteresis)", "<= 5 mode changes in all", modes)
    hs = health_records(bench.messages)
    surv = [h["time"] for h in hs if h["power_mode"] == "survival"]
    sampled = [m for m in bench.of_type("report") if any(m["samples"]) and surv[0] < m["start"] < surv[-1]]
    bench.check(not sampled, "no sampling in survival", "intervals between the survival records empty (0 samples)",
                sampled[:2])  # fmt: skip
    after = [m for m in bench.of_type("report") if any(m["samples"]) and m["start"] > surv[-1]]
    bench.check(after, "sampling resumed after the recovery", "intervals with samples after survival", modes)
    bench.check(bench.peer.errors == {}, "no frame rejected", {}, bench.peer.errors)
