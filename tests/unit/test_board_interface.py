"""Both boards implement the one board API the app uses (the ESP32-S3 board cannot run here)."""

import ast
import os
import re

from tools.paths import ROOT

BOARDS = {
    "Esp32S3Board": "firmware/fieldnode/boards/esp32s3.py",
    "VirtualBoard": "firmware/fieldnode/boards/virtual/board.py",
}


def _members(path, cls):
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            names = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            for n in ast.walk(node):
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self":
                    names.add(n.attr)
                if isinstance(n, ast.Assign):
                    names.update(t.id for t in n.targets if isinstance(t, ast.Name))
            return names
    raise AssertionError("no class %s in %s" % (cls, path))


def _used_by_app():
    """Every ``board.x`` / ``self.board.x`` / ``b.x`` the node code touches."""
    used = set()
    for fn in ("app.py", "sensors.py", "diag.py", "link.py"):
        src = open(os.path.join(ROOT, "firmware", "fieldnode", fn)).read()
        used |= set(re.findall(r"\b(?:board|self\.board|n\.board|b)\.([a-z_]+)", src))
    return used


def test_every_board_has_what_the_node_uses():
    used = _used_by_app()
    assert {"time_ms", "uart", "bus_up", "bus_down", "rtc_read", "heap_mark"} <= used
    for cls, path in BOARDS.items():
        missing = used - _members(path, cls)
        assert not missing, "%s lacks %s" % (cls, sorted(missing))


def test_board_api_doc_lists_what_the_node_uses():
    doc = open(os.path.join(ROOT, "firmware", "fieldnode", "boards", "__init__.py")).read()
    for name in _used_by_app():
        assert name in doc, name
