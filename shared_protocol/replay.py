"""Replay guard: a sliding window of recently seen frame counters per device.

    guard = ReplayGuard()
    guard.check(device_id, counter)   # raises ReplayError if seen or too old

Counters are monotonic across resets on the node. A counter inside the window that was
not seen yet is accepted (frames may arrive out of order); below the window, or seen,
raises ReplayError. ``state()``/``restore()`` persist the highest counter per device;
after a restore every counter up to it counts as seen (which ones were is not kept).
"""

from shared_protocol.compat import const
from shared_protocol.errors import ReplayError

WINDOW = const(64)


class ReplayGuard:
    def __init__(self, window=WINDOW):
        self.window = window
        self._top = {}  # device -> highest counter accepted
        self._mask = {}  # device -> bitmask; bit i = counter (top - i) seen

    def seen(self, device_id, counter):
        """True if ``counter`` would be rejected (seen, or older than the window)."""
        top = self._top.get(device_id)
        if top is None or counter > top:
            return False
        age = top - counter
        if age >= self.window:
            return True
        return bool(self._mask[device_id] & (1 << age))

    def check(self, device_id, counter):
        top = self._top.get(device_id)
        if top is None:
            self._top[device_id] = counter
            self._mask[device_id] = 1
            return
        if counter > top:
            shift = counter - top
            mask = (self._mask[device_id] << shift) if shift < self.window else 0
            self._mask[device_id] = (mask | 1) & ((1 << self.window) - 1)
            self._top[device_id] = counter
            return
        age = top - counter
        if age >= self.window:
            raise ReplayError(
                "counter %d from device %d is older than the replay window (latest %d)" % (counter, device_id, top)
            )
        bit = 1 << age
        if self._mask[device_id] & bit:
            raise ReplayError("counter %d from device %d was already seen" % (counter, device_id))
        self._mask[device_id] |= bit

    def state(self):
        return dict(self._top)

    def restore(self, tops):
        for dev in tops:
            self._top[dev] = tops[dev]
            self._mask[dev] = (1 << self.window) - 1
