# The virtual node's entry point on the MicroPython unix port (deployed as vnode.mpy).
#   micropython -X heapsize=128K -m vnode --uart /dev/pts/5 --state /tmp/n1 --until 1780358400 [...]
# Options: --seed N --speed X --sleep advance|exit --reset-cause CAUSE --start EPOCH --until EPOCH
#          --fault NAME=VALUE (repeat) --config FILE --lat --lon --alt --stats
# Exit codes: 0 reached --until, 75 deep sleep (restart with --reset-cause deepsleep),
# 76 power cut (restart with --reset-cause power_on), 2 bad arguments.
import gc
import sys

gc.collect()
_BASE = gc.mem_alloc()

from fieldnode.app import Node  # noqa: E402
from fieldnode.boards.virtual.board import EXIT_DEEPSLEEP, EXIT_POWERCUT, VirtualBoard  # noqa: E402
from fieldnode.boards.virtual.flash import PowerCut  # noqa: E402


def _args(argv):
    opts = {"faults": {}}
    i = 0
    while i < len(argv):
        k = argv[i]
        if not k.startswith("--") or i + 1 >= len(argv) and k != "--stats":
            raise ValueError("bad argument %r" % k)
        if k == "--stats":
            opts["stats"] = True
            i += 1
            continue
        v = argv[i + 1]
        if k == "--fault":
            if "=" not in v:
                raise ValueError("--fault %r: expected NAME=VALUE" % v)
            name, val = v.split("=", 1)
            try:
                val = float(val)
            except ValueError:
                pass
            opts["faults"][name] = val
        else:
            opts[k[2:].replace("-", "_")] = v
        i += 2
    return opts


def _copy(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    import os

    os.rename(dst + ".tmp", dst)


def main():
    try:
        o = _args(sys.argv[1:])
    except ValueError as e:
        print("vnode: %s" % e)
        sys.exit(2)
    gc.collect()
    code = gc.mem_alloc() - _BASE
    board = VirtualBoard(
        o.get("uart"),
        state_dir=o.get("state", "/tmp/fieldline-node"),
        seed=int(o.get("seed", 1)),
        faults=o["faults"],
        reset_cause=o.get("reset_cause", "power_on"),
        start_epoch=int(o.get("start", 1780272000)),
        speed=float(o.get("speed", 0)),
        sleep_mode=o.get("sleep", "advance"),
        lat=float(o.get("lat", 52.0)),
        lon=float(o.get("lon", 5.0)),
        alt_m=float(o.get("alt", 10.0)),
    )
    if "config" in o:
        _copy(o["config"], board.flash_root + "/config.json")
    until_ms = int(o.get("until", 0)) * 1000
    gc.collect()
    sim = gc.mem_alloc() - _BASE - code
    peak = live = 0
    wakes = 0
    node = Node(board)
    try:
        while not until_ms or board.true_time_ms() < until_ms:
            gc.collect()
            ms, deep = node.wake()
            a = gc.mem_alloc()
            if a > peak:
                peak = a
            wakes += 1
            if deep or board.sleep_mode == "exit":
                board.deepsleep(ms)  # exit mode: the process ends here
                node = None
                gc.collect()
                node = Node(board)  # a reset: rebuilt from flash and RTC memory
            else:
                board.lightsleep(ms)
            gc.collect()
            if gc.mem_alloc() > live:
                live = gc.mem_alloc()
    except PowerCut:
        board.save_world()
        print("vnode: power cut at flash write %d" % board.flash_dev.writes)
        sys.exit(EXIT_POWERCUT)
    board.save_world()
    if "stats" in o:
        print("@@STATS code=%d sim=%d peak=%d live=%d wakes=%d heap_free=%d tx=%d" % (
            code, sim, peak - _BASE, live - _BASE, wakes, gc.mem_free(), node.link.tx_frames))


main()
_ = EXIT_DEEPSLEEP
