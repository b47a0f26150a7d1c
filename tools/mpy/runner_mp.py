# MicroPython-side test runner: run every test* function of one module, one JSON line each.
#   micropython -X heapsize=64K runner_mp.py shared_protocol.tests.test_cbor
import gc
import io
import json
import sys
import time


def _load(name):
    mod = __import__(name)
    for part in name.split(".")[1:]:
        mod = getattr(mod, part)
    return mod


def main():
    name = sys.argv[1]
    mod = _load(name)
    names = [n for n in dir(mod) if n.startswith("test")]
    for n in names:
        fn = getattr(mod, n)
        if not callable(fn):
            continue
        gc.collect()
        t0 = time.ticks_ms()
        rec = {"name": n, "ok": True}
        try:
            fn()
        except Exception as e:
            buf = io.StringIO()
            sys.print_exception(e, buf)
            rec["ok"] = False
            rec["trace"] = buf.getvalue()
        rec["ms"] = time.ticks_diff(time.ticks_ms(), t0)
        gc.collect()
        rec["mem_free"] = gc.mem_free()
        print("@@MPTEST " + json.dumps(rec))


main()
