"""The flash power-cut campaign inside MicroPython: the node's FlashLog on the virtual flash, cut at random writes.

    fig = flash_campaign(trials=300, seed=1)
    # {"trials": 300, "lost": 0, "checked": ..., "dropped": ..., "corrupt": 0, "torn": ..., "writes": ...}

firmware/sim/powercut.py (Campaign) does the work: one littlefs image ages through every trial; each
trial mounts it, checks the log against everything the harness knows (every append that returned is
there unless acked or dropped by the ring, in order, payloads intact, the frame counter above every
value handed out), works until the chosen write, and is cut there. A broken promise (a wrong payload,
a repeat, a counter going back, an ack undone) raises CampaignFailed with the campaign's own message.
"""

import os
import subprocess
import tempfile

from tools.mpy import compile_tree
from tools.paths import micropython_exe

_CODE = """\
from sim.powercut import Campaign, CampaignError
from fieldnode.boards.virtual.flash import umount
import os
c = Campaign(%(img)r, %(seed)d)
try:
    c.run(%(trials)d)
    print('@@PC ' + c.report())
except CampaignError as e:
    print('@@PCERR %%s after %%s' %% (e, c.report()))
finally:
    umount(c.mount_point)
"""


class CampaignFailed(AssertionError):
    """The flash log broke a promise no power cut excuses (the campaign's message)."""


def flash_campaign(trials, seed=1, timeout_s=900):
    build = compile_tree()
    with tempfile.TemporaryDirectory(prefix="hil-pc-") as d:
        img = os.path.join(d, "flash.img")
        r = subprocess.run([micropython_exe(), "-X", "heapsize=512K", "-c", _CODE % {"img": img, "seed": seed,
                            "trials": trials}], capture_output=True, text=True, timeout=timeout_s,
                           env=dict(os.environ, MICROPYPATH=build), cwd=build)  # fmt: skip
    for line in r.stdout.splitlines():
        if line.startswith("@@PC "):
            return {k: int(v) for k, v in (kv.split("=") for kv in line[5:].split())}
        if line.startswith("@@PCERR "):
            raise CampaignFailed(line[8:])
    raise RuntimeError("the power-cut campaign did not report (exit %s):\n%s%s" % (
        r.returncode, r.stdout[-2000:], r.stderr[-2000:]))  # fmt: skip
