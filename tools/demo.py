"""`fieldline demo`: the whole system on this machine -- provision, install check, a season, the CSM's view.

    fieldline demo                                   # 4 nodes, 14 simulated days, outputs in ./demo-out
    fieldline demo --nodes 2 --days 3 --out /tmp/demo --seed 2

Real parts throughout: virtual nodes (the firmware on the MicroPython unix port, over ptys) are
provisioned over their REPL like boards, then installed in one field -- one of them badly -- and
checked with the installation check; an SDI-12 soil probe, a Modbus anemometer and two BLE tags join
them; the real gateway streams everything to Mosquitto (if installed; else over HTTP) and to a file;
the upstream receiver writes the SQLite store. A season runs at ``--speed`` simulated seconds per
second, then the demo prints the fleet's needs-attention list and where the outputs are. Every
process it started is stopped at the end, also on Ctrl-C or SIGTERM (exit 130 / 143).
"""

import json
import os
import shutil
import signal
import time

import typer

from tools import demo_steps as steps
from tools.node_cli import parse_faults
from tools.virtual_field.node import DAY, START

INSTALL_SPEED = 600.0  # the install day: the node answers the check at each sample, every 900 s / 600
INSTALL_SOLAR_HOUR = 10.5  # the installer arrives mid-morning: the sun is up for the light checks
MARKER = ".fieldline-demo"


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: the demo stops and cleans up."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def demo(
    nodes: int = typer.Option(4, "--nodes", min=1, max=9, help="virtual nodes (the last one is installed badly)"),
    days: int = typer.Option(14, "--days", min=1, max=60, help="simulated days of the season"),
    speed: float = typer.Option(12000.0, "--speed", min=500.0, max=50000.0,
                                help="simulated seconds per second during the season"),
    seed: int = typer.Option(1, "--seed", help="seed of the virtual field (nodes, weather, sensors)"),
    out: str = typer.Option("demo-out", "--out", help="output folder (replaced if it holds an earlier demo)"),
    uplink: str = typer.Option("auto", "--uplink", help="auto (MQTT if Mosquitto is installed), mqtt or http"),
    fault: list[str] = typer.Option(None, "--fault", help="NAME=VALUE, repeatable: how the last node is installed "
                                    "badly (default shade_up=0.5; e.g. tilt_deg=7.8, swap_spectral=1)"),
):  # fmt: skip
    """Run the virtual field demo: provision, check the installs, a season of data, the CSM's view."""
    from rich.console import Console

    console = Console(highlight=False)
    out = os.path.abspath(out)
    if uplink not in ("auto", "mqtt", "http"):
        _fail("--uplink %r: expected auto, mqtt or http" % uplink, 2)
    try:
        bad_install = parse_faults(fault) or dict(steps.BAD_INSTALL)
    except ValueError as e:
        _fail(str(e), 2)
    _prepare_out(out)
    old = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    run = _Run(console, out, nodes, days, speed, seed, None if uplink == "auto" else uplink, bad_install)
    code = 0
    try:
        run.all()
    except Interrupted as e:
        console.print("\n[yellow]demo: %s: stopping[/]" % e)
        code = 128 + e.signum
    except _failures() as e:  # a missing tool (micropython, mosquitto), a process that would not start
        console.print("[red]demo: %s[/] (logs in %s)" % (e, os.path.join(out, "logs")))
        code = 1
    finally:
        for s in old:
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C does not cut the cleanup short
        left = run.cleanup()
        for s, h in old.items():
            signal.signal(s, h)
    if code:
        console.print("demo: every process it started is stopped%s; what was written is in %s"
                      % (" (%d killed after the others stopped)" % left if left else "", out))  # fmt: skip
    elif left:
        console.print("[yellow]demo: %d process(es) were still running at the end: killed[/]" % left)
    raise typer.Exit(code)


class _Run:
    def __init__(self, console, out, nodes, days, speed, seed, uplink, bad_install):
        self.c, self.out, self.n, self.days, self.speed, self.seed = console, out, nodes, days, speed, seed
        self.uplink, self.bad_install = uplink, bad_install
        self.work = os.path.join(out, "field")
        self.store_url = "sqlite:///" + os.path.join(out, "upstream.db")
        self.stream_path = os.path.join(out, "stream", "stream.jsonl")
        self.field = None
        self.boards = []
        self.summary = {"nodes": [], "outputs": {}}
        self.t0 = time.monotonic()

    def say(self, text):
        self.c.print(text)

    def all(self):
        from tools.demo_field import DemoField

        c = self.c
        c.rule("[bold]Fieldline demo[/]: %d virtual nodes, %d simulated days" % (self.n, self.days))
        self.say("[bold]1. Provisioning[/] the nodes over their USB consoles (firmware, key, site, registry)")
        nodes, registry = steps.provision_nodes(self.work, self.n, self.seed, self.say)
        self.boards = [n.board for n in nodes]
        bad = next(n for n in nodes if n.bad)
        steps.import_devices(self.store_url, nodes, os.path.join(self.out, "devices.csv"))
        sites, faults = [(n.lat, n.lon) for n in nodes], {nodes.index(bad): self.bad_install}
        field = self.field = DemoField(self.work, self.boards, sites, registry, self.store_url, self.stream_path,
                                       faults=faults, uplink=self.uplink, log_dir=os.path.join(self.out, "logs"),
                                       seed=self.seed)  # fmt: skip
        install_at = _solar_time(START, steps.SITE[1], INSTALL_SOLAR_HOUR)
        self.say("[bold]2. Installing[/] them in field %r (%s badly: %s), with an SDI-12 soil probe, a Modbus "
                 "anemometer, two BLE tags, the gateway (uplink: %s and a file) and the upstream receiver"
                 % (steps.FIELD, bad.name, _faults_text(self.bad_install), field.uplink))  # fmt: skip
        field.start(install_at, INSTALL_SPEED)
        self.say("[bold]3. Installation check[/] of each node (%s)" % _utc(install_at))
        checks = steps.check_nodes(field, nodes, os.path.join(self.out, "checks"), self.say)
        start = field.clock()
        until = (int(start) // DAY + self.days) * DAY + 3900  # the last midnight's daily summary goes out too
        self.say("[bold]4. The season[/]: %s to %s at %gx (%.0f s)" % (_utc(start), _utc(until), self.speed,
                                                                     (until - start) / self.speed))  # fmt: skip
        start = field.go_season(self.speed, until)
        self._progress(field, start, until)
        field.wait_nodes(60)
        rx = field.drain(until + 3600)  # the last cells pass the gateway's lateness too
        field.stop()
        self.say("  the receiver stored %d batches (%d readings, %d records)" % (rx.get("batches", 0),
                                                                               rx.get("readings", 0),
                                                                               rx.get("records", 0)))  # fmt: skip
        self._finish(nodes, bad, checks, until)

    def _progress(self, field, start, until):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        cols = (TextColumn("  {task.description}"), BarColumn(),
                TextColumn("day {task.fields[day]}/{task.fields[days]}"), TextColumn("{task.fields[what]}"),
                TimeElapsedColumn())  # fmt: skip
        with Progress(*cols, console=self.c, transient=False) as bar:
            task = bar.add_task("season", total=until - start, day=0, days=self.days, what="")
            while any(vn.alive() for vn in field.nodes):
                now = field.clock()
                what = ""
                try:
                    st = field.status()
                    what = "%s, outbox %d" % (st["time"][:16].replace("T", " "), st["outbox"]["batches"])
                except OSError:
                    pass
                bar.update(task, completed=min(now, until) - start, day=min(self.days, int(now - start) // DAY + 1),
                           what=what)  # fmt: skip
                time.sleep(0.5)
            bar.update(task, completed=until - start, day=self.days)

    def _finish(self, nodes, bad, checks, until):
        names = {n.source: n.name for n in nodes}
        by_source, counts = steps.store_counts(self.store_url)
        rows, assessed = steps.attention(self.store_url, until)
        self.say("[bold]5. Needs attention[/] (the CSM's list, judged at %s): %d of %d devices"
                 % (_utc(until), len(rows), assessed))  # fmt: skip
        self._table(rows, names)
        report, what = steps.season_report(self.store_url, int(time.gmtime(until).tm_year),
                                           os.path.join(self.out, "season-report.html"))  # fmt: skip
        sq = self.store_url
        now_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until))
        self.say("[bold]6. Outputs[/] in %s" % self.out)
        self.say("  store           %s (%d readings: %s)" % (sq, sum(by_source.values()), ", ".join(
            "%s %d" % (names.get(k, k), v) for k, v in sorted(by_source.items()))))  # fmt: skip
        self.say("  CSM dashboard   fieldline fleet serve --store %s --now %s" % (sq, now_iso))
        self.say("  attention list  fieldline fleet attention --store %s --now %s" % (sq, now_iso))
        self.say("  season report   %s" % what)
        if report:
            for f in report.get("fields", []):
                self.say("                  %s: %s" % (f.get("field"), f.get("statement")))
        self.say("  stream as files %s (JSON Lines, one batch a line, from the gateway's file uplink)"
                 % self.stream_path)  # fmt: skip
        self.say("  install checks  %s" % os.path.join(self.out, "checks"))
        self.say("  logs            %s" % os.path.join(self.out, "logs"))
        self.summary.update({
            "nodes": [{"name": n.name, "device": n.source, "bad": n.bad, "check": checks[n.name][0],
                       "failed": {r.name: r.fix for r in checks[n.name][1] if r.status == "FAIL"}} for n in nodes],
            "attention": [{"device": r["device"], "name": names.get(r["device"]), "cause": r["cause"],
                           "title": r["title"], "action": r["action"]} for r in rows],
            "readings_by_source": by_source, "store_counts": counts, "season_end": now_iso,
            "season_report": report, "elapsed_s": round(time.monotonic() - self.t0, 1),
            "outputs": {"store": sq, "stream": self.stream_path, "season_report": report and what,
                        "checks": os.path.join(self.out, "checks"), "logs": os.path.join(self.out, "logs")},
        })  # fmt: skip
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(self.summary, f, indent=1, default=str)
        flagged = any(r["device"] == bad.source for r in rows)
        self.c.rule("done in %.0f s: %s %s the attention list" % (time.monotonic() - self.t0, bad.name,
                                                                  "is on" if flagged else "is NOT on"))  # fmt: skip

    def _table(self, rows, names):
        from rich.table import Table

        t = Table(show_lines=False, pad_edge=False)
        for col in ("#", "device", "likely cause", "evidence", "what to do"):
            t.add_column(col, overflow="fold")
        for r in rows[:15]:
            cause = r["title"] + (" (+%s)" % ", ".join(r["also"]) if r.get("also") else "")
            dev = "%s\n%s" % (names.get(r["device"], ""), r["device"])
            t.add_row(str(r["rank"]), dev.strip(), cause, r.get("evidence_text", ""), r["action"])
        self.c.print(t)

    def cleanup(self):
        """Stop everything this run started; then kill any child process still there. Returns how many were."""
        if self.field is not None:
            try:
                self.field.stop()
            except Exception as e:  # noqa: BLE001 - the sweep below still runs
                self.c.print("demo: stopping the field: %r" % e)
        for b in self.boards:
            b.stop()
        left = _children()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return len(left)


def _failures():
    """What stops the demo with a message (exit 1) rather than a traceback."""
    import subprocess

    from gateway.errors import GatewayError
    from provisioning.errors import ProvisioningError
    from upstream.errors import UpstreamError

    return (RuntimeError, OSError, subprocess.SubprocessError, GatewayError, ProvisioningError, UpstreamError)


def _raise(signum, frame):
    raise Interrupted(signum)


def _fail(msg, code=1):
    typer.echo("fieldline demo: %s" % msg, err=True)
    raise typer.Exit(code)


def _prepare_out(out):
    """An empty output folder: a new one, or an earlier demo's (its marker file), emptied."""
    if os.path.exists(out) and os.listdir(out):
        if not os.path.exists(os.path.join(out, MARKER)):
            _fail("%s exists and is not a demo output folder: give another --out" % out, 2)
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, MARKER), "w") as f:
        f.write("made by `fieldline demo`; the next demo run with this --out replaces this folder\n")


def _children(pid=None):
    """Live descendants of this process (Linux /proc), deepest last; [] where /proc is not there."""
    pid = os.getpid() if pid is None else pid
    kids = {}
    try:
        entries = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return []
    for d in entries:
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            kids.setdefault(int(fields[1]), []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), ()):
            out.append(k)
            todo.append(k)
    return out


def _solar_time(day_epoch, lon, hour):
    from tools.virtual_field.install import solar_time_utc

    return solar_time_utc(day_epoch, lon, hour)


def _utc(t):
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def _faults_text(faults):
    return ", ".join("%s=%g" % kv for kv in faults.items())
