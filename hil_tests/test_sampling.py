"""Sampling cadence and the interval and daily summaries, against the node's own config and the field's truth.

Cadence (both targets): every interval the node closed arrives once, consecutive, summary_min
apart, each with summary_min x 60 / sample_s samples; health every health_min. Truth (a virtual
board, whose simulated chips read the field model: the model is the reference; a real board has
no such reference on the bench and records only the cadence): interval means of air temperature
within 0.15 degC of the true mean of their minutes; the daily midday NDVI and canopy temperature
within the performance budget (0.02, 0.3 degC) on a clear day, NDVI within 0.05 on any day.
"""

import pytest

from hil_tests.rig.field import health_records, intervals, worst_interval_error
from tools.bench.firmware import BUDGETS, accuracy

pytestmark = pytest.mark.sim
DAYS = 1.05  # a whole day and the first wake of the next: the daily summary of day 1 sent
SEED = 7  # a clear first day at 52 N in June (the accuracy budget is judged on clear days)


def _node_intervals(bench):
    c = bench.diag(["config"])["config"]
    return c["sample_s"], c["summary_min"], c["report_min"], c["health_min"]


@pytest.mark.bench(days=DAYS, seed=SEED, real_s=1500)
def test_cadence_and_summaries_every_interval_once_and_true(bench):
    sample_s, summary_min, _report_min, health_min = _node_intervals(bench)
    bench.run_to_end()
    reports = bench.of_type("report")
    iv = intervals(reports)
    starts = [s for s, _, _ in iv]
    step = 60 * summary_min
    bench.check(len(iv) >= 2, "intervals received", ">= 2", len(iv))
    lengths = sorted({m for _, _, m in iv})
    bench.check(lengths == [summary_min], "every report's interval length is the configured one", summary_min, lengths)
    dups = len(starts) - len(set(starts))
    bench.figure("duplicates", dups)
    bench.check(dups == 0, "no interval twice", 0, dups)
    gaps = [(a, b) for a, b in zip(starts, starts[1:], strict=False) if b - a != step]
    bench.check(not gaps, "consecutive intervals %d s apart" % step, "no gap or overlap", gaps[:5])
    full = step // sample_s
    short = [(s, n) for s, n, _ in iv[1:] if n != full]  # the first one may have started mid-interval
    bench.check(not short, "samples per interval (after the first)", full, short[:5])
    span_s = starts[-1] - starts[0] + step
    hs = health_records(bench.messages)
    want = int(span_s / (60 * health_min)) - 1
    bench.check(len(hs) >= want, "health records every %d min" % health_min, ">= %d" % want, len(hs))
    bench.check(bench.peer.errors == {}, "no frame rejected on a clean link", {}, bench.peer.errors)
    bench.figure("intervals_received", len(iv))
    if not bench.is_virtual:
        return  # no truth on the bench: cadence only
    per_day = 86400 // step
    bench.check(len(iv) >= per_day, "a whole day of intervals", ">= %d" % per_day, len(iv))
    worst, n = worst_interval_error(reports, seed=SEED, limit=24)
    bench.figure("air_temp_worst_err_c", round(worst, 3))
    bench.check(n >= 24 and worst < 0.15, "interval air temperature means against the truth",
                "< 0.15 degC over >= 24 intervals", "%.3f degC over %d" % (worst, n))  # fmt: skip
    ndvi_err, canopy_err, clear, rows = accuracy(bench.peer, SEED, bench.board.start_epoch, 1)
    bench.figure("ndvi_abs_err", ndvi_err)
    bench.figure("canopy_temp_abs_err_c", canopy_err)
    bench.check(len(rows) == 1 and clear == 1, "one daily summary for the (clear) day", "1 row, clear", rows)
    bench.check(ndvi_err <= BUDGETS["ndvi_abs_err"] and canopy_err <= BUDGETS["canopy_temp_abs_err_c"],
                "daily midday NDVI and canopy temperature on clear days",
                "ndvi <= %s, canopy <= %s degC" % (BUDGETS["ndvi_abs_err"], BUDGETS["canopy_temp_abs_err_c"]),
                {"ndvi": ndvi_err, "canopy": canopy_err, "clear_days": clear, "rows": rows})  # fmt: skip
    bad = [r for r in rows if "ndvi" in r and abs(r["ndvi"][0] - r["ndvi"][1]) >= 0.05]
    bench.check(not bad, "daily NDVI on every day (cloudy too)", "within 0.05", bad)
