"""The gateway in the loop: one virtual node -> link attenuator (FrameProxy) -> the real gateway process -> Mosquitto.

    farm = BenchFarm(workdir, seed=3, days=1.0, fault_rate=0.2).start()
    farm.disconnect_between(t0, t1)            # pull the link for that stretch of simulated time
    farm.wait_nodes(); farm.wait_drained(); cells = farm.upstream_cells(); farm.stop()
    missing, twice = check_every_interval_once(farm, cells, farm.expected_cells())

tools.virtual_field.farm.VirtualFarm, used as it is but started differently: its paced timeline
(simulated time = speed x wall time) is replaced by the node's own world clock at speed 0 (the node
goes as fast as it can, and the gateway reads that clock: ``--sim-clock <state>/clock``, as
tools/virtual_field/install.py does), so a simulated day costs seconds and a lost ack costs the node
only real time. The node is a BenchNode (rig/boards.py): power cuts at chosen flash writes possible.
"""

import os
import subprocess
import sys
import threading
import time

from gateway.registry import Device, Registry
from hil_tests.rig.boards import BenchNode
from tools.virtual_field.broker import Mosquitto, Subscriber
from tools.virtual_field.farm import ROOT, VirtualFarm
from tools.virtual_field.node import START, default_config, write_config
from tools.virtual_field.proxy import DIRECTIONS, FrameProxy

GRID_S = 900


class BenchFarm(VirtualFarm):
    def __init__(self, workdir, seed=3, days=1.0, fault_rate=0.0, faults=None, cut_schedule=(), start=START,
                 intervals=None):  # fmt: skip
        super().__init__(workdir, seeds=(seed,), days=days, speed=0, fault_rate=fault_rate, fault_seed=seed,
                         node_faults={seed: dict(faults or {})}, start=start)  # fmt: skip
        self.seed = seed
        self.intervals = dict(intervals or {})  # the node's config "intervals" section (report_min, ...)
        self.cut_schedule = list(cut_schedule)
        self.state_dir = os.path.join(self.work, "node%d" % seed, "state")
        self.clock_path = os.path.join(self.state_dir, "clock")
        self.outages = []  # (from, to) simulated epoch s: the link is pulled in between
        self._watch = None
        self.disconnected_s = 0.0

    def start(self):
        os.makedirs(os.path.join(self.work, "mq"), exist_ok=True)
        os.makedirs(self.state_dir, exist_ok=True)
        self.broker = Mosquitto(os.path.join(self.work, "mq"), persistence=True)
        self.sub = Subscriber(self.broker.port, "fieldline/#", timeout_s=10, persistent=True)
        cfg = default_config(self.seed)
        if self.intervals:
            cfg["intervals"] = dict(self.intervals)
        self.configs.append(cfg)
        reg = Registry(path=os.path.join(self.work, "devices.toml"))
        reg.add(Device(cfg["device_id"], bytes.fromhex(cfg["key"]), name=cfg["name"], customer="bench"))
        reg.save()
        proxy = FrameProxy(seed=self.fault_seed, fault_rate=self.fault_rate, directions=DIRECTIONS)
        self.proxies.append(proxy.start())
        with open(self.clock_path, "w") as f:  # the node overwrites it as it runs
            f.write("%d %d\n" % (self.start_epoch * 1000, self.start_epoch * 1000))
        self._write_gateway_config()
        self.start_gateway()
        d = os.path.dirname(self.state_dir)
        conf = write_config(os.path.join(d, "config.json"), cfg)
        log = open(os.path.join(d, "node.log"), "w")
        vn = BenchNode(proxy.node_path, self.state_dir, seed=self.seed, config=conf, start=self.start_epoch,
                       until=self.until, faults=self.node_faults.get(self.seed), log=log,
                       cut_schedule=self.cut_schedule)  # fmt: skip
        vn.start()
        self.nodes.append(vn)
        if self.outages:
            self._watch = threading.Thread(target=self._pull_the_link, daemon=True)
            self._watch.start()
        return self

    def start_gateway(self):
        log = open(os.path.join(self.work, "gateway.log"), "a")
        self.gw = subprocess.Popen([sys.executable, "-m", "tools.cli", "gateway", "run", "--config", self.gw_config,
                                    "--sim-clock", self.clock_path], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)  # fmt: skip
        self.gw_starts += 1
        self.wait_status()

    # ---- long disconnections ----
    def disconnect_between(self, t0, t1):
        """Before start(): pull the link (both ways) while the simulated time is in [t0, t1)."""
        self.outages.append((t0, t1))

    def sim_now(self):
        try:
            with open(self.clock_path) as f:
                return int(f.read().split()[0]) / 1000.0
        except (OSError, ValueError, IndexError):
            return self.start_epoch

    def _pull_the_link(self):
        proxy, node = self.proxies[0], self.nodes[0]
        pulled_at = None
        while node.alive() or pulled_at is not None:
            now = self.sim_now()
            inside = any(a <= now < b for a, b in self.outages)
            if inside and pulled_at is None:
                pulled_at = now
                for d in DIRECTIONS:
                    proxy.pause(d)
            elif not inside and pulled_at is not None:
                for d in DIRECTIONS:
                    proxy.resume(d)
                self.disconnected_s += now - pulled_at
                pulled_at = None
            if not node.alive() and pulled_at is not None:
                for d in DIRECTIONS:
                    proxy.resume(d)
                pulled_at = None
            time.sleep(0.02)

    # ---- what went upstream ----
    def upstream_cells(self, quantity="air_temperature"):
        """{cell start: [(value, n, flags), ...]} of the node's ``quantity`` upstream: every copy, every revision
        (a cell first sent as a GAP row and later with its data is a revision, rev 1)."""
        readings, _records, _batches = self.received()
        src = self.source_of(self.seed)
        out = {}
        for (s, _sensor, q, ts, _rule, _rev), vals in readings.items():
            if s == src and q == quantity:
                out.setdefault(ts, []).extend(vals)
        return out

    def expected_cells(self, slack_s=3 * 3600):
        """Every cell the node sampled, from the start to ``slack_s`` before its end (what it closed then may
        still wait in its flash for the next report)."""
        return list(range(self.start_epoch, self.until - slack_s, GRID_S))


def upstream_values(cells):
    """{cell: set of values} of the cells that arrived with data (a GAP row, value null, is no data)."""
    return {t: {x[0] for x in v if x[0] is not None} for t, v in cells.items() if any(x[0] is not None for x in v)}


def check_every_interval_once(farm, cells, expected):
    """(missing, twice): sampled cells without data upstream, cells upstream with two different values."""
    vals = upstream_values(cells)
    missing = [t for t in expected if t not in vals]
    twice = {t: sorted(v) for t, v in vals.items() if len(v) > 1}
    assert not missing and not twice, (
        "expected every one of %d sampled intervals upstream exactly once; received %d missing (first %s), "
        "%d with two values %s\nnode console: %s; gateway log: %s" % (
            len(expected), len(missing), missing[:5], len(twice), list(twice.items())[:2], farm.nodes[0].log.name,
            os.path.join(farm.work, "gateway.log")))  # fmt: skip
    return missing, twice
