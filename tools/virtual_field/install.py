"""A virtual installation to check: one real-firmware node -> FrameProxy (installer port) -> the gateway -> Mosquitto.

    inst = VirtualInstall(workdir, faults={"tilt_deg": 7.8}).start()
    link = open_link("serial", inst.installer_path)     # what `fieldline check --virtual` talks to
    ...; inst.status(); inst.upstream_records(); inst.stop()

The node is the firmware on the MicroPython unix port (VirtualNode), provisioned the way provisioning
would (``site``, the check-friendly ``intervals`` below, and the unit's own spectral calibration), and
started at ``solar_hour`` local apparent solar time on ``day`` (default 11:00 on 2026-06-01, a
clear-ish June day at 52 N), so a correct install sees the sun. Its UART goes through a FrameProxy
whose installer port is where the check tool sits (the gateway's end of the link: see proxy.py). The
gateway is the real ``fieldline gateway run`` process with the device registry provisioning would
write and an MQTT uplink to a real Mosquitto, where a subscriber plays the upstream.

Time: the node runs ``speed`` times faster than the wall clock (each sleep lasts ms / speed); the
gateway's clock is the node's world (its clock file: ``--sim-clock``), so time sync is exact and
the check tool's reference clock (``clock``) is the same world time.

Install-level fault knobs, beside the node's own (sim.field.FAULTS, the board's): ``link_fault_rate``
(the proxy drops or corrupts that fraction of frames, both ways) and ``wrong_key`` (the registry
holds another key than the node was provisioned with).
"""

import math
import os
import re
import subprocess
import sys
import time

from gateway.registry import Device, Registry
from tools.paths import FIRMWARE_DIR
from tools.virtual_field.broker import Mosquitto, Subscriber
from tools.virtual_field.farm import ROOT, VirtualFarm
from tools.virtual_field.node import START, SimClock, VirtualNode, default_config, write_config
from tools.virtual_field.proxy import FrameProxy

INSTALL_FAULTS = ("link_fault_rate", "wrong_key")
# the node's intervals in a virtual install: it listens for requests after each report, so reports
# every 5 min (the shortest the config allows) give the check a listening window every 300 / speed s
CHECK_INTERVALS = {"sample_s": 60, "summary_min": 5, "report_min": 5, "health_min": 15}
BOUNDARY_HALF_M = 100.0  # the default field: a 200 m x 200 m square around the node's site


def solar_time_utc(day_epoch, lon_deg, solar_hour):
    """UTC epoch seconds on the UTC day of ``day_epoch`` when the apparent solar time at ``lon_deg`` is
    ``solar_hour``: UTC = solar hour - lon / 15 - equation of time (Spencer 1971, as fieldnode.agro)."""
    day = int(day_epoch // 86400)
    doy = time.gmtime(day * 86400).tm_yday
    g = 2 * math.pi / 365 * (doy - 1 + (solar_hour - lon_deg / 15 - 12) / 24)
    eot_min = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g) - 0.014615 * math.cos(2 * g)
                        - 0.040849 * math.sin(2 * g))  # fmt: skip
    return day * 86400 + int(round((solar_hour - lon_deg / 15) * 3600 - eot_min * 60))


def unit_calibration(seed):
    """The calibration provisioning writes for the virtual node of ``seed`` (its simulated units):
    spectral cross-calibration up/down responsivity per channel, W m-2 per basic count of the up CLEAR."""
    if FIRMWARE_DIR not in sys.path:
        sys.path.insert(0, FIRMWARE_DIR)  # the simulation's chip models run on CPython too
    from sim.chips.as7341 import responsivity_for_unit
    from sim.sun import _SPECTRUM_PER_KW

    up, down = responsivity_for_unit(seed), responsivity_for_unit(seed + 7)  # as the virtual board builds them
    clear_per_kw = _SPECTRUM_PER_KW[8] * 0.01  # W m-2 nm-1 on CLEAR per 1000 W m-2 of sunlight
    return {"spectral": [round(u / d, 4) for u, d in zip(up, down, strict=True)],
            "shortwave_w_m2_per_count": round(1000.0 / (clear_per_kw * up[8]), 3)}  # fmt: skip


def square_boundary(lat, lon, half_m=BOUNDARY_HALF_M):
    """A square field of side 2 ``half_m`` centred on (lat, lon), as [(lat, lon), ...] corners."""
    dlat = half_m / 111320.0
    dlon = half_m / (111320.0 * math.cos(math.radians(lat)))
    return [(lat - dlat, lon - dlon), (lat - dlat, lon + dlon), (lat + dlat, lon + dlon), (lat + dlat, lon - dlon)]


class VirtualInstall(VirtualFarm):
    """One virtual node installed in a virtual field; see the module docstring."""

    def __init__(self, workdir, seed=1, faults=None, speed=300, lat=52.0, lon=5.0, day=START, solar_hour=11.0,
                 gateway_id="gw-install"):  # fmt: skip
        faults = dict(faults or {})
        self.link_fault_rate = float(faults.pop("link_fault_rate", 0.0))
        self.wrong_key = bool(float(faults.pop("wrong_key", 0)))
        start = solar_time_utc(day, lon, solar_hour)
        super().__init__(workdir, seeds=(seed,), days=30, speed=speed, fault_rate=self.link_fault_rate,
                         node_faults={seed: faults}, start=start, gateway_id=gateway_id)  # fmt: skip
        self.seed, self.lat, self.lon = seed, lat, lon
        self.node_config = cfg = default_config(seed, lat, lon)
        cfg["intervals"] = dict(CHECK_INTERVALS)
        cfg["calibration"] = unit_calibration(seed)
        self.device_id = cfg["device_id"]
        self.key = bytes.fromhex(cfg["key"])
        self.registry_key = bytes(b ^ 0x5A for b in self.key) if self.wrong_key else self.key
        self.boundary = square_boundary(lat, lon)
        self.node_dir = os.path.join(self.work, "node%d" % seed)
        self.state_dir = os.path.join(self.node_dir, "state")
        self.clock = SimClock(self.state_dir)  # the world's UTC: the gateway's clock and the check's
        self.installer_path = None
        self.registry_path = os.path.join(self.work, "devices.toml")

    def start(self):
        os.makedirs(os.path.join(self.work, "mq"), exist_ok=True)
        os.makedirs(self.state_dir, exist_ok=True)
        self.broker = Mosquitto(os.path.join(self.work, "mq"))
        self.sub = Subscriber(self.broker.port, "fieldline/#", timeout_s=10)
        reg = Registry(path=self.registry_path)
        reg.add(Device(self.device_id, self.registry_key, name=self.node_config["name"], customer="sim"))
        reg.save()
        proxy = FrameProxy(seed=self.fault_seed, fault_rate=self.link_fault_rate, faults=("drop", "corrupt"),
                           directions=("up", "down"), installer=True)  # fmt: skip
        self.proxies.append(proxy.start())
        self.installer_path = proxy.installer_path
        with open(os.path.join(self.state_dir, "clock"), "w") as f:  # the node overwrites it as it runs
            f.write("%d %d\n" % (self.start_epoch * 1000, self.start_epoch * 1000))
        self._write_gateway_config()
        self.start_gateway()
        conf = write_config(os.path.join(self.node_dir, "config.json"), self.node_config)
        vn = VirtualNode(
            proxy.node_path,
            self.state_dir,
            seed=self.seed,
            speed=self.speed,
            config=conf,
            start=self.start_epoch,
            until=self.until,
            faults=self.node_faults.get(self.seed),
            log=open(os.path.join(self.node_dir, "node.log"), "w"),
            lat=self.lat,
            lon=self.lon,
        )
        vn.start()
        self.nodes.append(vn)
        return self

    def start_gateway(self):
        log = open(os.path.join(self.work, "gateway.log"), "a")
        self.gw = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "gateway", "run", "--config", self.gw_config,
             "--sim-clock", self.clock.path],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.gw_starts += 1
        self.wait_status()

    @property
    def status_url(self):
        return "http://127.0.0.1:%d" % self.status_port

    @property
    def proxy(self):
        return self.proxies[0]

    def upstream_records(self):
        """Every record the upstream (the MQTT subscriber) received, in arrival order."""
        return self.received()[1]

    def upstream_has(self, device_id, kind=None):
        """True when the upstream received a record of the device (of ``kind``, if given)."""
        return any(r.get("device") == device_id and (kind is None or r.get("kind") == kind)
                   for r in self.upstream_records())  # fmt: skip

    def manifest(self):
        """The provisioning manifest of this node: the firmware version deployed (the tree it runs)."""
        with open(os.path.join(FIRMWARE_DIR, "fieldnode", "__init__.py")) as f:
            version = re.search(r'FW_VERSION = "([^"]+)"', f.read()).group(1)
        return {"fw_version": version, "device_id": self.device_id, "source": "virtual build of firmware/"}

    def check_timing(self):
        """CheckOptions timings for this node: it listens after each report (every 300 s / speed of wall
        time), later when a delivery or time sync waits in vain for the gateway (2.8 s each)."""
        window = 300.0 / self.speed
        return {"wait_s": 30.0 + 2 * window, "retry_s": max(1.0, 1.5 * window + 0.2), "rt_timeout_s": 0.5,
                "window_s": 2 * window + 6.0, "burst_budget_s": 15.0, "upstream_wait_s": 10.0}  # fmt: skip
