"""`fieldline node ...`: run the firmware as a virtual node.

    fieldline node virtual --uart /dev/pts/5 --speed 600 --fault shade_up=0.4 --fault sensor_nack=sht4x

The node is the real firmware (compiled .mpy) on the MicroPython unix port; the harness
restarts it after deep sleep (``--sleep exit``) or a power cut, as the hardware would.
"""

import json
import os
import sys
import tempfile

import typer

from tools.virtual_field.node import START, VirtualNode, default_config, write_config

app = typer.Typer(help="Virtual nodes: the real firmware on the MicroPython unix port.", no_args_is_help=True)

FAULT_NAMES = (
    "tilt_deg shade_up lens_dirt solar_covered gnss_nofix swap_spectral sensor_nack stuck clock_offset_s "
    "clock_drift_ppm battery_soc powercut_at_write"
).split()


def parse_faults(items):
    """['shade_up=0.4', 'gnss_nofix'] -> {'shade_up': 0.4, 'gnss_nofix': 1}; ValueError names the bad one."""
    out = {}
    for item in items or []:
        name, _, value = item.partition("=")
        if name not in FAULT_NAMES:
            raise ValueError("unknown fault %r; known: %s" % (name, ", ".join(FAULT_NAMES)))
        if not value:
            value = "1"
        if name in ("sensor_nack", "stuck"):
            out[name] = value
            continue
        try:
            out[name] = float(value) if "." in value else int(value)
        except ValueError:
            raise ValueError("fault %s=%r: expected a number" % (name, value)) from None
    return out


@app.command()
def virtual(
    uart: str = typer.Option(..., help="pty path the node uses as its UART"),
    flash: str = typer.Option(None, help="littlefs image file of the node's flash (default: STATE/flash.img)"),
    state: str = typer.Option(None, help="directory for RTC memory, the world state and the default image"),
    config: str = typer.Option(None, help="config JSON to provision (default: one derived from --seed)"),
    speed: float = typer.Option(60.0, help="simulated seconds per real second (0 = as fast as possible)"),
    seed: int = typer.Option(1, help="seed of the field model"),
    fault: list[str] = typer.Option(None, "--fault", help="NAME=VALUE, repeatable"),
    days: float = typer.Option(0.0, help="stop after this many simulated days (0 = run until stopped)"),
    start: int = typer.Option(START, help="UTC epoch seconds the simulation starts at"),
    sleep: str = typer.Option("advance", help="advance: sleep by advancing the clock; exit: deep sleep = exit"),
    heap: str = typer.Option("512K", help="MicroPython heap size"),
    provisioned: str = typer.Option(None, help="workdir of a virtual board `fieldline provision --virtual` "
                                    "provisioned: run the firmware deployed there, on its flash and seed"),
):
    """Run one virtual node on a pty until stopped (or for --days)."""
    try:
        faults = parse_faults(fault)
    except ValueError as e:
        typer.echo("fieldline: %s" % e, err=True)
        raise typer.Exit(2) from None
    code_dir = None
    if provisioned:
        from provisioning.provision import board_seed

        code_dir = os.path.join(provisioned, "fs")
        if not os.path.exists(os.path.join(code_dir, "manifest.json")):
            typer.echo("fieldline: %s holds no provisioned board (no fs/manifest.json): run `fieldline provision "
                       "--virtual --workdir %s` first" % (provisioned, provisioned), err=True)
            raise typer.Exit(2)
        flash = flash or os.path.join(provisioned, "flash.img")
        state = state or os.path.join(provisioned, "state")
        seed = board_seed(provisioned, seed)
    state = state or tempfile.mkdtemp(prefix="fieldline-node-")
    if provisioned:
        config = None  # the config is on the board's flash
    elif config is None:
        config = write_config(os.path.join(state, "config.json"), default_config(seed))
    else:
        try:
            with open(config) as f:
                json.load(f)
        except (OSError, ValueError) as e:
            typer.echo("fieldline: config %s: %s" % (config, e), err=True)
            raise typer.Exit(2) from None
    until = start + int(days * 86400) if days else None
    node = VirtualNode(uart, state, seed=seed, speed=speed, sleep=sleep, faults=faults, config=config, start=start,
                       until=until, heap=heap, log=sys.stdout, flash=flash, code_dir=code_dir)
    try:  # Ctrl-C at any point, starting included, stops the node and exits 0
        node.start()
        typer.echo("virtual node: uart %s, state %s, speed %gx, faults %s" % (uart, state, speed, faults or "none"))
        rc = node.wait()
    except KeyboardInterrupt:
        node.stop()
        rc = 0
    raise typer.Exit(rc or 0)
