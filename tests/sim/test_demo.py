"""Sim tier: `fieldline demo` as a newcomer runs it, small (2 nodes, 3 days): it exits 0, the badly installed
node fails its check with a fix named, the store holds node and third-party readings, the stream is on disk,
the attention list names the bad node, and no process it started is left; Ctrl-C mid-run stops it cleanly.

The demo runs in a subprocess with its own session, so the test can signal its whole process group the way a
terminal's Ctrl-C does. Leftovers are found by their command lines, which all name the demo's output folder.
On failure the demo's output is shown; its logs are in <out>/logs.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tools.paths import ROOT

pytestmark = pytest.mark.sim
RUN_TIMEOUT_S = 120


def _demo(out, *args):
    cmd = [sys.executable, "-m", "tools.cli", "demo", "--out", str(out), *args]
    env = dict(os.environ, COLUMNS="150")
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)  # fmt: skip


def _leftovers(out, timeout_s=5.0):
    """Processes whose command line names ``out`` (nodes, gateway, receiver, Mosquitto's config), after a grace."""
    end = time.monotonic() + timeout_s
    while True:
        found = []
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open("/proc/%s/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if str(out) in cmd and state != "Z" and int(pid) != os.getpid():
                found.append((int(pid), cmd[:200]))
        if not found or time.monotonic() > end:
            return found
        time.sleep(0.2)


def _kill(p):
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    p = _demo(out, "--nodes", "2", "--days", "3", "--seed", "2")
    try:
        text, _ = p.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        _kill(p)
    return p.returncode, text, out


def test_the_demo_runs_to_the_end_with_every_output_and_nothing_left_running(demo_run):
    code, text, out = demo_run
    assert code == 0, text[-4000:]
    with open(out / "summary.json") as f:
        summary = json.load(f)
    # the badly installed node failed its check, with a fix in plain words, shown to the user
    (bad,) = [n for n in summary["nodes"] if n["bad"]]
    good = [n for n in summary["nodes"] if not n["bad"]]
    assert bad["check"] == "FAIL" and bad["failed"], summary["nodes"]
    assert "shades the up-looking spectral sensor" in bad["failed"]["incident_light"]
    assert all(n["check"] in ("PASS", "WARN") for n in good), summary["nodes"]
    assert "FAIL %s" % bad["name"] in text and "fix:" in text
    # the store has readings of the nodes and of every third-party source
    by_source = summary["readings_by_source"]
    for n in summary["nodes"]:
        assert by_source.get(n["device"], 0) > 200, by_source
    for src in ("soil", "wind", "tags"):
        assert by_source.get(src, 0) > 20, by_source
    assert summary["store_counts"]["onboarding"] == len(summary["nodes"])
    assert summary["store_counts"]["daily"] > 0
    # the stream as files: JSON Lines batches from the gateway's file uplink
    with open(summary["outputs"]["stream"]) as f:
        lines = f.readlines()
    assert len(lines) > 10 and json.loads(lines[0])["readings"]
    assert os.listdir(summary["outputs"]["checks"])
    # the attention list names the badly installed node, first, with its install check
    first = summary["attention"][0]
    assert first["device"] == bad["device"] and first["cause"] == "install_failed", summary["attention"]
    assert "fieldline fleet serve --store sqlite:///" in text and "season report" in text
    if summary["season_report"] is not None:  # upstream/season.py is there
        assert os.path.getsize(out / "season-report.html") > 1000
    assert not _leftovers(out), _leftovers(out)


def test_ctrl_c_mid_run_stops_every_process_and_exits_cleanly(tmp_path):
    out = tmp_path / "out"
    p = _demo(out, "--nodes", "2", "--days", "5", "--seed", "3")
    try:
        seen = ""
        end = time.monotonic() + 60
        while "The season" not in seen and time.monotonic() < end:  # well into the run: everything is up
            line = p.stdout.readline()
            if not line:
                break
            seen += line
        assert "The season" in seen, seen[-3000:]
        time.sleep(2.0)
        os.killpg(p.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        rest, _ = p.communicate(timeout=60)
    finally:
        _kill(p)
    text = seen + rest
    assert p.returncode == 128 + signal.SIGINT, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "every process it started is stopped" in text, text[-2000:]
    assert not _leftovers(out), _leftovers(out)


def test_the_demos_dashboard_and_season_report_open_in_a_headless_browser(demo_run):
    """What the demo tells a newcomer to open does open: the dashboard command it printed, served and
    browsed in Debian's Chromium (the badly installed node on the attention list, its device page with
    plots), and its season report file with its summary and plots."""
    import re
    import shlex

    from upstream.season_html import CHROMIUM, CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api")
    code, text, out = demo_run
    assert code == 0, text[-3000:]
    with open(out / "summary.json") as f:
        summary = json.load(f)
    (bad,) = [n for n in summary["nodes"] if n["bad"]]
    line = next(ln for ln in text.splitlines() if "fieldline fleet serve --store" in ln)
    argv = shlex.split(line[line.index("fieldline fleet serve") :])[1:]
    serve = subprocess.Popen([sys.executable, "-m", "tools.cli", *argv, "--port", "0"], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url, seen, end = None, "", time.monotonic() + 30
        while url is None and time.monotonic() < end:
            ln = serve.stdout.readline()
            if not ln:
                break
            seen += ln
            m = re.search(r"dashboard on (http://127\.0\.0\.1:\d+)", ln)
            url = m.group(1) if m else None
        assert url, "the demo's dashboard command printed no address:\n" + seen
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                remote = []
                page.on(
                    "request", lambda r: None if r.url.startswith((url, "file:", "data:")) else remote.append(r.url)
                )
                page.goto(url + "/attention")
                assert bad["device"] in page.inner_text("body"), page.inner_text("body")[:2000]
                page.click("a[href*='/device/%s']" % bad["device"])
                assert page.locator("svg.plot").count() > 0 and "install" in page.inner_text("body").lower()
                page.goto((out / "season-report.html").as_uri())
                assert "Season report" in page.inner_text("h1")
                assert page.locator("svg path").count() > 0
                assert not remote, remote
            finally:
                browser.close()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(15)
