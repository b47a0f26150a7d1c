"""`fieldline bench ...`: measured figures, printed (``--json`` for machines).

    fieldline bench protocol --json
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
