"""A virtual board with a USB console: the MicroPython unix port behind a pty that mpremote drives unmodified.

    with ReplBoard(workdir, seed=3) as board:         # board.console_path: the board's "USB serial port"
        subprocess.run(["mpremote", "connect", board.console_path, "fs", "ls"])
    node = board.node(uart_path)                      # then the deployed firmware runs as a VirtualNode

The filesystem is the virtual node's own: ``<workdir>/fs`` is the board's root ``/`` (a VfsPosix
mounted there: deployed code, ``/manifest.json``, and ``/board.json``, the board's identity plate
with its unique id), and ``<workdir>/flash.img`` is the littlefs image mounted at ``/flash``
(``config.json``, the flash log), the same image, block size and count the virtual node mounts.
The node later runs with MICROPYPATH and cwd = ``fs`` and ``--flash flash.img``: exactly what was
deployed. One process owns the image at a time: stop the board before the node runs.

The console speaks the real REPL protocol because it *is* the unix port's REPL (friendly, raw
with Ctrl-A, raw-paste), relayed byte for byte, with three things a unix process does not do
like a board, done here instead:
- soft reset (Ctrl-D at an empty prompt) ends the unix port: the process is restarted, set up
  again, ``MPY: soft reboot`` is printed and the REPL mode the host was in is restored;
- Ctrl-C while code runs: the unix port ignores the byte then, so the process gets SIGINT;
- boot: the board boots into the REPL; ``boot.py``/``main.py`` on it never run here (running the
  node is VirtualNode's job).
Console traffic is never logged (it carries the device key during provisioning).
"""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import threading
import time
import tty

from tools.paths import micropython_exe

BLOCK_SIZE = 4096
FLASH_BLOCKS = 64  # the virtual node's default (VirtualBoard flash_blocks)
READY = b"@@BOARD-READY"
_READ_NR = {"x86_64": "0", "aarch64": "63", "riscv64": "63", "armv7l": "3", "i686": "3"}.get(os.uname().machine)

# Runs in every fresh unix-port process (with -i: the REPL follows). The image is opened through
# the host path before "/" becomes the board's directory; the block device mirrors FileBlockDev.
_SETUP = """\
import sys, vfs, os
class _Dev:
    def __init__(s, f, n):
        s.f, s.n = f, n
    def readblocks(s, b, buf, off=0):
        s.f.seek(b * %(bs)d + off)
        s.f.readinto(buf)
    def writeblocks(s, b, buf, off=0):
        s.f.seek(b * %(bs)d + off)
        s.f.write(buf)
    def ioctl(s, op, arg):
        if op == 4:
            return s.n
        if op == 5:
            return %(bs)d
        if op == 6:
            s.f.seek(arg * %(bs)d)
            s.f.write(b'\\xff' * %(bs)d)
        if op == 3:
            s.f.flush()
        return 0 if op in (1, 2, 3, 6) else None
class _Root:
    # VfsPosix(root) renames wrongly (both paths share one buffer): rename through an unrooted VfsPosix
    def __init__(s, root):
        s.root, s.v, s.h = root, vfs.VfsPosix(root), vfs.VfsPosix()
    def mount(s, ro, mkfs):
        pass
    def umount(s):
        pass
    def __getattr__(s, n):
        return getattr(s.v, n)
    def _host(s, p):
        return s.root + (p if p[:1] == '/' else os.getcwd().rstrip('/') + '/' + p)
    def rename(s, a, b):
        s.h.rename(s._host(a), s._host(b))
_d = _Dev(open(%(img)r, 'r+b'), %(blocks)d)
vfs.umount('/')
vfs.mount(_Root(%(root)r), '/')
os.chdir('/')
try:
    _fs = vfs.VfsLfs2(_d, mtime=False)
except OSError:
    vfs.VfsLfs2.mkfs(_d)
    _fs = vfs.VfsLfs2(_d, mtime=False)
vfs.mount(_fs, '/flash')
sys.path[:] = ['', '.frozen', '/lib']
print('%(ready)s')
del _Dev, _Root, _d, _fs, sys
"""


class BoardError(RuntimeError):
    """The virtual board could not start (or restart) its MicroPython process."""


def _own_session():
    """In the child: a session of its own (Ctrl-C is ours to deliver), and death with its parent."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: no orphan boards if the harness dies
    except (OSError, AttributeError):
        pass


def virtual_uid(seed):
    """The unique id VirtualBoard gives a node of this seed (fieldnode/boards/virtual/board.py)."""
    return bytes([0xF1, 0xE1, seed & 0xFF, (seed >> 8) & 0xFF, 0x5E, 0xED])


class ReplBoard:
    """The board: ``start()`` powers it on and presents ``console_path``; ``stop()`` powers it off."""

    def __init__(self, workdir, seed=1, heap="2M", flash_blocks=FLASH_BLOCKS):
        self.workdir = os.path.abspath(workdir)
        self.fs_dir = os.path.join(self.workdir, "fs")
        self.flash_img = os.path.join(self.workdir, "flash.img")
        self.state_dir = os.path.join(self.workdir, "state")
        self.seed = seed
        self.uid = virtual_uid(seed)
        self.heap = heap
        self.flash_blocks = flash_blocks
        self.console_path = None
        self.resets = 0  # soft resets and power cycles: how many times the process was restarted
        self.interrupts = 0  # Ctrl-C turned into SIGINT
        self._proc = None
        self._pfd = None  # master of the process's pty
        self._cfd = None  # master of the console pty
        self._cslave = None  # our own hold on the console's slave: no hang-up between connections
        self._mode = "friendly"
        self._running_code = False
        self._tail = b""
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.RLock()
        self._generation = 0  # bumped whenever an fd the relay selects on is closed

    # ---- power ----
    def start(self):
        """Power on: prepare the filesystem, start MicroPython, present the console. Returns self."""
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        os.makedirs(self.fs_dir, exist_ok=True)  # /flash is a mount point: listed in "/" without a directory
        os.makedirs(self.state_dir, exist_ok=True)
        self._write_plate()
        self._ensure_image()
        self._open_console()
        self._mode = "friendly"
        self._spawn()
        self._stop.clear()
        self._thread = threading.Thread(target=self._relay, name="repl-board", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Power off: end the process and the console (the files stay for the node or the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            self._kill()
            self._close_console()

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def unplug(self):
        """Pull the USB cable mid-whatever: power lost, the host's open port hangs up (EIO)."""
        with self._lock:
            self._kill()
            self._close_console()

    def plug(self):
        """Plug it back in: powered on into the REPL, on a new console path (like a re-enumerated port)."""
        with self._lock:
            self._open_console()
            self._mode = "friendly"
            self._spawn()
        return self.console_path

    def __enter__(self):
        return self.start() if not self.running else self

    def __exit__(self, *exc):
        self.stop()

    def node(self, uart_path, **kw):
        """A VirtualNode running what is deployed on this board, on this board's flash and uid."""
        from tools.virtual_field.node import VirtualNode

        if self.running:
            raise BoardError("stop the board's REPL before running the node: one process owns %s" % self.flash_img)
        kw.setdefault("seed", self.seed)
        return VirtualNode(uart_path, self.state_dir, flash=self.flash_img, code_dir=self.fs_dir, **kw)

    # ---- preparation ----
    def _write_plate(self):
        plate = {"hw": "virtual", "uid": self.uid.hex(), "seed": self.seed}
        path = os.path.join(self.fs_dir, "board.json")
        try:
            with open(path) as f:
                if json.load(f) == plate:
                    return
        except (OSError, ValueError):
            pass
        with open(path, "w") as f:
            json.dump(plate, f)

    def _ensure_image(self):
        """An erased image of the right size, readable by its owner only (it will hold the key)."""
        size = BLOCK_SIZE * self.flash_blocks
        fd = os.open(self.flash_img, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            have = os.fstat(fd).st_size
            if have < size:
                os.lseek(fd, have, os.SEEK_SET)
                os.write(fd, b"\xff" * (size - have))
        finally:
            os.close(fd)

    def _open_console(self):
        self._cfd, self._cslave = pty.openpty()
        tty.setraw(self._cslave)
        os.set_blocking(self._cfd, False)
        self.console_path = os.ttyname(self._cslave)

    def _close_console(self):
        self._generation += 1
        for fd in (self._cfd, self._cslave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._cfd = self._cslave = None

    # ---- the MicroPython process ----
    def _spawn(self):
        setup = _SETUP % {"bs": BLOCK_SIZE, "img": self.flash_img, "blocks": self.flash_blocks, "root": self.fs_dir,
                          "ready": READY.decode()}  # fmt: skip
        master, slave = pty.openpty()
        tty.setraw(slave)  # bytes pass as the unix port writes them (no \n -> \r\n)
        env = dict(os.environ, MICROPYPATH="")
        try:
            self._proc = subprocess.Popen([micropython_exe(), "-X", "heapsize=" + self.heap, "-i", "-c", setup],
                                          stdin=slave, stdout=slave, stderr=slave, cwd=self.fs_dir, env=env,
                                          preexec_fn=_own_session, close_fds=True)  # fmt: skip
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self._pfd = master
        out = self._read_until(b">>> ", 10.0)
        if READY not in out:
            self._kill()
            raise BoardError("the board's MicroPython did not come up:\n" + out.decode(errors="replace")[-1500:])
        self._running_code = False
        self._tail = b""
        if self._mode == "raw":
            self._to_board(b"\x01")  # its answer ("raw REPL; CTRL-B to exit") goes to the host
        return out.split(READY, 1)[1].lstrip(b"\r\n")

    def _read_until(self, ending, timeout_s):
        out = b""
        end = time.monotonic() + timeout_s
        while not out.endswith(ending) and time.monotonic() < end:
            r, _, _ = select.select([self._pfd], [], [], 0.05)
            if r:
                try:
                    data = os.read(self._pfd, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                out += data
        return out

    def _kill(self):
        self._generation += 1
        p, self._proc = self._proc, None
        if p is not None and p.poll() is None:
            p.kill()
        if p is not None:
            p.wait()
        if self._pfd is not None:
            try:
                os.close(self._pfd)
            except OSError:
                pass
            self._pfd = None

    def _restart(self):
        """The process ended (soft reset, sys.exit, crash): reboot, as a board does."""
        self._kill()
        self.resets += 1
        self._to_host(b"MPY: soft reboot\r\n")
        banner = self._spawn()
        if self._mode == "friendly":
            self._to_host(banner)

    # ---- the relay ----
    def _relay(self):
        while not self._stop.is_set():
            with self._lock:
                fds = [fd for fd in (self._cfd, self._pfd) if fd is not None]
            if not fds:
                time.sleep(0.02)
                continue
            gen = self._generation
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
            except (OSError, ValueError):  # an fd closed under us by unplug()
                continue
            with self._lock:
                if gen != self._generation:
                    continue  # the fds were closed and maybe reused meanwhile: select again
                try:
                    self._pump(ready)
                except BoardError:
                    self._kill()  # a board that cannot boot stays dark; the host times out
                except OSError:
                    continue

    def _pump(self, ready):
        if self._cfd is not None and self._cfd in ready:
            try:
                data = os.read(self._cfd, 4096)
            except BlockingIOError:
                data = None
            if data:
                self._from_host(data)
        if self._pfd is not None and self._pfd in ready:
            try:
                data = os.read(self._pfd, 4096)
            except BlockingIOError:
                data = None
            except OSError:  # EIO: the process is gone
                data = b""
            if data is None:
                pass
            elif data:
                self._from_board(data)
            else:
                self._restart()
        elif self._proc is not None and self._proc.poll() is not None:
            self._restart()

    def _from_host(self, data):
        out = bytearray()
        for b in data:
            if b == 0x03:
                if out and self._pfd is not None:
                    self._to_board(bytes(out))  # what came before, first
                    out.clear()
                if self._code_running():
                    self.interrupts += 1
                    os.kill(self._proc.pid, signal.SIGINT)
                    continue
            if b in (0x01, 0x02):
                self._mode = "raw" if b == 0x01 else "friendly"
                self._running_code = False
            elif b == 0x04 and self._mode == "raw":
                self._running_code = True  # code to run, or a soft reset (the process then ends)
            out.append(b)
        if out and self._pfd is not None:
            self._to_board(bytes(out))

    def _to_board(self, data, timeout_s=5.0):
        """Write all of ``data`` to the process's console (it reads as fast as the REPL goes)."""
        end = time.monotonic() + timeout_s
        view = memoryview(data)
        while view and time.monotonic() < end:
            try:
                view = view[os.write(self._pfd, view) :]
            except BlockingIOError:
                select.select([], [self._pfd], [], 0.05)

    def _code_running(self, settle_s=0.03):
        """Is the process running code (not waiting at a prompt)? A SIGINT at the prompt would end it.

        Between printing a prompt and reading the next key the REPL runs too: only a process that
        does not get back to reading its console within ``settle_s`` is running code.
        """
        end = time.monotonic() + settle_s
        while True:
            running = self._running_now()
            if not running or time.monotonic() >= end:
                return running
            time.sleep(0.002)

    def _running_now(self):
        if self._proc is None:
            return False
        try:
            with open("/proc/%d/syscall" % self._proc.pid) as f:
                call = f.read().split()
        except OSError:
            return self._running_code  # no /proc: what the protocol says
        if not call or _READ_NR is None:
            return self._running_code
        # blocked in read(0, buf, 1): the REPL waits for the next character
        return not (call[0] == _READ_NR and call[1:2] == ["0x0"] and call[3:4] == ["0x1"])

    def _from_board(self, data):
        seen = self._tail + data
        if self._mode == "raw" and b"\x04>" in seen:
            self._running_code = False
        elif self._mode == "friendly" and seen.endswith((b">>> ", b"... ")):
            self._running_code = False
        self._tail = seen[-4:]
        self._to_host(data)

    def _to_host(self, data):
        if self._cfd is None:
            return
        try:
            os.write(self._cfd, data)
        except (BlockingIOError, OSError):
            pass  # nobody reads the console: output is lost, as on a board with no host


def main(argv=None):
    """python -m tools.virtual_field.repl_board WORKDIR [--seed N]: run a board until Ctrl-C."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workdir")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    board = ReplBoard(a.workdir, seed=a.seed).start()
    print("virtual board console: %s (fs %s, flash %s)" % (board.console_path, board.fs_dir, board.flash_img))
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()


if __name__ == "__main__":
    main()
