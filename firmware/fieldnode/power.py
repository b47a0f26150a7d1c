"""Power modes with hysteresis: full -> saver -> survival as the battery falls, and back as it recovers.

    pm = PowerManager(cfg).from_int(rtc_byte); mode, changed = pm.update(soc_pct)
    p = plan(mode, cfg); ... if pm.must_report(changed): send health, wait for ack, pm.reported()

Steps down when the state of charge is strictly below a *_below threshold and up only when it is at
or above the matching *_above threshold, so a battery hovering at one threshold never flips the mode.
A step can skip a mode (full -> survival below survival_below; survival -> full at saver_above).
An unknown charge (None or NaN: gauge failed) keeps the mode.

Plans (what each mode does):
    full      the configured intervals; every sensor.
    saver     samples at most every 5 min (300 s), reports at most every 4 h (240 min);
              GNSS off (time comes from the gateway); summary interval and health as configured.
    survival  no sampling; wakes only for health, every max(6 h, health_min), and
              reports at each of those wakes; sensors_on is empty (only the power monitor is read).
Never silent: every mode change is announced before the node sleeps. update() raises a pending flag
that only reported() (call it once the gateway acked the health record) clears, and the flag travels
in to_int() (one byte) through deep sleep, so a failed uplink retries at the next wake.
Plan.load_w is the mode's average electrical load (W), an estimate the virtual board's battery uses.
"""

FULL = "full"
SAVER = "saver"
SURVIVAL = "survival"
MODES = (FULL, SAVER, SURVIVAL)


class Plan:
    """What a mode does: wake period, intervals, sensors to sample (empty: none), sampling = any,
    and load_w, the mode's average electrical load (W)."""

    def __init__(self, mode, sample_s, summary_min, report_min, health_min, sensors_on, load_w):
        self.mode = mode
        self.sample_s = sample_s
        self.summary_min = summary_min
        self.report_min = report_min
        self.health_min = health_min
        self.sensors_on = sensors_on
        self.sampling = bool(sensors_on)
        self.load_w = load_w


def plan(mode, cfg):
    """The Plan of ``mode`` for the intervals of ``cfg`` (a Config). The power monitor is read in
    every mode (health, mode decisions); loads: sampling every minute + uplink, every 5 min, health every 6 h.
    Saver reports every 240 min at most, a multiple of every allowed summary_min."""
    if mode not in MODES:
        raise ValueError("unknown power mode %r" % (mode,))
    i = MODES.index(mode)
    h = cfg.health_min if i < 2 else max(cfg.health_min, 360)
    return Plan(
        mode,
        (cfg.sample_s, max(cfg.sample_s, 300), h * 60)[i],
        cfg.summary_min,
        (cfg.report_min, max(cfg.report_min, 240), h)[i],
        h,
        ("spectral", "ir", "air", "tilt", "gnss")[: 5 - i] if i < 2 else (),  # saver: no GNSS
        (0.05, 0.02, 0.004)[i],
    )


def must_report(changed, mode, pending=False):
    """True when the node must send (and get acked) a health record before it sleeps: a mode change
    (above all into survival), an announcement not yet acked, and every survival wake."""
    return bool(changed or pending or mode == SURVIVAL)


class PowerManager:
    """Mode state machine. ``thresholds``: a Config, a dict with the config's *_pct names, or a tuple
    (saver_below, saver_above, survival_below, survival_above)."""

    def __init__(self, thresholds, mode=FULL, pending=False):
        t = thresholds
        if type(t) is not tuple and type(t) is not list:
            t = []
            for a in ("saver", "survival"):  # saver_below_pct, saver_above_pct, survival_below_pct, ...
                for b in ("_below_pct", "_above_pct"):
                    t.append(thresholds[a + b] if type(thresholds) is dict else getattr(thresholds, a + b))
        vb, va, sb, sa = t
        if not (sb < sa <= vb < va):
            raise ValueError("power thresholds need survival_below < survival_above <= saver_below < saver_above")
        if mode not in MODES:
            raise ValueError("unknown power mode %r" % (mode,))
        self.saver_below, self.saver_above, self.survival_below, self.survival_above = t
        self.mode = mode
        self.pending = pending  # a mode change not yet acknowledged by the gateway

    def update(self, soc_pct):
        """Feed the state of charge (%); returns (mode, changed)."""
        if soc_pct is None or soc_pct != soc_pct:
            return self.mode, False
        # forced: the least degraded mode the charge allows; held: the most degraded it still keeps
        forced = 2 if soc_pct < self.survival_below else (1 if soc_pct < self.saver_below else 0)
        held = 2 if soc_pct < self.survival_above else (1 if soc_pct < self.saver_above else 0)
        level = MODES.index(self.mode)
        new = min(max(level, forced), held)
        if new == level:
            return self.mode, False
        self.mode = MODES[new]
        self.pending = True
        return self.mode, True

    def must_report(self, changed):
        return must_report(changed, self.mode, self.pending)

    def reported(self):
        """The gateway acknowledged the record announcing the current mode."""
        self.pending = False

    def to_int(self):
        """One byte for RTC memory: magic nibble 0xA, pending flag (bit 2), mode index (bits 0-1)."""
        return 0xA0 | (4 if self.pending else 0) | MODES.index(self.mode)

    def from_int(self, word):
        """Restore mode and pending flag from to_int() in place; returns self. Anything else
        (power-on garbage, None) gives full with nothing pending (the next update() corrects it)."""
        ok = word is not None and (word & ~7) == 0xA0 and (word & 3) < 3
        self.mode = MODES[word & 3] if ok else FULL
        self.pending = ok and bool(word & 4)
        return self
