"""`fieldline bench fleet` on a small fleet: every injected fault detected with the right cause within 24 h,
false alerts within budget, the ranking timed on both backends."""

from tools.bench.fleet import BUDGETS, run


def test_the_small_bench_meets_the_detection_budgets():
    fig = run(small=True)
    assert fig["faults_injected"] >= 10 and fig["faults_detected_within_24h"] == fig["faults_injected"], fig["missed"]
    assert fig["false_alerts_per_100_device_days"] <= BUDGETS["false_alerts_per_100_device_days"], fig
    assert fig["detection_delay_h_max"] <= 24
    assert fig["rank_10k_s_sqlite"] > 0 and fig["attention_rows"] > 0
    assert fig.get("rank_10k_s_postgresql") or fig.get("postgresql_skipped")
    assert fig["ingest_rows_per_s"] > 1000 and fig["duplicate_batch_s"] < 1
