"""Test-suite wiring: tiers (unit/sim/hil) and MicroPython test modules as pytest items.

Tests without a tier marker are ``unit``. ``hil`` tests run only with ``--port``.
Every ``test_*.py`` under ``shared_protocol/tests`` runs twice: under CPython (normal
collection) and inside MicroPython (items named ``test_x[micropython]``); ``mptest_*.py``
under ``firmware/tests`` run only inside MicroPython. Code under test is compiled with
mpy-cross first and run with ``-X heapsize=64K`` unless the module sets MP_HEAPSIZE.
"""

import os

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))
MP_DIRS = (os.path.join(ROOT, "shared_protocol", "tests"), os.path.join(ROOT, "firmware", "tests"))


def pytest_addoption(parser):
    try:  # pytest-embedded (loaded first, as a plugin) defines --port itself: the same option, one meaning
        parser.addoption("--port", default=None, help="serial port of a real board: enables hil tests")
    except ValueError:
        pass
    parser.addoption("--mp-heap", default=None, help="override the MicroPython heap size (e.g. 64K)")


def pytest_collection_modifyitems(config, items):
    tiers = ("unit", "sim", "hil")
    skip_hil = pytest.mark.skip(reason="hil: needs a real board, pass --port /dev/ttyUSB0")
    for item in items:
        if not any(item.get_closest_marker(t) for t in tiers):
            item.add_marker(pytest.mark.unit)
        if item.get_closest_marker("hil") and not config.getoption("--port"):
            item.add_marker(skip_hil)
    if config.pluginmanager.hasplugin("xdist"):
        _group_for_xdist(items)


def _group_for_xdist(items):
    """With ``-n 2 --dist loadgroup`` (what ``bootstrap.py test`` runs): a file's tests stay on one
    worker (module fixtures run once), and hil_tests/ is one group (one bench, one results folder)."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        rel = os.path.relpath(str(item.path), ROOT)
        group = "hil_tests" if rel.startswith("hil_tests" + os.sep) else rel
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_collect_file(parent, file_path):
    if file_path.suffix != ".py" or not str(file_path.parent).startswith(MP_DIRS):
        return None
    if file_path.name.startswith(("test_", "mptest_")):
        return MicroPythonFile.from_parent(parent, path=file_path)
    return None


class MicroPythonFailure(Exception):
    pass


class MicroPythonFile(pytest.File):
    """One test module, run once in a micropython process; each test is an item."""

    _results = None
    _output = ""

    def collect(self):
        from tools.mpy import test_names

        for name in test_names(str(self.path)):
            yield MicroPythonItem.from_parent(self, name=name + "[micropython]", test=name)

    def module_name(self):
        rel = os.path.relpath(str(self.path), ROOT)[:-3]
        parts = rel.split(os.sep)
        if parts[0] == "firmware":
            parts = parts[1:]
        return ".".join(parts)

    def results(self):
        if self._results is None:
            from tools.mpy import compile_tree, module_heap, run_module_tests

            build = compile_tree()
            heap = self.config.getoption("--mp-heap") or module_heap(str(self.path))
            self._heap = heap
            self._results, self._output = run_module_tests(build, self.module_name(), heap=heap)
        return self._results


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test, **kw):
        super().__init__(**kw)
        self.test = test
        self.funcargs = {}  # no fixtures; pytest-embedded's hooks look here for a `dut`

    def runtest(self):
        results = self.parent.results()
        rec = results.get(self.test)
        if rec is None:
            raise MicroPythonFailure(
                "%s did not report (heap %s); micropython output:\n%s"
                % (self.test, self.parent._heap, self.parent._output[-4000:])
            )
        if not rec["ok"]:
            raise MicroPythonFailure(rec.get("trace", "failed without a traceback"))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return "MicroPython (heap %s):\n%s" % (self.parent._heap, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, "micropython: %s" % self.test


class _NotForCPython(pytest.File):
    """An ``mptest_*.py`` named on the command line: its tests run inside MicroPython only."""

    def collect(self):
        return []


def pytest_pycollect_makemodule(module_path, parent):
    if module_path.name.startswith("mptest_"):
        return _NotForCPython.from_parent(parent, path=module_path)
    return None
