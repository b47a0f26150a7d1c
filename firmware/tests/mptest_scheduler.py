# Scheduler: interval boundaries (96 a day at 15 min), gaps, reports and health, local midnight with
# UTC offsets, next wake, and a clock stepped backwards. Runs inside MicroPython.
from fieldnode.scheduler import Schedule

DAY = 86400
T0 = 1718841600  # 2024-06-20 00:00:00 UTC, day 19894 since 1970


def _day_of_samples(s, start, n, step):
    """Wake every ``step`` s from ``start`` for ``n`` wakes; returns the closed interval starts."""
    closed = []
    prev = None
    t = start
    for _ in range(n):
        c = s.closes_interval(prev, t)
        if c is not None:
            closed.append(c)
        prev = t
        t += step
    return closed


def test_96_intervals_a_day_at_15_min():
    s = Schedule(60, 15, 60, 60)
    closed = _day_of_samples(s, T0, 24 * 60 + 1, 60)  # 00:00 .. 24:00 inclusive
    assert len(closed) == 96, len(closed)
    assert closed[0] == T0 and closed[-1] == T0 + DAY - 900
    for a, b in zip(closed, closed[1:]):
        assert b - a == 900
    # with jittered float times (wake-up latency) still 96, still aligned
    closed = _day_of_samples(s, T0 + 0.37, 24 * 60 + 1, 60.0)
    assert len(closed) == 96 and all(c % 900 == 0 for c in closed), len(closed)


def test_interval_start_alignment():
    s = Schedule(60, 15, 60, 60, utc_offset_min=330)  # intervals are UTC-aligned whatever the offset
    assert s.interval_start(T0) == T0
    assert s.interval_start(T0 + 899.999) == T0
    assert s.interval_start(T0 + 900) == T0 + 900
    assert type(s.interval_start(T0 + 12.5)) is int
    s20 = Schedule(60, 20, 60, 60)
    assert s20.interval_start(T0 + 1199) == T0 and s20.interval_start(T0 + 1200) == T0 + 1200


def test_boundaries_across_gaps():
    s = Schedule(60, 15, 60, 60)
    # no boundary
    assert s.closes_interval(T0 + 60, T0 + 120) is None
    assert s.closes_interval(T0 + 60, T0 + 899) is None
    # exactly on the boundary
    assert s.closes_interval(T0 + 840, T0 + 900) == T0
    # a gap of many intervals (node off for 5 h): the interval that held samples closes, once
    assert s.closes_interval(T0 + 130, T0 + 5 * 3600 + 70) == T0
    assert s.closes_interval(T0 + 5 * 3600 + 70, T0 + 5 * 3600 + 130) is None
    # a gap across days
    assert s.closes_interval(T0 + 1000, T0 + 3 * DAY) == T0 + 900
    # reports and health across a gap are due once
    assert s.report_due(T0 + 3599, T0 + 3600) and not s.report_due(T0 + 3600, T0 + 7199)
    assert s.report_due(T0 + 100, T0 + 10 * 3600)
    assert s.health_due(T0 + 100, T0 + 10 * 3600) and not s.health_due(T0 + 3600, T0 + 3660)


def test_reports_and_health_over_a_day():
    s = Schedule(60, 15, 60, 45)
    reports = health = 0
    prev = None
    for i in range(24 * 60 + 1):
        t = T0 + 60 * i
        if prev is not None:
            reports += s.report_due(prev, t)
            health += s.health_due(prev, t)
        prev = t
    assert reports == 24 and health == 32, (reports, health)
    assert s.report_due(None, T0 + 5) and s.health_due(None, T0 + 5)  # first wake after boot
    assert s.closes_interval(None, T0 + 5) is None and s.day_closed(None, T0 + 5) is None


def test_report_coincides_with_interval_close():
    s = Schedule(60, 15, 60, 60)
    for prev, t in ((T0 + 3540, T0 + 3600), (T0 + 3599.5, T0 + 3600.2)):
        assert s.report_due(prev, t) and s.closes_interval(prev, t) == T0 + 2700


def test_midnight_utc():
    s = Schedule(60, 15, 60, 60)
    assert s.local_day(T0) == 19894
    assert s.day_closed(T0 - 60, T0) == 19893
    assert s.day_closed(T0, T0 + 60) is None
    assert s.day_closed(T0 + 100, T0 + DAY - 1) is None


def test_midnight_plus_60():
    s = Schedule(60, 15, 60, 60, utc_offset_min=60)  # local midnight is 23:00 UTC
    mid = T0 + DAY - 3600  # 2024-06-20 23:00 UTC = 06-21 00:00 local
    assert s.day_closed(mid - 60, mid) == 19894
    assert s.day_closed(mid - 120, mid - 60) is None
    assert s.day_closed(T0 - 60, T0) is None  # UTC midnight is 01:00 local: nothing closes
    assert s.local_day(mid) == 19895 and s.local_day(mid - 1) == 19894
    closes = [t for t in range(T0, T0 + DAY, 60) if s.day_closed(t - 60, t) is not None]
    assert closes == [mid], closes


def test_midnight_minus_300():
    s = Schedule(60, 15, 60, 60, utc_offset_min=-300)  # local midnight is 05:00 UTC
    mid = T0 + 5 * 3600  # 2024-06-20 05:00 UTC = 06-20 00:00 local
    assert s.day_closed(mid - 30.5, mid + 0.25) == 19893
    assert s.day_closed(mid, mid + 60) is None
    assert s.day_closed(T0 - 60, T0) is None
    closes = [t for t in range(T0, T0 + DAY, 60) if s.day_closed(t - 60, t) is not None]
    assert closes == [mid], closes
    # a gap of three days returns the day that held the last sample, once
    assert s.day_closed(mid + 100, mid + 3 * DAY + 100) == 19894
    # the day and the intervals agree: 96 intervals close inside each local day
    n = len([t for t in range(mid + 60, mid + DAY + 60, 60) if s.closes_interval(t - 60, t) is not None])
    assert n == 96


def test_next_wake_aligned_and_never_in_the_past():
    s = Schedule(60, 15, 60, 60)
    assert s.next_wake(T0) == T0 + 60
    assert s.next_wake(T0 + 0.001) == T0 + 60
    assert s.next_wake(T0 + 59.999) == T0 + 60
    assert s.next_wake(T0 + 61) == T0 + 120
    s7 = Schedule(300, 15, 240, 60)
    for t in (T0 + 1, T0 + 299, T0 + 300, T0 + 12345.6):
        w = s7.next_wake(t)
        assert w > t and w % 300 == 0 and w - t <= 300, (t, w)
    s6h = Schedule(6 * 3600, 15, 360, 360)  # survival: wakes at 00, 06, 12, 18 UTC
    assert s6h.next_wake(T0 + 1) == T0 + 6 * 3600


def test_clock_stepped_backwards():
    s = Schedule(60, 15, 60, 60, utc_offset_min=-300)
    # time sync steps the clock back 2 s across an interval boundary: the open interval closes,
    # so no summary mixes two intervals; the wake is still in the future
    assert s.closes_interval(T0 + 900.5, T0 + 898.5) == T0 + 900
    assert s.closes_interval(T0 + 930, T0 + 905) is None  # backwards inside one interval
    assert s.next_wake(T0 + 898.5) == T0 + 900
    # a large step back (a bad GNSS fix a year ahead, corrected)
    future = T0 + 365 * DAY + 123
    assert s.closes_interval(future, T0 + 50) == future - 123
    assert s.day_closed(future, T0 + 50) == s.local_day(future)
    w = s.next_wake(T0 + 50)
    assert T0 + 50 < w <= T0 + 110
    # a simulated run: wakes follow next_wake(); the clock is stepped back at random-looking points
    t = T0 + 17.0
    prev = None
    steps = (0, 0, -45.5, 0, 0, -3600, 0, 0, 0, -1.25, 0, -900, 0)
    for i in range(400):
        t += steps[i % len(steps)]
        w = s.next_wake(t)
        assert w > t and w % 60 == 0 and w - t <= 60, (i, t, w)
        c = s.closes_interval(prev, t)
        assert c is None or c == s.interval_start(prev)
        prev = t
        t = w + 0.05  # wake latency
