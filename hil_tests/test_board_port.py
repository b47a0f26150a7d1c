"""The real-board path without a board: the suite run with --port against a pty that behaves like a board's USB
serial port (rig/pty_board.py: a virtual node paced in real time x 600, its registry, a relay command).

A nested pytest runs the boot tests and the relay power cycle exactly as on an ESP32-S3 bench
(``--target unix --port PTY --registry ... --clock ... --relay-cmd ...``): pytest-embedded's serial
service opens the port, the suite authenticates with the registry's key, resets through the relay
command, and skips every virtual_only test with its reason. Its results folder sits in this test's logs.
"""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from hil_tests.conftest import EMBEDDED_MISSING, ROOT

pytestmark = pytest.mark.sim
NESTED = [
    "hil_tests/test_boot.py",
    "hil_tests/test_powercut.py::test_relay_power_cycle_boots_and_keeps_the_stored_records",
    "hil_tests/test_powercut.py::test_flash_log_survives_hundreds_of_power_cuts",
]


@pytest.mark.virtual_only("runs the real-board path against a pty board; on a real bench it is the suite itself")
def test_suite_runs_against_a_board_like_serial_port(request, logdir, figures):
    if not request.config.pluginmanager.hasplugin("pytest_embedded"):
        pytest.skip(EMBEDDED_MISSING)
    board = subprocess.Popen([sys.executable, "-m", "hil_tests.rig.pty_board", "serve", "--workdir",
                              os.path.join(logdir, "pty-board"), "--speed", "600"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        info = json.loads(board.stdout.readline())
        results = os.path.join(logdir, "nested")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *NESTED, "--target", "unix",
               "--port", info["port"], "--registry", info["registry"], "--clock", info["clock"],
               "--relay-cmd", info["relay_cmd"], "--results", results]  # fmt: skip
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    finally:
        board.terminate()
        board.wait(10)
    out = run.stdout[-4000:] + run.stderr[-2000:]
    suite = ET.parse(os.path.join(results, "latest", "junit.xml")).getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    outcome = {n: ("failed" if c.find("failure") is not None or c.find("error") is not None else
                   "skipped" if c.find("skipped") is not None else "passed") for n, c in cases.items()}  # fmt: skip
    figures["nested_passed"] = sum(v == "passed" for v in outcome.values())
    want = {"test_boot_says_hello_with_identity_and_firmware_version": "passed",
            "test_diagnostics_identity_firmware_and_clock": "passed",
            "test_relay_power_cycle_boots_and_keeps_the_stored_records": "passed",
            "test_flash_log_survives_hundreds_of_power_cuts": "skipped"}  # fmt: skip
    assert run.returncode == 0 and outcome == want, (
        "expected %s; received exit %s, %s\nnested run (results in %s):\n%s\nboard console: %s" % (
            want, run.returncode, outcome, results, out, info.get("console")))  # fmt: skip
    reason = cases["test_flash_log_survives_hundreds_of_power_cuts"].find("skipped").get("message")
    assert "virtual_only" in reason, "expected the skip to say why; received %r" % reason
