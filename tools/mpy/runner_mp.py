# MicroPython-side test runner: run every test* function of one module, one line each.
#   micropython -X heapsize=64K -m _mptest_runner shared_protocol.tests.test_cbor
# Output lines: "@@MPTEST <name> <ok 0/1> <ms> <mem_free>" then, on failure, the
# traceback lines each prefixed "@@TRACE ". No json import: it would cost heap.
import gc
import io
import sys
import time


def main():
    name = sys.argv[1]
    mod = __import__(name)
    for part in name.split(".")[1:]:
        mod = getattr(mod, part)
    for n in dir(mod):
        if not n.startswith("test"):
            continue
        fn = getattr(mod, n)
        if not callable(fn):
            continue
        gc.collect()
        t0 = time.ticks_ms()
        trace = None
        try:
            fn()
        except Exception as e:
            buf = io.StringIO()
            sys.print_exception(e, buf)
            trace = buf.getvalue()
        ms = time.ticks_diff(time.ticks_ms(), t0)
        gc.collect()
        print("@@MPTEST %s %d %d %d" % (n, trace is None, ms, gc.mem_free()))
        if trace:
            for line in trace.split("\n"):
                print("@@TRACE " + line)


main()
