"""Sensor drivers: one chip per module, the bus passed in, typed errors (fieldnode.errors).

    class SHT4x(Chip): ...          # Chip.__init__(self, i2c, addr, name, sleep_ms, stuck_limit=20)
    self._io(reg, buf)              # every OSError from the bus becomes BusError naming the address

Chip holds what the I2C drivers share, once: the bus plumbing, the range check and the stuck
guard (``_same(raw)``: StuckError after ``stuck_limit`` identical raw readings in a row; drivers
call it only where a constant reading is impossible, e.g. not on zero light at night).

Heap: the node keeps its drivers for its whole life, so a driver stores per instance only what
differs from its class: defaults (``addr``, ``stuck_limit``, settings) are class attributes that
``_opt`` overrides only when a constructor argument differs. Scratch buffers are class attributes
shared by every driver (``_b1``, ``_b2``, ``_b6``): the firmware is single-threaded and no driver
keeps data in them across calls, so one set serves all chips.
"""

import time

from fieldnode.errors import BusError, RangeError, StuckError


class Chip:
    """An I2C chip: ``i2c``, ``addr``, ``name`` (its fault word) and ``_sleep`` (ms)."""

    stuck_limit = 20
    _last = None
    _repeats = 0
    _b1 = bytearray(1)  # shared scratch (see the module doc)
    _b2 = bytearray(2)
    _b6 = bytearray(6)

    def __init__(self, i2c, addr, name, sleep_ms, stuck_limit=20):
        self.i2c = i2c
        self._opt("addr", addr)
        self.name = name
        self._sleep = sleep_ms or time.sleep_ms
        self._opt("stuck_limit", stuck_limit)

    def _opt(self, attr, v):
        """Set ``attr`` on the instance only if ``v`` differs from what it reads now (the class default)."""
        if getattr(self, attr, None) != v:
            setattr(self, attr, v)

    def _io(self, reg, buf, write=False):
        """Read register ``reg`` into ``buf``, or write ``buf`` to it (reg None: a plain write); returns buf."""
        try:
            if not write:
                self.i2c.readfrom_mem_into(self.addr, reg, buf)
            elif reg is None:
                self.i2c.writeto(self.addr, buf)
            else:
                self.i2c.writeto_mem(self.addr, reg, buf)
        except OSError:
            raise BusError(self.name, "no ACK at 0x%02x (absent, unpowered or cable pulled)" % self.addr)
        return buf

    def _reg(self, reg, val=None):
        """The byte in register ``reg``; with ``val``, write it there instead."""
        if val is None:
            return self._io(reg, self._b1)[0]
        self._b1[0] = val
        self._io(reg, self._b1, True)

    def _word(self, reg):
        """16-bit big-endian register (through the shared 2-byte ``_b2``)."""
        b = self._io(reg, self._b2)
        return b[0] << 8 | b[1]

    def _range(self, what, v, lo, hi):
        """``v`` if lo <= v <= hi, else RangeError naming it and the valid range."""
        if not lo <= v <= hi:
            raise RangeError(self.name, "%s %.3f outside %g..%g" % (what, v, lo, hi))
        return v

    def _same(self, raw):
        """Count identical consecutive raw readings; StuckError after ``stuck_limit`` repeats in a row."""
        if raw != self._last:
            self._last = raw
            self._repeats = 0
            return
        self._repeats += 1
        if self._repeats >= self.stuck_limit:
            raise StuckError(self.name, "same raw value %d times in a row" % (self._repeats + 1))
