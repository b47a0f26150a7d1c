"""The demo's virtual field: provisioned virtual boards on one field, third-party sensors, the real gateway,
its uplinks, and the upstream receiver writing its SQLite store.

    field = DemoField(work, boards, sites, "devices.toml", "sqlite:///out/upstream.db", "out/stream.jsonl")
    field.start(start_epoch, speed=600)   # the install day: checks run through field.installer_path(i)
    field.go_season(speed=12000, until=end); field.wait_nodes(); field.drain(end + 3600); field.stop()

A VirtualFarm whose nodes are provisioned ReplBoards (the deployed code, their own flash and key:
``board.node``), each behind a FrameProxy with an installer port (where the install check sits), with
a simulated SDI-12 adapter and soil probe, a Modbus anemometer and vane, and two RuuviTags (fake BLE
backend). The gateway is ``fieldline gateway run`` with two uplinks: MQTT to Mosquitto (or HTTP to the
receiver when Mosquitto is not installed) and a JSON Lines file (the stream as files). The receiver is
``fieldline upstream serve`` in its own process. The nodes are paced on one timeline; the gateway's
clock is FieldClock (below), the time the nodes publish. The install day runs slowly enough for the
check's round trips; ``go_season`` then restarts the gateway and the nodes (a power cycle, flash kept)
on a new timeline at the season's speed, from where the install day left the field's clock; ``drain``
lets the gateway forward what it holds with nothing new coming in.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from tools.virtual_field.broker import MOSQUITTO, Mosquitto, free_port
from tools.virtual_field.farm import ROOT, VirtualFarm
from tools.virtual_field.modbus_sim import ModbusBus
from tools.virtual_field.node import PacedClock
from tools.virtual_field.proxy import FrameProxy
from tools.virtual_field.sdi12_sim import Sdi12Sim, SimProbe

GATEWAY_ID = "gw-demo"
FIELD_NAME = "north"
# what each third-party source is polled at, in simulated seconds: every 15-minute cell of the grid
POLL_S = 900
RECEIVER_START_S = 20.0


class SoilProbe:
    """A USB SDI-12 adapter with one soil probe (water content, temperature, bulk EC) on it."""

    name = "soil"

    def __init__(self, seed=1):
        self.seed = seed
        self.sim = Sdi12Sim([SimProbe("0", seed=seed)], time_scale=0.01)

    def start(self):
        self.sim.start()

    def stop(self):
        self.sim.stop()

    def replug(self):
        """A fresh adapter on a new pty: the simulator's pty refuses a second open in 7E1 (EINVAL)."""
        self.sim.stop()
        self.sim = Sdi12Sim([SimProbe("0", seed=self.seed)], time_scale=0.01)
        self.sim.start()

    def config_toml(self):
        values = ('[{ index = 0, quantity = "soil_water_content", coeffs = [-0.053, 3.87e-4, -1.2e-8], lo = 0.0, '
                  'hi = 0.6 }, { index = 1, quantity = "soil_temperature" }, '
                  '{ index = 2, quantity = "soil_bulk_ec", scale = 1e-4 }]')  # fmt: skip
        return "\n".join([
            "[[sources]]", 'kind = "sdi12"', 'name = "%s"' % self.name, 'port = "%s"' % self.sim.slave_path,
            "interval_s = %d" % POLL_S, "timeout_s = 0.5", "retries = 2", "retry_s = 120",
            "[[sources.probes]]", 'address = "0"', 'sensor = "bed1"', "crc = true", "values = " + values,
        ])  # fmt: skip


class WindBus:
    """A Modbus RTU bus with an anemometer and a wind vane."""

    name = "wind"

    def __init__(self):
        self.bus = ModbusBus(name=self.name)

    def start(self):
        self.bus.start()

    def stop(self):
        self.bus.stop()

    def config_toml(self):
        return self.bus.config_toml(interval_s=POLL_S)


class Tags:
    """Two RuuviTags heard by the gateway through the fake bleak backend, on the field's timeline."""

    name = "tags"

    def __init__(self, field, seed=3):
        self.field, self.seed = field, seed

    def start(self):
        pass

    def stop(self):
        pass

    def config_toml(self):
        return "\n".join([
            "[[sources]]", 'kind = "ble"', 'name = "%s"' % self.name,
            'backend = "tools.virtual_field.ble_sim:SimScanner"', "all_ruuvi = true", "stale_s = 3600",
            "[sources.backend_args]", "tags = 2", "seed = %d" % self.seed, "corrupt_fraction = 0.02",
            "measure_every_s = %d.0" % (POLL_S // 3), "adverts_per_measurement = 1",
            'clock = "%s"' % self.field.paced.spec(),
        ])  # fmt: skip


class Receiver:
    """``fieldline upstream serve`` in its own process: MQTT subscriber and/or HTTP ingest into the store."""

    def __init__(self, store_url, log_path, mqtt_port=None):
        self.store_url, self.log_path, self.mqtt_port = store_url, log_path, mqtt_port
        self.http_port = free_port()
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.http_port

    def start(self):
        cmd = [
            sys.executable,
            "-m",
            "tools.cli",
            "upstream",
            "serve",
            "--store",
            self.store_url,
            "--http",
            "127.0.0.1:%d" % self.http_port,
            "--alerts-every",
            "0",
            "--client-id",
            "fieldline-demo",
        ]
        if self.mqtt_port:
            cmd += ["--mqtt", "127.0.0.1:%d" % self.mqtt_port]
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        end = time.monotonic() + RECEIVER_START_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "the upstream receiver exited with %s (log: %s)" % (self.proc.returncode, self.log_path)
                )
            try:
                st = self.status()
                if not self.mqtt_port or st.get("mqtt_connected"):
                    return self
            except OSError:
                pass
            if time.monotonic() > end:
                raise RuntimeError(
                    "the upstream receiver did not come up in %.0f s (log: %s)" % (RECEIVER_START_S, self.log_path)
                )
            time.sleep(0.1)

    def status(self):
        with urllib.request.urlopen(self.url + "/status", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def _retime_world(state_dir, start_epoch):
    """Put a virtual board's world (its battery, the node's clock error) on a new paced timeline from
    ``start_epoch``: the board keeps the world in ``world.json`` across resets, paced from where it began."""
    path = os.path.join(state_dir, "world.json")
    try:
        with open(path) as f:
            world = json.load(f)
    except (OSError, ValueError):
        return  # never ran: it powers on at the new timeline's start
    world["t"] = world["t0"] = int(start_epoch) * 1000
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(world, f)
    os.replace(tmp, path)


class FieldClock:
    """The gateway's clock in the demo's field: the world time the nodes publish (the virtual board writes it
    before each transmission), relayed into one clock file the gateway reads (``--sim-clock``).

    A node's world stands still while it computes or waits for the gateway; a paced gateway clock does
    not, and at 12,000x a few ms read as minutes of clock error (the node would step its clock and skip
    intervals). So the clock is the latest time any node published, held back while a node waits for an
    answer (bytes went up, none came down yet; at most ``HOLD_S`` of wall time) to that node's time: a
    time sync is answered with the asking node's own world time even while the others move on. It never
    goes back. Each node's proxy calls ``up(i, state_dir)`` and ``down(i)`` as bytes pass.
    """

    HOLD_S = 1.0

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, "clock")
        self.ms = self.latest = 0
        self.waiting = {}  # node -> (its published ms, wall clock when it began waiting)
        self._lock = threading.Lock()

    def spec(self):
        return self.path

    def __call__(self):
        return self.ms / 1000.0

    def reset(self, epoch_s):
        with self._lock:
            self.ms = self.latest = int(epoch_s * 1000)
            self.waiting.clear()
            self._write()

    def up(self, node, state_dir):
        try:
            with open(os.path.join(state_dir, "clock")) as f:
                ms = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with self._lock:
            self.latest = max(self.latest, ms)
            if node not in self.waiting:
                self.waiting[node] = (ms, time.monotonic())
            self._advance()

    def down(self, node):
        with self._lock:
            if self.waiting.pop(node, None) is not None:
                self._advance()

    def _advance(self):
        now = time.monotonic()
        held = [ms for ms, since in self.waiting.values() if now - since < self.HOLD_S]
        target = min(held) if held else self.latest
        if target > self.ms:
            self.ms = target
            self._write()

    def _write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d\n" % (self.ms, self.ms))
        os.replace(tmp, self.path)


class DemoField(VirtualFarm):
    """See the module docstring. ``boards``: provisioned ReplBoards (stopped), ``sites``: [(lat, lon)] of each,
    ``faults``: {board index: {knob: value}} (a badly installed node), ``uplink``: "mqtt" | "http"."""

    def __init__(self, workdir, boards, sites, registry_path, store_url, stream_path, faults=None, uplink=None,
                 log_dir=None, seed=1):  # fmt: skip
        super().__init__(workdir, seeds=[b.seed for b in boards], gateway_id=GATEWAY_ID, lateness_s=900)
        self.boards, self.sites = list(boards), list(sites)
        self.registry_path = os.path.abspath(registry_path)
        self.store_url, self.stream_path = store_url, os.path.abspath(stream_path)
        self.faults = faults or {}
        self.uplink = uplink or ("mqtt" if MOSQUITTO else "http")
        self.log_dir = os.path.abspath(log_dir or self.work)
        self.extras = [SoilProbe(seed), WindBus(), Tags(self, seed + 2)]
        self.receiver = None
        self.clock = FieldClock(os.path.join(self.work, "world"))
        self.paced = None
        self._stopped = False
        os.makedirs(self.log_dir, exist_ok=True)
        here = os.path.join(self.log_dir, "gateway.log")
        if not os.path.lexists(here):  # VirtualFarm writes the gateway's log in its work folder
            os.symlink(os.path.join(self.work, "gateway.log"), here)

    # ---- the install day ----
    def start(self, start_epoch, speed):
        """Broker, receiver, proxies, sensors, gateway and the nodes, on a timeline from ``start_epoch``."""
        if self.uplink == "mqtt":
            os.makedirs(os.path.join(self.work, "mq"), exist_ok=True)
            self.broker = Mosquitto(os.path.join(self.work, "mq"))
        self.receiver = Receiver(self.store_url, os.path.join(self.log_dir, "receiver.log"),
                                 self.broker.port if self.broker else None).start()  # fmt: skip
        for i, board in enumerate(self.boards):
            proxy = FrameProxy(seed=self.fault_seed + i, installer=True,
                               on_up=lambda i=i, d=board.state_dir: self.clock.up(i, d),
                               on_down=lambda i=i: self.clock.down(i))  # fmt: skip
            self.proxies.append(proxy.start())
        for extra in self.extras:
            extra.start()
        self._run(start_epoch, speed, start_epoch + 30 * 86400)
        return self

    def installer_path(self, i):
        return self.proxies[i].installer_path

    @property
    def status_url(self):
        return "http://127.0.0.1:%d" % self.status_port

    # ---- the season ----
    def go_season(self, speed, until):
        """Power-cycle the nodes and restart the gateway on a new timeline at ``speed``, from where the
        field's clock is now; the nodes run until ``until``. Returns the season's first instant."""
        start = int(self.clock()) + 1
        for vn in self.nodes:
            vn.stop()
        self.kill_gateway(signal.SIGTERM)
        self.nodes = []
        for board in self.boards:
            _retime_world(board.state_dir, start)
        for extra in self.extras:
            if hasattr(extra, "replug"):
                extra.replug()
        self._run(start, speed, until)
        return start

    def drain(self, at, timeout_s=60):
        """After the nodes finished: restart the gateway on a clock stopped at ``at`` and without the
        third-party sources (nothing new comes in), wait until its outbox is forwarded and the receiver
        stored all it got. Returns the receiver's status."""
        self.kill_gateway(signal.SIGTERM)
        self.clock.reset(at)
        extras, self.extras = self.extras, []
        try:
            self._write_gateway_config()
        finally:
            self.extras = extras
        self.start_gateway()
        self.wait_drained(timeout_s)
        end = time.monotonic() + timeout_s
        last = None
        while True:
            st = self.receiver.status()
            if st.get("batches") == last or time.monotonic() > end:
                return st
            last = st.get("batches")
            time.sleep(0.3)

    def _run(self, start_epoch, speed, until):
        self.speed, self.start_epoch, self.until = speed, start_epoch, int(until)
        self.paced = PacedClock(start_epoch, time.time() + 3.0, speed)  # the gateway is up before nodes wake
        self.wall0 = self.paced.wall0
        self.clock.reset(start_epoch)
        self._write_gateway_config()
        self.start_gateway()
        for i, board in enumerate(self.boards):
            lat, lon = self.sites[i]
            log = open(os.path.join(self.log_dir, "node%d.log" % (i + 1)), "a")
            vn = board.node(self.proxies[i].node_path, speed=speed, start=start_epoch, until=self.until,
                            faults=self.faults.get(i), log=log, wall0=self.wall0, lat=lat, lon=lon)  # fmt: skip
            vn.start()
            self.nodes.append(vn)

    def _write_gateway_config(self):
        lines = [
            "[gateway]", 'id = "%s"' % self.gateway_id, 'data_dir = "gwdata"', 'log_level = "info"',
            "[stream]", "grid_s = %d" % self.grid_s, "lateness_s = %d" % self.lateness_s,
            "[registry]", 'path = "%s"' % self.registry_path,
            "[status]", "port = %d" % self.status_port, "health_every_s = 3600",
        ]  # fmt: skip
        for i, p in enumerate(self.proxies):
            lines += ["[[sources]]", 'kind = "node"', 'name = "link%d"' % i, 'port = "%s"' % p.gateway_path,
                      "reopen_s = 0.2"]  # fmt: skip
        for extra in self.extras:
            lines.append(extra.config_toml())
        lat, lon = self.sites[0]
        lines += ["[[fields]]", 'name = "%s"' % FIELD_NAME, 'nodes = ["*"]', "lat = %.6f" % lat, "lon = %.6f" % lon,
                  'wind_source = "wind"', "wind_height_m = 2.0", 'season_start = "%s"'
                  % time.strftime("%Y-%m-%d", time.gmtime(self.start_epoch))]  # fmt: skip
        if self.uplink == "mqtt":
            lines += ["[[uplinks]]", 'kind = "mqtt"', 'host = "127.0.0.1"', "port = %d" % self.broker.port,
                      "max_inflight = 32", "timeout_s = 5", "backoff_min_s = 0.2", "backoff_max_s = 2.0"]  # fmt: skip
        else:
            lines += ["[[uplinks]]", 'kind = "http"', 'url = "%s/batches"' % self.receiver.url, "max_inflight = 8",
                      "timeout_s = 10", "backoff_min_s = 0.2", "backoff_max_s = 2.0"]  # fmt: skip
        lines += ["[[uplinks]]", 'kind = "file"', 'path = "%s"' % self.stream_path, "fsync = false",
                  "backoff_min_s = 0.2", "backoff_max_s = 2.0"]  # fmt: skip
        self.gw_config = os.path.join(self.work, "gateway.toml")
        with open(self.gw_config, "w") as f:
            f.write("\n".join(lines) + "\n")

    # ---- the end ----
    def stop(self):
        """Stop every process and thread of the field (once; later calls do nothing)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            super().stop()
        finally:
            if self.receiver is not None:
                self.receiver.stop()
