"""Tiny shim so the same source runs on MicroPython and CPython.

from shared_protocol.compat import const
_LIMIT = const(16)
"""

try:
    from micropython import const  # noqa: F401  (MicroPython: folded at compile time)
except ImportError:  # CPython

    def const(value):
        return value
