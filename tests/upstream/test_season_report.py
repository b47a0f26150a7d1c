"""The season report: figures against the data written, "not measured" where nothing was, CLI errors, and
(sim) the HTML in a real headless Chromium with its PDF."""

import calendar
import datetime as dt
import json
import pathlib

import numpy as np
import pytest
from typer.testing import CliRunner

from tools.cli import app
from upstream.normalise import parse_document
from upstream.season import CWSI_STRESS, DT_STRESS_K, INTERVALS_PER_DAY, write_season_report
from upstream.store import open_store

DAY0 = dt.date(2026, 5, 1)
DAYS = 10
NORTH = ("node-1", "node-2")


def _date(day):
    return (DAY0 + dt.timedelta(days=day)).isoformat()


def _iso(day, hour=0):
    return "%sT%02d:00:00Z" % (_date(day), hour)


def _onboarding(node, customer, field):
    return {"kind": "onboarding_report", "device": node, "verdict": "PASS", "customer": customer, "field": field,
            "ts": _iso(-1), "key": "%s/onb" % node}  # fmt: skip


def _fixture_data(seed=5):
    """Acme Farms: field North (node-1, node-2: node_daily + field_daily, node-2 silent on days 6-7), field South
    (node-3: node_daily with a canopy-air difference but no field_daily), a farm-wide rain gauge. Bare Farms: one node
    with node summaries only (NDVI, intervals) and no gauge. Returns (records, readings, expected figures)."""
    rng = np.random.default_rng(seed)
    recs = [_onboarding("node-1", "Acme Farms", "North"), _onboarding("node-2", "Acme Farms", "North"),
            _onboarding("node-3", "Acme Farms", "South"), _onboarding("node-9", "Bare Farms", "Hill")]  # fmt: skip
    recs.append({"kind": "sensor_info", "source": "rain-acme", "customer": "Acme Farms", "ts": _iso(-1), "key": "r/1"})
    exp = {k: np.full((2, DAYS), np.nan) for k in ("etc", "gdd", "cwsi")}
    exp.update(intervals=np.zeros((2, DAYS)), heard=np.zeros((2, DAYS), bool), dt_south=np.zeros(DAYS))
    for d in range(DAYS):
        for k, node in enumerate(NORTH):
            if node == "node-2" and d in (6, 7):
                continue
            iv = int(rng.integers(80, 97))
            nd = {"kind": "node_daily", "source": node, "date": _date(d), "ts": _iso(d),
                  "ndvi_midday": round(0.3 + 0.05 * d + rng.normal(0, 0.01), 3), "intervals": iv}  # fmt: skip
            etc, gdd, cwsi = (round(float(v), 2) for v in (rng.uniform(2, 6), rng.uniform(5, 15), rng.uniform(0, 1)))
            fd = {"kind": "field_daily", "source": node, "field": "North", "date": nd["date"], "ts": _iso(d),
                  "etc_mm": etc, "gdd": gdd, "cwsi": cwsi, "ndvi_midday": nd["ndvi_midday"],
                  "canopy_air_diff_c": round(float(rng.normal(0, 2)), 2)}  # fmt: skip
            recs += [nd, fd]
            recs.append({"kind": "node_health", "source": node, "ts": _iso(d, 12), "battery_soc": 80.0})
            exp["etc"][k, d], exp["gdd"][k, d], exp["cwsi"][k, d] = etc, gdd, cwsi
            exp["intervals"][k, d], exp["heard"][k, d] = iv, True
        diff = round(float(rng.normal(1.0, 2.0)), 2)
        exp["dt_south"][d] = diff
        # node-3 counts no intervals in its summary: its stored cells say how complete it is
        recs.append({"kind": "node_daily", "source": "node-3", "date": _date(d), "ts": _iso(d),
                     "ndvi_midday": 0.5, "canopy_air_diff_midday": diff})  # fmt: skip
        recs.append({"kind": "node_daily", "source": "node-9", "date": _date(d), "ts": _iso(d),
                     "ndvi_midday": 0.4, "intervals": 48})  # fmt: skip
    # the gauge: hourly cells; day 3 has a cell flagged out of range (left out), day 4 a corrected cell (rev 1)
    t0 = calendar.timegm(DAY0.timetuple())
    rain = np.round(rng.gamma(0.5, 2.0, DAYS * 24), 1)
    cells = [("rain-acme", "precipitation", 0, 0, t0 + h * 3600, float(rain[h])) for h in range(DAYS * 24)]
    cells.append(("rain-acme", "precipitation", 64, 0, t0 + 3 * 86400 + 1800, 999.0))
    cells.append(("rain-acme", "precipitation", 0, 1, t0 + 4 * 86400, float(rain[96]) + 5.0))
    daily_rain = rain.reshape(DAYS, 24).sum(axis=1)
    daily_rain[4] += 5.0  # rev 1 replaces the cell
    exp["rain"] = daily_rain
    # node-3's own 15-minute cells (two quantities): all 96 a day but 48 on day 2
    quarter = [("node-3", q, 0, 0, t0 + d * 86400 + i * 900, 20.0) for d in range(DAYS)
               for i in range(48 if d == 2 else 96) for q in ("air_temperature", "canopy_temperature")]  # fmt: skip
    exp["south_completeness"] = (9 * 96 + 48) / (10 * 96)
    return recs, _readings(cells), _readings(quarter), exp


def _readings(cells):
    col = lambda k: [c[k] for c in cells]
    units = {"precipitation": "mm", "air_temperature": "degC", "canopy_temperature": "degC"}
    runs = {"source": col(0), "sensor": ["rain" if c[1] == "precipitation" else "node" for c in cells],
            "quantity": col(1), "unit": [units[c[1]] for c in cells],
            "rule": ["sum" if c[1] == "precipitation" else "mean" for c in cells], "flags": col(2), "rev": col(3),
            "count": [1] * len(cells)}  # fmt: skip
    return {"runs": runs, "ts": col(4), "value": col(5), "min": col(5), "max": col(5), "n": [1] * len(cells)}


def _write(url):
    recs, hourly, quarter, exp = _fixture_data()
    with open_store(url) as store:
        store.ingest(parse_document({"v": 1, "batch": "season-1", "grid_s": 3600, "records": recs, "readings": hourly}))
        store.ingest(parse_document({"v": 1, "batch": "season-2", "grid_s": 900, "readings": quarter}))
    return exp


def _field_mean(m):
    ok = ~np.isnan(m)
    return np.where(ok.any(axis=0), np.nansum(m, axis=0) / np.maximum(ok.sum(axis=0), 1), np.nan)


def test_figures_match_the_data_written(store_url, tmp_path):
    exp = _write(store_url)
    out = write_season_report(store_url, "Acme Farms", 2026, tmp_path / "s.html")
    assert (out["customer"], out["first_day"], out["last_day"]) == ("Acme Farms", "2026-05-01", "2026-05-10")
    fields = {f["field"]: f for f in out["fields"]}
    assert list(fields) == ["North", "South"]
    north, south = fields["North"], fields["South"]
    assert north["devices"] == 2 and north["days"] == DAYS
    assert north["etc_mm"] == pytest.approx(np.nansum(_field_mean(exp["etc"])), abs=0.05)
    assert north["gdd"] == pytest.approx(np.nansum(_field_mean(exp["gdd"])), abs=0.05)
    assert north["stress_days"] == int((_field_mean(exp["cwsi"]) >= CWSI_STRESS).sum())
    assert north["completeness"] == pytest.approx(exp["intervals"].sum() / (2 * DAYS * INTERVALS_PER_DAY), abs=1e-4)
    assert north["uptime"] == pytest.approx(exp["heard"].sum() / (2 * DAYS), abs=1e-4)
    assert north["rain_mm"] == pytest.approx(exp["rain"].sum(), abs=0.05) == south["rain_mm"]  # farm-wide gauge
    assert north["rain_days"] == DAYS
    # South: no gateway values; stress from the canopy-air difference
    assert south["etc_mm"] is None and south["gdd"] is None
    assert south["stress_days"] == int((exp["dt_south"] >= DT_STRESS_K).sum())
    assert south["completeness"] == pytest.approx(exp["south_completeness"], abs=1e-4)
    assert "Season ETc" not in south["statement"] and "not measured" in south["statement"]
    page = (tmp_path / "s.html").read_text()
    assert page.count('<section class="page field"') == 2
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch


def test_missing_quantities_say_not_measured(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "u.db")
    _write(url)
    out = write_season_report(url, "Bare Farms", 2026, tmp_path / "bare.html")
    (f,) = out["fields"]
    assert f["completeness"] == pytest.approx(0.5)
    for key in ("etc_mm", "rain_mm", "gdd", "stress_days"):
        assert f[key] is None, key
    assert "Canopy stress not measured" in f["statement"]
    assert "Crop water use (ETc) and rainfall not measured" in f["statement"]
    page = (tmp_path / "bare.html").read_text()
    assert page.count("not measured") >= 8  # summary cells, figures, plot notes
    assert 'class="plot ndvi' in page and 'class="plot water' not in page and 'class="plot gdd' not in page


def test_cli_writes_the_report_and_names_bad_input(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "u.db")
    _write(url)
    html = tmp_path / "r.html"

    def run(store, customer, season, *more):
        args = ["report", "season", "--store", store, "--customer", customer, "--season", season, "--out", str(html)]
        return CliRunner().invoke(app, args + list(more))

    r = run(url, "Acme Farms", "2026", "--json")
    assert r.exit_code == 0, r.output
    assert [f["field"] for f in json.loads(r.output)["fields"]] == ["North", "South"] and html.exists()
    r = run(url, "Acme farm", "2026")
    assert r.exit_code == 2 and "--customer: expected a customer in the store, e.g. Acme Farms" in r.output
    r = run(url, "Zeta", "2026")
    assert r.exit_code == 2 and "--customer: expected a customer in the store: Acme Farms, Bare Farms" in r.output
    r = run(url, "Acme Farms", "2025")
    assert r.exit_code == 2 and "--season: expected a year with data for Acme Farms (data in 2026)" in r.output
    r = run("mysql://x", "A", "2026")
    assert r.exit_code == 2 and "sqlite:///" in r.output
    r = run("sqlite:///%s" % (tmp_path / "nope.db"), "A", "2026")
    assert r.exit_code == 2 and "an existing store" in r.output and not (tmp_path / "nope.db").exists()


@pytest.mark.sim
def test_simulated_season_in_headless_chromium_and_pdf(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from upstream.season_html import CHROMIUM, CHROMIUM_ARGS
    from upstream.simulate import Fleet, populate

    if not pathlib.Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at %s (python3 bootstrap.py installs it)" % CHROMIUM)
    start = calendar.timegm((2026, 4, 1, 0, 0, 0))
    fleet = Fleet(devices=9, days=60, faults="silent:1", seed=3, start=start, readings=False, season=True)
    url = "sqlite:///%s" % (tmp_path / "fleet.db")
    with open_store(url) as store:
        populate(store, fleet)
        # independent of the report: the field's day is the mean over its nodes; the season, the sum of the days
        sql = ("SELECT SUM(m) FROM (SELECT AVG(etc_mm) AS m FROM daily d JOIN devices v ON v.id = d.device_id"
               " WHERE d.kind = 'field_daily' AND v.field = ? AND etc_mm IS NOT NULL GROUP BY day) t")  # fmt: skip
        etc = {f: store.backend.execute(sql, (f,))[0][0] for f in fleet.field_names}
    html, pdf = tmp_path / "season.html", tmp_path / "season.pdf"
    out = write_season_report(url, fleet.customer[0], 2026, html, pdf=pdf)
    assert len(out["fields"]) == len(fleet.field_names) >= 2
    for f in out["fields"]:
        assert f["etc_mm"] == pytest.approx(etc[f["field"]], abs=0.05)
        assert f["rain_mm"] is not None and f["gdd"] > 0 and f["ndvi_peak"] > 0.7 and f["stress_days"] is not None
    assert min(f["uptime"] for f in out["fields"]) < 1.0  # the silent node shows
    assert pdf.read_bytes()[:4] == b"%PDF"
    requests = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.resolve().as_uri())
            first = page.evaluate("document.querySelector('body > section').id")
            sections = page.evaluate("""() => [...document.querySelectorAll('section.field')].map(s => ({
                field: s.dataset.field,
                plots: [...s.querySelectorAll('svg.plot')].map(p => ({
                    kind: p.getAttribute('class'), w: p.getBoundingClientRect().width,
                    marks: p.querySelectorAll('circle.point, rect.bar').length + [...p.querySelectorAll('path.series')]
                        .reduce((n, path) => n + path.getAttribute('d').split('L').length, 0)}))}))""")
        finally:
            browser.close()
    assert first == "summary"
    assert [s["field"] for s in sections] == [f["field"] for f in out["fields"]]
    for s in sections:
        kinds = {p["kind"].split()[1] for p in s["plots"]}
        assert kinds == {"ndvi", "stress", "water", "water-daily", "gdd", "completeness"}, s
        assert all(p["marks"] > 10 and p["w"] > 300 for p in s["plots"]), s
    assert requests == [html.resolve().as_uri()], requests  # nothing from the network
