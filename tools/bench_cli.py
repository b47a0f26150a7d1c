"""`fieldline bench ...`: measured figures, printed (``--json`` for machines).

fieldline bench protocol --json
fieldline bench gateway --json
fieldline bench agronomy --json
fieldline bench provisioning --json
fieldline bench fleet --json
"""

import json

import typer

app = typer.Typer(help="Benchmarks: print measured figures and ratios.", no_args_is_help=True)


def _print(figures, as_json):
    if as_json:
        typer.echo(json.dumps(figures, indent=None, sort_keys=False))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("figure", "value")
    for k, v in figures.items():
        t.add_row(k, str(v))
    Console().print(t)


@app.command()
def protocol(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    seed: int = typer.Option(1, help="seed of the synthetic node-day"),
    no_micropython: bool = typer.Option(False, "--no-micropython", help="skip the MicroPython rates"),
):
    """Bytes per node-day on the wire vs JSON; encode/decode rates on CPython and MicroPython."""
    from tools.bench.protocol import run

    _print(run(seed=seed, micropython=not no_micropython), as_json)


@app.command()
def firmware(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    days: int = typer.Option(7, min=1, max=30, help="simulated days for the accuracy figures"),
    seed: int = typer.Option(1, help="seed of the virtual field"),
    trials: int = typer.Option(200, min=1, help="power-cut trials of the flash log"),
    no_heap_search: bool = typer.Option(False, "--no-heap-search", help="skip the min_heap_kb search"),
):
    """Heap, code, uplink, accuracy against the field model's truth, power-cut losses of the node."""
    from tools.bench.firmware import run

    _print(run(days=days, seed=seed, heap_search=not no_heap_search, trials=trials), as_json)


@app.command()
def agronomy(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    seed: int = typer.Option(1, help="seed of the synthetic year"),
    repeats: int = typer.Option(15, min=1, max=200, help="timing repeats (best of)"),
):
    """ET0 of 8,760 hourly values: ours vs refet and pyet, time and largest difference."""
    from tools.bench.agronomy import run

    _print(run(seed=seed, repeats=repeats), as_json)


@app.command()
def gateway(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    nodes: int = typer.Option(100, min=1, max=1000, help="nodes in the synthetic farm"),
    days: int = typer.Option(7, min=1, max=30, help="days of reports (and of the upstream outage)"),
    seed: int = typer.Option(1, help="seed of the synthetic reports"),
    no_broker: bool = typer.Option(False, "--no-broker", help="skip the backlog drain through Mosquitto"),
):
    """Readings/s through decode+auth+align+durable queue, vs naive SQLite and pandas; outage drain."""
    from tools.bench.gateway import run

    _print(run(nodes=nodes, days=days, seed=seed, broker=not no_broker), as_json)


@app.command()
def provisioning(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    repeats: int = typer.Option(3, min=1, max=20, help="timing repeats (best of)"),
    no_mpremote: bool = typer.Option(False, "--no-mpremote", help="skip the mpremote fs cp comparison"),
    no_check: bool = typer.Option(False, "--no-check", help="skip timing the installation check"),
    check_runs: int = typer.Option(3, min=1, max=10, help="installation checks timed (median)"),
):
    """Seconds to a verified virtual node, fresh and re-run (vs `mpremote fs cp -r`); seconds to a check's verdict."""
    from tools.bench import check
    from tools.bench.provisioning import run

    figures = run(repeats=repeats, mpremote=not no_mpremote)
    if not no_check:
        figures.update(check.run(runs=check_runs))
    _print(figures, as_json)


@app.command()
def fleet(
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    small: bool = typer.Option(False, "--small", help="a quick run (not the budgets' sizes)"),
    no_postgresql: bool = typer.Option(False, "--no-postgresql", help="SQLite only (no PostgreSQL server started)"),
):
    """Fleet health: ranking 10,000 devices, ingest rate, injected faults found, false alerts."""
    from tools.bench.fleet import run

    _print(run(small=small, postgresql=not no_postgresql), as_json)
