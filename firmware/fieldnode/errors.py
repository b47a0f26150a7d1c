"""Typed errors of the node: one root, one subclass per failure a sensor can show.

    try: t = sht.measure()
    except SensorError as e: faults.add(e.chip)

The drivers' stuck-reading guard lives in fieldnode.drivers.Chip (it raises StuckError).
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
