"""The `fieldline` console script as a user runs it: version, protocol decode, bench, demo."""

import json
import os
import subprocess
import sys

import pytest

from tools.paths import ROOT

EXE = os.path.join(os.path.dirname(sys.executable), "fieldline")
VECTORS = os.path.join(ROOT, "shared_protocol", "vectors", "frames.jsonl")


def run(*args, timeout=120):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def vectors():
    keyring, out = None, {}
    with open(VECTORS) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            rec = json.loads(line)
            if "keyring" in rec:
                keyring = rec["keyring"]
            else:
                out[rec["name"]] = rec
    return keyring, out


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("fieldline 0.1.0 (wire protocol v1)")


def test_decode_prints_the_frame_as_json():
    keyring, vec = vectors()
    key = next(iter(keyring.values()))
    r = run("protocol", "decode", vec["report_hour_with_health"]["hex"], "--key", key)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["type"] == "report" and got["auth"] == "hmac"
    assert got["stats"] == vec["report_hour_with_health"]["message"]["stats"]


def test_decode_keyless_hello_needs_no_key():
    _, vec = vectors()
    r = run("protocol", "decode", vec["hello_unprovisioned_crc"]["hex"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hw"] == "esp32s3"


def test_decode_hmac_frame_without_key_says_to_pass_the_key():
    _, vec = vectors()
    r = run("protocol", "decode", vec["report_hour_with_health"]["hex"])
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "--key" in r.stderr and "fieldline: bad frame (auth)" in r.stderr


@pytest.mark.parametrize(
    "hexarg,kind",
    [("zz", "hex"), ("0011", "framing"), ("080101010102a0b001010301a5136530", "framing")],
)
def test_decode_rejects_bad_input_with_one_line(hexarg, kind):
    r = run("protocol", "decode", hexarg)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("fieldline: ") and r.stderr.count("\n") == 1
    assert kind in r.stderr


def test_bench_protocol_json_within_budget():
    r = run("bench", "protocol", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    fig = json.loads(r.stdout)
    assert fig["bytes_per_node_day"] <= 4096
    assert fig["json_bytes_per_node_day"] > 4 * fig["bytes_per_node_day"]
    assert 20 < fig["bytes_per_interval_summary"] < 200
    for k in ("cpython_encode_frames_per_s", "cpython_decode_frames_per_s", "micropython_encode_frames_per_s",
              "micropython_decode_frames_per_s"):
        assert fig[k] > 10, k


@pytest.mark.sim
def test_node_virtual_rejects_unknown_faults_naming_the_known_ones():
    r = run("node", "virtual", "--uart", "/dev/null", "--fault", "bogus=1")
    assert r.returncode == 2
    assert "unknown fault 'bogus'" in r.stderr and "shade_up" in r.stderr


@pytest.mark.sim
def test_node_virtual_runs_on_a_pty_with_an_image_file(tmp_path):
    from tools.virtual_field.node import START
    from tools.virtual_field.peer import NodePeer, PtyLink

    link = PtyLink()
    peer = NodePeer(link, {})  # no keys: every frame fails auth, but it arrives
    img = tmp_path / "node.img"
    p = subprocess.Popen([EXE, "node", "virtual", "--uart", link.slave_path, "--flash", str(img), "--state",
                          str(tmp_path), "--speed", "0", "--days", "0.05", "--start", str(START)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    import time

    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 60:
        peer.pump(0.05)
    out = p.communicate()[0]
    link.close()
    assert p.returncode == 0, out
    assert img.exists() and img.stat().st_size == 64 * 4096
    assert peer.errors.get("auth", 0) >= 2  # hello, time sync and health arrived (keyed, so rejected here)


@pytest.mark.sim
def test_bench_firmware_prints_the_figures():
    r = run("bench", "firmware", "--json", "--days", "2", "--trials", "20", "--no-heap-search", timeout=600)
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout)
    for k in ("peak_heap_bytes", "working_heap_peak_bytes", "code_bytes", "uplink_bytes_per_node_day",
              "ndvi_abs_err", "canopy_temp_abs_err_c", "powercut_trials", "powercut_records_lost",
              "sim_days_per_minute"):
        assert k in f, k
    assert f["uplink_bytes_per_node_day"] <= 4096
    assert f["ndvi_abs_err"] <= 0.02 and f["canopy_temp_abs_err_c"] <= 0.3
    assert f["powercut_trials"] == 20 and f["powercut_records_lost"] == 0
    assert 40000 < f["code_bytes"] < 200000 and f["peak_heap_bytes"] > f["working_heap_peak_bytes"] > 1000
