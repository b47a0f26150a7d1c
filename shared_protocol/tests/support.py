"""Helpers for tests that run on both MicroPython and CPython (no pytest there).

raises(DecodeError, cbor.loads, b"\\x1f")
for vec in vectors("frames.jsonl"): ...
"""

import gc
import json
import os


def raises(exc_type, fn, *args, **kw):
    """Call fn and return the exception it raised; fail unless it is an ``exc_type``."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    except Exception as e:
        raise AssertionError("expected %s, got %s: %s" % (exc_type.__name__, type(e).__name__, e))
    raise AssertionError("expected %s, nothing was raised" % exc_type.__name__)


def vectors_dir():
    root = os.getenv("FIELDLINE_ROOT")
    if root:
        return root + "/shared_protocol/vectors"
    here = __file__.rsplit("/", 2)[0]
    return here + "/vectors"


def vectors(name):
    """Yield each JSON line of a golden-vector file (one at a time: bounded memory)."""
    with open(vectors_dir() + "/" + name) as f:
        while True:
            gc.collect()  # small heaps fragment: read each vector into a clean heap
            line = f.readline()
            if not line:
                return
            if line[0] in "{[":
                v = json.loads(line)
                line = None
                gc.collect()
                yield v


def unhex(obj):
    """Turn {"$bytes": "hex"} markers (JSON has no bytes) back into bytes, recursively."""
    if isinstance(obj, dict):
        if len(obj) == 1 and "$bytes" in obj:
            return bytes.fromhex(obj["$bytes"])
        out = {}
        for k in obj:
            out[k] = unhex(obj[k])
        return out
    if isinstance(obj, list):
        return [unhex(x) for x in obj]
    return obj


def close(a, b, rel=1e-6):
    """Deep equality with a relative tolerance on floats (32-bit boards use single floats).

    ``b`` may hold {"$bytes": hex} markers (compared without copying: small heaps).
    """
    if isinstance(b, dict) and len(b) == 1 and "$bytes" in b:
        return isinstance(a, bytes) and a.hex() == b["$bytes"]
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return abs(a - b) <= rel * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted([str(k) for k in a]) != sorted([str(k) for k in b]):
            return False
        for k in a:
            if not close(a[k], b[k], rel):
                return False
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b))
    return a == b
