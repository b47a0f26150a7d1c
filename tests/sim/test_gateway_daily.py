"""Issue 6 done-when: daily agronomic values in the stream from a virtual node and a simulated
anemometer (Modbus RTU), for a field with wind and a field without (FAO-56's 2 m/s default, flagged).

The field_daily records are checked against an independent join of what the stream itself
carried: the node's daily summary and the anemometer's 15-minute cells of the same local day.
"""

import datetime as dt
import math

import pytest

from gateway import agronomy as ag
from tools.virtual_field.farm import VirtualFarm
from tools.virtual_field.modbus_sim import ModbusBus
from tools.virtual_field.node import DAY, START, default_config

pytestmark = pytest.mark.sim

SPEED = 1500
DAYS = 2.15  # two local midnights (UTC+0 nodes) and a report after each
WIND_HEIGHT = 3.0


class Fields:
    """The anemometer on the Modbus bus and the [[fields]] tables: north (seed 11, with the
    anemometer) and south (seed 12, no anemometer)."""

    def __init__(self):
        self.bus = ModbusBus(name="wind")

    def start(self):
        self.bus.start()

    def stop(self):
        self.bus.stop()

    def config_toml(self):
        north, south = default_config(11)["device_id"], default_config(12)["device_id"]
        return "\n".join([
            self.bus.config_toml(interval_s=300),
            "[[fields]]", 'name = "north"', "nodes = [%d]" % north, "lat = 52.0", "lon = 5.0",
            'wind_source = "wind"', "wind_height_m = %g" % WIND_HEIGHT, 'season_start = "2026-05-01"',
            "[[fields]]", 'name = "south"', "nodes = [%d]" % south, "lat = 52.0", "lon = 5.0",
            "elevation_m = 10", "gdd_base_c = 8",
        ])


def test_daily_values_per_node_and_field_in_the_stream(tmp_path):
    extra = Fields()
    farm = VirtualFarm(tmp_path / "farm", seeds=(11, 12), days=DAYS, speed=SPEED, extras=[extra], lateness_s=900)
    try:
        farm.start()
        assert farm.wait_nodes(600) == [0, 0], [farm.node_log(i)[-1500:] for i in range(2)]
        farm.wait_drained(60)
        readings, records, _ = farm.received()
    finally:
        farm.stop()
    north, south = farm.source_of(11), farm.source_of(12)
    daily = {(r["source"], r["date"]): r for r in records if r.get("kind") == "field_daily"}
    node_daily = {(r["source"], r["date"]): r for r in records if r.get("kind") == "node_daily"}
    days = [dt.datetime.fromtimestamp(START + i * DAY, dt.UTC).date().isoformat() for i in range(2)]
    for src in (north, south):
        for d in days:
            assert (src, d) in daily, "no field_daily for %s %s; have %s" % (src, d, sorted(daily))
    wind = {}
    for (src, _sensor, q, ts, _rule, rev), vals in readings.items():
        if src == "wind" and q == "wind_speed" and rev == 0 and vals[0][1]:
            wind.setdefault(ts // DAY, []).append(vals[0][0])
    cum, with_kc = 0.0, 0
    for i, d in enumerate(days):
        rec = daily[(north, d)]
        nd = node_daily[(north, START // DAY + i)] if (north, START // DAY + i) in node_daily else None
        nd = nd or next(r for r in records if r.get("kind") == "node_daily" and r["source"] == north
                        and r["date"] == START // DAY + i)
        assert rec["field"] == "north" and rec["season_start"] == "2026-05-01"
        # wind: the anemometer's cells of that UTC day (the nodes keep UTC), brought to 2 m
        cells = wind[START // DAY + i]
        assert rec["wind_cells"] == len(cells) and len(cells) > 48, (rec["wind_cells"], len(cells))
        u2 = float(ag.wind_at_2m(sum(cells) / len(cells), WIND_HEIGHT))
        assert rec["u2_ms"] == pytest.approx(u2, abs=0.006)
        assert "wind_default" not in rec["quality"].get("et0", [])
        # ET0 from the node's own summary: pressure -> elevation (FAO-56 eq. 7), measured Rs
        z = 293.0 / 0.0065 * (1 - (nd["pressure_mean"] / 101300.0) ** (1 / 5.26))
        doy = dt.date.fromisoformat(d).timetuple().tm_yday
        et0 = float(ag.et0_fao56_daily(nd["air_t_min"], nd["air_t_max"], nd["rh_min"], nd["rh_max"], u2,
                                       nd["incident_mj_m2"], 52.0, z, doy))
        assert rec["et0_mm"] == pytest.approx(et0, abs=0.011)
        assert 1.0 < rec["et0_mm"] < 8.0  # June at 52 N
        if nd.get("ndvi_midday") is None:  # no bright midday sample that day (clouds, or a node that lagged)
            assert "kc" not in rec and rec["quality"]["kc"] == ["ndvi_missing"], rec
        else:
            with_kc += 1
            kc = float(ag.kc_from_ndvi(nd["ndvi_midday"], 0.15, 1.2, 0.15, 0.9))
            assert rec["kc"] == pytest.approx(kc, abs=0.001)
            assert rec["etc_mm"] == pytest.approx(rec["kc"] * rec["et0_mm"], abs=0.011)
        gdd = float(ag.growing_degree_days(nd["air_t_min"], nd["air_t_max"], 10.0, 30.0, method="modified"))
        assert rec["gdd"] == pytest.approx(gdd, abs=0.006)
        cum += rec["gdd"]
        assert rec["gdd_cum"] == pytest.approx(cum, abs=0.02)  # the season's sum, day by day
        assert rec.get("ndvi_midday") == nd.get("ndvi_midday")
        assert rec.get("canopy_air_diff_c") == nd.get("canopy_air_diff_midday")
        # CWSI from the node's own midday air cells (not estimated), in 0..1
        assert "vpd_estimated" not in rec["quality"].get("cwsi", []) and 0.0 < rec["vpd_midday_kpa"] < 6.0
        if nd.get("canopy_air_diff_midday") is not None:
            assert 0.0 <= rec["cwsi"] <= 1.0
    assert with_kc, "no day had a midday NDVI: Kc and ETc untested"
    for d in days:
        rec = daily[(south, d)]
        assert rec["field"] == "south" and rec["u2_ms"] == 2.0
        assert "wind_default" in rec["quality"]["et0"]  # no anemometer in that field: FAO-56's 2 m/s
        assert rec["season_start"] == "2026-01-01" and math.isfinite(rec["et0_mm"])
