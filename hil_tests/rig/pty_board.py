"""A virtual node posing as a real board on a serial port, for running the suite's real-board path without one.

    python -m hil_tests.rig.pty_board serve --workdir /tmp/board --speed 600
        # prints one JSON line: {"port": "/dev/pts/7", "registry": ".../devices.toml", "clock": "paced:...",
        #                        "pid": 1234, "relay_cmd": "..."} and runs until SIGTERM / Ctrl-C
    pytest hil_tests --target unix --port /dev/pts/7 --registry /tmp/board/devices.toml --clock paced:... \\
        --relay-cmd "python -m hil_tests.rig.pty_board relay --pid 1234 {state}"

The board is rig.boards.VirtualBoard paced at ``speed`` simulated seconds per second (a real board is
1; a bench of 600 runs a 15-minute interval in 1.5 s), with the device registry `fieldline provision`
would have written. The suite then opens the pty exactly as it opens /dev/ttyUSB0 (pytest-embedded's
serial service, pyserial), authenticates with the registry's key, takes UTC from ``--clock`` (the
board's paced timeline; a real board's is the system clock) and switches the power through the relay
command: SIGUSR1 cuts the node (SIGKILL of its process), SIGUSR2 powers it up again (reset cause
power_on). What it cannot do on a pty: the RTS reset line (a relay is needed for resets).
"""

import argparse
import json
import os
import signal
import sys
import threading

from gateway.registry import Device, Registry
from hil_tests.rig.boards import VirtualBoard


def serve(workdir, seed=1, speed=600.0, days=30.0):
    board = VirtualBoard(workdir, seed=seed, speed=speed, days=days)
    reg = Registry(path=os.path.join(board.workdir, "devices.toml"))
    reg.add(Device(board.device_id, board.keyring[board.device_id], name=board.config["name"], customer="bench"))
    reg.save()
    done = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: board.power_off())
    signal.signal(signal.SIGUSR2, lambda *_: board.power_on())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    board.power_on()
    relay = "%s -m hil_tests.rig.pty_board relay --pid %d {state}" % (sys.executable, os.getpid())
    print(json.dumps({"port": board.port, "registry": reg.path, "clock": board.clock.spec(), "pid": os.getpid(),
                      "relay_cmd": relay, "console": board.console_log}), flush=True)  # fmt: skip
    try:
        while not done.wait(0.5):
            if board.done():
                break
    except KeyboardInterrupt:
        pass
    finally:
        board.close()


def relay(pid, state):
    os.kill(pid, signal.SIGUSR1 if state == "off" else signal.SIGUSR2)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m hil_tests.rig.pty_board", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run a virtual board on a pty until SIGTERM")
    s.add_argument("--workdir", required=True)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--speed", type=float, default=600.0, help="simulated seconds per second (default 600)")
    s.add_argument("--days", type=float, default=30.0)
    r = sub.add_parser("relay", help="switch a serving board's power (the --relay-cmd of the suite)")
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("state", choices=("off", "on"))
    a = ap.parse_args(argv)
    if a.cmd == "serve":
        serve(a.workdir, a.seed, a.speed, a.days)
    else:
        relay(a.pid, a.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
