"""The installation check: ask an installed node about itself, judge every part of the install, PASS/WARN/FAIL.

    with open_link("serial", "/dev/ttyUSB0") as link:
        results = run_check(link, CheckOptions(boundary=field, gateway=GatewayClient(url, token)), progress)
    verdict(results)    # the worst check;  as_json(results) -> {"verdict": ..., "checks": [...]}
    # or InstallCheck(link, options, progress): .run(), then .device_id, .snapshot, .facts()

Steps: find the node on the link (its device id), read all its diagnostics (keyless diag_requests:
see checks_session), judge them (checks_node: identity, firmware, manifest, config, clock, level, gnss,
position; checks_light: spectral sensors, incident light, reflectance; checks_sensors: air, canopy and
sky temperature, solar charging, battery), time a burst of round trips (checks_link: link), then
ask the gateway whether the node's data reached it and went upstream (key, upstream). Every check
reports what it measured, what was expected and, unless it passed, the fix in plain words. A check
whose input is missing (no boundary, no manifest, no gateway) is a WARN "not checked": the verdict
PASS means everything was checked and is right. ``progress`` (a Progress) hears each step and result
as it happens. The onboarding report (checks_upstream) carries the results upstream.
"""

import time
from dataclasses import dataclass, field

from provisioning.checks_light import Light, check_incident_light, check_reflectance, check_spectral_sensors, sun_at
from provisioning.checks_link import check_key, check_link, check_upstream, key_mismatch, run_burst
from provisioning.checks_node import (
    check_clock,
    check_config,
    check_firmware,
    check_gnss,
    check_identity,
    check_level,
    check_manifest,
    check_position,
)
from provisioning.checks_result import FAIL, PASS, WARN, CheckError, Result, as_json, verdict  # noqa: F401
from provisioning.checks_sensors import (
    check_air,
    check_battery,
    check_canopy_temperature,
    check_sky_temperature,
    check_solar_charging,
)
from provisioning.checks_session import DiagSession, NoAnswer
from provisioning.checks_upstream import GatewayUnreachable

CHECKS = ("identity", "firmware", "manifest", "config", "clock", "level", "gnss", "position", "spectral_sensors",
          "incident_light", "reflectance", "air", "canopy_temperature", "sky_temperature", "solar_charging", "battery",
          "link", "key", "upstream")  # fmt: skip


@dataclass
class CheckOptions:
    device_id: int | None = None  # None: the first node heard on the link
    boundary: object = None  # a checks_geo.Boundary
    sites: object = None  # without a boundary: callable(device_id) -> its Boundary or None (the site record)
    manifest: dict | None = None  # the provisioning manifest (fw_version, device_id)
    keyring: dict | None = field(default=None, repr=False)  # the gateway registry's keys: device id -> bytes
    gateway: object = None  # a checks_upstream.GatewayClient
    upstream_probe: object = None  # callable(device_id) -> bool: the upstream has its records (virtual field)
    clock: object = time.time  # reference UTC (epoch s): this computer's; the world's in the virtual field
    wait_s: float = 90.0  # for the node's first answer (it listens only at some wakes)
    retry_s: float = 2.0  # ask again for missing items after this long without an answer
    rt_timeout_s: float = 1.0  # a listening node answers a round trip within this
    window_s: float = 90.0  # the longest a node may not listen (asleep, waiting for the gateway)
    burst: int = 10
    burst_budget_s: float | None = None  # round trips not made by then count as lost
    upstream_wait_s: float = 15.0  # for the gateway to show the node's data forwarded


class Progress:
    """What a caller hears while the check runs (the CLI draws it); every method may be left as is."""

    def step(self, text):
        """A new step starts ("reading diagnostics")."""

    def tick(self, done, total):
        """Progress within the step."""

    def result(self, result):
        """One check is decided."""


class InstallCheck:
    """One run of the install check over ``link`` (a FrameLink); ``run()`` returns [Result] in CHECKS order.

    After the run: ``device_id`` (given or heard), ``snapshot`` (the node's diagnostics, None if it never
    answered) and ``facts()`` (what the onboarding report records beside the checks)."""

    def __init__(self, link, options=None, progress=None):
        self.link, self.o, self.p = link, options or CheckOptions(), progress or Progress()
        self.session = DiagSession(link, self.o.device_id, self.o.keyring, self.o.clock)
        self.snapshot = None
        self.results = []

    @property
    def device_id(self):
        return self.session.device_id

    def _emit(self, r):
        self.results.append(r)
        self.p.result(r)

    def run(self):
        """All checks; a node that never answers gives one FAIL ("node"); LinkError (the link failed) is raised."""
        o, p, session = self.o, self.p, self.session
        try:
            if session.device_id is None:
                p.step("listening for the node on %s" % self.link.target)
                session.discover(o.wait_s)
            p.step("reading the diagnostics of device %s" % session.device_id)
            snap = self.snapshot = session.snapshot(o.wait_s, retry_s=o.retry_s)
        except NoAnswer as e:
            self._emit(
                Result(
                    "node",
                    FAIL,
                    "no answer within %.0f s" % o.wait_s,
                    "the node answers diagnostics",
                    "The node does not answer on %s (%s): check the cable or BLE connection, that the node "
                    "is powered and that this is its port; then check again" % (self.link.target, e),
                )
            )
            return self.results
        for r in (check_identity(snap, o.device_id), check_firmware(snap), check_manifest(snap, o.manifest),
                  check_config(snap), check_clock(snap), check_level(snap), check_gnss(snap),
                  check_position(snap, self._boundary()), check_spectral_sensors(snap)):  # fmt: skip
            self._emit(r)
        sun = sun_at(snap, snap.item_at.get("sensors", snap.at))
        light = Light.from_snapshot(snap, sun)
        elevation = (snap.get("gnss") or {}).get("alt_m") or (snap.get("config") or {}).get("alt_m") or 0.0
        for r in (check_incident_light(light, sun), check_reflectance(light), check_air(snap, elevation),
                  check_canopy_temperature(snap, sun), check_sky_temperature(snap, light),
                  check_solar_charging(snap, light, sun), check_battery(snap)):  # fmt: skip
            self._emit(r)
        p.step("timing %d round trips to the node" % o.burst)
        burst = run_burst(session, o.burst, o.rt_timeout_s, o.window_s, o.burst_budget_s, lambda i: p.tick(i, o.burst))
        node_link, node_log = _refresh(session, o, snap.get("link"), snap.get("log"))
        self._emit(check_link(burst, node_link))
        view, error, seen, node_link, node_log = _upstream(session, o, p, node_link, node_log)
        in_registry = None if o.keyring is None else o.keyring.get(session.device_id) is not None
        self._emit(check_key(session.keyed, bool(in_registry), in_registry, view, node_link))
        self._emit(check_upstream(node_link, node_log, view, error, seen))
        return self.results

    def _boundary(self):
        if self.o.boundary is None and self.o.sites is not None:
            return self.o.sites(self.device_id)
        return self.o.boundary

    def facts(self):
        """What the onboarding report records beside the checks: firmware version, GNSS position (lat,
        lon, alt_m) and the tilt at install (the fleet view compares later tilts with it), the field."""
        snap = self.snapshot
        if snap is None:
            return {}
        g, t = snap.get("gnss") or {}, snap.get("tilt") or {}
        out = {"fw_version": (snap.get("firmware") or {}).get("version")}
        if g.get("fix"):
            out.update(lat=g.get("lat"), lon=g.get("lon"), alt_m=g.get("alt_m"))
        if t.get("tilt_deg") is not None:
            out["tilt_deg"] = t["tilt_deg"]
        field = self._boundary()
        if field is not None and field.name:
            out["field"] = field.name
        return out


def run_check(link, options=None, progress=None):
    """All checks of the node on ``link``, in CHECKS order: InstallCheck(link, options, progress).run()."""
    return InstallCheck(link, options, progress).run()


def _refresh(session, o, node_link, node_log):
    """The node's link and log items asked again (they grow as it delivers); the old ones if no answer."""
    try:
        fresh = session.snapshot(min(o.wait_s, max(o.rt_timeout_s, o.retry_s) * 2), items=("link", "log"),
                                 retry_s=o.retry_s)  # fmt: skip
        return fresh.get("link", node_link), fresh.get("log", node_log)
    except NoAnswer:
        return node_link, node_log


def _upstream(session, o, p, node_link, node_log):
    """Poll the gateway (and the node) until its data is seen and forwarded, or upstream_wait_s ran out."""
    if o.gateway is None:
        return None, None, None, node_link, node_log
    p.step("asking the gateway whether the node's data went upstream")
    end = time.monotonic() + o.upstream_wait_s
    view = seen = None
    while True:
        try:
            view = o.gateway.view(session.device_id)
        except GatewayUnreachable as e:
            return None, str(e), None, node_link, node_log
        seen = o.upstream_probe(session.device_id) if o.upstream_probe is not None else None
        acked = (node_link or {}).get("acked_frames")
        done = view.seen and view.forwarded and view.connected and acked and seen is not False
        if done or time.monotonic() >= end or key_mismatch(session.keyed):  # a wrong key: nothing will come
            return view, None, seen, node_link, node_log
        time.sleep(0.5)
        if not acked:
            node_link, node_log = _refresh(session, o, node_link, node_log)
