"""`fieldline gateway`: a clear error for a bad config; a clean run and a clean SIGTERM."""

import os
import signal
import subprocess
import sys
import time

import pytest

from gateway.stream import load_batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fieldline(*args, **kw):
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, **kw)


def test_a_malformed_config_names_file_line_key_and_expectation(tmp_path):
    bad = tmp_path / "gateway.toml"
    bad.write_text('[gateway]\nid = "gw-1"\n\n[[sources]]\nkind = "node"\nname = "n"\nport = "/dev/ttyUSB0"\n'
                   'baudrate = 12345\n')
    r = _fieldline("gateway", "check", "--config", str(bad))
    assert r.returncode == 2
    err = r.stderr.strip()
    assert err.startswith("fieldline: ") and "gateway.toml:8" in err and "sources[0].baudrate" in err, err
    assert "expected" in err and "12345" in err, err
    assert "Traceback" not in r.stderr


def test_a_config_that_is_not_toml_is_a_clear_error_too(tmp_path):
    bad = tmp_path / "gateway.toml"
    bad.write_text('[gateway\nid = "gw-1"\n')
    r = _fieldline("gateway", "run", "--config", str(bad))
    assert r.returncode == 2 and "gateway.toml:1" in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.sim
def test_run_writes_health_to_the_stream_and_stops_cleanly_on_sigterm(tmp_path):
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('[gateway]\nid = "gw-cli"\ndata_dir = "data"\n[status]\nport = 0\nhealth_every_s = 10\n'
                   '[[uplinks]]\nkind = "file"\npath = "stream.jsonl"\n')
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "gateway", "run", "--config", str(cfg)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stream = tmp_path / "stream.jsonl"
    try:
        deadline = time.time() + 20
        while not (stream.exists() and stream.read_bytes().strip()):
            assert time.time() < deadline and proc.poll() is None, "no stream written"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "gateway gw-cli stopped" in out
    doc = load_batch(stream.read_bytes().splitlines()[0])
    health = [r for r in doc["records"] if r["kind"] == "gateway_health"]
    assert health and health[0]["gateway"] == "gw-cli" and "outbox" in health[0] and "uplinks" in health[0]
    assert (tmp_path / "data" / "gateway.db").exists()
