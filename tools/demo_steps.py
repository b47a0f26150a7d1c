"""The demo's steps, each a function the `fieldline demo` command calls in turn and prints as it goes.

    nodes = provision_nodes(work, 4, seed=1, say=print)       # [DemoNode], boards provisioned and stopped
    checks = check_nodes(field, nodes, report_dir, say=print)  # {node name: (verdict, [Result])}

provision: each node is a REPL virtual board provisioned as an installer would (`provision_virtual`: the
firmware deployed, its key, its site in the field, the demo's intervals and its unit's calibration).
check: the installation check (provisioning.check) through each node's installer port, with the field's
boundary, the deployment's manifest, the registry's keys and the gateway; its onboarding report is saved
and handed to the gateway, which forwards it upstream (the CSM sees the verdict). attention: the fleet's
needs-attention list judged at the season's end. season_report: upstream/season.py, if it is there.
"""

import json
import os
import time
from dataclasses import dataclass

CUSTOMER = "Demo Farms"
FIELD = "north"
SITE = (52.0, 5.0)
# the demo's node settings: a sample every 15 min, 15-minute summaries, hourly reports and health: the
# records of the defaults (sample_s 60) at a tenth of the CPU a simulated day costs on the unix port
SAMPLE_S = 900
INTERVALS = {"sample_s": SAMPLE_S, "summary_min": 15, "report_min": 60, "health_min": 60}
BAD_INSTALL = {"shade_up": 0.5}  # the badly installed node: a tag hangs over its up-looking sensor
OFFSETS_M = ((-40, -40), (-40, 40), (40, -40), (40, 40), (0, 0), (-70, 0), (70, 0), (0, -70), (0, 70))


@dataclass
class DemoNode:
    name: str
    device_id: int
    board: object  # a provisioned ReplBoard (stopped)
    lat: float
    lon: float
    bad: bool = False

    @property
    def source(self):
        return "node-%d" % self.device_id


def node_site(i):
    """(lat, lon) of the i-th node: spread over the field around SITE, tens of metres apart."""
    import math

    dy, dx = OFFSETS_M[i % len(OFFSETS_M)]
    dy += 8 * (i // len(OFFSETS_M))
    lat = SITE[0] + dy / 111320.0
    return round(lat, 6), round(SITE[1] + dx / (111320.0 * math.cos(math.radians(SITE[0]))), 6)


def provision_nodes(work, n, seed, say, bad_index=None):
    """Provision ``n`` virtual boards in ``work`` (registry work/devices.toml); the node at ``bad_index``
    (default: the last) will be installed badly."""
    from provisioning.provision import Request, provision_virtual
    from tools.virtual_field.install import square_boundary, unit_calibration

    registry = os.path.join(work, "devices.toml")
    boundary = square_boundary(*SITE)
    bad_index = n - 1 if bad_index is None else bad_index
    nodes = []
    for i in range(n):
        board_seed = seed * 10 + i + 1
        lat, lon = node_site(i)
        name = "%s-%d" % (FIELD, i + 1)
        overrides = {"intervals": dict(INTERVALS), "calibration": unit_calibration(board_seed)}
        req = Request(registry_path=registry, name=name, customer=CUSTOMER, field=FIELD, lat=lat, lon=lon,
                      alt_m=10.0, boundary=boundary, overrides=overrides)  # fmt: skip
        s, board = provision_virtual(os.path.join(work, name), req, seed=board_seed)
        nodes.append(DemoNode(name, s.device_id, board, lat, lon, bad=(i == bad_index)))
        say(
            "  [green]provisioned[/] %-8s device %d  firmware %s, %s, config %s, key %s, registry %s (%.1f s)"
            % (name, s.device_id, s.fw_version, s.copied_text(), s.config, s.key, s.registry, s.elapsed_s)
        )
    return nodes, registry


def check_nodes(field, nodes, report_dir, say):
    """The install check of every node, in turn; {name: (verdict, results)}. Onboarding reports go upstream."""
    from provisioning.check import CheckOptions, InstallCheck, verdict
    from provisioning.checks_geo import Boundary
    from provisioning.checks_transport import open_link
    from provisioning.checks_upstream import GatewayClient
    from tools.virtual_field.install import square_boundary
    from tools.virtual_field.node import SimClock

    keyring = _keyring(field.registry_path)
    gateway = GatewayClient(field.status_url)
    out = {}
    for i, node in enumerate(nodes):
        window = float(SAMPLE_S) / field.speed  # the node answers an installer at each sample wake
        # the reference clock: the node's world as its board publishes it (the installer's phone on NTP)
        clock = SimClock(node.board.state_dir)
        o = CheckOptions(device_id=node.device_id, boundary=Boundary(square_boundary(*SITE), "%s field" % FIELD),
                         manifest=_manifest(node.board), keyring=keyring, gateway=gateway, clock=clock,
                         wait_s=30.0 + 2 * window, retry_s=max(1.0, 1.5 * window + 0.2), rt_timeout_s=0.5,
                         window_s=2 * window + 6.0, burst_budget_s=15.0, upstream_wait_s=10.0)  # fmt: skip
        t0 = time.monotonic()
        with open_link("serial", field.installer_path(i)) as link:
            run = InstallCheck(link, o)
            results = run.run()
        v = verdict(results)
        out[node.name] = (v, results)
        _say_check(say, node, v, results, time.monotonic() - t0)
        _send_report(run, o, node, report_dir, say)
    return out


def _say_check(say, node, v, results, elapsed_s):
    from rich.markup import escape

    colour = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red"}[v]
    say("  [%s]%s[/] %-8s %d checks in %.1f s%s" % (colour, v, node.name, len(results), elapsed_s,
                                                   "" if v == "PASS" else ":"))  # fmt: skip
    for r in results:
        if r.status != "PASS":
            c = "yellow" if r.status == "WARN" else "red"
            say("      [%s]%s[/] %-17s %s" % (c, r.status, r.name, escape(r.measured)))
            say("           [bold]fix:[/] %s" % escape(r.fix))


def _send_report(run, o, node, report_dir, say):
    from provisioning.checks_upstream import GatewayUnreachable, onboarding_report, save_report
    from tools import __version__

    extra = dict(run.facts(), tool="fieldline %s (demo)" % __version__)
    rec = onboarding_report(run.results, node.device_id, o.clock(), "virtual installer port", extra)
    save_report(rec, report_dir)
    try:
        o.gateway.post_record(rec)
    except GatewayUnreachable as e:
        say("      onboarding report NOT handed to the gateway: %s" % e)


def _keyring(registry_path):
    from gateway.registry import Registry

    return dict(Registry.load(registry_path).keyring)


def _manifest(board):
    with open(os.path.join(board.fs_dir, "manifest.json")) as f:
        return json.load(f)


def import_devices(store_url, nodes, path):
    """The CSM's device list (customer, field, position) into the store, as `fieldline upstream import-devices`."""
    from upstream.devices import import_devices as do_import
    from upstream.store import open_store

    with open(path, "w") as f:
        f.write("device,customer,field,gateway,lat,lon\n")
        for n in nodes:
            f.write("%s,%s,%s,gw-demo,%.6f,%.6f\n" % (n.source, CUSTOMER, FIELD, n.lat, n.lon))
    with open_store(store_url) as s:
        return do_import(s, path)


def attention(store_url, now):
    """The ranked needs-attention list (upstream.health) judged at ``now``: (rows, devices assessed)."""
    from upstream.health import assess
    from upstream.store import open_store

    with open_store(store_url) as s:
        fh = assess(s, now=now)
        return list(fh.attention), fh.data.n


def store_counts(store_url):
    """{source kind: readings} and record counts from the store, for the summary."""
    import sqlite3

    path = store_url[len("sqlite:///") :]
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        by_source = dict(db.execute("SELECT s.source, count(*) FROM readings r JOIN series s ON s.id = r.series_id "
                                    "GROUP BY s.source").fetchall())  # fmt: skip
        counts = {t: db.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
                  for t in ("batches", "health", "daily", "onboarding")}  # fmt: skip
    finally:
        db.close()
    return by_source, counts


def season_report(store_url, year, out_html):
    """(summary dict or None, a line saying what happened): upstream.season's report, if it is there."""
    try:
        from upstream.season import write_season_report
    except ImportError as e:
        return None, "not written: upstream/season.py is not there yet (%s)" % e
    from upstream.errors import UpstreamError

    try:
        summary = write_season_report(store_url, CUSTOMER, year, out_html)
    except (UpstreamError, OSError) as e:
        return None, "not written: %s" % e
    return summary, out_html
