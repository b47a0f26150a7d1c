"""Flashing the runtime with esptool: the image check, progress, and esptool's failures turned into advice.

esptool itself runs against a port that does not exist, a pty that answers garbage and a port
another program holds; the messages of failures that need real chips (wrong chip, boot mode,
a link that stops) are mapped from esptool's own wording.
"""

import os
import pty
import sys
import threading
import time
import tty

import pytest
import serial

from provisioning import flash
from provisioning.errors import BadInput, FlashError
from provisioning.provision import provision_serial


def _image(tmp_path, chip_id=9, magic=0xE9):
    path = tmp_path / "fw.bin"
    path.write_bytes(bytes([magic, 3, 2, 0x20, 0, 0, 0, 0, 0xEE, 0, 0, 0, chip_id, 0, 0, 0]) + b"\xff" * 4096)
    return str(path)


def test_image_must_be_an_esp32s3_image(tmp_path):
    with pytest.raises(BadInput) as e:
        flash.check_image(_image(tmp_path, magic=0x7F))
    assert "not an ESP firmware image" in e.value.message and "0xE9" in e.value.message
    with pytest.raises(BadInput) as e:
        flash.check_image(_image(tmp_path, chip_id=5))
    assert "ESP32-C3" in e.value.message and "expected the ESP32-S3" in e.value.message
    with pytest.raises(BadInput) as e:
        flash.check_image(str(tmp_path / "missing.bin"))
    assert "missing.bin" in e.value.message
    flash.check_image(_image(tmp_path))


@pytest.mark.sim
def test_esptool_on_a_port_that_does_not_exist(tmp_path):
    with pytest.raises(FlashError) as e:
        flash.flash_firmware("/dev/ttyFIELDLINE9", _image(tmp_path), connect_attempts=1)
    assert e.value.kind == "port_not_found" and "/dev/ttyFIELDLINE9" in e.value.message
    assert "esptool" in e.value.output  # what esptool said is kept for the curious


@pytest.fixture
def chatty_pty():
    """A port whose device talks, but not the ESP32 ROM protocol (a GPS, another board's console)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def talk():
        os.set_blocking(master, False)
        while not stop.is_set():
            try:
                os.read(master, 4096)
            except OSError:
                pass
            try:
                os.write(master, b"\x13$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,,*47\r\n")
            except OSError:
                pass
            time.sleep(0.01)

    th = threading.Thread(target=talk, daemon=True)
    th.start()
    yield os.ttyname(slave)
    stop.set()
    th.join(2)
    os.close(master)
    os.close(slave)


@pytest.mark.sim
def test_esptool_on_a_port_answering_garbage(tmp_path, chatty_pty):
    with pytest.raises(FlashError) as e:
        flash.flash_firmware(chatty_pty, _image(tmp_path), connect_attempts=1)
    assert e.value.kind == "no_boot_mode" and "something else" in e.value.message
    assert "hold BOOT" in e.value.advice


@pytest.mark.sim
def test_esptool_on_a_busy_port(tmp_path, chatty_pty):
    holder = serial.Serial(chatty_pty, exclusive=True)
    try:
        with pytest.raises(FlashError) as e:
            flash.flash_firmware(chatty_pty, _image(tmp_path), connect_attempts=1)
    finally:
        holder.close()
    assert e.value.kind == "port_busy" and "in use" in e.value.message


@pytest.mark.parametrize("said, kind, words", [
    ("A fatal error occurred: This chip is ESP32-C3, not ESP32-S3. Wrong chip argument?", "wrong_chip",
     ["an ESP32-C3, expected an ESP32-S3"]),
    ("A fatal error occurred: Unexpected chip ID value 99.", "wrong_chip", ["not one esptool knows"]),
    ("Failed to connect to ESP32-S3: Wrong boot mode detected (0x13)! The chip needs to be in download mode.",
     "no_boot_mode", ["running its firmware"]),
    ("A fatal error occurred: Failed to connect to ESP32-S3: No serial data received.", "no_boot_mode",
     ["it sent nothing"]),
    ("could not open port /dev/ttyACM0: [Errno 13] Permission denied: '/dev/ttyACM0'", "port_permission",
     ["no permission"]),
    ("A fatal error occurred: Timed out waiting for packet header", "connection_lost", ["stopped answering"]),
    ("A fatal error occurred: Something new", "failed", ["Something new"]),
])  # fmt: skip
def test_advice_for_esptool_failures(said, kind, words):
    e = flash.advise("esptool v5.6.0\nSerial port /dev/ttyACM0:\n" + said + "\n", "/dev/ttyACM0")
    assert e.kind == kind
    for w in words:
        assert w in e.message
    assert e.advice


FAKE_ESPTOOL = r"""
import sys
for p in (0.0, 25.0, 50.0, 100.0):
    sys.stdout.write("Writing at 0x%08x [====>   ] %5.1f%% 100/400 bytes...\r" % (int(p) * 4096, p))
    sys.stdout.flush()
print("Hash of data verified.")
"""


def test_progress_is_reported_from_esptools_output(tmp_path, monkeypatch):
    script = tmp_path / "fake_esptool.py"
    script.write_text(FAKE_ESPTOOL)
    monkeypatch.setattr(flash, "esptool_command", lambda *a, **k: [sys.executable, str(script)])
    seen = []
    flash.flash_firmware("/dev/ttyACM0", _image(tmp_path), progress=seen.append)
    assert seen[:4] == [0.0, 25.0, 50.0, 100.0] and seen[-1] == 100.0


@pytest.mark.sim
def test_provision_with_a_firmware_image_stops_at_a_flash_failure(tmp_path):
    from provisioning.provision import Request

    req = Request(registry_path=str(tmp_path / "devices.toml"), lat=52.1, lon=5.2, firmware_image=_image(tmp_path))
    with pytest.raises(FlashError) as e:
        provision_serial("/dev/ttyFIELDLINE9", req)
    assert e.value.exit_code == 6 and e.value.kind == "port_not_found"
    assert not os.path.exists(req.registry_path)
