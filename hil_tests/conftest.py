"""hil_tests wiring: one suite, two targets; pytest-embedded's serial service drives the device under test.

    pytest hil_tests                                   # virtual nodes on ptys, started by the suite (quick)
    pytest hil_tests --soak                            # plus the long soak
    pytest hil_tests --target esp32s3 --port /dev/ttyUSB0 --registry devices.toml [--relay-cmd CMD] [--attenuator]

Options of pytest-embedded used here: ``--port`` (a real board's serial port), ``--target``
(``virtual``, the default, or the board's chip, e.g. ``esp32s3``; a port without a target means a
real board) and ``--embedded-services`` (default here: ``serial``). Our own: ``--soak``,
``--soak-days``, ``--results DIR``, ``--relay-cmd``, ``--registry``, ``--clock``, ``--attenuator``,
``--powercut-trials``. Markers: ``virtual_only(reason)`` (skipped on a real board, with the reason),
``soak`` (runs only with ``--soak``), ``bench(...)`` (the virtual board's window and faults; a real board
listens ``real_s`` seconds). Everything here acts on items under hil_tests/ only: the rest of the
repository's tests see no option, marker or hook change.

How the serial service meets a virtual node: pytest-embedded's ``serial`` fixture opens a *path* with
pyserial, so the suite's ``port`` fixture (overriding pytest-embedded's) hands it the pty path of a
VirtualBoard it has just started (rig/boards.py: the node's UART on one side of a FrameProxy, the
path on the other); pytest-embedded's ``test_case_tempdir`` is overridden so its raw serial log lands
in this run's results folder.
"""

import os
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_RESULTS = os.path.join(ROOT, "out", "hil")  # /out/ is git-ignored
KNOWN_HW = ("esp32s3",)  # --target values that are a board kind the firmware names in its hello
_RESULTS = pytest.StashKey()
_BENCH = pytest.StashKey()
EMBEDDED_MISSING = ("pytest-embedded is not loaded: install the dev extras (pip install -e .[dev]); "
                    "see docs/bench-rig.md")  # fmt: skip


def pytest_addoption(parser):
    g = parser.getgroup("fieldline-hil", "Fieldline hardware-in-the-loop bench (hil_tests)")
    g.addoption("--soak", action="store_true", help="also run the long soak (hil_tests/test_soak.py)")
    g.addoption("--soak-days", type=float, default=30.0, help="simulated days of the soak (default 30)")
    g.addoption("--results", default=None, help="results folder (default: out/hil in the repository)")
    g.addoption("--relay-cmd", default=None,
                help='command that switches the board\'s power relay: "{state}" in it becomes off/on, '
                     "else off/on is appended")  # fmt: skip
    g.addoption("--registry", default="devices.toml", help="device registry with the real board's key")
    g.addoption("--clock", default="system",
                help="a real target's UTC: system (default), paced:START,WALL0,SPEED, or a clock file")  # fmt: skip
    g.addoption("--attenuator", action="store_true",
                help="real board: relay its port through the frame-fault proxy (the suite opens a pty)")  # fmt: skip
    g.addoption("--powercut-trials", type=int, default=None, help="flash power-cut campaign size (300; soak 2000)")
    try:  # pytest-embedded defines --target; without it, keep the command line valid (the suite then skips)
        parser.addoption("--target", default=None, help="virtual (default) or the real board's chip")
    except ValueError:
        pass


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "virtual_only(reason): needs what only a virtual board can do; skipped on a real board"
    )
    config.addinivalue_line("markers", "soak: the long soak; runs only with --soak")
    config.addinivalue_line(
        "markers", "bench(days, faults, sleep, start, seed, intervals, cut_schedule, real_s): the virtual "
        "board's window, faults and config; a real board listens real_s seconds")  # fmt: skip


def _ours(item):
    return str(item.path).startswith(HERE + os.sep)


def bench_target(config):
    port = config.getoption("port", None)
    target = config.getoption("target", None)
    if target in (None, "", "auto"):
        target = "virtual" if not port else "board"
    if target == "virtual" and port:
        raise pytest.UsageError("--target virtual starts its own virtual nodes: drop --port, or name the board's "
                                "chip (--target esp32s3 --port /dev/ttyUSB0)")  # fmt: skip
    return target


def pytest_collection_modifyitems(config, items):
    mine = [i for i in items if _ours(i)]
    if not mine:
        return
    target = bench_target(config)
    embedded = config.pluginmanager.hasplugin("pytest_embedded")
    for item in mine:
        if item.get_closest_marker("soak") and not config.getoption("--soak"):
            item.add_marker(pytest.mark.skip(reason="the long soak: run with --soak"))
        m = item.get_closest_marker("virtual_only")
        if m and target != "virtual":
            why = m.args[0] if m.args else m.kwargs.get("reason", "needs the virtual board")
            item.add_marker(pytest.mark.skip(reason="virtual_only on a real board: %s" % why))
        if not embedded and "bench" in item.fixturenames:
            item.add_marker(pytest.mark.skip(reason=EMBEDDED_MISSING))


# ---- results ----
def _results(config):
    run = config.stash.get(_RESULTS, None)
    if run is None:
        root = config.getoption("--results") or DEFAULT_RESULTS
        run = config.stash[_RESULTS] = _make_results(root, config)
    return run


def _make_results(root, config):
    from hil_tests.rig.results import RunResults

    target = bench_target(config)
    if target != "virtual":
        target = "%s-%s" % (target, os.path.basename(config.getoption("port") or ""))
    return RunResults(root, target, config.invocation_params.args)


def pytest_sessionfinish(session):
    run = session.config.stash.get(_RESULTS, None)
    if run is not None:
        run.write()


def pytest_terminal_summary(terminalreporter, config):
    run = config.stash.get(_RESULTS, None)
    if run is not None:
        camp = run.campaign()
        terminalreporter.write_line("hil results: %s (summary.md, junit.xml)%s" % (
            run.dir, "; " + ", ".join("%s=%s" % kv for kv in sorted(camp.items())) if camp else ""))  # fmt: skip


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if _ours(item):
        _results(item.config).add(rep)
        bench = item.stash.get(_BENCH, None)
        if rep.failed and bench is not None:
            rep.sections.append(("device logs", bench.logs()))
    return rep


# ---- fixtures ----
@pytest.fixture
def logdir(request):
    return _results(request.config).test_dir(request.node.nodeid)


@pytest.fixture
def figures(request):
    """A dict of figures for the run's summary; recorded when the test ends (passed or not)."""
    figs = {}
    yield figs
    run = _results(request.config)
    for k, v in figs.items():
        run.figure(request.node.nodeid, k, v)


@pytest.fixture
def test_case_tempdir(logdir):
    """pytest-embedded's per-test folder (its raw serial log, dut.log): this run's logs/<test>/."""
    return logdir


@pytest.fixture
def embedded_services(request):
    return request.config.getoption("embedded_services", None) or "serial"


@pytest.fixture
def port(request):
    """pytest-embedded's serial port: a test with a bench gets its board's (a virtual board's pty path)."""
    if "bench" not in request.node.fixturenames:
        return request.config.getoption("port", None)
    return request.getfixturevalue("bench_board").port


@pytest.fixture
def target_name(request):
    return bench_target(request.config)


@pytest.fixture
def bench_window(request):
    w = {"days": 1.0, "faults": None, "sleep": "advance", "seed": 1, "real_s": 900.0}
    m = request.node.get_closest_marker("bench")
    if m:
        w.update(m.kwargs)
    return w


@pytest.fixture
def bench_board(request, target_name, bench_window, logdir):
    from hil_tests.rig.attenuator import Attenuator
    from hil_tests.rig.boards import SerialBoard, VirtualBoard

    cfg = request.config
    if target_name == "virtual":
        kw = {k: bench_window[k] for k in ("days", "faults", "sleep", "seed", "start", "speed", "config",
                                                  "cut_schedule", "intervals")
              if k in bench_window}  # fmt: skip
        board = VirtualBoard(os.path.join(logdir, "board"), **kw)
        board.attenuator = Attenuator(board.proxy)
    else:
        hw = target_name if target_name in KNOWN_HW else None
        board = SerialBoard(cfg.getoption("port"), _keyring(cfg.getoption("--registry")), _clock(cfg), hw=hw)
        board.attenuator = None
        if cfg.getoption("--attenuator"):
            board.attenuator = Attenuator.bridged(board.port)
            board.port = board.attenuator.port
    try:
        yield board
    finally:
        if board.attenuator is not None:
            board.attenuator.close()
        board.close()


@pytest.fixture
def bench(request, bench_board, dut, target_name, bench_window, logdir):
    from hil_tests.rig.bench import Bench
    from hil_tests.rig.peer import DutPeer
    from hil_tests.rig.relay import CommandRelay, VirtualRelay

    board = bench_board
    if board.is_virtual:
        relay = VirtualRelay(board)
    else:
        cmd = request.config.getoption("--relay-cmd")
        relay = CommandRelay(cmd) if cmd else None
    peer = DutPeer(dut, board.keyring, clock=board.clock, frames_log=os.path.join(logdir, "frames.jsonl"))
    figs = {}
    b = Bench(target_name, board, peer, dut, relay=relay, attenuator=board.attenuator, logdir=logdir,
              window=bench_window, figures=figs)  # fmt: skip
    request.node.stash[_BENCH] = b
    peer.start()
    if board.is_virtual:
        board.power_on()
    try:
        yield b
    finally:
        run = _results(request.config)
        for k, v in figs.items():
            run.figure(request.node.nodeid, k, v)
        if board.is_virtual:
            board.node.stop()
        peer.stop()


def _keyring(path):
    from gateway.registry import Registry

    if not os.path.exists(path):
        raise pytest.UsageError("a real board needs its key: --registry %s does not exist (the devices.toml "
                                "`fieldline provision` wrote)" % path)  # fmt: skip
    ring = dict(Registry.load(path).keyring)
    if not ring:
        raise pytest.UsageError("--registry %s holds no device" % path)
    return ring


def _clock(config):
    spec = config.getoption("--clock")
    if spec == "system":
        return time.time
    from tools.virtual_field.node import PacedClock, SimClock

    if spec.startswith("paced:"):
        return PacedClock.parse(spec)
    if os.path.basename(spec) != "clock":
        raise pytest.UsageError("--clock: expected system, paced:START,WALL0,SPEED or a virtual node's clock file")
    return SimClock(os.path.dirname(spec))
