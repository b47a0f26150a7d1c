"""Provisioning's exceptions: one root, subclasses that say what was wrong, what was expected, what to do.

    try: provision_serial(port, request)
    except ProvisioningError as e: print("fieldline provision: %s" % e); sys.exit(e.exit_code)

Every message names the thing at fault (port, file, key, device) and what was expected; ``advice``
is the installer's next step. Every failure leaves the device in a state the next run repairs.
Key material never appears in a message.
"""


class ProvisioningError(Exception):
    """Root of every provisioning error. ``exit_code`` is the CLI's exit status for it."""

    exit_code = 1

    def __init__(self, message, advice=None):
        self.message, self.advice = message, advice
        super().__init__(message + (" -> " + advice if advice else ""))


class BadInput(ProvisioningError):
    """An option or file given to the tool is invalid (names the option and what was expected)."""

    exit_code = 2


class PortError(ProvisioningError):
    """The serial port cannot be used: ``port`` and ``reason`` (not_found, busy, permission, not_serial)."""

    exit_code = 3

    def __init__(self, port, reason, message, advice=None):
        self.port, self.reason = port, reason
        super().__init__(message, advice)


class ConnectionLost(ProvisioningError):
    """The board stopped answering mid-operation (unplugged, reset, crashed)."""

    exit_code = 3


class WrongBoard(ProvisioningError):
    """Something answers, but not the board expected (no MicroPython REPL, wrong platform, wrong chip)."""

    exit_code = 4


class MpyMismatch(WrongBoard):
    """The board's MicroPython cannot load what this mpy-cross emits (``device``/``cross`` mpy versions)."""

    def __init__(self, device, cross, message, advice=None):
        self.device, self.cross = device, cross
        super().__init__(message, advice)


class DeviceError(ProvisioningError):
    """Code run on the board raised: ``traceback`` is what the board printed."""

    exit_code = 5

    def __init__(self, message, traceback="", advice=None):
        self.traceback = traceback
        super().__init__(message, advice)


class HashMismatch(ProvisioningError):
    """A file's SHA-256 computed on the board differs from the file sent (``path``, ``got``, ``expected``)."""

    exit_code = 5

    def __init__(self, path, got, expected, advice=None):
        self.path, self.got, self.expected = path, got, expected
        super().__init__("%s on the board has SHA-256 %s, expected %s" % (path, (got or "none (missing)")[:16],
                                                                          expected[:16]), advice)  # fmt: skip


class VerifyFailed(ProvisioningError):
    """What the board holds after provisioning is not what was written (``what`` names it)."""

    exit_code = 5


class FlashError(ProvisioningError):
    """esptool could not flash the runtime: ``kind`` (port_not_found, port_busy, no_boot_mode, wrong_chip, ...)."""

    exit_code = 6

    def __init__(self, kind, message, advice=None, output=""):
        self.kind, self.output = kind, output
        super().__init__(message, advice)


class BleError(ProvisioningError):
    """Provisioning over BLE failed (device not found, no UART service, no answer, wrong key)."""

    exit_code = 7
