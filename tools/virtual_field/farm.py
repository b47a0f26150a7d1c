"""A virtual farm: real firmware nodes on ptys -> (fault proxy) -> the gateway process -> Mosquitto.

    farm = VirtualFarm(workdir, seeds=(1, 2, 3), days=1.0, speed=1000)
    farm.start(); farm.wait_nodes(); farm.wait_drained(); farm.stop()
    rows = farm.received_rows()          # every reading the subscriber got, deduplicated by key

Each node is the firmware on the MicroPython unix port (VirtualNode), its UART a pty behind a
FrameProxy (``fault_rate`` > 0 drops, corrupts, duplicates and reorders frames); the gateway is
``fieldline gateway run`` in its own process (SIGKILL-able), configured with one node source per
proxy, the device registry provisioning would write, an MQTT uplink to a real Mosquitto and a
status endpoint. The gateway and the nodes share one paced timeline (simulated UTC = START +
speed x wall time since ``wall0``; ``--sim-clock paced:...`` and ``--wall0``): in the virtual
field, the simulation's time is the real time, and a second the gateway is down is ``speed``
seconds in the field.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from gateway.registry import Device, Registry
from gateway.stream import load_batch
from tools.virtual_field.broker import Mosquitto, Subscriber, free_port
from tools.virtual_field.node import DAY, START, PacedClock, VirtualNode, default_config, write_config
from tools.virtual_field.proxy import FrameProxy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class VirtualFarm:
    def __init__(self, workdir, seeds=(1, 2, 3), days=1.0, speed=1000, fault_rate=0.0, fault_seed=7,
                 node_faults=None, grid_s=900, start=START, gateway_id="gw-sim", extras=(), lateness_s=None):
        self.work = os.path.abspath(workdir)
        self.seeds = tuple(seeds)
        self.days = days
        self.speed = speed
        self.fault_rate = fault_rate
        self.fault_seed = fault_seed
        self.node_faults = node_faults or {}
        self.grid_s = grid_s
        self.start_epoch = start
        self.until = start + int(days * DAY)
        self.gateway_id = gateway_id
        # third-party simulators: objects with start(), stop() and config_toml() -> [[sources]] text
        self.extras = list(extras)
        self.lateness_s = lateness_s
        self.nodes, self.proxies, self.configs = [], [], []
        self.broker = self.sub = self.gw = None
        self.status_port = free_port()
        self.gw_starts = 0
        os.makedirs(self.work, exist_ok=True)

    # ---- setup ----
    def start(self):
        os.makedirs(os.path.join(self.work, "mq"), exist_ok=True)
        # the upstream: a broker that keeps sessions across restarts and a receiver with a durable
        # session, so an outage of the broker loses nothing that was acknowledged to the gateway
        self.broker = Mosquitto(os.path.join(self.work, "mq"), persistence=True)
        self.sub = Subscriber(self.broker.port, "fieldline/#", timeout_s=10, persistent=True)
        reg = Registry(path=os.path.join(self.work, "devices.toml"))
        for i, seed in enumerate(self.seeds):
            cfg = default_config(seed)
            self.configs.append(cfg)
            reg.add(Device(cfg["device_id"], bytes.fromhex(cfg["key"]), name=cfg["name"], customer="sim"))
            proxy = FrameProxy(seed=self.fault_seed + i, fault_rate=self.fault_rate, directions=("up", "down"))
            proxy.start()
            self.proxies.append(proxy)
        reg.save()
        # one timeline for the gateway and every node: START is a few seconds from now, so the
        # gateway is up before the first node wakes
        self.clock = PacedClock(self.start_epoch, time.time() + 4.0, self.speed)
        self.wall0 = self.clock.wall0
        for extra in self.extras:
            extra.start()
        self._write_gateway_config()
        self.start_gateway()
        for i, seed in enumerate(self.seeds):
            d = os.path.join(self.work, "node%d" % seed)
            os.makedirs(d, exist_ok=True)
            conf = write_config(os.path.join(d, "config.json"), self.configs[i])
            vn = VirtualNode(self.proxies[i].node_path, os.path.join(d, "state"), seed=seed, speed=self.speed,
                             config=conf, start=self.start_epoch, until=self.until,
                             faults=self.node_faults.get(seed), log=open(os.path.join(d, "node.log"), "w"),
                             wall0=self.wall0)
            vn.start()
            self.nodes.append(vn)
        return self

    def _write_gateway_config(self):
        lines = [
            "[gateway]",
            'id = "%s"' % self.gateway_id,
            'data_dir = "gwdata"',
            'log_level = "info"',
            "[stream]",
            "grid_s = %d" % self.grid_s,
        ]
        if self.lateness_s is not None:
            lines.append("lateness_s = %d" % self.lateness_s)
        lines += [
            "[registry]",
            'path = "devices.toml"',
            "[status]",
            "port = %d" % self.status_port,
            "health_every_s = 3600",
        ]
        for i, p in enumerate(self.proxies):
            lines += ["[[sources]]", 'kind = "node"', 'name = "link%d"' % i, 'port = "%s"' % p.gateway_path,
                      "reopen_s = 0.2"]
        for extra in self.extras:
            lines.append(extra.config_toml())
        lines += ["[[uplinks]]", 'kind = "mqtt"', 'host = "127.0.0.1"', "port = %d" % self.broker.port,
                  "max_inflight = 32", "timeout_s = 5", "backoff_min_s = 0.2", "backoff_max_s = 2.0"]
        self.gw_config = os.path.join(self.work, "gateway.toml")
        with open(self.gw_config, "w") as f:
            f.write("\n".join(lines) + "\n")

    # ---- the gateway process ----
    def start_gateway(self):
        log = open(os.path.join(self.work, "gateway.log"), "a")
        self.gw = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "gateway", "run", "--config", self.gw_config,
             "--sim-clock", self.clock.spec()],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        self.gw_starts += 1
        self.wait_status()

    def kill_gateway(self, sig=signal.SIGKILL):
        self.gw.send_signal(sig)
        self.gw.wait(30)

    def status(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % self.status_port, timeout=5) as r:
            return json.loads(r.read())

    def wait_status(self, timeout_s=30):
        end = time.time() + timeout_s
        while True:
            if self.gw.poll() is not None:
                raise RuntimeError("gateway exited with %s:\n%s" % (self.gw.returncode, self.gateway_log()[-3000:]))
            try:
                return self.status()
            except OSError:
                if time.time() > end:
                    raise RuntimeError("gateway status never answered:\n" + self.gateway_log()[-3000:]) from None
                time.sleep(0.1)

    # ---- running ----
    def wait_nodes(self, timeout_s=600):
        end = time.time() + timeout_s
        for vn in self.nodes:
            vn.wait(max(1, end - time.time()))
            if vn.alive():
                raise RuntimeError("node %d still running after %d s" % (vn.seed, timeout_s))
        return [vn.returncode for vn in self.nodes]

    def wait_drained(self, timeout_s=60):
        """Until the gateway's queue and outbox are empty (everything forwarded)."""
        end = time.time() + timeout_s
        while True:
            st = self.status()
            if st["outbox"]["batches"] == 0 and st["queued_intakes"] == 0:
                return st
            if time.time() > end:
                raise RuntimeError("outbox not drained: %s" % st["outbox"])
            time.sleep(0.2)

    def stop(self):
        if self.gw is not None and self.gw.poll() is None:
            self.gw.send_signal(signal.SIGTERM)
            try:
                self.gw.wait(30)
            except subprocess.TimeoutExpired:
                self.gw.kill()
        for vn in self.nodes:
            vn.stop()
        for p in self.proxies:
            p.close()
        for extra in self.extras:
            extra.stop()
        if self.sub is not None:
            self.sub.close()
        if self.broker is not None:
            self.broker.close()

    # ---- results ----
    def gateway_log(self):
        with open(os.path.join(self.work, "gateway.log")) as f:
            return f.read()

    def node_log(self, i):
        return self.nodes[i].text() if i < len(self.nodes) else ""

    def received(self):
        """(readings {(source, sensor, quantity, ts, rule, rev): [values]}, records [dict], batches)."""
        readings, records = {}, []
        payloads = self.sub.payloads
        for p in payloads:
            doc = load_batch(p)
            cols = doc["readings"]
            runs = cols["runs"]
            i = 0
            for r in range(len(runs["count"])):
                base = (runs["source"][r], runs["sensor"][r], runs["quantity"][r])
                for _ in range(runs["count"][r]):
                    k = base + (cols["ts"][i], runs["rule"][r], runs["rev"][r])
                    readings.setdefault(k, []).append((cols["value"][i], cols["n"][i], runs["flags"][r]))
                    i += 1
            records.extend(doc["records"])
        return readings, records, len(payloads)

    def source_of(self, seed):
        return "node-%d" % default_config(seed)["device_id"]
