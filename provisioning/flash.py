"""Flash the MicroPython runtime onto an ESP32-S3 with esptool, with progress and advice on failure.

    flash_firmware("/dev/ttyACM0", "ESP32_GENERIC_S3-20250415-v1.25.0.bin", progress=lambda pct: ...)
    wait_for_port("/dev/ttyACM0")            # the board resets after flashing; its USB port comes back

The image is checked first (an ESP image: magic 0xE9, chip id of an ESP32-S3) and written at 0x0
(MicroPython's ESP32-S3 downloads hold bootloader, partition table and application). Nothing is
erased: the filesystem partition (code, /flash with the config) stays, so a re-flash keeps the
node's identity. esptool runs as a subprocess; its usual failures become FlashError with a
``kind`` and the installer's next step (``advise``).
"""

import os
import re
import subprocess
import sys
import time

from provisioning.errors import BadInput, FlashError

CHIP = "esp32s3"
CHIP_IDS = {0: "ESP32", 2: "ESP32-S2", 5: "ESP32-C3", 9: "ESP32-S3", 12: "ESP32-C2", 13: "ESP32-C6", 16: "ESP32-H2",
            18: "ESP32-P4"}  # fmt: skip
S3_CHIP_ID = 9
_PCT = re.compile(rb"(\d{1,3}(?:\.\d+)?)\s*%")
BOOT_MODE_ADVICE = ("put the board in download mode: hold BOOT, press and release RESET, release BOOT, then run "
                    "again; use a data USB cable (not charge-only) and the board's own port")  # fmt: skip


def check_image(path):
    """BadInput unless ``path`` is an ESP32-S3 firmware image."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise BadInput(
            "--firmware-image %s: %s: expected a MicroPython .bin for the ESP32-S3" % (path, e.strerror),
            "download ESP32_GENERIC_S3 from micropython.org/download",
        ) from None
    if len(head) < 16 or head[0] != 0xE9:
        raise BadInput("--firmware-image %s is not an ESP firmware image (first byte %s, expected 0xE9)"
                       % (path, "0x%02X" % head[0] if head else "none"),
                       "pass the .bin (not the .elf, .uf2 or .zip) of MicroPython for the ESP32-S3")  # fmt: skip
    chip = head[12] | head[13] << 8
    if chip != S3_CHIP_ID:
        raise BadInput("--firmware-image %s is built for %s (chip id %d), expected the ESP32-S3 (chip id %d)"
                       % (path, CHIP_IDS.get(chip, "an unknown chip"), chip, S3_CHIP_ID),
                       "download the ESP32_GENERIC_S3 build")  # fmt: skip


def esptool_command(port, image, baud=460800, offset=0x0, connect_attempts=None, chip=CHIP):
    cmd = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port, "--baud", str(baud)]
    if connect_attempts is not None:
        cmd += ["--connect-attempts", str(connect_attempts)]
    return cmd + ["write-flash", "0x%x" % offset, image]


def flash_firmware(port, image, progress=None, baud=460800, offset=0x0, connect_attempts=None, timeout_s=600):
    """Write ``image`` with esptool; ``progress(percent)`` while writing. FlashError (with advice) on failure."""
    check_image(image)
    env = dict(os.environ, NO_COLOR="1", TERM="dumb", COLUMNS="100")
    proc = subprocess.Popen(esptool_command(port, image, baud, offset, connect_attempts), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)  # fmt: skip
    out = bytearray()
    t0 = time.monotonic()
    line = b""
    while True:
        chunk = proc.stdout.read1(4096)
        if not chunk:
            break
        out += chunk
        parts = re.split(rb"[\r\n]", line + chunk)
        line = parts.pop()
        for p in parts:
            m = _PCT.search(p)
            if progress and m and b"Writing" in p:
                progress(min(100.0, float(m.group(1))))
        if time.monotonic() - t0 > timeout_s:
            proc.kill()
            break
    rc = proc.wait()
    text = out.decode(errors="replace")
    if rc != 0:
        raise advise(text, port)
    if progress:
        progress(100.0)
    return text


def advise(output, port, chip="ESP32-S3"):
    """The FlashError for esptool's ``output`` (it failed): what went wrong, expected, and what to do."""
    o = output
    if re.search(r"No such file or directory|could not open port .*\[Errno 2\]|doesn't exist", o) and not re.search(
        r"Errno 11|Errno 16|exclusively lock|Resource busy", o
    ):
        return FlashError("port_not_found", "no serial port %s" % port,
                          "plug the board in with a data USB cable and pass its port (ls /dev/ttyACM* /dev/ttyUSB*)",
                          o)  # fmt: skip
    if re.search(r"exclusively lock|Resource busy|Errno 16|Errno 11|Access is denied", o):
        return FlashError("port_busy", "serial port %s is in use by another program" % port,
                          "close it (serial monitor, mpremote, Thonny, the gateway: `fuser %s` names it), "
                          "then run again" % port, o)  # fmt: skip
    if "Permission denied" in o:
        return FlashError(
            "port_permission",
            "no permission to open %s" % port,
            "add your user to the dialout group (sudo usermod -aG dialout $USER), log in again",
            o,
        )
    m = re.search(r"This chip is ([\w-]+), not ([\w-]+)", o)
    if m:
        return FlashError(
            "wrong_chip",
            "the board on %s is an %s, expected an %s" % (port, m.group(1), m.group(2)),
            "this is not a Fieldline node (or the wrong port): connect the node's ESP32-S3",
            o,
        )
    if re.search(r"Unexpected chip (ID|magic)", o):
        return FlashError(
            "wrong_chip",
            "the chip on %s is not one esptool knows, expected an %s" % (port, chip),
            "connect the node's ESP32-S3 board",
            o,
        )
    if "Wrong boot mode detected" in o:
        return FlashError(
            "no_boot_mode", "the board on %s is running its firmware, not its bootloader" % port, BOOT_MODE_ADVICE, o
        )
    if re.search(r"Failed to connect|No serial data received|Invalid head of packet", o):
        what = "it sent nothing" if "No serial data" in o else "it sent something else (noise or another device)"
        return FlashError(
            "no_boot_mode", "no %s bootloader answered on %s: %s" % (chip, port, what), BOOT_MODE_ADVICE, o
        )
    if re.search(r"Timed out waiting for packet|Serial data stream stopped|Packet content transfer stopped", o):
        return FlashError(
            "connection_lost",
            "the board on %s stopped answering while flashing" % port,
            "check the cable and run again: the ROM bootloader survives a failed flash",
            o,
        )
    last = [ln.strip() for ln in o.splitlines() if "error" in ln.lower()] or o.strip().splitlines()[-1:] or ["?"]
    return FlashError("failed", "esptool failed on %s: %s" % (port, last[-1]), "run again; see the output above", o)


def wait_for_port(port, timeout_s=20.0):
    """Wait for ``port`` to exist again after the board's reset (native USB re-enumerates)."""
    end = time.monotonic() + timeout_s
    time.sleep(0.5)
    while time.monotonic() < end:
        if os.path.exists(port):
            time.sleep(1.0)  # MicroPython is booting: let it reach the REPL
            return
        time.sleep(0.2)
    raise FlashError(
        "port_not_found",
        "%s did not come back within %.0f s after flashing" % (port, timeout_s),
        "unplug and replug the board, then run provision again without --firmware-image",
    )
