# The virtual node's entry point on the MicroPython unix port (deployed as vnode.mpy).
#   micropython -X heapsize=256K -m vnode --uart /dev/pts/5 --state /tmp/n1 --until 1780358400 [...]
# Options: --seed N --speed X --sleep advance|exit --reset-cause CAUSE --start EPOCH --until EPOCH
#          --fault NAME=VALUE (repeat) --config FILE --flash IMG --lat --lon --alt --stats
#          --wall0 EPOCH (with --speed: world time = start + speed x (wall clock - wall0), so the
#          nodes of a virtual field share one timeline)
# Exit codes: 0 reached --until, 75 deep sleep (restart with --reset-cause deepsleep),
# 76 power cut (restart with --reset-cause power_on), 2 bad arguments.
# --stats prints "@@STATS" heap figures: fw_code (firmware modules), sim_code (board layer
# and simulation modules), sim_data (board objects), live_peak (live heap at the app's
# busiest moments, see Board.heap_mark), all in bytes of the GC heap.
import gc

gc.collect()
_BASE = gc.mem_alloc()
from fieldnode.app import Node  # noqa: E402, F401  (the firmware, measured on its own)

gc.collect()
_FW = gc.mem_alloc()
# the harness: board layer, simulation and run loop (fieldnode.boards.virtual.run)
from fieldnode.boards.virtual.run import main  # noqa: E402

gc.collect()
main(_BASE, _FW, gc.mem_alloc())
