"""Fixtures of the provisioning tests: a REPL virtual board in a temporary directory, a request."""

import os

import pytest

from provisioning.provision import Request
from tools.virtual_field.repl_board import ReplBoard


@pytest.fixture
def board(tmp_path):
    b = ReplBoard(str(tmp_path / "board"), seed=5).start()
    yield b
    b.stop()


@pytest.fixture
def req(tmp_path):
    def make(**kw):
        kw.setdefault("registry_path", str(tmp_path / "devices.toml"))
        kw.setdefault("lat", 52.1)
        kw.setdefault("lon", 5.2)
        return Request(**kw)

    return make


def board_file(board, path):
    """The bytes of ``path`` on the virtual board (its root is a host directory), or None."""
    p = os.path.join(board.fs_dir, path.lstrip("/"))
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        return f.read()
