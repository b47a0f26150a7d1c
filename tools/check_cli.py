"""`fieldline check`: the installation check, PASS/WARN/FAIL with a fix for every problem.

    fieldline check --port /dev/ttyUSB0 --site north.toml --gateway http://192.168.4.1:8780 --token ...
    fieldline check --ble C0:FF:EE:00:00:01 --boundary "52.0009,4.9985;52.0009,5.0015;51.9991,5.0015"
    fieldline check --virtual --fault tilt_deg=7.8 --json

Each check shows as it is decided; the verdict is the worst of them. ``--json`` prints only
{"verdict": ..., "checks": [...]}. The onboarding report (the verdict and every check) is saved in
--report-dir, then handed to the gateway (--gateway), which forwards it upstream to the CSM.
--virtual installs a virtual node (the real firmware) in a virtual field with the real gateway and
Mosquitto, and checks it through the field's installer port (with --ble: over a simulated BLE link).
Exit codes: 0 PASS, 3 WARN, 4 FAIL, 1 the check could not run, 2 bad arguments.
"""

import json
import os
import shutil
import sys
import tempfile
import time

import typer

EXIT = {"PASS": 0, "WARN": 3, "FAIL": 4}
MARK = {"PASS": "[green]PASS[/]", "WARN": "[yellow]WARN[/]", "FAIL": "[bold red]FAIL[/]"}


def _fail(msg, code=1):
    typer.echo("fieldline check: %s" % msg, err=True)
    raise typer.Exit(code)


class _Live:
    """Progress on stderr: a spinner with the step, each check as it is decided."""

    def __init__(self, console):
        self.console = console
        self.status = console.status("starting")
        self.status.start()
        self.text = ""

    def step(self, text):
        self.text = text
        self.status.update(text)

    def tick(self, done, total):
        self.status.update("%s: %d/%d" % (self.text, done, total))

    def result(self, r):
        from rich.markup import escape

        self.console.print("%s  %-18s %s" % (MARK[r.status], r.name, escape(r.measured)))
        if r.fix:
            self.console.print("      [dim]->[/] %s" % escape(r.fix))

    def stop(self):
        self.status.stop()


def _options(device_id, boundary, site, manifest, registry, gateway, token, burst, wait):
    from provisioning.check import CheckOptions
    from provisioning.checks_geo import Boundary, load_site
    from provisioning.checks_upstream import GatewayClient
    from provisioning.sites import parse_boundary

    o = CheckOptions(device_id=device_id, burst=burst, wait_s=wait, window_s=wait)
    if boundary and site:
        _fail("give the field as --boundary or --site, not both", 2)
    o.boundary = Boundary(parse_boundary(boundary)) if boundary else load_site(site) if site else None
    if manifest:
        try:
            with open(manifest) as f:
                o.manifest = json.load(f)
        except (OSError, ValueError) as e:
            _fail("manifest %s: %s" % (manifest, e), 2)
    if registry:
        from gateway.errors import GatewayError
        from gateway.registry import Registry

        try:
            reg = Registry.load(registry)
        except GatewayError as e:
            _fail("registry %s: %s" % (registry, e), 2)
        if reg.missing:
            _fail("registry %s: no such file" % registry, 2)
        o.keyring = dict(reg.keyring)
        if o.boundary is None:
            o.sites = _site_record(registry)
    if gateway:
        o.gateway = GatewayClient(gateway, token or "")
    return o


def _site_record(registry):
    """device id -> its field's Boundary from the site record provisioning keeps beside the registry."""
    from provisioning.checks_geo import Boundary
    from provisioning.sites import SiteBook

    book = SiteBook.beside(registry)

    def boundary_of(device_id):
        rec = book.get(device_id) or {}
        return Boundary(rec["boundary"], rec.get("field") or "") if rec.get("boundary") else None

    return boundary_of


def _virtual_faults(items):
    from tools.node_cli import parse_faults
    from tools.virtual_field.install import INSTALL_FAULTS

    install, node = {}, []
    for item in items or []:
        name, _, value = item.partition("=")
        if name in INSTALL_FAULTS:
            try:
                install[name] = float(value or 1)
            except ValueError:
                _fail("fault %s=%r: expected a number" % (name, value), 2)
        else:
            node.append(item)
    try:
        faults = parse_faults(node)
    except ValueError as e:
        _fail("%s (or an install fault: %s)" % (e, ", ".join(INSTALL_FAULTS)), 2)
    faults.update(install)
    return faults


def check(
    port: str = typer.Option(None, "--port", help="the node's serial port (USB console, RS-485 adapter)"),
    ble: str = typer.Option(None, "--ble", help="the node's BLE address (Nordic UART service)"),
    virtual: bool = typer.Option(False, "--virtual", help="check a virtual node in a virtual field (gateway included)"),
    fault: list[str] = typer.Option(
        None,
        "--fault",
        help="--virtual: NAME=VALUE, repeatable: a node fault "
        "(tilt_deg, shade_up, lens_dirt, ...) or link_fault_rate, wrong_key",
    ),
    device_id: int = typer.Option(None, "--device-id", help="the node's device id (default: the first one heard)"),
    boundary: str = typer.Option(
        None,
        "--boundary",
        help='the field: "lat,lon;lat,lon;..." or a file (GeoJSON, '
        "lines of lat,lon); default: the site record beside --registry",
    ),
    site: str = typer.Option(
        None, "--site", help="site file (TOML or JSON): a name and the boundary as a list of lat, lon pairs"
    ),
    manifest: str = typer.Option(None, "--manifest", help="the deployment's manifest (JSON with fw_version)"),
    registry: str = typer.Option(
        None, "--registry", help="the gateway's device registry (devices.toml): checks the key"
    ),
    gateway: str = typer.Option(None, "--gateway", help="the gateway's status URL, e.g. http://192.168.4.1:8780"),
    token: str = typer.Option(None, "--token", envvar="FIELDLINE_GATEWAY_TOKEN", help="the gateway's status token"),
    as_json: bool = typer.Option(False, "--json", help='print only {"verdict": ..., "checks": [...]}'),
    burst: int = typer.Option(10, "--burst", min=0, max=100, help="round trips timed for the link check"),
    wait: float = typer.Option(90.0, "--wait", min=1.0, help="seconds to wait for the node (it listens only at wakes)"),
    report_dir: str = typer.Option(
        None,
        "--report-dir",
        help="where onboarding reports are saved "
        "(default ~/.local/share/fieldline/reports; --virtual: its work directory)",
    ),
    no_report: bool = typer.Option(False, "--no-report", help="neither save nor send the onboarding report"),
    seed: int = typer.Option(1, "--seed", help="--virtual: the node's seed"),
    speed: float = typer.Option(300.0, "--speed", min=10.0, help="--virtual: simulated seconds per real second"),
    lat: float = typer.Option(52.0, "--lat", help="--virtual: the site's latitude"),
    lon: float = typer.Option(5.0, "--lon", help="--virtual: the site's longitude"),
    solar_hour: float = typer.Option(11.0, "--solar-hour", help="--virtual: local solar time the node starts at"),
    keep: bool = typer.Option(False, "--keep", help="--virtual: keep the work directory (logs, gateway data)"),
    sim_clock: str = typer.Option(
        None, "--sim-clock", hidden=True, help="virtual field only: UTC from a virtual node's clock file"
    ),
):
    """Check an installed node: PASS/WARN/FAIL per check with the fix, and the onboarding report upstream."""
    from rich.console import Console

    from provisioning.check import InstallCheck, verdict
    from provisioning.check import as_json as to_json
    from provisioning.checks_transport import open_link
    from provisioning.errors import ProvisioningError

    if sum(bool(x) for x in (port, virtual)) + (bool(ble) and not virtual) != 1:
        _fail("say which node: one of --port, --ble or --virtual", 2)
    if fault and not virtual:
        _fail("--fault is for --virtual only", 2)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    inst = work = None
    try:
        o = _options(device_id, boundary, site, manifest, registry, gateway, token, burst, wait)
        if sim_clock:  # a virtual node checked through --port: its world's time is the reference
            from tools.virtual_field.node import SimClock

            o.clock = SimClock(os.path.dirname(sim_clock) or ".")
        if virtual:
            inst, work = _start_virtual(o, fault, seed, speed, lat, lon, solar_hour, err, as_json)
            link = _virtual_link(inst, ble)
            target = "virtual %s" % ("ble" if ble else "installer port")
            report_dir = report_dir or os.path.join(work, "reports")  # goes with the virtual field unless --keep
        else:
            link = open_link("serial", port) if port else open_link("ble", ble)
            target = "port %s" % port if port else "ble %s" % ble
        live = None if as_json else _Live(err)
        t0 = time.monotonic()
        try:
            with link:
                run = InstallCheck(link, o, live)
                results = run.run()
        finally:
            if live is not None:
                live.stop()
        elapsed = time.monotonic() - t0
        v = verdict(results)
        if as_json:
            typer.echo(json.dumps(to_json(results)))
        else:
            colour = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red"}[v]
            err.print("[%s]VERDICT %s[/] (%d checks in %.1f s)" % (colour, v, len(results), elapsed))
        if not no_report:
            _report(run, o, target, report_dir, inst, err)
    except ProvisioningError as e:
        _fail(str(e), 2 if e.exit_code == 2 else 1)  # bad input: 2; anything else kept the check from running
    finally:
        if inst is not None:
            inst.stop()
            if keep:
                err.print("virtual field kept in %s" % work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    raise typer.Exit(EXIT[v])


def _start_virtual(o, fault, seed, speed, lat, lon, solar_hour, err, quiet):
    from provisioning.checks_geo import Boundary
    from provisioning.checks_upstream import GatewayClient
    from tools.virtual_field.install import VirtualInstall

    faults = _virtual_faults(fault)
    work = tempfile.mkdtemp(prefix="fieldline-check-")
    inst = VirtualInstall(work, seed=seed, faults=faults, speed=speed, lat=lat, lon=lon, solar_hour=solar_hour)
    if not quiet:
        err.print(
            "starting a virtual install (node %d, faults %s, gateway, Mosquitto) in %s"
            % (inst.device_id, faults or "none", work)
        )
    try:
        inst.start()
    except Exception as e:  # a missing tool (micropython, mosquitto), a gateway that would not start
        inst.stop()
        _fail("the virtual field did not start: %s (its logs are in %s)" % (e, work))
    except BaseException:
        inst.stop()
        raise
    for k, v in inst.check_timing().items():
        setattr(o, k, v)
    o.device_id = o.device_id or inst.device_id
    o.clock = inst.clock
    o.boundary = o.boundary or Boundary(inst.boundary, "virtual field")
    o.manifest = o.manifest or inst.manifest()
    if o.keyring is None:
        from gateway.registry import Registry

        o.keyring = dict(Registry.load(inst.registry_path).keyring)
    o.gateway = o.gateway or GatewayClient(inst.status_url)
    o.upstream_probe = inst.upstream_has
    return inst, work


def _virtual_link(inst, ble):
    from provisioning.checks_transport import open_link

    port = open_link("serial", inst.installer_path)
    if ble:  # the same frames over a simulated BLE-UART bridge (the fake bleak backend) on the installer port
        from tools.virtual_field.ble_nus import SimNusClient

        return _Both(open_link("ble", ble, backend=SimNusClient, backend_kwargs={"links": {ble: port}}), port)
    return port


class _Both:
    """The BLE link, closing the port it bridges to after it."""

    def __init__(self, link, port):
        self.link, self.port, self.target = link, port, link.target

    def write(self, data):
        self.link.write(data)

    def read(self, timeout_s):
        return self.link.read(timeout_s)

    def close(self):
        self.link.close()
        self.port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _report(run, o, target, report_dir, inst, err):
    """Save the onboarding report, then hand it to the gateway (which forwards it upstream)."""
    from provisioning.checks_upstream import (
        REPORT_KIND,
        GatewayUnreachable,
        default_report_dir,
        onboarding_report,
        save_report,
    )
    from tools import __version__

    device = run.device_id
    extra = dict(run.facts(), tool="fieldline %s" % __version__)
    rec = onboarding_report(run.results, device, o.clock(), target, extra)
    path = save_report(rec, report_dir or default_report_dir())
    if device is None:
        err.print("onboarding report saved in %s; not sent: the node never said who it is" % path)
        return
    if o.gateway is None:
        err.print("onboarding report saved in %s; not sent (no --gateway): send it from where the gateway is "
                  "reachable" % path)  # fmt: skip
        return
    try:
        key = o.gateway.post_record(rec)
    except GatewayUnreachable as e:
        err.print("onboarding report saved in %s; NOT delivered: %s" % (path, e))
        return
    err.print("onboarding report %s handed to the gateway (saved in %s)" % (key, path))
    if inst is not None:
        end = time.monotonic() + 10
        while time.monotonic() < end and not inst.upstream_has(device, REPORT_KIND):
            time.sleep(0.2)
        seen = inst.upstream_has(device, REPORT_KIND)
        err.print("onboarding report %s upstream" % ("received" if seen else "NOT (yet) received"))


if __name__ == "__main__":  # python -m tools.check_cli ... (before it is wired into `fieldline`)
    typer.run(check)
    sys.exit(0)
