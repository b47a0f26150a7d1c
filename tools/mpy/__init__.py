"""Run project code on the MicroPython unix port, compiled to .mpy as a deployment does.

build = compile_tree()                      # .build/mpy/<tree> with .mpy files
res = run_module_tests(build, "shared_protocol.tests.test_cbor", heap="64K")
"""

import ast
import os
import subprocess

from tools.paths import BUILD_DIR, ROOT, micropython_exe, mpy_cross_exe

PACKAGES = ("shared_protocol", "firmware")
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runner_mp.py")
MARK = "@@MPTEST "


class MicroPythonError(RuntimeError):
    """mpy-cross or the micropython process failed outside a test."""


def _sources(package):
    base = os.path.join(ROOT, package)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for fn in filenames:
            if fn.endswith(".py"):
                yield os.path.join(dirpath, fn)


def compile_tree(packages=PACKAGES, out_dir=None):
    """Compile every .py of ``packages`` to .mpy under ``out_dir`` (only what changed).

    ``firmware/`` is flattened the way it is deployed: its contents sit at the root of the
    build (``firmware/fieldnode/app.py`` -> ``fieldnode/app.mpy``). Returns ``out_dir``.
    """
    out_dir = out_dir or os.path.join(BUILD_DIR, "mpy")
    cross = mpy_cross_exe()
    for package in packages:
        for src in _sources(package):
            rel = os.path.relpath(src, ROOT)
            if package == "firmware":
                rel = os.path.relpath(src, os.path.join(ROOT, "firmware"))
            dst = os.path.join(out_dir, rel[:-3] + ".mpy")
            if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            tmp = "%s.%d.tmp" % (dst, os.getpid())
            # deployed modules: no line-number tables (-O3), and the source name is the .mpy's own
            # path, a qstr the import creates anyway (__file__): tracebacks name file and function
            opt = [] if os.sep + "tests" + os.sep in src else ["-O3"]
            name = rel if opt == [] else rel[:-3] + ".mpy"
            r = subprocess.run([cross] + opt + ["-o", tmp, "-s", name, src], capture_output=True, text=True)
            if r.returncode != 0:
                raise MicroPythonError("mpy-cross failed on %s:\n%s" % (rel, r.stderr.strip()))
            os.replace(tmp, dst)  # atomic: parallel test runs never see half a file
    return out_dir


def test_names(path):
    """Top-level ``def test*`` names of a test file, in source order."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]


def module_heap(path, default="64K"):
    """A test module may ask for a bigger heap with ``MP_HEAPSIZE = "128K"``."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "MP_HEAPSIZE" for t in n.targets):
            if isinstance(n.value, ast.Constant):
                return str(n.value.value)
    return default


def run_module_tests(build_dir, module, heap="64K", timeout=300, env=None):
    """Run every test of ``module`` in one micropython process.

    Returns (results by test name, full output). Each result is a dict with ``ok``,
    ``ms``, ``trace`` (MicroPython traceback on failure).
    """
    e = dict(os.environ)
    e["MICROPYPATH"] = build_dir
    e["FIELDLINE_ROOT"] = ROOT
    if env:
        e.update(env)
    runner = os.path.join(build_dir, "_mptest_runner.mpy")
    if not os.path.exists(runner) or os.path.getmtime(runner) < os.path.getmtime(RUNNER):
        tmp = "%s.%d.tmp" % (runner, os.getpid())
        subprocess.run([mpy_cross_exe(), "-o", tmp, "-s", "runner_mp.py", RUNNER], check=True)
        os.replace(tmp, runner)
    cmd = [micropython_exe(), "-X", "heapsize=" + heap, "-m", "_mptest_runner", module]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e, cwd=build_dir)
        out = r.stdout + r.stderr
    except subprocess.TimeoutExpired as ex:
        out = (ex.stdout or b"").decode(errors="replace") if isinstance(ex.stdout, bytes) else (ex.stdout or "")
        out += "\n[timed out after %ds]" % timeout
    results = {}
    rec = None
    for line in out.splitlines():
        if line.startswith(MARK):
            name, ok, ms, free = line[len(MARK) :].split()
            rec = {"name": name, "ok": ok == "1", "ms": int(ms), "mem_free": int(free), "trace": ""}
            results[name] = rec
        elif line.startswith("@@TRACE ") and rec is not None:
            rec["trace"] += line[8:] + "\n"
    return results, out
