"""Each diagnosis on a small simulated fleet: the right cause, on the right device, within 24 simulated hours,
with its evidence; nothing fires on healthy devices; both backends rank the same."""

import pytest

from upstream.diagnoses import CAUSES
from upstream.health import assess
from upstream.simulate import DAY, FAULTS, HOUR, Fleet, populate
from upstream.store import open_store


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    fleet = Fleet(devices=60, days=7, faults="all", seed=11, readings=True)
    url = "sqlite:///%s" % (tmp_path_factory.mktemp("diag") / "fleet.db")
    first, evidence, statuses = {}, {}, {}
    rare = set(fleet.rare.nonzero()[0].tolist())
    with open_store(url) as store:

        def on_step(t):
            if t < fleet.start + DAY:
                return
            fh = assess(store, now=t)
            for cause, f in fh.findings.items():
                for i in (f.level == 2).nonzero()[0].tolist():
                    key = (str(fh.devices[i]), cause)
                    if key not in first:
                        first[key] = t
                        evidence[key] = f.evidence(i)
            for i, name in enumerate(fh.devices.tolist()):
                if int(name[5:]) - 1000 in rare:
                    statuses.setdefault(name, set()).add(fh.metrics["status"][i])

        populate(store, fleet, step_s=3 * HOUR, on_step=on_step)
    return fleet, first, evidence, statuses, url


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_diagnosed_within_24_hours(replay, fault):
    fleet, first, evidence, _, _ = replay
    (truth,) = [r for r in fleet.truth if r["fault"] == fault]
    when = first.get((truth["device"], fault))
    start = max(truth["start"], fleet.start + DAY)
    assert when is not None, "%s on %s from %s never diagnosed; it got %s" % (
        fault,
        truth["device"],
        truth["start_iso"],
        sorted(c for d, c in first if d == truth["device"]),
    )
    assert start - HOUR <= when <= start + DAY, (fault, (when - truth["start"]) / 3600)
    ev = evidence[(truth["device"], fault)]
    assert sum(isinstance(v, int | float) for v in ev.values()) >= 1 or ev.get("failed_checks"), ev


def test_healthy_devices_raise_nothing(replay):
    fleet, first, _, statuses, _ = replay
    faulty = {r["device"]: r["start"] for r in fleet.truth}
    false = [(d, c, t) for (d, c), t in first.items() if d not in faulty or t < faulty[d]]
    assert false == []
    assert statuses and all(s == {"active"} for d, s in statuses.items() if d not in faulty), statuses


def test_every_cause_has_a_title_and_an_action():
    for name, c in CAUSES.items():
        assert c.title and len(c.action) > 30 and c.severity > 0, name


def test_postgresql_ranks_the_same_fleet_the_same(replay, pg_server):
    fleet, _, _, _, url = replay
    pg_url = pg_server.create_database("diag_same")
    with open_store(pg_url) as pg:
        populate(pg, fleet, step_s=DAY)
        got = [(r["device"], r["cause"], r["score"]) for r in assess(pg, now=fleet.end).attention]
    with open_store(url) as lite:
        want = [(r["device"], r["cause"], r["score"]) for r in assess(lite, now=fleet.end).attention]
    assert got == want and len(want) >= 8
