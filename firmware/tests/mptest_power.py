# Power modes: hysteresis sequences, plans per mode, never silent before survival, RTC word.
# Runs inside MicroPython.
from fieldnode import config, power
from fieldnode.power import FULL, SAVER, SURVIVAL, PowerManager


def _cfg():
    return config.unprovisioned(b"uid", "test")  # default thresholds 30/40, 12/20


def _run(pm, socs):
    """Feed a charge sequence; returns the list of (mode, changed)."""
    return [pm.update(s) for s in socs]


def test_thresholds_from_config_dict_and_tuple():
    for src in (
        _cfg(),
        {"saver_below_pct": 30, "saver_above_pct": 40, "survival_below_pct": 12, "survival_above_pct": 20},
        (30, 40, 12, 20),
    ):
        pm = PowerManager(src)
        assert (pm.saver_below, pm.saver_above, pm.survival_below, pm.survival_above) == (30, 40, 12, 20)
    for bad in ((30, 30, 12, 20), (30, 40, 20, 12), (15, 40, 12, 20)):
        try:
            PowerManager(bad)
            assert False, "expected ValueError for %r" % (bad,)
        except ValueError:
            pass


def test_steps_down_and_up_with_hysteresis():
    pm = PowerManager(_cfg())
    seq = (80, 31, 30, 29.9, 35, 39.9, 40, 50)
    got = _run(pm, seq)
    assert got == [
        (FULL, False),
        (FULL, False),
        (FULL, False),  # 30 is not below 30
        (SAVER, True),
        (SAVER, False),
        (SAVER, False),
        (FULL, True),  # at saver_above
        (FULL, False),
    ], got
    got = _run(pm, (25, 13, 12, 11.9, 15, 19.9, 20, 35, 40))
    assert got == [
        (SAVER, True),
        (SAVER, False),
        (SAVER, False),
        (SURVIVAL, True),
        (SURVIVAL, False),
        (SURVIVAL, False),
        (SAVER, True),
        (SAVER, False),
        (FULL, True),
    ], got


def test_no_oscillation_around_one_threshold():
    for center in (30.0, 12.0, 40.0, 20.0):
        pm = PowerManager(_cfg())
        pm.update(center + 0.5)
        changes = 0
        for i in range(200):
            _, changed = pm.update(center + (0.3 if i % 2 else -0.3))  # noise of a fuel gauge
            changes += changed
        assert changes <= 1, (center, changes)


def test_jumps_skip_modes():
    pm = PowerManager(_cfg())
    assert pm.update(5) == (SURVIVAL, True)
    assert pm.update(95) == (FULL, True)
    pm = PowerManager(_cfg(), mode=SURVIVAL)
    assert pm.update(16) == (SURVIVAL, False)
    assert pm.update(22) == (SAVER, True)


def test_unknown_charge_keeps_mode():
    pm = PowerManager(_cfg(), mode=SAVER)
    assert pm.update(None) == (SAVER, False)
    assert pm.update(float("nan")) == (SAVER, False)
    assert pm.mode == SAVER and not pm.pending


def test_never_silent_before_survival():
    cfg = _cfg()
    pm = PowerManager(cfg)
    acked = FULL  # the mode the gateway last heard about
    seen = set()
    # a battery draining for a week (a little charge at noon), then sunny days; the uplink fails every third hour
    soc = 60.0
    for hour in range(24 * 12):
        sun = 1.5 if hour < 24 * 7 else 6.0
        soc = min(100.0, max(0.0, soc + (sun if 10 <= hour % 24 < 14 else -0.7)))
        pm = PowerManager(cfg).from_int(pm.to_int())  # deep sleep between wakes
        mode, changed = pm.update(soc)
        seen.add(mode)
        if changed:
            assert pm.must_report(changed) and power.must_report(changed, mode), (hour, mode)
        if mode != acked:
            assert pm.must_report(changed), "hour %d: %s not yet announced but silent" % (hour, mode)
        if mode == SURVIVAL:
            assert pm.must_report(False), "survival wakes always report"
        if pm.must_report(changed) and hour % 3:
            pm.reported()
            acked = mode
    assert seen == {FULL, SAVER, SURVIVAL} and pm.mode == FULL, (seen, pm.mode)


def test_announcement_survives_deep_sleep_until_acked():
    cfg = _cfg()
    pm = PowerManager(cfg)
    mode, changed = pm.update(10)
    assert (mode, changed) == (SURVIVAL, True)
    # the uplink fails, the node sleeps: the RTC word keeps the pending announcement
    woke = PowerManager(cfg).from_int(pm.to_int())
    assert woke.mode == SURVIVAL and woke.pending and woke.must_report(False)
    assert woke.update(10.5) == (SURVIVAL, False)
    woke.reported()
    again = PowerManager(cfg).from_int(woke.to_int())
    assert again.mode == SURVIVAL and not again.pending
    assert power.must_report(False, SAVER) is False and power.must_report(False, SAVER, True) is True


def test_rtc_word_roundtrip_and_garbage():
    cfg = _cfg()
    for mode in power.MODES:
        for pending in (False, True):
            pm = PowerManager(cfg, mode=mode, pending=pending)
            w = pm.to_int()
            assert 0 <= w <= 0xFF  # fits a "B" field of the RTC header
            back = PowerManager(cfg)
            assert back.from_int(w) is back and back.mode == mode and back.pending == pending
    for junk in (None, 0, 0xFF, 0xA3, 0xA8, 0x1A2, 0x5A02, -1, 0x12345678):
        pm = PowerManager(cfg, mode=SAVER, pending=True).from_int(junk)
        assert pm.mode == FULL and not pm.pending, junk


def test_plans():
    cfg = _cfg()
    full = power.plan(FULL, cfg)
    assert (full.sample_s, full.summary_min, full.report_min, full.health_min) == (60, 15, 60, 60)
    assert full.sampling and "spectral" in full.sensors_on and "gnss" in full.sensors_on
    saver = power.plan(SAVER, cfg)
    assert (saver.sample_s, saver.summary_min, saver.report_min, saver.health_min) == (300, 15, 240, 60)
    assert saver.sampling and "gnss" not in saver.sensors_on and "spectral" in saver.sensors_on
    assert saver.report_min % saver.summary_min == 0
    surv = power.plan(SURVIVAL, cfg)
    assert not surv.sampling and surv.sensors_on == () and not surv.sensors_on
    assert surv.health_min == 360 and surv.report_min == 360 and surv.sample_s == 6 * 3600
    cfg.sample_s, cfg.report_min, cfg.health_min = 900, 480, 720
    saver = power.plan(SAVER, cfg)
    assert (saver.sample_s, saver.report_min) == (900, 480)  # never more often than configured
    surv = power.plan(SURVIVAL, cfg)
    assert surv.health_min == 720 and surv.sample_s == 720 * 60
    assert full.load_w > saver.load_w > surv.load_w > 0
    try:
        power.plan("turbo", cfg)
        assert False, "expected ValueError"
    except ValueError:
        pass
