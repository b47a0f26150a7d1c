"""Typed errors of the node: one root, one subclass per failure a sensor can show.

    try: t = sht.measure()
    except SensorError as e: faults.add(e.chip)
"""


class NodeError(Exception):
    """Root of every error the firmware raises."""


class ConfigError(NodeError):
    """The configuration file is missing, corrupt or invalid (names the key)."""


class SensorError(NodeError):
    """A sensor failed; ``chip`` names it (e.g. "sht4x")."""

    def __init__(self, chip, msg):
        super().__init__("%s: %s" % (chip, msg))
        self.chip = chip


class BusError(SensorError):
    """The chip did not acknowledge (absent, unpowered, cable pulled)."""


class CrcError(SensorError):
    """The chip answered but its CRC/PEC did not match (noise, wrong chip)."""


class RangeError(SensorError):
    """The reading is outside what the chip or the physics allows."""


class StuckError(SensorError):
    """The chip returns the same raw value again and again."""


class NotReadyError(SensorError):
    """The measurement did not complete in time."""


class Stuck:
    """Counts identical consecutive raw readings; raises StuckError after ``limit``.

        guard = Stuck("sht4x", limit=20)
        guard.check(raw_bytes)
    """

    def __init__(self, chip, limit=20):
        self.chip = chip
        self.limit = limit
        self.last = None
        self.repeats = 0

    def check(self, raw):
        if raw == self.last:
            self.repeats += 1
            if self.repeats >= self.limit:
                raise StuckError(self.chip, "same raw value %d times in a row" % (self.repeats + 1))
        else:
            self.last = raw
            self.repeats = 0
