"""`fieldline upstream ...`: the upstream receiver and its store.

fieldline upstream serve --store sqlite:///upstream.db --mqtt 127.0.0.1:1883 --http 127.0.0.1:8781
fieldline upstream serve --store postgresql://fl@db/fieldline --http 0.0.0.0:8781 --token "$TOKEN" --webhook URL
fieldline upstream import-devices --store sqlite:///upstream.db devices.csv
fieldline upstream migrate --store sqlite:///upstream.db
"""

import asyncio
import logging
import os
import signal
import sys

import typer

app = typer.Typer(help="The upstream: receive the gateways' batches into a store.", no_args_is_help=True)
STORE_HELP = "store URL: sqlite:///path/to/file.db or postgresql://user@host:port/db"


def _fail(e, code=1):
    typer.echo("fieldline: %s" % e, err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    mqtt: str = typer.Option(None, "--mqtt", help="subscribe to this broker, HOST:PORT"),
    topic: str = typer.Option("fieldline/+/stream", "--topic", help="MQTT topic filter (QoS 1)"),
    client_id: str = typer.Option("fieldline-upstream", "--client-id", help="MQTT client id (persistent session)"),
    mqtt_user: str = typer.Option(None, "--mqtt-user", help="MQTT user name"),
    http: str = typer.Option(None, "--http", help="serve POST /batches on BIND:PORT (e.g. 127.0.0.1:8781)"),
    token: str = typer.Option(
        None,
        "--token",
        envvar="FIELDLINE_UPSTREAM_TOKEN",
        help="bearer token for HTTP (required unless bound to loopback)",
    ),
    webhook: str = typer.Option(None, "--webhook", help="POST alert changes as JSON to this URL"),
    alerts_every: float = typer.Option(900.0, "--alerts-every", help="seconds between alert evaluations (0: off)"),
    log_level: str = typer.Option("info", "--log-level", help="debug|info|warning|error"),
):
    """Receive batches (MQTT and/or HTTP) into the store until SIGTERM or Ctrl-C."""
    from upstream.alerts import AlertEngine, LogSink, WebhookSink
    from upstream.errors import UpstreamError
    from upstream.receiver import Receiver, parse_hostport
    from upstream.receiver import serve as run_receiver

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)  # fmt: skip
    if not mqtt and not http:
        _fail("nothing to serve: give --mqtt HOST:PORT and/or --http BIND:PORT", 2)
    try:
        mq = parse_hostport(mqtt, "--mqtt", 1883) if mqtt else None
        ht = parse_hostport(http, "--http", 8781) if http else None
        engine = None
        if alerts_every > 0:
            sinks = [LogSink()] + ([WebhookSink(webhook)] if webhook else [])
            engine = "pending"
        rx = Receiver(store, mqtt=mq, topic=topic, http=ht, token=token, client_id=client_id,
                      mqtt_username=mqtt_user, mqtt_password=os.environ.get("FIELDLINE_MQTT_PASSWORD"),
                      alerts_every_s=alerts_every or None)  # fmt: skip
    except (UpstreamError, ValueError) as e:
        _fail(e, 2)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if engine is not None:
            rx.alert_engine = _LazyEngine(rx, AlertEngine, sinks)
        await run_receiver(rx, stop)

    try:
        asyncio.run(main())
    except UpstreamError as e:
        _fail(e)
    except OSError as e:
        _fail("cannot listen: %s" % e)


class _LazyEngine:
    """The alert engine needs the receiver's open store: made on first use (on the writer thread)."""

    def __init__(self, rx, cls, sinks):
        self.rx, self.cls, self.sinks, self.engine = rx, cls, sinks, None

    def evaluate(self, fh, now=None):
        if self.engine is None:
            self.engine = self.cls(self.rx.store, sinks=self.sinks)
        return self.engine.evaluate(fh, now)


@app.command("import-devices")
def import_devices_cmd(
    path: str = typer.Argument(..., help="devices CSV (header: device,customer,field,...) or TOML ([[devices]])"),
    store: str = typer.Option(..., "--store", help=STORE_HELP),
):
    """Assign devices to customers and fields (authoritative over what records say)."""
    from upstream.devices import import_devices
    from upstream.errors import UpstreamError
    from upstream.store import open_store

    try:
        with open_store(store) as s:
            n = import_devices(s, path)
    except UpstreamError as e:
        _fail(e, 2)
    typer.echo("imported %d devices into %s" % (n, store))


@app.command()
def migrate(store: str = typer.Option(..., "--store", help=STORE_HELP)):
    """Create or upgrade the store's schema; print its version."""
    from upstream.errors import UpstreamError
    from upstream.store import open_store

    try:
        with open_store(store) as s:
            typer.echo("store %s: schema version %d" % (store, s.version))
    except UpstreamError as e:
        _fail(e)
