"""`fieldline fleet ...`: the CSM's fleet view and a fleet simulator.

fieldline fleet simulate --devices 500 --days 30 --store sqlite:///fleet.db --faults all:1% --seed 1
fieldline fleet attention --store sqlite:///fleet.db [--json] [--limit 30] [--customer NAME] [--now ISO]
fieldline fleet customers --store sqlite:///fleet.db [--json]
fieldline fleet device node-1007 --store sqlite:///fleet.db [--json]
fieldline fleet serve --store sqlite:///fleet.db [--host 127.0.0.1] [--port 8080] [--token T] [--users users.toml]

``serve`` is the CSM dashboard (upstream/dashboard.py): loopback only unless given a token or users file.
"""

import json
import time

import typer

from upstream.cli import STORE_HELP

app = typer.Typer(help="Fleet health for CSMs: who needs attention, why, and what to do.", no_args_is_help=True)


def _fail(e, code=1):
    typer.echo("fieldline: %s" % e, err=True)
    raise typer.Exit(code)


def _now(text):
    if text is None:
        return None
    from upstream.errors import BadBatch
    from upstream.normalise import parse_iso

    try:
        return parse_iso(text, "--now")
    except BadBatch as e:
        _fail(e.reason, 2)


def _open(url):
    from upstream.errors import UpstreamError
    from upstream.store import open_store

    try:
        return open_store(url)
    except UpstreamError as e:
        _fail(e, 2)


@app.command()
def simulate(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    devices: int = typer.Option(200, "--devices", min=3, max=100000, help="nodes in the fleet"),
    days: int = typer.Option(14, "--days", min=3, max=365, help="days of history"),
    faults: str = typer.Option("all:1%", "--faults", help="e.g. all, all:2, all:1%, silent:3,panel_covered:1, none"),
    seed: int = typer.Option(1, "--seed", help="random seed"),
    readings: bool = typer.Option(True, "--readings/--no-readings", help="hourly readings of 4 quantities too"),
    end: str = typer.Option(None, "--end", help="UTC end of the history (default: the current hour)"),
    truth: str = typer.Option(None, "--truth", help="also write the ground truth to this JSON file"),
    season: bool = typer.Option(False, "--season", help="a crop season: NDVI curve, soil water, CWSI, rain gauges"),
):
    """Write a synthetic fleet history with injected faults (ground truth: simulation_truth records)."""
    from rich.progress import Progress

    from upstream.simulate import DAY, Fleet, populate

    t_end = _now(end) if end else int(time.time()) // 3600 * 3600
    try:
        fleet = Fleet(devices=devices, days=days, faults=faults, seed=seed, start=t_end - days * DAY,
                      readings=readings, season=season)  # fmt: skip
    except ValueError as e:
        _fail(e, 2)
    with _open(store) as s, Progress(transient=True) as bar:
        task = bar.add_task("simulating %d devices x %d days" % (devices, days), total=fleet.end - fleet.start)
        n = populate(s, fleet, progress=lambda t: bar.update(task, completed=t - fleet.start))
    if truth:
        with open(truth, "w") as f:
            json.dump(fleet.truth, f, indent=1)
    typer.echo(
        "%d records from %d devices (%d customers) into %s; %d faults injected%s"
        % (n, devices, len(set(fleet.customer)), store, len(fleet.truth), " (truth: %s)" % truth if truth else "")
    )


@app.command()
def attention(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON (the whole list and the customer rollup)"),
    limit: int = typer.Option(30, "--limit", min=1, help="rows in the table"),
    customer: str = typer.Option(None, "--customer", help="only this customer's devices"),
    now: str = typer.Option(None, "--now", help="judge at this UTC time (default: now)"),
):
    """The ranked needs-attention list: device, customer, likely cause, evidence, what to do."""
    from upstream.health import assess

    with _open(store) as s:
        fh = assess(s, now=_now(now))
    rows = [r for r in fh.attention if customer is None or r["customer"] == customer]
    if as_json:
        out = fh.as_json()
        out["attention"] = rows
        typer.echo(json.dumps(out))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Needs attention: %d of %d devices (%s)" % (len(rows), fh.data.n, _iso(fh.now)))
    for col in ("#", "device", "customer", "likely cause", "evidence", "what to do", "score"):
        t.add_column(col, overflow="fold")
    for r in rows[:limit]:
        cause = r["title"] + (" (+%s)" % ", ".join(r["also"]) if r["also"] else "")
        t.add_row(str(r["rank"]), r["device"], r["customer"], cause, r["evidence_text"], r["action"], str(r["score"]))
    Console().print(t)


@app.command()
def customers(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    now: str = typer.Option(None, "--now", help="judge at this UTC time (default: now)"),
):
    """Per customer: devices active/late/silent, completeness, devices needing attention and why."""
    from upstream.health import assess

    with _open(store) as s:
        fh = assess(s, now=_now(now))
    if as_json:
        typer.echo(json.dumps(fh.customers))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Customers (%s)" % _iso(fh.now))
    for col in ("customer", "devices", "active", "late", "silent", "completeness 7 d", "attention", "causes"):
        t.add_column(col)
    for c in fh.customers:
        comp = "-" if c["completeness_7d"] is None else "%.0f %%" % (100 * c["completeness_7d"])
        causes = ", ".join("%s %d" % kv for kv in sorted(c["causes"].items(), key=lambda kv: -kv[1]))
        t.add_row(c["customer"], str(c["devices"]), str(c["active"]), str(c["late"]), str(c["silent"]), comp,
                  str(c["needs_attention"]), causes)  # fmt: skip
    Console().print(t)


@app.command()
def device(
    name: str = typer.Argument(..., help="device name, e.g. node-1007"),
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    now: str = typer.Option(None, "--now", help="judge at this UTC time (default: now)"),
):
    """One device's figures, findings and alert history."""
    from upstream.alerts import alert_history
    from upstream.health import assess

    with _open(store) as s:
        fh = assess(s, now=_now(now))
        try:
            out = fh.device(name)
        except KeyError:
            _fail("no node device %r in %s" % (name, store), 2)
        out["alerts"] = alert_history(s, name)
    if as_json:
        typer.echo(json.dumps(out))
        return
    for k, v in out.items():
        typer.echo("%-24s %s" % (k, v))


@app.command()
def serve(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (not loopback: needs --token or --users)"),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="port (0: a free one; the URL is printed)"),
    token: str = typer.Option(
        None, "--token", envvar="FIELDLINE_DASHBOARD_TOKEN", help="bearer/sign-in token that sees every customer"
    ),  # fmt: skip
    users: str = typer.Option(
        None, "--users", help='TOML users file: a table per user with token and customers (a list, or "*")'
    ),
    now: str = typer.Option(None, "--now", help="judge at this UTC time (default: now)"),
    refresh: float = typer.Option(60.0, "--refresh", min=0, help="seconds between fleet health recomputations"),
    log_level: str = typer.Option("info", "--log-level", help="debug|info|warning|error"),
):
    """Serve the CSM dashboard (overview, attention list, customers, devices, fields) until SIGTERM or Ctrl-C."""
    import asyncio
    import logging
    import signal
    import sys

    from upstream.dashboard import Dashboard, load_users
    from upstream.errors import UpstreamError

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)  # fmt: skip
    try:
        dash = Dashboard(store, host=host, port=port, token=token, users=load_users(users) if users else (),
                         now=_now(now), refresh_s=refresh)  # fmt: skip
    except UpstreamError as e:
        _fail(e, 2)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await dash.start()
        try:
            typer.echo("dashboard on %s%s" % (dash.url, "" if dash.access.required else " (open: loopback only)"))
            await stop.wait()
        finally:
            await dash.stop()

    try:
        asyncio.run(main())
    except UpstreamError as e:
        _fail(e, 2)
    except OSError as e:
        _fail("cannot listen on %s:%d: %s" % (host, port, e.strerror or e))
    typer.echo("dashboard stopped")


def _iso(t):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))
