"""Run the real firmware as a virtual node: a MicroPython unix-port process on a pty.

    link = PtyLink()
    vn = VirtualNode(link.slave_path, state_dir, seed=3, until=start + 86400, faults={"shade_up": 0.4})
    vn.start(); ...; vn.wait()

The harness plays the part of the hardware around the process: when the node deep-sleeps
in ``sleep="exit"`` mode (exit code 75) it is restarted with reset cause "deepsleep"; after
a power cut (76) with "power_on" (RTC memory gone, flash as the cut left it).
"""

import json
import os
import subprocess
import threading

from tools.mpy import compile_tree
from tools.paths import micropython_exe

EXIT_DEEPSLEEP = 75
EXIT_POWERCUT = 76
DAY = 86400
START = 1780272000  # 2026-06-01 00:00 UTC: a clear-ish June at 52 N


def default_config(seed=1, lat=52.0, lon=5.0, alt_m=10.0):
    """The config provisioning would write for a virtual node (key derived from the seed)."""
    device_id = 0x0F1E0000 + (seed & 0xFFFF)
    key = bytes((seed * 37 + i * 11) & 0xFF for i in range(32))
    return {
        "device_id": device_id,
        "key": key.hex(),
        "name": "virtual-%d" % seed,
        "site": {"lat": lat, "lon": lon, "alt_m": alt_m, "utc_offset_min": 0},
    }


class VirtualNode:
    def __init__(self, uart_path, state_dir, seed=1, speed=0, sleep="advance", faults=None, config=None,
                 start=START, until=None, heap="512K", stats=False, log=None, lat=52.0, lon=5.0, flash=None,
                 wall0=None, code_dir=None):
        self.uart_path = uart_path
        self.state_dir = state_dir
        self.seed = seed
        self.speed = speed
        self.sleep = sleep
        self.faults = dict(faults or {})
        self.config = config
        self.start_epoch = start
        self.until = until
        self.heap = heap
        self.stats = stats
        self.lat, self.lon = lat, lon
        self.flash = flash  # littlefs image path (default: state_dir/flash.img)
        self.wall0 = wall0  # with speed: the wall-clock instant of ``start`` (a shared timeline)
        self.code_dir = code_dir  # run the .mpy files deployed there (a provisioned board's fs) instead of a build
        self.log = log  # file object for the node's output (default: kept in self.output)
        self.output = []
        self.restarts = {"deepsleep": 0, "power_on": 0}
        self.returncode = None
        self.proc = None
        self._thread = None
        self._stop = False
        os.makedirs(state_dir, exist_ok=True)

    def _cmd(self, cause):
        cmd = [micropython_exe(), "-X", "heapsize=" + self.heap, "-m", "vnode", "--state", self.state_dir,
               "--seed", str(self.seed), "--speed", str(self.speed), "--sleep", self.sleep, "--reset-cause", cause,
               "--start", str(self.start_epoch), "--lat", str(self.lat), "--lon", str(self.lon)]
        if self.uart_path:
            cmd += ["--uart", self.uart_path]
        if self.flash:
            cmd += ["--flash", os.path.abspath(self.flash)]
        if self.until:
            cmd += ["--until", str(int(self.until))]
        if self.wall0 is not None:
            cmd += ["--wall0", "%.3f" % self.wall0]
        if self.config and cause == "power_on" and not self.restarts["power_on"]:
            cmd += ["--config", self.config]
        for k, v in self.faults.items():
            cmd += ["--fault", "%s=%s" % (k, v)]
        if self.stats:
            cmd.append("--stats")
        return cmd

    def start(self):
        self._build = os.path.abspath(self.code_dir) if self.code_dir else compile_tree()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        cause = "power_on"
        env = dict(os.environ, MICROPYPATH=self._build)
        while not self._stop:
            self.proc = subprocess.Popen(self._cmd(cause), env=env, cwd=self._build, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True)
            out, _ = self.proc.communicate()
            self.output.append(out)
            if self.log:
                self.log.write(out)
                self.log.flush()
            rc = self.proc.returncode
            if rc == EXIT_DEEPSLEEP:
                cause = "deepsleep"
            elif rc == EXIT_POWERCUT:
                cause = "power_on"
                self.faults.pop("powercut_at_write", None)  # one cut per request
            else:
                self.returncode = rc
                return
            self.restarts[cause] += 1

    def wait(self, timeout=None):
        self._thread.join(timeout)
        return self.returncode

    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def stop(self):
        self._stop = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self._thread:
            self._thread.join(5)

    def text(self):
        return "".join(self.output)

    def clock_steps(self):
        """[(node clock ms before, step ms)] the node applied at its time syncs (@@STEP lines)."""
        out = []
        for line in self.text().splitlines():
            if line.startswith("@@STEP "):
                a, b = line[7:].split()
                out.append((int(a), int(b)))
        return out

    def stats_line(self):
        for line in self.text().splitlines():
            if line.startswith("@@STATS "):
                return dict(kv.split("=") for kv in line[8:].split())
        return None


def write_config(path, cfg):
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


class SimClock:
    """The simulated world's UTC time, as the virtual board publishes it before each transmission.

    The gateway's clock in a virtual field: pass it to NodePeer(clock=SimClock(state_dir)).
    """

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, "clock")
        self.last = None

    def __call__(self):
        try:
            with open(self.path) as f:
                self.last = int(f.read().split()[0]) / 1000.0
        except (OSError, ValueError, IndexError):
            if self.last is None:
                raise RuntimeError("the virtual node has not published its clock yet (%s)" % self.path) from None
        return self.last


class PacedClock:
    """A paced virtual field's UTC: ``start`` + ``speed`` x (wall clock - ``wall0``), never before
    ``start``: the same timeline the nodes follow with ``--wall0``, known before any node runs.

    clock = PacedClock.parse("paced:1780272000,1795700000.5,1500")
    """

    def __init__(self, start, wall0, speed):
        self.start, self.wall0, self.speed = float(start), float(wall0), float(speed)

    @classmethod
    def parse(cls, spec):
        try:
            start, wall0, speed = spec.split(":", 1)[1].split(",")
            return cls(start, wall0, speed)
        except ValueError:
            raise ValueError("expected paced:START,WALL0,SPEED, got %r" % spec) from None

    def spec(self):
        return "paced:%d,%.3f,%g" % (self.start, self.wall0, self.speed)

    def __call__(self):
        import time

        return max(self.start, self.start + (time.time() - self.wall0) * self.speed)
