"""The one command line, `fieldline`: a table of subcommands, each a thin handler.

fieldline --version
fieldline protocol decode HEX --key HEX
fieldline node virtual --uart PATH [--fault NAME=VALUE ...]
fieldline gateway run --config gateway.toml
fieldline provision --virtual work/node1 --lat 52.1 --lon 5.2
fieldline check --port /dev/ttyACM0 --device fl-000001
fieldline upstream serve --store sqlite:///upstream.db
fieldline fleet rank --store sqlite:///upstream.db
fieldline report season --store sqlite:///upstream.db --customer "Hillside Farms" --season 2026 --out season.html
fieldline bench protocol|firmware|gateway|agronomy|provisioning|fleet --json
"""

import typer

from tools import __version__, bench_cli, check_cli, demo, gateway_cli, node_cli, protocol_cli, provision_cli
from upstream import cli as upstream_cli
from upstream import fleet_cli, report_cli

app = typer.Typer(
    name="fieldline",
    help="Fieldline: firmware, gateway and field tools for crop-sensing nodes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(protocol_cli.app, name="protocol")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(node_cli.app, name="node")
app.add_typer(gateway_cli.app, name="gateway")
app.add_typer(upstream_cli.app, name="upstream")
app.add_typer(fleet_cli.app, name="fleet")
app.add_typer(report_cli.app, name="report")
app.command("provision")(provision_cli.provision)
app.command("check")(check_cli.check)
app.command("demo")(demo.demo)


def _version(value: bool):
    if value:
        from shared_protocol import frame

        typer.echo("fieldline %s (wire protocol v%d)" % (__version__, frame.VERSION))
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="print the version"),
):
    """Fieldline command line."""


def main():
    app()


if __name__ == "__main__":
    main()
