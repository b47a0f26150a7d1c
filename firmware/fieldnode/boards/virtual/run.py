"""The virtual node's run loop on the MicroPython unix port (started by ``vnode``).

    main(base, fw, sim)   # heap marks vnode took: before/after the firmware, after this module

Harness code, not firmware: ``vnode`` imports it after measuring the firmware, so its code
and names count as simulation (``sim_code``), as a real board has none of it. The firmware
goes first, so the interned-name tables it needs are counted as firmware.
"""
import gc
import sys

from fieldnode.app import Node
from fieldnode.boards.virtual.board import EXIT_POWERCUT, VirtualBoard
from fieldnode.boards.virtual.flash import PowerCut


def _args(argv):
    opts = {"faults": {}}
    i = 0
    while i < len(argv):
        k = argv[i]
        if k == "--stats":
            opts["stats"] = True
            i += 1
            continue
        if not k.startswith("--") or i + 1 >= len(argv):
            raise ValueError("bad argument %r (expected --name value)" % k)
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
    import os

    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.rename(dst + ".tmp", dst)


def main(base, fw, sim):
    """Parse the command line, build the board and cycle the node until --until."""
    try:
        o = _args(sys.argv[1:])
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
            flash_img=o.get("flash"),
            wall0=float(o["wall0"]) if "wall0" in o else None,
        )
    except ValueError as e:
        print("vnode: %s" % e)
        sys.exit(2)
    if "config" in o:
        _copy(o["config"], board.flash_root + "/config.json")
    until_ms = int(o.get("until", 0)) * 1000
    gc.collect()
    sim_data = gc.mem_alloc() - sim - board.mount_bytes
    board.measure_heap = "stats" in o
    wakes = 0
    node = None
    try:
        node = Node(board)
        if "stats" in o:
            gc.collect()
            print("@@NODE %d" % (gc.mem_alloc() - sim - sim_data))
        while not until_ms or board.true_time_ms() < until_ms:
            ms, deep = node.wake()
            wakes += 1
            if deep or board.sleep_mode == "exit":
                board.deepsleep(ms)  # exit mode: the process ends here
                node = None
                gc.collect()
                node = Node(board)  # a reset: rebuilt from flash and RTC memory (and the config)
            else:
                board.lightsleep(ms)
    except MemoryError:
        import micropython

        micropython.mem_info()  # where the heap stood: for the bench's min-heap search and for humans
        raise
    except PowerCut:
        board.save_world()
        print("vnode: power cut at flash write %d" % board.flash_dev.writes)
        sys.exit(EXIT_POWERCUT)
    board.save_world()
    if "stats" in o:
        print("@@STATS fw_code=%d sim_code=%d sim_data=%d live_peak=%d wakes=%d tx=%d" % (
            fw - base, sim - fw, sim_data, board.heap_peak - sim - sim_data, wakes, node.link.tx_frames))
