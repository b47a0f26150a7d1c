"""The board under test: a virtual node whose "USB serial port" is a pty, or a real board on a serial port.

    board = VirtualBoard(workdir, seed=3, faults={"clock_drift_ppm": 400}, days=2)   # board.port: a pty path
    board = SerialBoard("/dev/ttyUSB0", keyring=Registry.load("devices.toml").keyring)

Both offer ``port`` (what pytest-embedded's serial service opens), ``keyring``, ``clock`` (the
gateway's UTC: the simulated world's for a virtual board, this computer's for a real one), ``hw``,
``power_on()``/``power_off()`` (a virtual board's own power switch; a real board's is a relay) and
``console_log`` (what the board printed besides the link, when there is such a thing).

A virtual board is the real firmware on the MicroPython unix port (tools.virtual_field VirtualNode)
with its UART on one side of a FrameProxy (tools/virtual_field/proxy.py, used as it is): the proxy's
other pty plays the USB serial port. Two ptys and a relay, not one, because pytest-embedded's serial
service must open a *path* itself (pyserial, as it opens /dev/ttyUSB0), while the node holds the
other end; the proxy also keeps both ends open across node restarts, as a USB bridge stays up
while the chip behind it resets, and it is the link attenuator (drop/corrupt/duplicate/reorder,
pause) for the tests that need one.
"""

import json
import os
import signal
import subprocess
import threading
import time

from tools.mpy import compile_tree
from tools.virtual_field.node import (
    DAY,
    EXIT_DEEPSLEEP,
    EXIT_POWERCUT,
    START,
    PacedClock,
    SimClock,
    VirtualNode,
    default_config,
    write_config,
)
from tools.virtual_field.proxy import FrameProxy

ONE_SHOT_FAULTS = ("battery_soc",)  # actions, not standing conditions: given to the first process only


class BenchNode(VirtualNode):
    """A VirtualNode with a power switch: ``cut()`` kills the process at any instant (a relay opening),
    ``restore()`` powers it up again (reset cause power_on). ``faults`` may change between processes
    (the next wake or boot sees them); ONE_SHOT_FAULTS go to the first process only."""

    def __init__(self, *a, cut_schedule=(), **kw):
        super().__init__(*a, **kw)
        self.cut_schedule = list(cut_schedule)  # flash writes to the next cut, one per boot (powercut_at_write)
        if self.cut_schedule:
            self.faults["powercut_at_write"] = self.cut_schedule.pop(0)
        self._powered = threading.Event()
        self._powered.set()
        self._switch = threading.Lock()
        self._cut = False
        self.processes = 0
        self.cuts = 0
        self.cut_times = []  # world time (epoch s) of every powercut_at_write cut, from the world the board saved

    def _cmd(self, cause):
        cmd = super()._cmd(cause)
        for name in ONE_SHOT_FAULTS:
            self.faults.pop(name, None)
        return cmd

    def cut(self):
        with self._switch:  # no process starts between the decision and the kill
            self._cut = True
            self._powered.clear()
            proc = self.proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            self.cuts += 1

    def restore(self):
        self._powered.set()

    def _run(self):
        cause = "power_on"
        env = dict(os.environ, MICROPYPATH=self._build)
        while not self._stop:
            self._powered.wait()
            with self._switch:
                if self._stop:
                    return
                if not self._powered.is_set():
                    continue  # cut again before it came up
                self._cut = False
                self.proc = subprocess.Popen(self._cmd(cause), env=env, cwd=self._build, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True)  # fmt: skip
            self.processes += 1
            out, _ = self.proc.communicate()
            self.output.append(out)
            if self.log:
                self.log.write(out)
                self.log.flush()
            rc = self.proc.returncode
            if self._cut:
                cause = "power_on"  # the relay cut it: RAM and RTC memory gone, flash as the cut left it
            elif rc == EXIT_DEEPSLEEP:
                cause = "deepsleep"
            elif rc == EXIT_POWERCUT:
                cause = "power_on"
                self.cut_times.append(self._world_time())
                self.faults.pop("powercut_at_write", None)  # one cut per request
                if self.cut_schedule:
                    self.faults["powercut_at_write"] = self.cut_schedule.pop(0)
            else:
                self.returncode = rc
                return
            self.restarts[cause] += 1

    def stop(self):
        self._stop = True
        self._powered.set()
        super().stop()

    def _world_time(self):
        try:
            with open(os.path.join(self.state_dir, "world.json")) as f:
                return json.load(f)["t"] / 1000.0
        except (OSError, ValueError, KeyError):
            return None


class VirtualBoard:
    """A virtual node on a pty; see the module docstring. ``days``: it runs until start + days and
    exits (``done()``); ``speed`` 0 runs the world as fast as the node can go, the gateway's clock
    following it (SimClock); ``sleep="exit"`` makes every sleep a process exit and restart (the
    relay then cuts a node that keeps its world across resets)."""

    hw = "virtual"
    is_virtual = True

    def __init__(self, workdir, seed=1, faults=None, days=1.0, start=START, speed=0, sleep="advance",
                 config=None, heap="512K", cut_schedule=(), intervals=None):  # fmt: skip
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.seed = seed
        self.config = cfg = config or default_config(seed)
        if intervals:  # the config's "intervals" section (sample_s, summary_min, report_min, health_min)
            cfg["intervals"] = dict(intervals)
        self.device_id = cfg["device_id"]
        self.keyring = {cfg["device_id"]: bytes.fromhex(cfg["key"])}
        self.start_epoch = start
        self.until = start + int(days * DAY)
        self.proxy = FrameProxy(seed=seed, directions=("up", "down")).start()
        self.port = self.proxy.gateway_path
        state = os.path.join(self.workdir, "state")
        self.console_log = os.path.join(self.workdir, "node.log")
        self._console = open(self.console_log, "w")
        conf = write_config(os.path.join(self.workdir, "config.json"), cfg)
        wall0 = time.time() + 0.5 if speed else None
        self.clock = PacedClock(start, wall0, speed) if speed else SimClock(state)
        self.node = BenchNode(self.proxy.node_path, state, seed=seed, speed=speed, sleep=sleep, faults=faults,
                              config=conf, start=start, until=self.until, heap=heap, log=self._console,
                              wall0=wall0, cut_schedule=cut_schedule)  # fmt: skip
        self._started = False

    def power_on(self):
        if not self._started:
            compile_tree()
            self.node.start()
            self._started = True
        else:
            self.node.restore()

    def power_off(self):
        self.node.cut()

    def done(self):
        return self._started and not self.node.alive()

    def wait_done(self, timeout_s):
        if self._started:
            self.node.wait(timeout_s)
        return self.done()

    def sim_now(self):
        """The simulated world's UTC (epoch s), as the node last published it."""
        try:
            return self.clock()
        except RuntimeError:
            return self.start_epoch

    def close(self):
        self.node.stop()
        self.proxy.close()
        self._console.close()


class SerialBoard:
    """A real board (ESP32-S3 flashed and provisioned with `fieldline provision`) on a serial port.

    The suite cannot switch it on or off itself: ``power_on``/``power_off`` need a relay (see relay.py);
    ``reset()`` pulses the USB bridge's RTS line, wired to EN on ESP32 DevKit boards."""

    is_virtual = False

    def __init__(self, port, keyring, clock=time.time, hw=None):
        self.port = port
        self.hw = hw  # what the hello's "hw" must say (the --target chip), None when the target names no chip
        self.keyring = dict(keyring)
        self.device_id = next(iter(self.keyring)) if len(self.keyring) == 1 else None
        self.clock = clock
        self.console_log = None

    def sim_now(self):
        return self.clock()

    def done(self):
        return False

    def close(self):
        pass
