"""Replay guard: a sliding window of recently seen frame counters per device.

    guard = ReplayGuard()
    guard.check(device_id, counter)   # raises ReplayError if seen or too old

Counters are monotonic across resets on the node. A counter inside the window that was
not seen yet is accepted (frames may arrive out of order); below the window, or seen,
raises ReplayError. ``state()``/``restore()`` persist the highest counter per device;
after a restore every counter up to it counts as seen (which ones were is not kept).
"""

from shared_protocol.errors import ReplayError, const, constants

_WINDOW = const(64)
__getattr__ = constants(globals())  # CPython: replay.WINDOW


class ReplayGuard:
    def __init__(self, window=_WINDOW):
        self.window = window
        self._seen = {}  # device -> (highest counter accepted, bitmask: bit i = counter (top - i) seen)

    def seen(self, device_id, counter):
        """True if ``counter`` would be rejected (seen, or older than the window)."""
        s = self._seen.get(device_id)
        if s is None or counter > s[0]:
            return False
        age = s[0] - counter
        return age >= self.window or bool(s[1] >> age & 1)

    def check(self, device_id, counter):
        s = self._seen.get(device_id)
        if s is None or counter > s[0]:
            mask = 0 if s is None or counter - s[0] >= self.window else s[1] << (counter - s[0])
            self._seen[device_id] = (counter, (mask | 1) & ((1 << self.window) - 1))
        elif self.seen(device_id, counter):
            why = "was already seen"
            if s[0] - counter >= self.window:
                why = "is older than the replay window (latest %d)" % s[0]
            raise ReplayError("counter %d from device %d %s" % (counter, device_id, why))
        else:
            self._seen[device_id] = (s[0], s[1] | 1 << (s[0] - counter))

    def state(self):
        out = {}
        for dev in self._seen:
            out[dev] = self._seen[dev][0]
        return out

    def restore(self, tops):
        for dev in tops:
            self._seen[dev] = (tops[dev], (1 << self.window) - 1)
