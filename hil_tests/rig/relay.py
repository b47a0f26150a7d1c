"""The bench power relay: cut the board's power and restore it.

    relay = CommandRelay("usbrelay BENCH_1={state}")     # --relay-cmd: {state} is "off" or "on"
    relay = CommandRelay("./bench/relay.sh")             # no {state}: "off"/"on" is appended as an argument
    relay = VirtualRelay(board)                          # a virtual board: the node process killed and restarted
    relay.cycle(off_s=2.0)

Both raise RelayError when the switch fails (the command's exit status and output in the message).
A virtual board's cut is a SIGKILL of the MicroPython process at whatever instruction it is on (RAM and
RTC memory gone, the flash image as the cut left it); restore starts it with reset cause power_on.
"""

import shlex
import subprocess
import time


class RelayError(RuntimeError):
    """The relay did not switch."""


class CommandRelay:
    def __init__(self, command, timeout_s=20.0):
        self.command = command
        self.timeout_s = timeout_s

    def _argv(self, state):
        if "{state}" in self.command:
            return shlex.split(self.command.replace("{state}", state))
        return shlex.split(self.command) + [state]

    def _switch(self, state):
        argv = self._argv(state)
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RelayError("relay command %r failed: %s" % (" ".join(argv), e)) from None
        if r.returncode != 0:
            raise RelayError("relay command %r exited %d: %s" % (" ".join(argv), r.returncode,
                                                                  (r.stdout + r.stderr).strip()[-500:]))  # fmt: skip

    def cut(self):
        self._switch("off")

    def restore(self):
        self._switch("on")

    def cycle(self, off_s=2.0):
        self.cut()
        time.sleep(off_s)
        self.restore()


class VirtualRelay:
    def __init__(self, board):
        self.board = board

    def cut(self):
        self.board.power_off()

    def restore(self):
        self.board.power_on()

    def cycle(self, off_s=0.2):
        self.cut()
        time.sleep(off_s)
        self.restore()
