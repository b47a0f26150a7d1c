"""What is due now, from the board clock alone (epoch seconds, int or float).

    s = Schedule(60, 15, 60, 60, utc_offset_min=60); closed = s.closes_interval(prev_t, t)
    time_to_sleep_s = s.next_wake(t) - t

Periods are aligned to the epoch (UTC): summaries start at multiples of summary_min minutes,
samples at multiples of sample_s (60 s: on the minute). Days are local: midnight is taken at
utc_offset_min from UTC. The *_due / *_closed questions compare the period that holds ``prev_t``
(the previous sample) with the one that holds ``t``: any difference counts, in either direction.
So a gap of many periods closes the one period that held samples, and a clock stepped backwards
(time sync) across a boundary also closes it, so a summary never mixes periods; after such a step
the same interval start can be reported twice (the second with the few samples after the step).
``prev_t`` None (first wake after boot): nothing closes, report and health are due.
No time.localtime: only integer arithmetic on whole seconds (floats are floored first).
"""

from micropython import const

_DAY_S = const(86400)


class Schedule:
    def __init__(self, sample_s, summary_min, report_min, health_min, utc_offset_min=0):
        if min(sample_s, summary_min, report_min, health_min) <= 0:
            raise ValueError("schedule periods must be > 0")
        self.sample_s = int(sample_s)
        self.summary_s = int(summary_min) * 60
        self.report_s = int(report_min) * 60
        self.health_s = int(health_min) * 60
        self.offset_s = int(utc_offset_min) * 60

    def interval_start(self, t):
        """Epoch start of the summary interval holding ``t``."""
        s = int(t // 1)
        return s - s % self.summary_s

    def closes_interval(self, prev_t, t):
        """Start of the interval that held ``prev_t`` if ``t`` lies in another one, else None."""
        if prev_t is None:
            return None
        start = self.interval_start(prev_t)
        return None if start == self.interval_start(t) else start

    def report_due(self, prev_t, t):
        """A report boundary (multiple of report_min) lies between the two wakes."""
        return prev_t is None or int(prev_t // 1) // self.report_s != int(t // 1) // self.report_s

    def health_due(self, prev_t, t):
        """A health boundary (multiple of health_min) lies between the two wakes."""
        return prev_t is None or int(prev_t // 1) // self.health_s != int(t // 1) // self.health_s

    def local_day(self, t):
        """Local date of ``t`` as days since 1970-01-01."""
        return (int(t // 1) + self.offset_s) // _DAY_S

    def day_closed(self, prev_t, t):
        """Local date (days since 1970) of the day that held ``prev_t`` if local midnight was
        crossed before ``t``, else None."""
        if prev_t is None:
            return None
        day = self.local_day(prev_t)
        return None if day == self.local_day(t) else day

    def next_wake(self, t):
        """Epoch seconds of the next sample slot strictly after ``t`` (never in the past, whatever
        the clock did before: it depends on ``t`` only)."""
        s = int(t // 1)
        return s - s % self.sample_s + self.sample_s
