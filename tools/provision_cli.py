"""`fieldline provision`: flash, deploy, configure, register and verify one node.

    fieldline provision --port /dev/ttyACM0 --lat 52.1 --lon 5.2 --customer acme --field north
    fieldline provision --virtual --workdir work/node1 --json        # a virtual board, provisioned
    fieldline provision --ble C0:FF:EE:00:00:01 --name north-7        # configuration only, over BLE

Exactly one target. The summary goes to stdout (a table, or one JSON object with --json); progress
and errors go to stderr. Exit codes: 0 verified; 2 bad input; 3 port or connection; 4 wrong board;
5 device or verification; 6 flashing; 7 BLE. The device key is never printed.
"""

import json
import os

import typer


def provision(
    port: str = typer.Option(None, "--port", help="the node's USB serial port (through mpremote)"),
    ble: str = typer.Option(None, "--ble", metavar="ADDRESS", help="configure a provisioned node over BLE"),
    virtual: bool = typer.Option(False, "--virtual", help="start a virtual board in --workdir and provision it"),
    firmware_image: str = typer.Option(None, "--firmware-image", help="flash this MicroPython .bin first (esptool)"),
    registry: str = typer.Option("devices.toml", "--registry", help="the gateway's device registry (TOML)"),
    device_id: str = typer.Option(None, "--device-id", help="node id (default: kept, else from the board's uid)"),
    name: str = typer.Option(None, "--name", help="node name, at most 32 characters"),
    customer: str = typer.Option(None, "--customer", help="customer (registry and site record)"),
    field: str = typer.Option(None, "--field", help="field name (site record)"),
    lat: float = typer.Option(None, "--lat", help="node latitude, decimal degrees"),
    lon: float = typer.Option(None, "--lon", help="node longitude, decimal degrees"),
    alt: float = typer.Option(None, "--alt", help="node altitude, m"),
    boundary: str = typer.Option(None, "--boundary", help='field boundary: "lat,lon;lat,lon;..." or a file'),
    config: str = typer.Option(None, "--config", help="JSON of config sections (calibration, intervals, ...)"),
    workdir: str = typer.Option("fieldline-virtual", "--workdir", help="--virtual: the board's directory"),
    seed: int = typer.Option(None, "--seed", help="--virtual: seed of the board (default: the workdir's, else 1)"),
    new_key: bool = typer.Option(False, "--new-key", help="give the node a fresh key (default: keep it)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON object"),
    ble_backend: str = typer.Option(None, "--ble-backend", hidden=True, help="module:Class of a bleak backend"),
    ble_args: str = typer.Option(None, "--ble-args", hidden=True, help="JSON kwargs for --ble-backend"),
):
    """Provision one node: flash (optional), deploy the firmware, write its identity and config, register it,
    verify. A re-run changes nothing ("0 files copied")."""
    from rich.console import Console

    from provisioning.errors import BadInput, ProvisioningError

    err = Console(stderr=True)
    targets = [t for t in (port and "--port", ble and "--ble", virtual and "--virtual") if t]
    try:
        if len(targets) != 1:
            raise BadInput("choose one target: expected exactly one of --port PORT, --virtual, --ble ADDRESS (got %s)"
                           % (", ".join(targets) or "none"))  # fmt: skip
        req = _request(registry, device_id, name, customer, field, lat, lon, alt, boundary, config, new_key,
                       firmware_image)  # fmt: skip
        summary = _run(req, port, ble, virtual, workdir, seed, ble_backend, ble_args, err, as_json)
    except ProvisioningError as e:
        err.print("[bold red]fieldline provision:[/] %s" % _esc(e.message), highlight=False)
        if e.advice:
            err.print("  what to do: %s" % _esc(e.advice), highlight=False)
        raise typer.Exit(e.exit_code) from None
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), sort_keys=True))
    else:
        summary.render(Console(highlight=False))


def _esc(text):
    from rich.markup import escape

    return escape(text)


def _request(registry, device_id, name, customer, field, lat, lon, alt, boundary, config, new_key, image):
    from provisioning.configure import parse_device_id, read_overrides
    from provisioning.provision import Request
    from provisioning.sites import parse_boundary

    return Request(registry_path=registry, device_id=parse_device_id(device_id) if device_id else None, name=name,
                   customer=customer, field=field, lat=lat, lon=lon, alt_m=alt,
                   boundary=parse_boundary(boundary) if boundary else None, new_key=new_key,
                   overrides=read_overrides(config), firmware_image=image)  # fmt: skip


def _run(req, port, ble, virtual, workdir, seed, ble_backend, ble_args, err, as_json):
    bars = _Bars(err)
    try:
        if virtual:
            from provisioning.provision import provision_virtual

            summary, _ = provision_virtual(workdir, req, seed=seed, progress=bars.copy)
            return summary
        if ble:
            from provisioning.ble import provision_ble

            backend, args = _backend(ble_backend, ble_args)
            return provision_ble(ble, req, backend=backend, backend_args=args)
        from provisioning.provision import provision_serial

        return provision_serial(port, req, progress=bars.copy, flash_progress=bars.flash)
    finally:
        bars.stop()


class _Bars:
    """Progress bars on stderr, shown only once there is progress to show."""

    def __init__(self, console):
        self.console, self.bar, self.tasks = console, None, {}

    def _task(self, name, total):
        if self.bar is None:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                console=self.console, transient=True)  # fmt: skip
            self.bar.start()
        if name not in self.tasks:
            self.tasks[name] = self.bar.add_task(name, total=total)
        return self.tasks[name]

    def copy(self, done, total):
        self.bar_update("copying firmware", done, total)

    def flash(self, pct):
        self.bar_update("flashing runtime", pct, 100)

    def bar_update(self, name, done, total):
        task = self._task(name, total)
        self.bar.update(task, completed=done, total=total)

    def stop(self):
        if self.bar is not None:
            self.bar.stop()


def _backend(spec, args):
    if not spec:
        return None, None
    import importlib

    from provisioning.errors import BadInput

    module, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
        kwargs = json.loads(args) if args else {}
    except (ImportError, AttributeError, ValueError) as e:
        raise BadInput("--ble-backend %s: %s: expected module:Class of a bleak client backend" % (spec, e)) from None
    return cls, kwargs


def main():
    typer.run(provision)


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "120")
    main()
