"""`fieldline demo`: the virtual field demo: the real firmware as a virtual node, talking to CPython.

    fieldline demo --days 1 --fault shade_up=0.3

A virtual node (the firmware compiled with mpy-cross, on the MicroPython unix port) samples
its simulated field every minute, summarises, logs to its littlefs image and sends hourly
reports over a pseudo-terminal; the CPython peer authenticates, acks, answers time sync and
prints what a grower would see, then a check of the day against the field model's truth.
"""

import shutil
import tempfile
import time

import typer

from tools.bench.firmware import accuracy, run_node
from tools.node_cli import parse_faults
from tools.virtual_field.node import START


def demo(
    days: float = typer.Option(1.05, min=0.1, max=14, help="simulated days to run (a day and its midnight summary)"),
    seed: int = typer.Option(1, help="seed of the virtual field"),
    fault: list[str] = typer.Option(None, "--fault", help="NAME=VALUE fault knob, repeatable"),
):
    """Run a virtual node for a simulated day against CPython and show what arrives."""
    try:
        faults = parse_faults(fault)
    except ValueError as e:
        typer.echo("fieldline: %s" % e, err=True)
        raise typer.Exit(2) from None
    work = tempfile.mkdtemp(prefix="fieldline-demo-")
    typer.echo("demo: virtual node (MicroPython, real firmware) for %g simulated day(s), faults %s"
               % (days, faults or "none"))
    t0 = time.monotonic()
    node, peer, link, elapsed = run_node(days, seed=seed, faults=faults, workdir=work, stats=False)
    shutil.rmtree(work, ignore_errors=True)
    reports = peer.of_type("report")
    typer.echo("%-17s %8s %8s %7s %8s %9s %7s" % ("hour (UTC)", "air C", "canopy C", "NDVI", "sun W/m2", "battery V",
                                                 "faults"))
    for m in reports:
        s = m["stats"]
        h = m.get("health", {})
        typer.echo("%-17s %8s %8s %7s %8s %9s %7s" % (
            time.strftime("%Y-%m-%d %H:%M", time.gmtime(m["start"])), _mean(s, "air_temperature", 1),
            _mean(s, "canopy_temperature", 1), _mean(s, "ndvi", 3), _mean(s, "incident_shortwave", 0),
            h.get("battery_v", "-"), ",".join(h.get("faults", [])) or "-"))
    for m in reports:
        d = m.get("daily")
        if d:
            typer.echo("daily %s: NDVI midday %s, air %s..%s C, canopy mean %s C, GDD %s" % (
                time.strftime("%Y-%m-%d", time.gmtime(d["date"] * 86400)), d.get("ndvi_midday"), d.get("air_t_min"),
                d.get("air_t_max"), d.get("canopy_t_mean"), d.get("gdd")))
    ndvi_err, canopy_err, clear, _ = accuracy(peer, seed, START, int(days + 0.999))
    typer.echo("demo: %d reports, %d frames, %d bytes from the node, %d bad frames, node exit %s, %.1f s"
               % (len(reports), len(peer.messages), link.rx_bytes, sum(peer.errors.values()), node.returncode,
                  time.monotonic() - t0))
    if clear:
        typer.echo("demo: against the field model's truth on %d clear day(s): NDVI error %.4f, canopy %.3f C"
                   % (clear, ndvi_err, canopy_err))
    if node.returncode != 0 or not reports or peer.errors:
        typer.echo(node.text()[-2000:], err=True)
        raise typer.Exit(1)


def _mean(stats, q, dec):
    vals = [v for v in stats.get(q, {}).get("mean", []) if v is not None]
    return ("%." + str(dec) + "f") % (sum(vals) / len(vals)) if vals else "-"
