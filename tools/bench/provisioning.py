"""`fieldline bench provisioning`: how long an installer waits for a verified node, fresh and re-run.

    fig = run()          # dict of figures; `fieldline bench provisioning --json` prints it

- provision_s: start to verified provisioning of a fresh virtual node (new REPL board, empty flash,
  new registry): deploy, config, register, verify; best of ``repeats``. The firmware build is
  warm (.build/mpy, as on an installer's laptop after the first node): ``cold_compile_s`` is the
  one-off mpy-cross of the whole tree, measured apart.
- reprovision_s: the same board provisioned again, nothing to copy ("0 files copied"); best of.
- mpremote_cp_s / mpremote_recp_s: what one would otherwise do, the same files pushed with one
  ``mpremote fs cp -r`` (no config, no registry, no read-back of the manifest), fresh and again;
  ``vs_mpremote_cp`` = mpremote_cp_s / provision_s.

Each figure comes from a function in MEASURES taking (workdir, repeats) and returning a dict:
add a figure by adding a function.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

from provisioning import deploy
from provisioning.provision import Request, provision_virtual
from tools.mpy import compile_tree
from tools.virtual_field.repl_board import ReplBoard


def provision_figures(work, repeats):
    fresh, again, files, nbytes = [], [], 0, 0
    for i in range(repeats):
        req = Request(registry_path=os.path.join(work, "reg%d" % i, "devices.toml"), lat=52.1, lon=5.2,
                      customer="bench", field="f%d" % i)  # fmt: skip
        t0 = time.perf_counter()
        s, _ = provision_virtual(os.path.join(work, "node%d" % i), req, seed=100 + i)
        fresh.append(time.perf_counter() - t0)
        if not s.verified or s.files_copied != s.files_total:
            raise RuntimeError("fresh provisioning did not copy everything: %s" % s.as_dict())
        files, nbytes = s.files_total, s.bytes_copied
        t0 = time.perf_counter()
        s, _ = provision_virtual(os.path.join(work, "node%d" % i), req)
        again.append(time.perf_counter() - t0)
        if s.files_copied or not s.verified:
            raise RuntimeError("the re-run changed something: %s" % s.as_dict())
    return {"provision_s": round(min(fresh), 3), "reprovision_s": round(min(again), 3), "files": files,
            "bytes": nbytes}  # fmt: skip


def cold_compile_figures(work, repeats):
    t0 = time.perf_counter()
    compile_tree(out_dir=os.path.join(work, "cold-build"))
    return {"cold_compile_s": round(time.perf_counter() - t0, 3)}


def mpremote_figures(work, repeats):
    """The same files with one `mpremote fs cp -r` into a fresh board, then again (it skips by hash)."""
    stage = os.path.join(work, "stage")
    for e in deploy.plan_files("virtual", compile_tree()):
        dst = os.path.join(stage, e.path.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(e.local, dst)
    exe = os.path.join(os.path.dirname(sys.executable), "mpremote")
    fresh, again = [], []
    for i in range(repeats):
        board = ReplBoard(os.path.join(work, "mpr%d" % i), seed=200 + i).start()
        try:
            for times in (fresh, again):
                t0 = time.perf_counter()
                subprocess.run([exe, "connect", board.console_path, "fs", "cp", "-r", stage + "/.", ":"], check=True,
                               capture_output=True, timeout=300)  # fmt: skip
                times.append(time.perf_counter() - t0)
        finally:
            board.stop()
    return {"mpremote_cp_s": round(min(fresh), 3), "mpremote_recp_s": round(min(again), 3)}


MEASURES = (provision_figures, cold_compile_figures, mpremote_figures)


def run(repeats=3, mpremote=True):
    work = tempfile.mkdtemp(prefix="fl-provbench-")
    try:
        fig = {}
        for measure in MEASURES:
            if measure is mpremote_figures and not mpremote:
                continue
            fig.update(measure(work, repeats))
        if "mpremote_cp_s" in fig:
            fig["vs_mpremote_cp"] = round(fig["mpremote_cp_s"] / fig["provision_s"], 2)
        return fig
    finally:
        shutil.rmtree(work, ignore_errors=True)
