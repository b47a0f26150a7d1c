"""`fieldline gateway ...`: run the farm gateway.

fieldline gateway run --config gateway.toml
fieldline gateway check --config gateway.toml        # validate the config and the registry, then exit
"""

import asyncio
import logging
import os
import signal
import sys
import time

import typer

app = typer.Typer(help="The farm gateway: nodes and sensors in, one stream upstream.", no_args_is_help=True)


def _load(config):
    from gateway.config import load_config
    from gateway.errors import GatewayError
    from gateway.registry import Registry

    try:
        cfg = load_config(config)
        reg = Registry.load(cfg.registry_path)
    except GatewayError as e:
        typer.echo("fieldline: %s" % e, err=True)
        raise typer.Exit(2) from None
    return cfg, reg


@app.command("check")
def check(config: str = typer.Option(..., "--config", "-c", help="gateway TOML file")):
    """Validate the configuration and the device registry."""
    cfg, reg = _load(config)
    typer.echo("config ok: gateway %s, %d sources, %d uplinks, %d devices in %s%s" % (
        cfg.gateway_id, len(cfg.sources), len(cfg.uplinks), len(reg), cfg.registry_path,
        " (missing: no node can authenticate)" if getattr(reg, "missing", False) else ""))


@app.command("run")
def run(
    config: str = typer.Option(..., "--config", "-c", help="gateway TOML file"),
    log_level: str = typer.Option(None, "--log-level", help="debug|info|warning|error (default: from the config)"),
    sim_clock: str = typer.Option(None, "--sim-clock", hidden=True,
                                  help="virtual field only: UTC from a node's clock file, or paced:START,WALL0,SPEED"),
):
    """Run the gateway until SIGTERM or Ctrl-C."""
    cfg, reg = _load(config)
    logging.basicConfig(
        level=getattr(logging, (log_level or cfg.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from gateway.engine import Gateway
    from gateway.errors import GatewayError

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        clock = time.time
        if sim_clock and sim_clock.startswith("paced:"):
            from tools.virtual_field.node import PacedClock

            clock = PacedClock.parse(sim_clock)
        elif sim_clock:
            from tools.virtual_field.node import SimClock

            clock = SimClock(os.path.dirname(sim_clock) or ".")
        gw = Gateway(cfg, registry=reg, clock=clock)
        await gw.run(stop)

    try:
        asyncio.run(main())
    except GatewayError as e:
        typer.echo("fieldline: %s" % e, err=True)
        raise typer.Exit(1) from None
