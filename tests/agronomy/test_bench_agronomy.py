"""`fieldline bench agronomy`: run() gives every figure, and the agreement with refet and pyet is within the
tolerances the bench explains (tools/bench/agronomy.py, docs/agronomy.md). No timing assertions."""

from tools.bench import agronomy as bench

KEYS = (
    "et0_hourly_year_ms",
    "refet_hourly_year_ms",
    "pyet_hourly_year_ms",
    "max_abs_diff_refet_mm_h",
    "max_abs_diff_pyet_mm_h",
    "speedup_vs_refet",
    "speedup_vs_pyet",
    "notes",
)


def test_bench_figures_and_agreement():
    fig = bench.run(repeats=1)
    missing = [k for k in KEYS if k not in fig]
    assert not missing, missing
    assert fig["hours"] == 8760
    assert all(fig[k] > 0 for k in KEYS if k.endswith("_ms") or k.startswith("speedup"))
    # hours where both libraries apply the low-sun rule alike: rounding of constants only
    assert fig["max_abs_diff_refet_same_rule_mm_h"] < bench.TOLERANCE_SAME_RULE_MM_H, fig
    assert fig["max_abs_diff_pyet_same_rule_mm_h"] < bench.TOLERANCE_SAME_RULE_MM_H, fig
    # all hours: plus the sunrise/sunset hours where only one side uses the night Rs/Rso (bounded by Rnl)
    assert fig["max_abs_diff_refet_mm_h"] < bench.TOLERANCE_ALL_MM_H, fig
    assert fig["max_abs_diff_pyet_mm_h"] < bench.TOLERANCE_ALL_MM_H, fig
    assert 0 < fig["hours_low_sun_rule_differs"] < 8760 * 0.1
    assert 900 < fig["et0_year_mm"] < 1600  # a sunny year at 45 N: a sanity check of the synthetic weather
    assert isinstance(fig["notes"], str) and "refet" in fig["notes"] and "pyet" in fig["notes"]
