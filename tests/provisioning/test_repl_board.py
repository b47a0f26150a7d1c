"""Sim tier: the REPL virtual board looks like a board to mpremote, unmodified (its CLI and its transport).

Checks fs ls/cp/cat, exec, eval, soft-reset (a restart of the unix port, state gone), Ctrl-C of
running code, raw-paste mode, that boot.py/main.py never run when a tool connects, that /flash is
the littlefs image the virtual node mounts, and that unplugging hangs up the host's port.
"""

import os
import subprocess
import sys
import time

import pytest
import serial
from mpremote.transport_serial import SerialTransport

from tests.provisioning.conftest import board_file
from tools.mpy import compile_tree
from tools.paths import micropython_exe

pytestmark = pytest.mark.sim
MPREMOTE = os.path.join(os.path.dirname(sys.executable), "mpremote")


def mpremote(board, *args, timeout=30):
    r = subprocess.run([MPREMOTE, "connect", board.console_path, *args], capture_output=True, text=True,
                       timeout=timeout)  # fmt: skip
    assert r.returncode == 0, "mpremote %s failed (rc %d):\nstdout: %s\nstderr: %s" % (
        " ".join(args),
        r.returncode,
        r.stdout[-2000:],
        r.stderr[-2000:],
    )
    return r.stdout


def test_fs_ls_cp_cat_on_root_and_flash(board, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_text("hello board\n")
    mpremote(board, "fs", "cp", str(src), ":hello.txt")
    mpremote(board, "fs", "cp", str(src), ":/flash/hello.txt")
    listing = mpremote(board, "fs", "ls", ":")
    assert "hello.txt" in listing and "board.json" in listing and "flash/" in listing, listing
    assert "hello.txt" in mpremote(board, "fs", "ls", ":/flash")
    assert mpremote(board, "fs", "cat", ":/flash/hello.txt") == "hello board\n"
    assert board_file(board, "/hello.txt") == b"hello board\n"  # the board's root is fs/
    assert board_file(board, "/flash/hello.txt") is None  # /flash is the image, not a directory
    board.stop()
    assert _read_image(board.flash_img, "/flash/hello.txt") == "hello board\n"


def _read_image(img, path):
    """Read ``path`` from the littlefs image with the firmware's own virtual flash (as the node mounts it)."""
    build = compile_tree()
    code = ("from fieldnode.boards.virtual.flash import FileBlockDev, mount\n"
            "mount(FileBlockDev(%r, 4096, 64), '/flash', mkfs=False)\n"
            "print(open(%r).read(), end='')\n" % (img, path))  # fmt: skip
    r = subprocess.run([micropython_exe(), "-c", code], capture_output=True, text=True, timeout=30, cwd=build,
                       env=dict(os.environ, MICROPYPATH=build))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_exec_eval_and_the_mpy_version(board):
    out = mpremote(board, "exec", "import sys; print(sys.implementation._mpy)")
    assert int(out) & 0xFF == 6
    assert mpremote(board, "eval", "__import__('sys').implementation._mpy").strip() == out.strip()
    assert mpremote(board, "eval", "6 * 7").strip() == "42"


def test_soft_reset_restarts_micropython(board):
    t = SerialTransport(board.console_path, timeout=1)
    try:
        t.enter_raw_repl(soft_reset=True)
        resets = board.resets
        t.exec("x = 41")
        assert t.eval("x + 1") == 42
        t.enter_raw_repl(soft_reset=True)  # Ctrl-D: a new unix-port process
        assert board.resets == resets + 1
        assert t.eval("'x' in globals()") is False
        assert t.use_raw_paste  # the board accepted raw-paste mode
    finally:
        t.exit_raw_repl()
        t.close()
    before = board.resets
    mpremote(board, "soft-reset")
    assert board.resets > before


def test_ctrl_c_interrupts_running_code(board):
    mpremote(board, "exec", "--no-follow", "while True: pass")
    t0 = time.monotonic()
    assert mpremote(board, "exec", "print('after')").strip() == "after"
    assert time.monotonic() - t0 < 5
    assert board.interrupts >= 1


def test_boot_and_main_never_run_when_a_tool_connects(board, tmp_path):
    for name in ("boot.py", "main.py"):
        src = tmp_path / name
        src.write_text("open('/ran_%s', 'w').write('yes')\nwhile True: pass\n" % name[:-3])
        mpremote(board, "fs", "cp", str(src), ":" + name)
    mpremote(board, "soft-reset")
    assert mpremote(board, "exec", "print(1 + 1)").strip() == "2"
    assert board_file(board, "/ran_boot") is None and board_file(board, "/ran_main") is None


def test_unplug_hangs_up_the_host_and_plug_brings_the_port_back(board):
    t = SerialTransport(board.console_path, timeout=1)
    t.enter_raw_repl(soft_reset=False)
    board.unplug()
    with pytest.raises((serial.SerialException, OSError)):
        t.exec("print(1)")
    t.serial.close()  # mpremote's close() resets RTS: EIO on a hung-up port
    assert os.path.exists(board.plug())  # like a re-enumerated USB port: same name or a new one
    assert mpremote(board, "exec", "print('back')").strip() == "back"
