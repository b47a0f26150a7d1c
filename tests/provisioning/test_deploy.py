"""Sim tier: provisioning a REPL virtual board end to end, and every bad input it must survive.

A fresh board gets the firmware, its identity and config, a registry entry; a re-run copies
nothing; the provisioned node then runs what was deployed and authenticates with the registry's
key; the key is in no output and only in 0600 files. Unknown, busy and garbage ports, a board
that is not ours, a bytecode mismatch, an unplug mid-copy, files that arrive or rot wrong, and
bad options each give a clear error and leave a board the next run repairs.
"""

import json
import os
import pty
import subprocess
import sys
import threading
import time
import tty

import pytest
import serial

from gateway.registry import Registry
from provisioning import deploy
from provisioning.errors import BadInput, ConnectionLost, HashMismatch, MpyMismatch, PortError, WrongBoard
from provisioning.provision import provision_serial, provision_virtual
from provisioning.sites import SiteBook, parse_boundary
from tests.provisioning.conftest import board_file
from tools.paths import ROOT
from tools.virtual_field.node import START, SimClock
from tools.virtual_field.peer import NodePeer, PtyLink

pytestmark = pytest.mark.sim
FIELD = "52.0,5.1;52.0,5.3;52.2,5.3;52.2,5.1"


def _manifest(board):
    return json.loads(board_file(board, "/manifest.json"))


def test_fresh_board_is_provisioned_and_a_rerun_changes_nothing(board, req, tmp_path):
    r = req(name="north-1", customer="acme", field="north", boundary=parse_boundary(FIELD))
    s = provision_serial(board.console_path, r)
    assert s.verified and s.hw == "virtual" and s.uid == board.uid.hex()
    assert s.files_copied == s.files_total > 40 and s.config == "written" and s.key == "new"
    assert s.registry == "added"
    files = _manifest(board)["files"]
    assert "/fieldnode/app.mpy" in files and "/vnode.mpy" in files and "/main.py" in files
    assert not any("/tests/" in p for p in files)
    for path, sha in list(files.items())[:5]:
        import hashlib

        assert hashlib.sha256(board_file(board, path)).hexdigest() == sha
    reg = Registry.load(r.registry_path)
    dev = reg.get(s.device_id)
    assert dev.name == "north-1" and dev.customer == "acme" and len(dev.key) == 32
    site = SiteBook.beside(r.registry_path).get(s.device_id)
    assert site["field"] == "north" and len(site["boundary"]) == 4 and site["uid"] == board.uid.hex()
    reg_text = open(r.registry_path).read()

    again = provision_serial(board.console_path, req(name="north-1"))
    assert again.files_copied == 0 and "0 files copied" in again.copied_text()
    assert (again.config, again.key, again.registry) == ("unchanged", "kept", "unchanged")
    assert again.device_id == s.device_id and again.verified
    assert open(r.registry_path).read() == reg_text


def test_provisioned_node_runs_the_deployed_code_and_authenticates(req, tmp_path):
    r = req(name="north-2")
    s, board = provision_virtual(str(tmp_path / "node"), r, seed=7)
    assert s.verified and not board.running
    reg = Registry.load(r.registry_path)
    link = PtyLink()
    peer = NodePeer(link, reg.keyring, clock=SimClock(board.state_dir))
    node = board.node(link.slave_path, until=START + 2 * 3600)
    assert node.code_dir == board.fs_dir
    t0 = time.monotonic()
    node.start()
    try:
        while node.alive() and time.monotonic() - t0 < 60:
            peer.pump(0.05)
        peer.pump(0.2)
    finally:
        node.stop()
        link.close()
    assert node.returncode == 0, node.text()[-2000:]
    hello = peer.of_type("hello")
    assert hello and hello[0]["device_id"] == s.device_id and hello[0]["auth"] == "hmac", node.text()[-2000:]
    assert hello[0]["provisioned"] is True
    assert peer.of_type("report") and peer.errors == {}


def _cli():
    import typer

    from tools.provision_cli import provision

    app = typer.Typer()
    app.command()(provision)
    return app


def cli(*args):
    """`fieldline provision ARGS` in this process: (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    r = CliRunner().invoke(_cli(), list(args))
    if r.exception and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def test_key_only_in_0600_files_and_never_printed(tmp_path):
    args = ["--virtual", "--workdir", str(tmp_path / "node"), "--registry", str(tmp_path / "devices.toml"),
            "--lat", "52.1", "--lon", "5.2", "--customer", "acme"]  # fmt: skip
    p = subprocess.run([sys.executable, "-m", "tools.provision_cli", *args], capture_output=True, text=True,
                       timeout=60, cwd=ROOT, env=dict(os.environ, COLUMNS="150"))  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    outs = [p.stdout + p.stderr]
    for extra in (["--json"], ["--new-key"]):
        code, out, err = cli(*args, *extra)
        assert code == 0, out + err
        outs.append(out + err)
    assert "files copied" in outs[0] and '"files_copied": 0' in outs[1]
    keys = [d.key for d in Registry.load(str(tmp_path / "devices.toml"))]
    assert len(keys) == 1
    key = keys[0]
    for out in outs:
        assert key.hex() not in out and key.hex().upper() not in out
    holders = []
    for dirpath, _, names in os.walk(tmp_path):
        for n in names:
            path = os.path.join(dirpath, n)
            with open(path, "rb") as f:
                data = f.read()
            if key.hex().encode() in data or key in data:
                holders.append(path)
                assert os.stat(path).st_mode & 0o777 == 0o600, path
    assert sorted(os.path.basename(h) for h in holders) == ["devices.toml", "flash.img"]


def test_new_key_rekeys_the_node_and_the_registry(board, req):
    first = provision_serial(board.console_path, req())
    key1 = Registry.load(req().registry_path).get(first.device_id).key
    s = provision_serial(board.console_path, req(new_key=True))
    key2 = Registry.load(req().registry_path).get(first.device_id).key
    assert s.key == "new" and s.registry == "updated" and s.config == "written" and key2 != key1
    s = provision_serial(board.console_path, req())
    assert s.key == "kept" and s.config == "unchanged"


def test_device_id_and_config_sections_are_written(board, req):
    r = req(device_id=0x0F1E0042, overrides={"intervals": {"sample_s": 120}, "calibration": {"emissivity": 0.97}})
    s = provision_serial(board.console_path, r)
    assert s.device_id == 0x0F1E0042
    # a re-run without --config keeps what the node has (per-unit calibration survives re-provisioning)
    s = provision_serial(board.console_path, req())
    assert s.device_id == 0x0F1E0042 and s.config == "unchanged"
    s = provision_serial(board.console_path, req(device_id=0x0F1E0043))
    assert s.device_id == 0x0F1E0043 and s.key == "new" and any("was device 253624386" in n for n in s.notes)


# ---- bad inputs: each names what was wrong and what was expected ----


def test_unknown_port(req):
    with pytest.raises(PortError) as e:
        provision_serial("/dev/ttyFIELDLINE9", req())
    assert e.value.reason == "not_found" and "/dev/ttyFIELDLINE9" in e.value.message
    assert e.value.exit_code == 3


def test_busy_port_then_free(board, req):
    holder = serial.Serial(board.console_path, exclusive=True)
    try:
        with pytest.raises(PortError) as e:
            provision_serial(board.console_path, req())
        assert e.value.reason == "busy" and "in use by another program" in e.value.message
    finally:
        holder.close()
    assert provision_serial(board.console_path, req()).verified


def test_port_answering_garbage_is_not_a_board(req):
    master, slave = pty.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    stop = threading.Event()

    def gps():
        os.set_blocking(master, False)
        while not stop.is_set():
            try:
                os.read(master, 4096)
            except OSError:
                pass
            os.write(master, b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n")
            time.sleep(0.02)

    th = threading.Thread(target=gps, daemon=True)
    th.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(WrongBoard) as e:
            provision_serial(path, req(), connect_timeout_s=1.0)
    finally:
        stop.set()
        th.join(2)
        os.close(master)
        os.close(slave)
    assert "not with a MicroPython REPL" in e.value.message and "GPGGA" in e.value.message
    assert time.monotonic() - t0 < 5
    assert not os.path.exists(req().registry_path)  # nothing registered for a board that is not ours


def test_unix_micropython_without_plate_is_the_wrong_board(board, req):
    os.remove(os.path.join(board.fs_dir, "board.json"))
    with pytest.raises(WrongBoard) as e:
        provision_serial(board.console_path, req())
    assert "platform linux" in e.value.message and "ESP32-S3" in e.value.message


def test_bytecode_mismatch_names_both_versions_and_writes_nothing(board, req, monkeypatch):
    monkeypatch.setattr(deploy, "mpy_cross_version", lambda: (5, 0))
    with pytest.raises(MpyMismatch) as e:
        provision_serial(board.console_path, req())
    assert "v6." in e.value.message and "v5.0" in e.value.message and "mpy-cross" in e.value.advice
    assert board_file(board, "/manifest.json") is None and board_file(board, "/fieldnode/app.mpy") is None
    monkeypatch.undo()
    assert provision_serial(board.console_path, req()).verified


def test_unplugged_mid_copy_resumes_on_the_next_run(board, req):
    copied = []

    def pull_cable(path):
        copied.append(path)
        if len(copied) == 12:
            board.unplug()

    with pytest.raises(ConnectionLost) as e:
        provision_serial(board.console_path, req(), after_copy=pull_cable)
    assert "after 12 of" in e.value.message and "run provision again" in e.value.advice
    assert board_file(board, "/manifest.json") is None  # written last: not reached
    assert not os.path.exists(req().registry_path)
    port = board.plug()
    s = provision_serial(port, req())
    assert s.verified and s.files_copied == s.files_total  # 12 of them resumed from their .part
    assert provision_serial(port, req()).files_copied == 0


def test_a_file_that_arrives_wrong_once_is_resent(board, req):
    hits = []

    def corrupt(path):
        if path == "/fieldnode/app.mpy" and not hits:
            hits.append(path)
            with open(os.path.join(board.fs_dir, "fieldnode/app.mpy.part"), "r+b") as f:
                f.write(b"XX")

    s = provision_serial(board.console_path, req(), after_copy=corrupt)
    assert hits and s.verified


def test_a_file_that_keeps_arriving_wrong_is_a_hash_mismatch(board, req, monkeypatch):
    real = deploy._send

    def flaky_flash(b, e, dest):
        real(b, e, dest)
        if e.path == "/shared_protocol/cbor.mpy":
            with open(os.path.join(board.fs_dir, dest.lstrip("/")), "ab") as f:
                f.write(b"\x00")

    monkeypatch.setattr(deploy, "_send", flaky_flash)
    with pytest.raises(HashMismatch) as e:
        provision_serial(board.console_path, req())
    assert e.value.path == "/shared_protocol/cbor.mpy" and "expected" in e.value.message
    assert board_file(board, "/manifest.json") is None
    monkeypatch.undo()
    s = provision_serial(board.console_path, req())
    assert s.verified and s.files_copied == s.files_total


def test_a_file_changed_on_the_board_is_repaired(board, req):
    provision_serial(board.console_path, req())
    with open(os.path.join(board.fs_dir, "fieldnode", "link.mpy"), "r+b") as f:
        f.truncate(10)  # a torn write, a stray edit
    os.remove(os.path.join(board.fs_dir, "shared_protocol", "cobs.mpy"))
    s = provision_serial(board.console_path, req())
    assert s.files_copied == 2 and s.files_repaired == 2 and s.verified


def test_a_file_the_firmware_dropped_is_removed(board, req):
    provision_serial(board.console_path, req())
    m = _manifest(board)
    m["files"]["/fieldnode/old_driver.mpy"] = "00" * 32
    with open(os.path.join(board.fs_dir, "manifest.json"), "w") as f:
        json.dump(m, f)
    with open(os.path.join(board.fs_dir, "fieldnode", "old_driver.mpy"), "wb") as f:
        f.write(b"M\x06")
    s = provision_serial(board.console_path, req())
    assert s.files_removed == 1 and s.files_copied == 0 and board_file(board, "/fieldnode/old_driver.mpy") is None


@pytest.mark.parametrize("kw, words", [
    ({"lat": 95.0}, ["latitude -90..90"]),
    ({"lon": None}, ["--lat and --lon go together"]),
    ({"lat": 52.5, "boundary": parse_boundary(FIELD)}, ["outside the field boundary"]),
    ({"name": "x" * 40}, ["at most 32 characters"]),
])  # fmt: skip
def test_bad_options_are_refused_before_the_board_is_touched(board, req, kw, words):
    with pytest.raises(BadInput) as e:
        provision_serial(board.console_path, req(**kw))
    for w in words:
        assert w in str(e.value)
    assert board_file(board, "/manifest.json") is None


@pytest.mark.parametrize("spec, words", [
    ("52.0,5.1;52.0,abc;52.2,5.3", ["vertex 2", "lat,lon"]),
    ("52.0,5.1;52.0,5.3", ["at least 3"]),
    ("52.0,5.1;52.0,5.2;52.0,5.3", ["enclosing no area"]),
    ("91,5;92,5;93,6", ["latitude -90..90"]),
])  # fmt: skip
def test_bad_boundaries(spec, words):
    with pytest.raises(BadInput) as e:
        parse_boundary(spec)
    for w in words:
        assert w in str(e.value)


def test_boundary_from_geojson_and_text_files(tmp_path):
    gj = tmp_path / "field.geojson"
    gj.write_text(json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [
        [[5.1, 52.0], [5.3, 52.0], [5.3, 52.2], [5.1, 52.2], [5.1, 52.0]]]}}))  # fmt: skip
    assert parse_boundary(str(gj)) == [(52.0, 5.1), (52.0, 5.3), (52.2, 5.3), (52.2, 5.1)]
    txt = tmp_path / "field.txt"
    txt.write_text("# north field\n52.0, 5.1\n52.0 5.3\n52.2,5.3\n")
    assert len(parse_boundary(str(txt))) == 3


def test_config_value_the_node_refuses_names_the_key_and_keeps_the_old_config(board, req):
    provision_serial(board.console_path, req())
    registry = open(req().registry_path).read()
    with pytest.raises(BadInput) as e:
        provision_serial(board.console_path, req(overrides={"intervals": {"sample_s": 5}}, new_key=True))
    assert "intervals.sample_s" in e.value.message and "10..3600" in e.value.message
    assert open(req().registry_path).read() == registry  # refused before the new key was registered
    s = provision_serial(board.console_path, req())
    assert s.config == "unchanged" and s.verified  # the node's config.json was never replaced


def test_invalid_registry_is_named(board, req, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[devices]]\nid = 1\nkey = "zz"\n')
    with pytest.raises(BadInput) as e:
        provision_serial(board.console_path, req(registry_path=str(bad)))
    assert "bad.toml" in str(e.value) and "key" in str(e.value)


def test_cli_exit_codes_and_messages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("--port", "/dev/ttyFIELDLINE9")
    assert code == 3 and "no serial port /dev/ttyFIELDLINE9" in err and "what to do" in err
    code, _, err = cli("--virtual", "--port", "/dev/ttyX")
    assert code == 2 and "exactly one of" in err
    code, _, err = cli("--virtual", "--firmware-image", "x.bin", "--lat", "1", "--lon", "1")
    assert code == 2 and "--firmware-image with --virtual" in err
    code, _, err = cli("--virtual", "--device-id", "zero")
    assert code == 2 and "--device-id 'zero'" in err
    code, out, err = cli("--virtual", "--lat", "52.1", "--lon", "5.2", "--json")
    assert code == 0 and json.loads(out)["verified"] is True
    assert os.path.exists(tmp_path / "devices.toml") and os.path.exists(tmp_path / "fieldline-virtual" / "flash.img")
    code, out, err = cli("--virtual")
    assert code == 0 and "0 files copied" in out and "VERIFIED" in out


def test_an_existing_world_readable_registry_is_made_private(board, req, tmp_path):
    path = tmp_path / "shared.toml"
    other = Registry(path=str(path))
    from gateway.registry import Device

    other.add(Device(77, b"\x07" * 32, "other-node"))
    other.save()
    os.chmod(path, 0o644)
    s = provision_serial(board.console_path, req(registry_path=str(path)))
    assert os.stat(path).st_mode & 0o777 == 0o600
    reg = Registry.load(str(path))
    assert reg.get(77).key == b"\x07" * 32 and reg.get(s.device_id) is not None  # the other node is kept
