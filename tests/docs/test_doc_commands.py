"""Every shell command shown in the docs is run here, so the docs cannot rot.

    .venv/bin/python -m pytest tests/docs/test_doc_commands.py            # fast ones (unit)
    .venv/bin/python -m pytest tests/docs/test_doc_commands.py -m sim     # + demos, benches, servers

Commands are taken from fenced code blocks of README.md, docs/*.md and docs/sources/*.md:
every line of a ```sh / ```bash / ```shell block, the ``$ `` lines of a ```console block or of
an indented block, and, in a block with no language, the lines that start like a command
(``fieldline``, ``.venv/bin/…``, ``python``, …). Blocks marked ```text (diagrams, output) are
skipped. A command is normalised (comments dropped, ``\\`` continuations joined, ``.venv/bin/``
dropped, spaces collapsed) and looked up in REGISTRY, which says how CI runs it:

* ``run``     as written, or with the smaller arguments / prepared files the entry gives;
* ``help``    it needs hardware, a remote service or hours: the ``--help`` of that exact
              subcommand must exist and list every option the doc's command uses;
* ``server``  a long-running service: started (on free ports, in a temp dir), ready (a line it
              prints, or its port answers), stopped with a signal, and it must exit cleanly;
* ``usage``   ``bootstrap.py`` (it installs packages): its usage must name the subcommand.

A command the registry does not know fails with the line to add. An entry with ``pending``
names a command another issue is still building: it is skipped while the subcommand or an
option is missing from the CLI, and runs in full as soon as they exist.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs").glob("*/*.md"))]
BIN = Path(sys.executable).parent
SHELL_LANGS = ("sh", "bash", "shell")
SKIP_LANGS = ("text", "toml", "json", "python", "csv", "jsonl", "ini", "yaml", "html")
HEADS = ("fieldline", "python", "python3", "pytest", "ruff", "mosquitto", "esptool.py", "esptool", "mpremote",
         "curl", "sudo", "apt-get", "FIELDLINE_")  # fmt: skip
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
DEMO_OPTIONS = ("--nodes", "--days", "--speed", "--seed", "--out")
FLEET_END = "2026-07-01T00:00:00Z"  # the prepared fleet store's history ends here: season 2026

# ---- extraction ----


@dataclass(frozen=True)
class DocCommand:
    doc: str  # path relative to the repository
    line: int
    text: str  # normalised: what the registry matches

    def __str__(self):
        return "%s:%d: %s" % (self.doc, self.line, self.text)


def _strip_comment(line):
    """``line`` without a ``# comment`` (a # that starts a word outside quotes)."""
    q = None
    for i, c in enumerate(line):
        if q:
            q = None if c == q else q
        elif c in "'\"":
            q = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def _is_command(line):
    """In a block without a language: a ``$ `` line, or one that starts at column 0 like a command."""
    s = line.strip()
    if s.startswith("$ "):
        return True
    if line[:1].isspace():
        return False  # diagrams and tables are indented; commands start at the margin
    head = s.split(" ", 1)[0]
    return head in HEADS or head.startswith((".venv/bin/", "FIELDLINE_")) or head.endswith("bootstrap.py")


def normalise(text):
    s = text.strip()
    s = s[2:] if s.startswith("$ ") else s
    s = re.sub(r"(^|\s)\.venv/bin/", r"\1", s)
    return re.sub(r"\s+", " ", s).strip()


def _commands_in_block(lang, lines, first_line):
    """(line number, raw command) of one fenced or indented block."""
    out, pending, start = [], None, 0
    for n, raw in enumerate(lines, first_line):
        line = _strip_comment(raw)
        if pending is not None:  # continuation of the previous line
            if not line.strip():
                continue  # a comment line inside a continued command
            pending += " " + line.strip().rstrip("\\").strip()
            if not line.endswith("\\"):
                out.append((start, pending))
                pending = None
            continue
        if not line.strip():
            continue
        if lang == "console" and not line.lstrip().startswith("$ "):
            continue
        if lang not in SHELL_LANGS and lang != "console" and not _is_command(line):
            continue
        if line.endswith("\\"):
            pending, start = line.rstrip("\\").strip(), n
        else:
            out.append((n, line.strip()))
    if pending is not None:
        out.append((start, pending))
    return out


def extract(path):
    """The DocCommands of one markdown file."""
    rel = str(path.relative_to(ROOT))
    lines = path.read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)", lines[i])
        if m:
            indent, fence, lang = len(m.group(1)), m.group(2), m.group(3).lower()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence):
                j += 1
            body = [ln[indent:] if not ln[:indent].strip() else ln.lstrip() for ln in lines[i + 1 : j]]
            if lang not in SKIP_LANGS:
                found += _commands_in_block(lang, body, i + 2)
            i = j + 1
            continue
        if re.match(r"^ {4,}\$ ", lines[i]):  # an indented console block
            found += _commands_in_block("console", [lines[i].strip()], i + 1)
        i += 1
    return [DocCommand(rel, n, normalise(t)) for n, t in found]


def all_commands():
    return [c for p in DOCS if p.exists() for c in extract(p)]


# ---- the registry ----


@dataclass
class Way:
    """How CI runs a documented command (see the module doc)."""

    mode: str  # run | help | server | usage
    argv: object = None  # run/server: callable(ctx) -> argv (None: as written); help: the subcommand's words
    check: str = ""  # run: a regex the output must contain; usage: words the usage must name
    ready: object = None  # server: a regex on its output, or callable(ctx) -> port that must answer
    stop: int = signal.SIGTERM
    slow: bool = False  # sim tier
    timeout: float = 60.0
    pending: str = ""  # an issue still building it: skip while the CLI lacks the subcommand/options
    in_repo: bool = False  # run in the repository (paths in the command are the repository's), else a temp dir
    env: dict = field(default_factory=dict)


def fl(*args):
    return ["fieldline", *args]


def py(*args):
    return ["python", *args]


def _hex_frame(ctx):
    return fl("protocol", "decode", ctx.vector["hex"], "--key", ctx.vector_key)


# pattern (a regex, fullmatched against the normalised command) -> Way. First match wins.
# fmt: off
REGISTRY = [
    # README: the two commands a newcomer runs (bootstrap.py installs packages: its dispatch is checked)
    (r"python3 bootstrap\.py demo", Way("usage", check="demo")),
    (r"python3 bootstrap\.py test", Way("usage", check="test")),
    (r"python3 bootstrap\.py setup", Way("usage", check="setup")),
    # quick look-ups
    (r"fieldline --version", Way("run", check=r"fieldline \d+\.\d+")),
    (r"fieldline --help", Way("run", check="protocol")),
    (r"fieldline protocol decode <HEX> --key <HEX>", Way("run", argv=_hex_frame, check=r'"device_id"')),
    (r"fieldline protocol decode HEX \[--key KEYHEX\]", Way("help", argv=fl("protocol", "decode"))),
    # benches: a full run takes minutes; smaller runs, or the options
    (r"fieldline bench protocol --json",
     Way("run", argv=lambda c: fl("bench", "protocol", "--json", "--no-micropython"), check=r'"within_budget"',
         slow=True)),
    (r"fieldline bench gateway --json",
     Way("run", argv=lambda c: fl("bench", "gateway", "--json", "--nodes", "2", "--days", "1", "--no-broker"),
         check=r'"readings_per_s"', slow=True)),
    (r"fieldline bench (firmware|agronomy|provisioning|fleet)( --[\w-]+)*", Way("help")),
    (r'python -c "from tools\.bench\.fleet import run; .*"',
     Way("run", argv=lambda c: py("-c", "from tools.bench.fleet import run; assert callable(run)"))),
    # the gateway
    (r"fieldline gateway check --config gateway/gateway\.example\.toml", Way("run", check="config ok", in_repo=True)),
    (r"fieldline gateway check --config \S+",
     Way("run", argv=lambda c: fl("gateway", "check", "--config", c.gateway_config()), check="config ok")),
    (r"fieldline gateway run --config \S+",
     Way("server", argv=lambda c: fl("gateway", "run", "--config", c.gateway_config()),
         ready=lambda c: c.ports["status"], slow=True)),
    # the virtual node
    (r"fieldline node virtual --uart /dev/pts/\w+ \[.*", Way("help", argv=fl("node", "virtual"))),
    (r"fieldline node virtual --uart /dev/pts/\w+( --fault \S+)*",
     Way("server", argv=lambda c: c.with_pty(), ready=r"virtual node: uart", stop=signal.SIGINT, slow=True)),
    (r"fieldline node virtual --provisioned \S+.*", Way("help", argv=fl("node", "virtual"))),
    # the demo: 2 nodes, 2 days in a temp dir
    (r"fieldline demo.*",
     Way("run", argv=lambda c: c.small_demo(), check=r"fieldline fleet serve --store", slow=True, timeout=150)),
    # provisioning: a virtual board runs; a USB port or BLE in the field does not
    (r"fieldline provision --virtual .*", Way("run", argv=lambda c: c.in_tmp(), check="files copied", timeout=120)),
    (r"fieldline provision .*", Way("help", argv=fl("provision"))),
    (r"fieldline check .*", Way("help", argv=fl("check"))),
    # upstream, fleet, dashboard, season report
    (r"fieldline upstream import-devices --store \S+ devices\.csv",
     Way("run", argv=lambda c: fl("upstream", "import-devices", "--store", c.new_store(), c.devices_csv()),
         check="imported 1 devices")),
    (r"fieldline upstream migrate --store \S+",
     Way("run", argv=lambda c: fl("upstream", "migrate", "--store", c.new_store()), check="schema version")),
    (r"fieldline upstream serve --store sqlite:///\S+ --mqtt 127\.0\.0\.1:1883 --http 127\.0\.0\.1:8781",
     Way("server", argv=lambda c: fl("upstream", "serve", "--store", c.new_store(),
                                     "--mqtt", "127.0.0.1:%d" % c.ports["mqtt"],
                                     "--http", "127.0.0.1:%d" % c.ports["http"]),
         ready=lambda c: c.ports["http"], slow=True)),
    (r"fieldline upstream serve .*", Way("help", argv=fl("upstream", "serve"))),
    (r"fieldline fleet simulate .*",
     Way("run", argv=lambda c: c.smaller({"--devices": "12", "--days": "10", "--store": c.new_store()}),
         check="faults injected")),
    (r"fieldline fleet (attention|customers|device)( \S+)? --store \S+.*",
     Way("run", argv=lambda c: c.on_fleet_store(), check=r"\S")),
    (r"fieldline fleet serve --store (sqlite:///\S+|URL)( --port 0)?",
     Way("server", argv=lambda c: fl("fleet", "serve", "--store", c.fleet_store, "--port", "0"),
         ready=r"dashboard on http://", slow=True)),
    (r"(FIELDLINE_DASHBOARD_TOKEN=\S+ )?fieldline fleet serve .*", Way("help", argv=fl("fleet", "serve"))),
    (r"fieldline report season --store sqlite:///\S+ .*",
     Way("run", argv=lambda c: c.season_report(), slow=True, timeout=120)),
    (r"fieldline report season .*", Way("help", argv=fl("report", "season"))),
    # tests and lint
    (r"python -m pytest firmware/tests -k \w+", Way("run", check=r"\d+ passed", slow=True, timeout=120, in_repo=True)),
    (r"python -m pytest .*", Way("help")),
    (r"pytest .*", Way("help")),
    (r"ruff (check|format)( --check)?( \S+)*", Way("help")),
    # the bench rig
    (r"python -m hil_tests\.rig\.pty_board serve --workdir \S+ --speed \d+",
     Way("server", argv=lambda c: py("-m", "hil_tests.rig.pty_board", "serve", "--workdir", c.sub("board"),
                                     "--speed", "600"), ready=r'"port"', slow=True)),
]
# fmt: on


def lookup(text):
    for pattern, way in REGISTRY:
        if re.fullmatch(pattern, text):
            return way
    return None


# ---- running ----


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ctx:
    """A temp dir per command and the prepared things the registry's argv functions use."""

    fleet_store = None  # a store `fieldline fleet simulate` filled (module fixture)
    customer = None  # a customer in it

    def __init__(self, tmp, cmd):
        self.tmp, self.cmd = Path(tmp), cmd
        self.ports = {"status": _free_port(), "http": _free_port(), "mqtt": _free_port()}
        vectors = [json.loads(ln) for ln in (ROOT / "shared_protocol" / "vectors" / "frames.jsonl").read_text()
                   .splitlines() if ln.startswith("{")]  # fmt: skip
        keyring = next(v["keyring"] for v in vectors if "keyring" in v)
        self.vector = next(v for v in vectors if v.get("message", {}).get("auth") == "hmac" and "hex" in v)
        self.vector_key = keyring[str(self.vector["message"]["device_id"])]

    def sub(self, name):
        p = self.tmp / name
        p.mkdir(exist_ok=True)
        return str(p)

    def words(self):
        return shlex.split(self.cmd.text)

    def in_tmp(self):
        return self.words()  # as written; the test runs it in the temp dir

    def new_store(self):
        return "sqlite:///%s" % (self.tmp / "upstream.db")

    def devices_csv(self):
        p = self.tmp / "devices.csv"
        p.write_text("device,customer,field,gateway,lat,lon,install_tilt_deg\n"
                     "node-1007,Hillside Farms,North block,gw-hillside,45.51,9.20,1.5\n")  # fmt: skip
        return str(p)

    def gateway_config(self):
        p = self.tmp / "gateway.toml"
        p.write_text('[gateway]\nid = "gw-doc"\ndata_dir = "data"\n\n[status]\nport = %d\n' % self.ports["status"])
        return str(p)

    def with_pty(self):
        master, slave = os.openpty()
        self._pty = (master, slave)
        words = self.words()
        return [os.ttyname(slave) if w.startswith("/dev/pts/") else w for w in words]

    def smaller(self, values):
        """The command as written, with the values of the options in ``values`` replaced."""
        words = self.words()
        for i, w in enumerate(words[:-1]):
            if w in values:
                words[i + 1] = values[w]
        return words

    def on_fleet_store(self):
        words = self.words()
        i = words.index("--store")
        words[i + 1] = self.fleet_store
        return words

    def small_demo(self):
        return fl("demo", "--nodes", "2", "--days", "2", "--seed", "1", "--out", str(self.tmp / "demo-out"))

    def season_report(self):
        words = self.words()
        out = []
        skip = False
        for i, w in enumerate(words):
            if skip:
                skip = False
                continue
            if w in ("--store", "--customer", "--season"):
                out += [w, {"--store": self.fleet_store, "--customer": self.customer, "--season": FLEET_END[:4]}[w]]
                skip = True
            elif w in ("--out", "--pdf") and i + 1 < len(words):
                out += [w, str(self.tmp / os.path.basename(words[i + 1]))]
                skip = True
            else:
                out.append(w)
        return out


def _exe(argv, env):
    """argv with leading VAR=value moved into env and our venv's programs resolved."""
    argv = list(argv)
    while argv and re.match(r"[A-Z_]+=", argv[0]):
        k, _, v = argv.pop(0).partition("=")
        env[k] = v
    head = argv[0]
    if head in ("python", "python3"):
        argv[0] = sys.executable
    elif (BIN / head).exists():
        argv[0] = str(BIN / head)
    return argv


def _env(tmp):
    # TMPDIR short: Chromium's profile socket must fit in 107 bytes (pytest-xdist's paths are long)
    env = dict(os.environ, COLUMNS="200", TERM="dumb", NO_COLOR="1", TMPDIR=str(tmp), PYTHONPATH=str(ROOT))
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _run(argv, env, cwd, timeout):
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


_HELP = {}


def _help_text(words, env):
    """The --help of the subcommand ``words`` (pytest: with the doc's test paths, so their options load).

    ``fieldline`` subcommands are asked in-process (typer's CliRunner: a second each saved); the rest
    run as programs. Cached: several doc commands share a subcommand.
    """
    key = tuple(words)
    if key not in _HELP:
        _HELP[key] = _help_uncached(list(words), env)
    return _HELP[key]


def _help_uncached(words, env):
    if words[0] == "fieldline":
        from typer.testing import CliRunner

        from tools.cli import app

        r = CliRunner().invoke(app, words[1:] + ["--help"], env={"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"})
        return r.exit_code, r.output
    argv = _exe(words, env)
    if "pytest" in words:  # `pytest [path]`: the first test path loads its conftest's options
        i = len(argv) - len(words) + words.index("pytest")
        paths = [w for w in words[words.index("pytest") + 1 :] if not w.startswith("-") and (ROOT / w).exists()]
        argv = argv[: i + 1] + paths[:1]
    return _run(argv + ["--help"], env, ROOT, 60)


def _subcommand(words):
    """The leading words of a CLI command that name its subcommand (up to the first option or argument)."""
    out = []
    for w in words:
        if w.startswith("-") or not re.fullmatch(r"[a-z][a-z0-9_.-]*", w) or (out and len(out) >= 3):
            break
        out.append(w)
    return out


def _check_options(cmd_words, help_out, where):
    used = sorted({m.group(1) for w in cmd_words for m in [OPTION.match(w.lstrip("["))] if m})
    missing = [o for o in used if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), help_out)]
    assert not missing, "%s uses %s, not in its --help:\n%s" % (where, missing, help_out[-3000:])


def _pending_missing(way, env):
    """What of a pending command the CLI lacks yet ("" when everything is there)."""
    if way.pending.startswith("issue 10: fieldline demo"):
        rc, out = _run(_exe(fl("demo", "--help"), env), env, ROOT, 60)
        lacking = [o for o in DEMO_OPTIONS if o not in out]
        return "fieldline demo lacks %s" % lacking if lacking else ""
    if way.pending == "fieldline report season":
        rc, out = _run(_exe(fl("report", "season", "--help"), env), env, ROOT, 60)
        return "" if rc == 0 else "no `fieldline report season` yet"
    return ""


def _wait_port(port, proc, deadline):
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def _serve(argv, env, cwd, way, ctx):
    log = Path(cwd) / "server.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + way.timeout
    try:
        if callable(way.ready):
            ok = _wait_port(way.ready(ctx), proc, deadline)
        else:
            ok = False
            while time.monotonic() < deadline and proc.poll() is None:
                if re.search(way.ready, log.read_text()):
                    ok = True
                    break
                time.sleep(0.2)
        assert ok, "%s never got ready (exit %s); its output (%s):\n%s" % (argv, proc.poll(), log, log.read_text())
        proc.send_signal(way.stop)
        rc = proc.wait(timeout=20)
        assert rc == 0, "%s exited %s after signal %d; output:\n%s" % (argv, rc, way.stop, log.read_text()[-3000:])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for fd in getattr(ctx, "_pty", ()):
            os.close(fd)


# ---- the tests ----


COMMANDS = all_commands()


def _params():
    out = []
    for c in COMMANDS:
        way = lookup(c.text)
        marks = [pytest.mark.sim] if way is not None and way.slow else []
        out.append(pytest.param(c, id="%s:%d" % (c.doc, c.line), marks=marks))
    return out


@pytest.fixture(scope="module")
def fleet_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fleet")
    url = "sqlite:///%s" % (tmp / "fleet.db")
    env = _env(tmp)
    argv = fl("fleet", "simulate", "--devices", "12", "--days", "30", "--store", url, "--seed", "1", "--end", FLEET_END,
              "--season")  # fmt: skip
    rc, out = _run(_exe(argv, env), env, tmp, 120)
    assert rc == 0, out
    rc, out = _run(_exe(fl("fleet", "customers", "--store", url, "--json"), env), env, tmp, 60)
    assert rc == 0, out
    return url, json.loads(out)[0]["customer"]


def test_docs_show_commands():
    """The extraction finds the README's two commands (a broken parser would pass everything)."""
    texts = [c.text for c in COMMANDS if c.doc == "README.md"]
    assert texts[:2] == ["python3 bootstrap.py demo", "python3 bootstrap.py test"], texts[:3]
    assert len(COMMANDS) >= 30


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path (TMPDIR for the commands), removed afterwards."""
    d = tempfile.mkdtemp(prefix="fldoc-", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("cmd", _params())
def test_doc_command(cmd, tmp_path, short_tmp, fleet_store):
    way = lookup(cmd.text)
    assert way is not None, (
        "%s\nis shown in the docs but tests/docs/test_doc_commands.py does not know how to run it: add a REGISTRY "
        'entry, e.g. (r%r, Way("run")) to run it as written, Way("help", argv=[...]) if it needs hardware, or '
        'Way("server", ...) for a service' % (cmd, re.escape(cmd.text))
    )
    env = _env(short_tmp)
    env.update(way.env)
    if way.pending:
        lacking = _pending_missing(way, env)
        if lacking:
            pytest.skip("pending (%s): %s" % (way.pending, lacking))
    ctx = Ctx(tmp_path, cmd)
    ctx.fleet_store, ctx.customer = fleet_store
    words = shlex.split(cmd.text)

    if way.mode == "usage":  # bootstrap.py installs packages: check it dispatches the subcommand, and its usage
        rc, out = _run([sys.executable, str(ROOT / "bootstrap.py")], env, ROOT, 30)
        assert rc == 2 and "bootstrap.py" in out, "bootstrap.py without arguments: exit %d\n%s" % (rc, out)
        m = re.search(r"argv\[0\] not in \(([^)]*)\)", (ROOT / "bootstrap.py").read_text())
        assert m and '"%s"' % way.check in m.group(1), "bootstrap.py does not take %r" % way.check
        return

    if way.mode == "help":
        if way.argv is not None:
            sub = list(way.argv)
        elif words[0] in ("python", "python3", "pytest"):
            sub = words  # _help_text keeps `-m pytest` and the first test path
        else:
            sub = _subcommand(words)
        rc, out = _help_text(sub, env)
        assert rc == 0, "%s --help failed (exit %d):\n%s" % (" ".join(sub), rc, out[-3000:])
        _check_options(words, out, str(cmd))
        return

    argv = _exe(way.argv(ctx) if callable(way.argv) else words, env)
    if way.mode == "server":
        _serve(argv, env, tmp_path, way, ctx)
        return
    cwd = ROOT if way.in_repo else tmp_path
    rc, out = _run(argv, env, cwd, way.timeout)
    assert rc == 0, "%s\nran as %s in %s: exit %d\n%s" % (cmd, argv, cwd, rc, out[-4000:])
    if way.check:
        assert re.search(way.check, out), "%s: output lacks %r:\n%s" % (cmd, way.check, out[-3000:])


def test_registry_entries_compile():
    for pattern, way in REGISTRY:
        re.compile(pattern)
        assert way.mode in ("run", "help", "server", "usage"), pattern


def test_inline_fieldline_commands_exist():
    """`fieldline …` in running text: the subcommand exists and takes the options shown (its --help)."""
    env, problems = _env(ROOT), []
    for path in DOCS:
        for m in re.finditer(r"`((?:\.venv/bin/)?fieldline [^`]+)`", path.read_text()):
            text = normalise(m.group(1))
            try:
                words = shlex.split(text)
            except ValueError:
                continue
            rc, out = _help_text(_subcommand(words), env)
            try:
                assert rc == 0, "no such subcommand"
                _check_options(words, out, text)
            except AssertionError as e:
                problems.append("%s: `%s`: %s" % (path.relative_to(ROOT), text, str(e).split("\n")[0]))
    assert not problems, "\n".join(problems)
