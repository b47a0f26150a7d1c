"""The node's settings in RAM, loaded through the config module without keeping its code.

    cfg = load(board)                # before the rest of the firmware is imported, at boot
    node = Node(board, settings=cfg)

``fieldnode.config`` (validation, defaults, config_get/set) is ~8 KB of code that the node
needs at boot and for the gateway's rare config requests: it is imported on demand and
dropped again (``use``/``unload``). Loading settings before importing the rest of the
firmware keeps the boot's peak low on a small heap.
"""

import gc
import sys
from array import array

import fieldnode
from fieldnode.errors import ConfigError


class Settings:
    """The config's values as plain attributes: holds no reference to the config module's code."""

    def __init__(self, src):
        for k in src.__dict__:
            v = getattr(src, k)
            if isinstance(v, list) and v and isinstance(v[0], float):
                v = array("f", v)  # calibration factors unboxed: 4 bytes each instead of 16
            setattr(self, k, v)


def use(name):
    """Import fieldnode.<name> on demand (modules the node needs rarely are not kept loaded)."""
    gc.collect()  # the most free space to load code into
    __import__("fieldnode." + name)
    return getattr(fieldnode, name)


def unload(name):
    full = "fieldnode." + name
    if full in sys.modules:
        del sys.modules[full]
    if hasattr(fieldnode, name):
        delattr(fieldnode, name)


def load(board, path=None):
    """Settings from ``path`` (default <flash>/config.json), or unprovisioned ones saying why."""
    config = use("config")
    try:
        loaded = config.load(path or board.flash_root + "/config.json")
    except ConfigError as e:
        loaded = config.unprovisioned(board.uid, str(e))
    cfg = Settings(loaded)
    config = loaded = None
    unload("config")
    gc.collect()
    return cfg
