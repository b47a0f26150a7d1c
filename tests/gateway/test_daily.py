"""gateway.daily: a node's daily summary joined with the field's wind and its midday air cells."""

import math

import numpy as np
import pytest

from gateway import agronomy as ag
from gateway.config import FieldConfig, parse_config
from gateway.daily import DailyValues
from gateway.errors import ConfigError

DAY = 86400
D0 = 20605  # 2026-06-01, days since 1970-01-01
T0 = D0 * DAY
NODE = "node-7"


def _cols(series):
    """Aligner.take()-shaped columns from {(source, quantity): [(ts, value), ...]}."""
    runs = {f: [] for f in ("source", "sensor", "quantity", "unit", "rule", "flags", "rev", "count")}
    ts, val = [], []
    for (src, q), cells in series.items():
        for f, v in (("source", src), ("sensor", "s"), ("quantity", q), ("unit", ""), ("rule", "mean"),
                     ("flags", 0), ("rev", 0), ("count", len(cells))):
            runs[f].append(v)
        ts += [c[0] for c in cells]
        val += [c[1] for c in cells]
    n = len(ts)
    return {"runs": runs, "ts": np.array(ts, dtype=np.int64), "value": np.array(val, dtype=np.float64),
            "min": np.full(n, np.nan), "max": np.full(n, np.nan), "n": np.ones(n, dtype=np.int64)}


def _field(**kw):
    base = dict(name="north", nodes=(7,), lat=52.0, lon=0.0, wind_source="wind", wind_height_m=10.0,
                season_start="2026-05-01")
    base.update(kw)
    return FieldConfig(**base)


def _node_day(date=D0, **kw):
    rec = {"kind": "node_daily", "source": NODE, "date": date, "air_t_min": 12.3, "air_t_max": 21.5, "rh_min": 63.0,
           "rh_max": 84.0, "incident_mj_m2": 22.07, "pressure_mean": 100100.0, "ndvi_midday": 0.8,
           "canopy_air_diff_midday": -1.5, "utc_offset_min": 0}
    rec.update(kw)
    return rec


def _day_cells(day=D0, wind=2.8, t=20.0, rh=60.0):
    t0 = day * DAY
    wind_cells = [(t0 + i * 900, wind) for i in range(96)]
    air = [(t0 + i * 900, t) for i in range(96)]
    hum = [(t0 + i * 900, rh) for i in range(96)]
    return _cols({("wind", "wind_speed"): wind_cells, (NODE, "air_temperature"): air,
                  (NODE, "relative_humidity"): hum})


def test_a_day_with_wind_gives_et0_kc_etc_gdd_and_cwsi():
    dv = DailyValues([_field()])
    dv.observe(_day_cells())
    dv.queue(NODE, _node_day())
    (rec,) = dv.ready()
    u2 = float(ag.wind_at_2m(2.8, 10.0))
    z = 293.0 / 0.0065 * (1 - (100100.0 / 101300.0) ** (1 / 5.26))
    et0 = float(ag.et0_fao56_daily(12.3, 21.5, 63.0, 84.0, u2, 22.07, 52.0, z, 152))
    assert rec["kind"] == "field_daily" and rec["field"] == "north" and rec["date"] == "2026-06-01"
    assert rec["u2_ms"] == pytest.approx(u2, abs=0.005) and rec["wind_cells"] == 96
    assert rec["et0_mm"] == pytest.approx(et0, abs=0.005)
    assert 2.5 < rec["et0_mm"] < 5.0  # FAO-56 example 18's weather: 3.9 mm/day with u2 2.078
    kc = float(ag.kc_from_ndvi(0.8))
    assert rec["kc"] == pytest.approx(kc, abs=0.0005) and rec["etc_mm"] == pytest.approx(kc * et0, abs=0.01)
    assert rec["gdd"] == pytest.approx((12.3 + 21.5) / 2 - 10.0, abs=0.005) and rec["gdd_cum"] == rec["gdd"]
    # the midday air cells: VPD at 20 degC, 60 % (solar hour 10..14 at lon 0: 16 cells)
    assert rec["vpd_midday_kpa"] == pytest.approx(float(ag.vpd_kpa(20.0, 60.0)), abs=0.001)
    cwsi = float(ag.cwsi_empirical(-1.5, 0.0, float(ag.vpd_kpa(20.0, 60.0)), 3.11, -1.97, 5.0))
    assert rec["cwsi"] == pytest.approx(cwsi, abs=0.001)
    assert rec["quality"] == {}, rec["quality"]
    assert rec["key"] == "node-7/field_daily/2026-06-01"


def test_the_day_waits_for_its_last_wind_cell_or_the_lateness():
    dv = DailyValues([_field()])
    cells = _day_cells()
    dv.queue(NODE, _node_day())
    assert dv.ready(now=T0 + DAY + 60) == []  # no wind cells of that day yet: wait
    dv.observe(cells)
    assert len(dv.ready()) == 1 and not dv.pending
    dv2 = DailyValues([_field()])
    dv2.queue(NODE, _node_day())
    (rec,) = dv2.ready(now=T0 + DAY + 7200 + 900, lateness_s=7200)  # the anemometer never came: give up
    assert rec["u2_ms"] == 2.0 and "wind_default" in rec["quality"]["et0"]


def test_missing_inputs_are_estimated_or_left_out_and_flagged():
    dv = DailyValues([_field(wind_source="")])
    dv.queue(NODE, _node_day(rh_min=None, rh_max=None, incident_mj_m2=None, pressure_mean=None, ndvi_midday=None))
    (rec,) = dv.ready()
    assert set(rec["quality"]["et0"]) == {"wind_default", "humidity_estimated", "radiation_estimated",
                                          "elevation_from_config"}
    assert math.isfinite(rec["et0_mm"]) and rec["et0_mm"] > 0
    assert "kc" not in rec and "etc_mm" not in rec and rec["quality"]["kc"] == ["ndvi_missing"]
    assert rec["quality"]["cwsi"] == ["vpd_missing"] and "cwsi" not in rec
    dv.queue(NODE, _node_day(date=D0 + 1, air_t_min=None, air_t_max=None))
    (rec2,) = dv.ready()
    assert "et0_mm" not in rec2 and "gdd" not in rec2 and rec2["quality"]["et0"][-1] == "temperature_missing"


def test_cumulative_gdd_over_the_season_survives_a_restart():
    f = _field(wind_source="", season_start="2026-06-02")
    dv = DailyValues([f])
    dv.queue(NODE, _node_day(date=D0))  # before the season: not counted
    dv.queue(NODE, _node_day(date=D0 + 1))
    a, b = dv.ready()
    assert a["gdd_cum"] == 0.0 and b["gdd_cum"] == pytest.approx(b["gdd"])
    dv2 = DailyValues([f])
    dv2.restore(dv.state())
    dv2.queue(NODE, _node_day(date=D0 + 3, air_t_min=15.0, air_t_max=25.0))
    (c,) = dv2.ready()
    assert c["gdd_cum"] == pytest.approx(b["gdd"] + 10.0, abs=0.01)
    assert c["quality"]["gdd_cum"] == ["days_missing"]  # a day never arrived


def test_nodes_outside_every_field_get_no_daily_values():
    dv = DailyValues([_field(nodes=(8,))])
    dv.queue(NODE, _node_day())
    assert dv.ready() == [] and not dv.pending
    everyone = DailyValues([_field(nodes=("*",))])
    everyone.queue(NODE, _node_day())
    everyone.observe(_day_cells())
    assert len(everyone.ready()) == 1


BASE = '[gateway]\nid = "gw"\n'


def test_fields_config_is_validated_with_clear_errors():
    cfg = parse_config(BASE + '[[fields]]\nname = "north"\nnodes = [7, 8]\nlat = 52.1\nlon = 5.2\n'
                       'wind_source = "wind"\nwind_height_m = 3\ngdd_cap_c = 30\n')
    (f,) = cfg.fields
    assert f.nodes == (7, 8) and f.lat == 52.1 and f.wind_height_m == 3.0 and f.gdd_cap_c == 30.0
    assert f.gdd_method == "modified" and f.season_start == ""
    bad = [
        ('nodes = "all"', "nodes", "device ids"),
        ("nodes = [7]\nlat = 95", "lat", "-90..90"),
        ('nodes = [7]\nseason_start = "2026-02-30"', "season_start", "valid date"),
        ('nodes = [7]\ngdd_method = "triangle"', "gdd_method", '"average"'),
        ("nodes = [7]\nndvi_min = 0.9\nndvi_max = 0.2", "ndvi_max", "above ndvi_min"),
        ("nodes = [7]\nwind_heigth_m = 3", "wind_heigth_m", "did you mean"),
    ]
    for extra, key, expected in bad:
        text = BASE + '[[fields]]\nname = "f"\nlat = 52\nlon = 5\n' + extra + "\n"
        if "lat = 95" in extra:
            text = text.replace("lat = 52\n", "")
        with pytest.raises(ConfigError) as e:
            parse_config(text)
        msg = str(e.value)
        assert "fields[0]." + key in msg and expected in msg, msg
