"""The CSM dashboard (`fieldline fleet serve`): pages and access over HTTP, and in a real headless Chromium.

A simulated fleet (30 nodes x 5 days, one fault of each kind) plus third-party readings for one
field (SDI-12 soil, a Modbus anemometer, a BLE tag left without a field on the same gateway) is
served once per module; unit tests talk HTTP with urllib, the ``sim`` tests drive Debian's chromium
through Playwright (never a downloaded browser) and check that no request leaves 127.0.0.1.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest
from typer.testing import CliRunner

from upstream import fleet_cli
from upstream.alerts import AlertEngine
from upstream.dashboard import COOKIE, Dashboard, load_users, running
from upstream.dashboard_svg import MAX_POINTS, Line, bar_plot, line_plot
from upstream.devices import import_devices
from upstream.errors import ConfigError
from upstream.health import assess
from upstream.normalise import parse_document
from upstream.simulate import DAY, HOUR, START, Fleet, populate
from upstream.store import open_store

END = START + 10 * DAY
END_ISO = "2026-06-11T00:00:00Z"
ADMIN = "admin-token-0123456789abcdef"
ALICE = "alice-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
THIRD_PARTY = (  # source, sensor, quantity, unit, value at hour k
    ("soil-north", "sdi12-0", "soil_water_content", "m3 m-3", lambda k: 0.32 - 0.0008 * k),
    ("soil-north", "sdi12-0", "soil_temperature", "degC", lambda k: 16 + 2 * ((k % 24) / 24)),
    ("wind-mast", "modbus-1", "wind_speed", "m s-1", lambda k: 2.0 + (k % 7) * 0.4),
    ("ruuvi-shed", "ble-c4d2", "relative_humidity", "%", lambda k: 60 + (k % 12)),
)


def _third_party_batch(gateway, t_end, hours=72):
    runs = {f: [] for f in ("source", "sensor", "quantity", "unit", "rule", "flags", "rev", "count")}
    ts, value = [], []
    for source, sensor, quantity, unit, fn in THIRD_PARTY:
        for f, v in zip(("source", "sensor", "quantity", "unit", "rule", "flags", "rev", "count"),
                        (source, sensor, quantity, unit, "mean", 0, 0, hours), strict=True):  # fmt: skip
            runs[f].append(v)
        ts += [t_end - (hours - k) * HOUR for k in range(hours)]
        value += [round(fn(k), 4) for k in range(hours)]
    readings = {"runs": runs, "ts": ts, "value": value, "min": value, "max": value, "n": [1] * len(ts)}
    doc = {"v": 1, "gateway": gateway, "batch": "%s:third-party" % gateway, "grid_s": HOUR, "records": [],
           "readings": readings}  # fmt: skip
    return parse_document(doc)


def make_fleet(url, tmp_dir, devices=30, days=5, faults="all", seed=3):
    fleet = Fleet(devices=devices, days=days, faults=faults, seed=seed, start=END - days * DAY)
    truth = {t["fault"]: t["device"] for t in fleet.truth}
    with open_store(url) as s:
        populate(s, fleet)
        i = fleet.names.index(truth["panel_covered"])  # its field gets the third-party sensors
        s.ingest(_third_party_batch(fleet.gateway[i], END))
        csv = tmp_dir / "devices.csv"
        csv.write_text("device,customer,field\nsoil-north,%s,%s\nwind-mast,,%s\n"
                       % (fleet.customer[i], fleet.field[i], fleet.field[i]))  # fmt: skip
        import_devices(s, csv)
        AlertEngine(s, sinks=[]).evaluate(assess(s, now=END))
    customer = {n: c for n, c in zip(fleet.names, fleet.customer, strict=True)}
    field = {n: f for n, f in zip(fleet.names, fleet.field, strict=True)}
    return {"url": url, "truth": truth, "customer": customer, "field": field}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    d = tmp_path_factory.mktemp("dash")
    f = make_fleet("sqlite:///%s" % (d / "fleet.db"), d)
    f["panel"] = f["truth"]["panel_covered"]
    f["mine"] = f["customer"][f["truth"]["silent"]]  # alice's customer
    f["other"] = f["customer"][f["panel"]]
    assert f["mine"] != f["other"]
    users = d / "users.toml"
    users.write_text('[users.alice]\ntoken = "%s"\ncustomers = ["%s"]\n' % (ALICE, f["mine"]))
    f["users"] = load_users(users)
    return f


@pytest.fixture(scope="module")
def open_url(fleet):
    with running(Dashboard(fleet["url"], port=0, now=END)) as url:
        yield url


@pytest.fixture(scope="module")
def locked_url(fleet):
    with running(Dashboard(fleet["url"], port=0, now=END, token=ADMIN, users=fleet["users"])) as url:
        yield url


def get(url, token=None, cookie=None, data=None):
    """(status, headers, body text) of one request; never raises for an HTTP error status."""
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if cookie:
        req.add_header("Cookie", "%s=%s" % (COOKIE, cookie))
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def q(name):
    return urllib.parse.quote(name, safe="")


# ---- unit: HTTP with urllib ----
def test_binding_beyond_loopback_needs_a_token(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "x.db")
    with pytest.raises(ConfigError, match="loopback"):
        Dashboard(url, host="0.0.0.0")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        Dashboard(url, host="0.0.0.0", token="short")
    Dashboard(url, host="0.0.0.0", token=ADMIN)  # not started: constructing checks the options
    alice = tmp_path / "users.toml"
    alice.write_text('[users.alice]\ntoken = "%s"\ncustomers = "*"\n' % ALICE)
    with pytest.raises(ConfigError, match="no user of --users has"):
        Dashboard(url, token=ALICE, users=load_users(alice))
    r = CliRunner().invoke(fleet_cli.app, ["serve", "--store", url, "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "loopback" in r.output


@pytest.mark.parametrize(
    "text, error",
    [
        ("[users.a]\ncustomers = '*'\n", "users.a.token: expected a token of at least 16"),
        ("[users.a]\ntoken = '%s'\ncustomers = 3\n" % ALICE, "users.a.customers: expected a list"),
        ("[users.a]\ntoken = '%s'\ncustomers = '*'\nrole = 1\n" % ALICE, "only 'token' and 'customers'"),
        ("[users.a]\ntoken = '%s'\ncustomers = '*'\n[users.b]\ntoken = '%s'\ncustomers = '*'\n" % (ALICE, ALICE),
         "no other user has"),
        ("users = 3\n", "[users.NAME] tables"),
        ("[users\n", "valid TOML"),
    ],
)  # fmt: skip
def test_users_file_errors_name_the_key(tmp_path, text, error):
    p = tmp_path / "users.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_users(p)
    assert error in str(e.value)


def test_svg_plots_break_at_gaps_average_long_lines_and_say_when_empty():
    ts = [0, 3600, 7200, 10800, 50000, 53600, 57200]
    svg = line_plot([Line("a", ts, [1, 2, None, 4, 5, 6, 7]), Line("b<&>", [], [])], 0, 86400, "t", "V")
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 1  # broken at the missing value and the gap
    assert 'data-points="6"' in svg and "b&lt;&amp;&gt;" in svg
    assert "no data in this window" in line_plot([Line("a", [], [])], 0, 86400, "t")
    many = line_plot([Line("x", list(range(5000)), [float(i % 10) for i in range(5000)])], 0, 5000, "t")
    assert int(re.search(r'g class="series"[^>]*data-points="(\d+)"', many).group(1)) == MAX_POINTS
    bars = bar_plot([0, DAY, 2 * DAY], [100, 50, None], 0, 3 * DAY, "completeness", "%", 100)
    assert bars.count('class="bar"') == 2 and 'data-points="2"' in bars


def test_open_dashboard_serves_every_page(fleet, open_url):
    status, headers, body = get(open_url)
    assert status == 200 and "Fleet overview" in body
    assert fleet["mine"] in body and fleet["other"] in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", body), "nothing may be fetched from elsewhere"
    status, _, body = get(open_url + "api/attention")
    rows = json.loads(body)["attention"]
    assert status == 200 and {(r["device"], r["cause"]) for r in rows} >= {(d, c) for c, d in fleet["truth"].items()}
    status, _, body = get(open_url + "device/" + fleet["panel"])
    assert status == 200 and 'data-cause="panel_covered"' in body and "Clean or uncover the solar panel" in body
    points = [int(n) for n in re.findall(r'<svg class="plot"[^>]*data-points="(\d+)"', body)]
    assert len(points) == 6 and all(n > 0 for n in points), points
    assert "Open alerts (1)" in body and "Verdict" in body
    status, _, body = get(open_url + "customer/" + q(fleet["other"]))
    assert status == 200 and fleet["panel"] in body
    assert get(open_url + "device/node-1")[0] == 404
    assert get(open_url + "customer/nobody")[0] == 404
    assert get(open_url + "login")[0] == 303  # nothing to sign in to


def test_a_failing_page_answers_500_and_the_server_goes_on(open_url, monkeypatch):
    from upstream import dashboard_pages

    def broken(view):
        raise RuntimeError("boom")

    monkeypatch.setattr(dashboard_pages, "overview", broken)
    status, headers, body = get(open_url)
    assert status == 500 and "RuntimeError" in body and "Content-Security-Policy" in headers
    assert get(open_url + "attention")[0] == 200


def test_field_page_plots_every_source_of_the_field(fleet, open_url):
    status, _, body = get(open_url + "field/" + q(fleet["field"][fleet["panel"]]))
    assert status == 200
    quantities = dict(re.findall(r'data-quantity="([^"]+)" data-unit="[^"]*" data-third-party="(yes|no)"', body))
    for _source, _sensor, quantity, _unit, _fn in THIRD_PARTY:
        assert quantities.get(quantity) == "yes", (quantity, quantities)
    for quantity in ("ndvi", "incident_shortwave", "air_temperature", "canopy_temperature"):
        assert quantities.get(quantity) == "no"
    assert "on gateway gw-" in body and "no field assigned" in body  # the BLE tag nobody assigned
    assert 'data-label="soil-north/sdi12-0" data-points="72"' in body


def test_a_token_is_required_and_customers_are_scoped(fleet, locked_url):
    status, headers, body = get(locked_url)
    assert status == 401 and 'name="token"' in body and "Bearer" in headers["WWW-Authenticate"]
    assert fleet["mine"] not in body
    status, _, body = get(locked_url + "api/attention")
    assert status == 401 and "error" in json.loads(body)
    assert get(locked_url + "api/attention", token=ADMIN + "x")[0] == 401
    status, _, body = get(locked_url + "api/attention", token=ADMIN)
    assert status == 200 and {c["customer"] for c in json.loads(body)["customers"]} == {fleet["mine"], fleet["other"]}
    status, _, body = get(locked_url + "api/attention", token=ALICE)
    out = json.loads(body)
    assert {c["customer"] for c in out["customers"]} == {fleet["mine"]}
    assert out["attention"] and {r["customer"] for r in out["attention"]} == {fleet["mine"]}
    status, _, body = get(locked_url, token=ALICE)
    assert status == 200 and fleet["mine"] in body and fleet["other"] not in body
    for path in ("device/" + fleet["panel"], "api/device/" + fleet["panel"], "customer/" + q(fleet["other"]),
                 "field/" + q(fleet["field"][fleet["panel"]]), "attention?customer=" + q(fleet["other"])):  # fmt: skip
        assert get(locked_url + path, token=ALICE)[0] == 404, path
        assert get(locked_url + path, token=ADMIN)[0] == 200, path
    assert get(locked_url + "device/" + fleet["truth"]["silent"], token=ALICE)[0] == 200


def test_login_form_sets_a_signed_session_cookie(locked_url):
    status, _, body = get(locked_url + "login", data={"token": "wrong-token-0123456789", "next": "/attention"})
    assert status == 401 and "Wrong token" in body
    status, headers, _ = get(locked_url + "login", data={"token": ALICE, "next": "//evil.example/x"})
    assert status == 303 and headers["Location"] == "/"
    status, headers, _ = get(locked_url + "login", data={"token": ALICE, "next": "/attention"})
    assert status == 303 and headers["Location"] == "/attention"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ALICE not in cookie
    value = re.search(COOKIE + r"=([^;]+)", cookie).group(1)
    assert get(locked_url + "attention", cookie=value)[0] == 200
    tampered = value[:-1] + ("0" if value[-1] != "0" else "1")
    assert get(locked_url + "attention", cookie=tampered)[0] == 401


def test_cli_serve_prints_its_url_and_stops_on_sigterm(fleet):
    cmd = [sys.executable, "-c", "from upstream.fleet_cli import app; app(prog_name='fieldline fleet')", "serve",
           "--store", fleet["url"], "--port", "0", "--now", END_ISO, "--log-level", "warning"]  # fmt: skip
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=root)
    try:
        line = p.stdout.readline()
        m = re.match(r"dashboard on (http://127\.0\.0\.1:\d+/)", line)
        assert m, "expected the URL, got %r; stderr: %s" % (line, p.stderr.read() if p.poll() is not None else "")
        status, _, body = get(m.group(1))
        assert status == 200 and "Fleet overview" in body
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "dashboard stopped" in out


def test_dashboard_on_postgresql(pg_server, tmp_path):
    url = pg_server.create_database("dash")
    f = make_fleet(url, tmp_path, devices=12, days=4, faults="silent:1,panel_covered:1", seed=5)
    with running(Dashboard(url, port=0, now=END, token=ADMIN)) as base:
        status, _, body = get(base + "api/attention", token=ADMIN)
        got = {(r["device"], r["cause"]) for r in json.loads(body)["attention"]}
        assert status == 200 and {(d, c) for c, d in f["truth"].items()} <= got
        panel = f["truth"]["panel_covered"]
        status, _, body = get(base + "device/" + panel, token=ADMIN)
        points = [int(n) for n in re.findall(r'<svg class="plot"[^>]*data-points="(\d+)"', body)]
        assert status == 200 and 'data-cause="panel_covered"' in body and min(points) > 0
        status, _, body = get(base + "field/" + q(f["field"][panel]), token=ADMIN)
        assert status == 200 and 'data-quantity="soil_water_content"' in body


# ---- sim: a real headless Chromium ----
@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian chromium is not installed (python3 bootstrap.py installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class LocalOnly:
    """Every request the page makes, refused (and remembered) unless it goes to 127.0.0.1; console errors
    (a policy violation, a script error; not the 401/404 answers the tests ask for)."""

    def __init__(self, context):
        self.hosts, self.refused, self.errors = set(), [], []
        context.route("**/*", self._route)

    def _route(self, route):
        host = urllib.parse.urlsplit(route.request.url).hostname
        self.hosts.add(host)
        if host != "127.0.0.1":
            self.refused.append(route.request.url)
            return route.abort()
        return route.continue_()

    def watch(self, page):
        page.on("console", lambda m: m.type == "error" and "Failed to load resource" not in m.text
                and self.errors.append(m.text))  # fmt: skip
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page


@contextlib.contextmanager
def page_kept_on_failure(page, tmp_path):
    """On a failure, save what the browser showed (HTML and a screenshot) and print where."""
    try:
        yield
    except BaseException:
        html, png = tmp_path / "page.html", tmp_path / "page.png"
        with contextlib.suppress(Exception):
            html.write_text(page.content())
            page.screenshot(path=str(png), full_page=True)
        print("browser was at %s; its page: %s, %s" % (page.url, html, png))
        raise


def _sign_in(page, token):
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


@pytest.mark.sim
def test_browser_from_overview_to_a_faulty_device_and_its_field(browser, fleet, locked_url, tmp_path):
    context = browser.new_context()
    net = LocalOnly(context)
    page = net.watch(context.new_page())
    with contextlib.closing(context), page_kept_on_failure(page, tmp_path):
        r = page.goto(locked_url)
        assert r.status == 401 and page.locator("input[name=token]").is_visible()
        _sign_in(page, ADMIN)
        page.wait_for_selector("h1:has-text('Fleet overview')")
        assert page.locator("tr.customer-row").count() == 2
        page.click("header >> text=Needs attention")
        page.wait_for_selector("table.attention")
        rows = page.locator("tr.attention-row")
        assert rows.count() >= len(fleet["truth"])
        row = page.locator('tr.attention-row[data-device="%s"]' % fleet["panel"])
        assert row.get_attribute("data-cause") == "panel_covered"
        assert "solar panel covered" in row.inner_text()
        row.locator("a", has_text=fleet["panel"]).click()
        page.wait_for_selector("h1:has-text('%s')" % fleet["panel"])
        finding = page.locator('.finding[data-cause="panel_covered"]')
        assert "solar panel covered" in finding.locator(".cause").inner_text()
        evidence = finding.locator(".evidence").inner_text()
        assert re.search(r"solar [\d.]+ A vs [\d.]+ A on its neighbours", evidence), evidence
        assert "Clean or uncover the solar panel" in finding.locator(".action").inner_text()
        plots = page.locator("svg.plot")
        assert plots.count() == 6
        points = plots.evaluate_all("ps => ps.map(p => +p.dataset.points)")
        assert all(n > 0 for n in points), points
        labels = plots.evaluate_all("ps => ps.map(p => p.getAttribute('aria-label'))")
        assert {"battery charge", "solar charging current", "signal (RSSI)", "completeness per UTC day"} <= set(labels)
        assert page.locator("svg.plot polyline").count() >= 4 and page.locator("svg.plot rect.bar").count() >= 3
        first = page.locator("svg.plot polyline").first.get_attribute("points")
        assert len(first.split()) > 10
        assert page.locator("table.checks").is_visible() and page.locator("tr.alert[data-cause=panel_covered]").count()
        page.click(".crumbs a >> nth=1")  # the device's field
        page.wait_for_selector("h1:has-text('Field:')")
        for _source, _sensor, quantity, _unit, _fn in THIRD_PARTY:
            fig = page.locator('figure.quantity[data-quantity="%s"]' % quantity)
            assert fig.get_attribute("data-third-party") == "yes", quantity
            assert int(fig.locator("svg.plot").get_attribute("data-points")) > 0, quantity
        assert page.locator('figure.quantity[data-quantity="ndvi"] g.series').count() >= 3
        assert page.locator('tr.source-row[data-device="ruuvi-shed"]').count() == 1
        assert net.hosts == {"127.0.0.1"} and not net.refused, net.refused
        assert not net.errors, net.errors


@pytest.mark.sim
def test_browser_refuses_strangers_and_scopes_a_customer_user(browser, fleet, locked_url, tmp_path):
    context = browser.new_context()
    net = LocalOnly(context)
    page = net.watch(context.new_page())
    with contextlib.closing(context), page_kept_on_failure(page, tmp_path):
        assert page.goto(locked_url + "api/attention").status == 401
        assert page.goto(locked_url + "device/" + fleet["panel"]).status == 401
        _sign_in(page, "not-the-token-0123456789")
        page.wait_for_selector("text=Wrong token.")
        _sign_in(page, ALICE)  # back where it was asked for, signed in: and not allowed to see it
        page.wait_for_selector("h1:has-text('404')")
        page.goto(locked_url)
        assert page.locator("tr.customer-row").count() == 1
        assert fleet["mine"] in page.inner_text("table.customers")
        assert fleet["other"] not in page.content()
        page.goto(locked_url + "attention")
        customers = page.locator("tr.attention-row td:nth-child(3)").all_inner_texts()
        assert customers and set(customers) == {fleet["mine"]}
        assert page.goto(locked_url + "customer/" + q(fleet["other"])).status == 404
        assert page.goto(locked_url + "device/" + fleet["truth"]["silent"]).status == 200
        assert page.locator('.finding[data-cause="silent"]').count() == 1
        page.click("text=sign out")
        page.wait_for_selector("input[name=token]")
        assert page.goto(locked_url).status == 401
        assert net.hosts == {"127.0.0.1"} and not net.refused and not net.errors
