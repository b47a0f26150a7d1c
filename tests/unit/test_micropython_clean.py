"""firmware/ and shared_protocol/ may import only what MicroPython provides (plus the project).

The list of available modules is read from the real unix-port interpreter; the ESP32-S3
board module may also use the esp32 port's own modules. CPython-only code in these trees
is allowed only behind ``try: ... except ImportError:`` with a MicroPython fallback.
"""

import ast
import os
import subprocess

import pytest

from tools.paths import ROOT, micropython_exe

TREES = ("firmware", "shared_protocol")
PROJECT = {"shared_protocol", "fieldnode", "sim", "tests", "main", "boot"}
# modules of the ESP32 port that the unix port lacks; only the real board layer may use them
ESP32_ONLY = {"esp32", "esp", "network", "bluetooth", "neopixel", "onewire", "machine"}
BOARD_FILES = ("firmware/fieldnode/boards/esp32s3.py", "firmware/boot.py")


def _micropython_modules():
    out = subprocess.run(
        [micropython_exe(), "-c", "help('modules')"], capture_output=True, text=True, timeout=30
    ).stdout
    names = set()
    for line in out.splitlines():
        if line.startswith("Plus"):
            break
        for tok in line.split():
            names.add(tok.split("/")[0])
    assert {"struct", "time", "hashlib", "vfs"} <= names, out
    return names


def _files():
    for tree in TREES:
        for dirpath, _, filenames in os.walk(os.path.join(ROOT, tree)):
            for fn in filenames:
                if fn.endswith(".py"):
                    path = os.path.join(dirpath, fn)
                    yield os.path.relpath(path, ROOT), path


def _guarded(node, parents):
    """True if ``node`` sits in a try whose handlers catch ImportError."""
    for p in parents.get(id(node), []):
        if isinstance(p, ast.Try):
            for h in p.handlers:
                names = []
                if isinstance(h.type, ast.Name):
                    names = [h.type.id]
                elif isinstance(h.type, ast.Tuple):
                    names = [e.id for e in h.type.elts if isinstance(e, ast.Name)]
                if "ImportError" in names:
                    return True
    return False


def _parents(tree):
    out = {}

    def walk(node, chain):
        inner = chain + [node] if isinstance(node, ast.Try) else chain
        for child in ast.iter_child_nodes(node):
            out[id(child)] = inner
            walk(child, inner)

    walk(tree, [])
    return out


def _problems(rel, path, available):
    src = open(path).read()
    tree = ast.parse(src, rel)
    parents = _parents(tree)
    problems = []
    allowed = available | PROJECT
    if rel in BOARD_FILES:
        allowed = allowed | ESP32_ONLY
    for node in ast.walk(tree):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append("line %d: relative import (use the package name)" % node.lineno)
            mods = [node.module or ""]
        for m in mods:
            top = m.split(".")[0]
            if top not in allowed and not _guarded(node, parents):
                problems.append("line %d: imports %r, which MicroPython does not provide" % (node.lineno, m))
        if isinstance(node, ast.Match):
            problems.append("line %d: match statement (MicroPython has none)" % node.lineno)
        if isinstance(node, ast.AnnAssign) or (isinstance(node, ast.arg) and node.annotation is not None):
            problems.append("line %d: type annotation (keep MicroPython code plain)" % node.lineno)
        if isinstance(node, ast.FunctionDef) and node.returns is not None:
            problems.append("line %d: return annotation" % node.lineno)
        if isinstance(node, ast.JoinedStr):
            for v in node.values:
                if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value.rstrip().endswith("="):
                    problems.append("line %d: f-string '=' debugging is not in MicroPython" % node.lineno)
    return problems


def test_trees_exist_and_have_code():
    files = [rel for rel, _ in _files()]
    assert any(f.startswith("shared_protocol/") for f in files)
    assert any(f.startswith("firmware/") for f in files)


@pytest.mark.parametrize("rel,path", sorted(_files()), ids=[rel for rel, _ in sorted(_files())])
def test_imports_only_what_micropython_has(rel, path):
    problems = _problems(rel, path, _micropython_modules_cached())
    assert not problems, "%s:\n  %s" % (rel, "\n  ".join(problems))


_CACHE = {}


def _micropython_modules_cached():
    if "m" not in _CACHE:
        _CACHE["m"] = _micropython_modules()
    return _CACHE["m"]


def test_the_check_catches_cpython_only_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import dataclasses\nfrom typing import List\nimport struct\n"
        "try:\n    import cbor2\nexcept ImportError:\n    cbor2 = None\n"
        "def f(x: int) -> int:\n    return x\nprint(f'{x=}')\n"
    )
    problems = _problems("firmware/bad.py", str(bad), _micropython_modules_cached())
    text = "\n".join(problems)
    assert "dataclasses" in text and "typing" in text
    assert "cbor2" not in text  # guarded
    assert "annotation" in text and "f-string" in text
    assert "struct" not in text
