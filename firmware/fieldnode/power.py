"""Power modes with hysteresis: full -> saver -> survival as the battery falls, and back as it recovers.

    pm = PowerManager(cfg).from_int(rtc_byte); mode, changed = pm.update(soc_pct)
    p = plan(mode, cfg); ... if pm.must_report(changed): send health, wait for ack, pm.reported()

Steps down when the state of charge is strictly below a *_below threshold and up only when it is at
or above the matching *_above threshold, so a battery hovering at one threshold never flips the mode.
A step can skip a mode (full -> survival below survival_below; survival -> full at saver_above).
An unknown charge (None or NaN: gauge failed) keeps the mode.

Plans (what each mode does):
    full      the configured intervals; every sensor.
    saver     samples at most every SAVER_SAMPLE_S (5 min), reports at most every SAVER_REPORT_MIN (4 h);
              GNSS off (time comes from the gateway); summary interval and health as configured.
    survival  no sampling; wakes only for health, every max(SURVIVAL_HEALTH_MIN = 6 h, health_min), and
              reports at each of those wakes; sensors_on is empty (only the power monitor is read).
Never silent: every mode change is announced before the node sleeps. update() raises a pending flag
that only reported() (call it once the gateway acked the health record) clears, and the flag travels
in to_int() (one byte) through deep sleep, so a failed uplink retries at the next wake.
Plan.load_w is the mode's average electrical load (W), an estimate the virtual board's battery uses.
"""

from micropython import const

FULL = "full"
SAVER = "saver"
SURVIVAL = "survival"
MODES = (FULL, SAVER, SURVIVAL)

SAVER_SAMPLE_S = const(300)
SAVER_REPORT_MIN = const(240)
SURVIVAL_HEALTH_MIN = const(360)
# sensors sampled per mode; the power monitor is read in every mode (health, mode decisions)
SENSORS_FULL = ("spectral", "ir", "air", "tilt", "gnss")
SENSORS_SAVER = ("spectral", "ir", "air", "tilt")
SENSORS_SURVIVAL = ()

_MAGIC = const(0xA0)  # high nibble of the RTC byte: tells a saved state from power-on garbage
_PENDING = const(4)
# average load per mode (W): sampling every minute + uplink, every 5 min, health every 6 h
LOAD_W = (0.05, 0.02, 0.004)
_KEYS = ("saver_below_pct", "saver_above_pct", "survival_below_pct", "survival_above_pct")


class Plan:
    """What a mode does: wake period, intervals, sensors to sample (empty: none), sampling = any."""

    def __init__(self, mode, sample_s, summary_min, report_min, health_min, sensors_on, sampling):
        self.mode = mode
        self.load_w = LOAD_W[MODES.index(mode)]
        self.sample_s = sample_s
        self.summary_min = summary_min
        self.report_min = report_min
        self.health_min = health_min
        self.sensors_on = sensors_on
        self.sampling = sampling

    def __repr__(self):
        return "Plan(%s, sample_s=%d, summary_min=%d, report_min=%d, health_min=%d)" % (
            self.mode,
            self.sample_s,
            self.summary_min,
            self.report_min,
            self.health_min,
        )


def plan(mode, cfg):
    """The Plan of ``mode`` for the intervals of ``cfg`` (a Config)."""
    if mode == FULL:
        return Plan(FULL, cfg.sample_s, cfg.summary_min, cfg.report_min, cfg.health_min, SENSORS_FULL, True)
    if mode == SAVER:
        return Plan(
            SAVER,
            max(cfg.sample_s, SAVER_SAMPLE_S),
            cfg.summary_min,
            max(cfg.report_min, SAVER_REPORT_MIN),  # 240 is a multiple of every allowed summary_min
            cfg.health_min,
            SENSORS_SAVER,
            True,
        )
    if mode == SURVIVAL:
        health = max(cfg.health_min, SURVIVAL_HEALTH_MIN)
        return Plan(SURVIVAL, health * 60, cfg.summary_min, health, health, SENSORS_SURVIVAL, False)
    raise ValueError("unknown power mode %r" % (mode,))


def must_report(changed, mode, pending=False):
    """True when the node must send (and get acked) a health record before it sleeps: a mode change
    (above all into survival), an announcement not yet acked, and every survival wake."""
    return bool(changed or pending or mode == SURVIVAL)


def _thresholds(src):
    if type(src) is tuple or type(src) is list:
        vals = tuple(src)
    elif type(src) is dict:
        vals = tuple(src[k] for k in _KEYS)
    else:
        vals = tuple(getattr(src, k) for k in _KEYS)
    vb, va, sb, sa = vals
    if not (sb < sa <= vb < va):
        raise ValueError("power thresholds need survival_below < survival_above <= saver_below < saver_above")
    return vals


class PowerManager:
    """Mode state machine. ``thresholds``: a Config, a dict with the config's *_pct names, or a tuple
    (saver_below, saver_above, survival_below, survival_above)."""

    def __init__(self, thresholds, mode=FULL, pending=False):
        self.saver_below, self.saver_above, self.survival_below, self.survival_above = _thresholds(thresholds)
        if mode not in MODES:
            raise ValueError("unknown power mode %r" % (mode,))
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
        return _MAGIC | (_PENDING if self.pending else 0) | MODES.index(self.mode)

    def from_int(self, word):
        """Restore mode and pending flag from to_int() in place; returns self. Anything else
        (power-on garbage, None) gives full with nothing pending (the next update() corrects it)."""
        if word is None or (word & ~7) != _MAGIC or (word & 3) > 2:
            self.mode, self.pending = FULL, False
        else:
            self.mode, self.pending = MODES[word & 3], bool(word & _PENDING)
        return self
