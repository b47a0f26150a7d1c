"""Sim tier: the real firmware as a virtual node on a pty against the CPython peer.

Checks cadence, values against the field model's truth, timestamps, the deep-sleep
exit-and-restart path, unprovisioned behaviour, and every fault knob's visible effect.
"""

import pytest

from tools.bench.firmware import accuracy, run_node
from tools.virtual_field.node import DAY, START

pytestmark = pytest.mark.sim
NOON = START + 10 * 3600  # runs that need daylight start at 10:00 UTC (52 N, 5 E)


@pytest.fixture(scope="module")
def three_days():
    node, peer, link, _ = run_node(3, seed=4, stats=False)
    assert node.returncode == 0, node.text()[-3000:]
    return node, peer, link


def _intervals(peer):
    """(start, samples) of every interval summary received, in arrival order."""
    out = []
    for m in peer.of_type("report"):
        for j, n in enumerate(m["samples"]):
            out.append((m["start"] + 60 * m["interval_min"] * j, n))
    return out


def test_cadence_96_intervals_a_day_with_monotonic_timestamps(three_days):
    _, peer, _ = three_days
    iv = _intervals(peer)
    starts = [s for s, _ in iv]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(b - a == 900 for a, b in zip(starts, starts[1:], strict=False)), "a gap or overlap"
    for d in range(2):  # complete days (day 3's last hour is still on the node)
        day = [n for s, n in iv if START + d * DAY <= s < START + (d + 1) * DAY]
        assert len(day) == 96
        assert all(n == 15 for n in day)
    health = [m for m in peer.of_type("report") if "health" in m]
    assert len(health) >= 3 * 24 - 2
    assert peer.errors == {}


def test_daily_values_match_the_field_truth(three_days):
    _, peer, _ = three_days
    ndvi_err, canopy_err, clear, rows = accuracy(peer, 4, START, 3)
    assert len(rows) == 2
    assert ndvi_err <= 0.02 and canopy_err <= 0.3, rows
    for r in rows:  # cloudy days too, with a looser bound
        assert abs(r["ndvi"][0] - r["ndvi"][1]) < 0.05, r


def test_interval_air_temperature_follows_truth(three_days):
    import sys

    from tools.paths import ROOT

    sys.path.insert(0, ROOT + "/firmware")
    from sim.field import FieldModel
    from sim.truth import Truth

    _, peer, _ = three_days
    fm, t = FieldModel(52.0, 5.0, 10.0, 4), Truth()
    worst = 0.0
    for m in peer.of_type("report")[:24]:
        for j, mean in enumerate(m["stats"]["air_temperature"]["mean"]):
            s = m["start"] + 900 * j
            true = []
            for i in range(15):
                fm.update(t, s + 60 * i)
                true.append(t.air_c)
            worst = max(worst, abs(mean - sum(true) / 15))
    assert worst < 0.15


def test_deep_sleep_as_process_exit_keeps_the_interval_going():
    node, peer, _, _ = run_node(2.5 / 24, seed=2, sleep="exit", stats=False)
    assert node.returncode == 0, node.text()[-2000:]
    assert node.restarts["deepsleep"] >= 140  # every minute's sleep was a process exit and restart
    iv = _intervals(peer)
    assert [n for _, n in iv][:8] == [15] * 8  # summaries built across 15 resets each, from RTC memory
    assert [m["reset_cause"] for m in peer.of_type("hello")] == ["power_on"]


def test_powercut_loses_nothing_that_was_acknowledged():
    node, peer, _, _ = run_node(0.5, seed=5, faults={"powercut_at_write": 40}, stats=False)
    assert node.returncode == 0, node.text()[-2000:]
    assert node.restarts["power_on"] == 1
    assert "power cut" in node.text()
    starts = [s for s, _ in _intervals(peer)]
    assert len(set(starts)) >= 40
    assert [m["reset_cause"] for m in peer.of_type("hello")] == ["power_on", "power_on"]
    assert peer.errors == {}  # the frame counter went on after the cut: no replay rejections
    # the interval the cut interrupted restarts; no stored interval is missing before it
    uniq = sorted(set(starts))
    missing = [b for a, b in zip(uniq, uniq[1:], strict=False) if b - a != 900]
    assert len(missing) <= 1


def _health(peer):
    """Every health record (riding on reports or alone), oldest first, with defaults filled in.

    A health record riding on a report carries no time of its own: it was taken when the
    report's last interval closed."""
    hs = []
    for m in peer.of_type("report"):
        if "health" in m:
            h = dict(m["health"])
            h.setdefault("time", m["start"] + 60 * m["interval_min"] * len(m["samples"]))
            hs.append(h)
    hs += [dict(h) for h in peer.of_type("health")]
    for h in hs:
        h.setdefault("faults", [])
        h.setdefault("clock_offset_ms", 0)
    return sorted(hs, key=lambda h: h["time"])


def _noon_run(faults, hours=3, seed=3):
    node, peer, _, _ = run_node(hours / 24, seed=seed, faults=faults, start=NOON, stats=False)
    assert node.returncode == 0, node.text()[-2000:]
    return peer


@pytest.fixture(scope="module")
def baseline():
    return _noon_run({})


def _mean(peer, q):
    vals = [v for m in peer.of_type("report") for v in m["stats"].get(q, {}).get("mean", []) if v is not None]
    return sum(vals) / len(vals) if vals else None


def test_fault_tilt(baseline):
    assert _health(baseline)[-1]["tilt_deg"] < 1.0
    assert abs(_health(_noon_run({"tilt_deg": 30}))[-1]["tilt_deg"] - 30) < 1.0


def test_fault_shade_up_halves_incident_light_not_ndvi(baseline):
    p = _noon_run({"shade_up": 0.5})
    assert _mean(p, "incident_shortwave") == pytest.approx(0.5 * _mean(baseline, "incident_shortwave"), rel=0.05)
    assert _mean(p, "ndvi") == pytest.approx(_mean(baseline, "ndvi"), abs=0.01)


def test_fault_swap_spectral_inverts_ndvi(baseline):
    assert _mean(baseline, "ndvi") > 0.5
    assert _mean(_noon_run({"swap_spectral": 1}), "ndvi") < -0.5


def test_fault_lens_dirt_shows_in_raw_reflected_light():
    clear = {}
    for name, faults in (("clean", {}), ("dirty", {"lens_dirt": 0.4})):
        node, peer, _, _ = _diag_run(faults)
        items = _diag_items(peer)
        assert "sensors" in items, node.text()[-2000:]
        clear[name] = items["sensors"]["spectral_down"][8]
    assert clear["dirty"] == pytest.approx(0.6 * clear["clean"], rel=0.1)


def _diag_items(peer):
    """All items of the diagnostics answers (a big answer comes split over several frames)."""
    items = {}
    for r in peer.of_type("diag_response"):
        items.update(r["items"])
    return items


def _diag_run(faults, keyless=False, provision=True, hours=1.2):
    from tools.virtual_field.peer import NodePeer

    class Asking(NodePeer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.request({"type": "diag_request", "req_id": 7, "items": []}, keyless=keyless)

    return run_node(hours / 24, seed=3, faults=faults, start=NOON, stats=False, provision=provision,
                    peer_class=Asking)


def test_unprovisioned_node_says_hello_and_answers_diagnostics_keyless():
    node, peer, _, _ = _diag_run({}, keyless=True, provision=False, hours=0.2)
    assert node.returncode == 0, node.text()[-2000:]
    hello = peer.of_type("hello")
    assert hello and hello[0]["provisioned"] is False and hello[0]["auth"] == "crc"
    items = _diag_items(peer)
    assert items["identity"]["provisioned"] is False
    assert "config" in items["identity"]["reason"]
    assert all(r["auth"] == "crc" for r in peer.of_type("diag_response"))
    assert not peer.of_type("report")


def test_diagnostics_answer_every_item():
    node, peer, _, _ = _diag_run({"tilt_deg": 12})
    r = peer.of_type("diag_response")[0]
    items = _diag_items(peer)
    for k in ("identity", "firmware", "tilt", "gnss", "sensors", "power", "link", "clock", "log"):
        assert k in items, k
    assert abs(items["tilt"]["tilt_deg"] - 12) < 1
    assert items["gnss"]["fix"] is True and abs(items["gnss"]["lat"] - 52.0) < 0.01
    assert items["firmware"]["version"] == "0.1.0"
    assert r["auth"] == "hmac" and r["req_id"] == 7


def test_fault_solar_covered_stops_charging(baseline):
    assert max(h["solar_a"] for h in _health(baseline)) > 0.05
    assert max(h["solar_a"] for h in _health(_noon_run({"solar_covered": 1}))) < 0


def test_fault_gnss_nofix_is_flagged(baseline):
    assert all("gnss" not in h["faults"] for h in _health(baseline))
    assert "gnss" in _health(_noon_run({"gnss_nofix": 1}))[-1]["faults"]


def test_fault_sensor_nack_flags_and_drops_the_quantity():
    p = _noon_run({"sensor_nack": "sht4x"})
    assert "air_th" in _health(p)[-1]["faults"]
    assert _mean(p, "air_temperature") is None and _mean(p, "canopy_temperature") is not None


def test_fault_stuck_sensor_is_detected():
    p = _noon_run({"stuck": "mlx_canopy"}, hours=3)  # the guard needs 50 identical readings
    assert "ir_canopy" in _health(p)[-1]["faults"]


def test_fault_clock_offset_is_corrected_by_time_sync():
    p = _noon_run({"clock_offset_s": 3600}, hours=2)
    assert abs(_health(p)[0]["clock_offset_ms"] + 3600000) < 2000
    assert all(NOON <= m["start"] < NOON + 3 * 3600 for m in p.of_type("report"))


def test_fault_clock_drift_shows_in_the_daily_correction():
    node, peer, _, _ = run_node(1.2, seed=3, faults={"clock_drift_ppm": 400}, stats=False)
    offsets = [h["clock_offset_ms"] for h in _health(peer)]
    assert any(-40000 < o < -25000 for o in offsets), offsets[-30:]  # ~34.6 s a day, corrected at midnight


def test_fault_low_battery_goes_to_survival_and_says_so():
    p = _noon_run({"battery_soc": 8}, hours=2)
    modes = [h["power_mode"] for h in _health(p)]
    assert modes and modes[0] == "survival"
    assert not [m for m in p.of_type("report") if m["samples"]]


def test_config_get_and_set_over_the_link():
    from tools.virtual_field.peer import NodePeer

    class Configuring(NodePeer):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.request({"type": "config_get", "keys": ["calibration", "intervals.sample_s"]})
            self.request({"type": "config_set", "values": {"intervals.sample_s": 120}})
            self.request({"type": "config_set", "values": {"intervals.sample_s": 5, "device_id": 9}})

    node, peer, _, _ = run_node(4 / 24, seed=6, start=NOON, stats=False, peer_class=Configuring)
    assert node.returncode == 0, node.text()[-2000:]
    got, ok, bad = peer.of_type("config")
    assert got["values"]["intervals.sample_s"] == 60
    assert got["values"]["calibration.spectral"] == [1.0] * 10 and "key" not in got["values"]
    assert ok["values"] == {"intervals.sample_s": 120} and not ok.get("errors")
    assert bad["values"] == {} and "intervals.sample_s" in bad["errors"] and "device_id" in bad["errors"]
    samples = [n for m in peer.of_type("report") for n in m["samples"]]
    assert samples and set(samples) <= {7, 8}  # every 2 minutes from the set on (it came with the hello)
