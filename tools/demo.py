"""`fieldline demo`: a MicroPython node and CPython exchanging real frames over a pseudo-terminal.

    fieldline demo --reports 4

The node is the MicroPython unix port running project code compiled with mpy-cross; the
CPython side authenticates each frame, acks it and answers time sync (tools.virtual_field.peer).
"""

import os
import subprocess
import time

import typer

from tools.mpy import compile_tree
from tools.paths import ROOT, micropython_exe
from tools.virtual_field.peer import NodePeer, PtyLink

DEMO_DEVICE = 0x0F1E0001
DEMO_KEY = bytes.fromhex("5f1e1d2c3b4a59687786950a1b2c3d4e5f60718293a4b5c6d7e8f90112233445")


def demo(
    reports: int = typer.Option(4, min=1, max=32, help="interval summaries the node sends"),
    timeout: float = typer.Option(30.0, help="give up after this many seconds"),
):
    """Run a MicroPython node against CPython over a pty and show every frame."""
    build = compile_tree()
    script = os.path.join(ROOT, "tools", "virtual_field", "demo_node_mp.py")
    link = PtyLink()
    peer = NodePeer(link, {DEMO_DEVICE: DEMO_KEY})
    env = dict(os.environ, MICROPYPATH=build)
    cmd = [micropython_exe(), "-X", "heapsize=128K", script, link.slave_path, str(DEMO_DEVICE), DEMO_KEY.hex(),
           str(reports)]
    typer.echo("demo: MicroPython node %08x on %s" % (DEMO_DEVICE, link.slave_path))
    node = subprocess.Popen(cmd, env=env)
    t0 = time.monotonic()
    try:
        while node.poll() is None and time.monotonic() - t0 < timeout:
            for m in peer.pump(0.1):
                typer.echo("gateway: %-9s counter %-3d auth %s %s" % (m["type"], m["counter"], m["auth"], _brief(m)))
        peer.pump(0.2)
    finally:
        if node.poll() is None:
            node.kill()
        node.wait()
        link.close()
    got = len(peer.of_type("report"))
    typer.echo("demo: %d/%d reports received and acked, %d bad frames" % (got, reports, sum(peer.errors.values())))
    if got < reports or node.returncode != 0:
        raise typer.Exit(1)


def _brief(m):
    if m["type"] == "report":
        s = m["stats"]
        return "start %d air %.1f degC ndvi %.3f" % (m["start"], s["air_temperature"]["mean"][0], s["ndvi"]["mean"][0])
    if m["type"] == "hello":
        return "fw %s hw %s" % (m["fw_version"], m["hw"])
    return ""
