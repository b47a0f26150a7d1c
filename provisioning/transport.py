"""The board's raw REPL over a serial port: mpremote's SerialTransport, with errors an installer can act on.

    with Board("/dev/ttyACM0").open() as board:      # PortError names the port and why it cannot be used
        info = board.eval_json("import sys, json; print(json.dumps(sys.platform))")

Opening checks the port first (exists, a serial device, not held by another program), then enters
the raw REPL itself: a port that answers something other than MicroPython is a WrongBoard naming
what came back. A board that stops answering mid-command (unplugged, reset) is ConnectionLost.
The code sent may hold the device key: it is never logged or put into a message.
"""

import errno
import json
import os
import re
import time

import serial
import serial.tools.list_ports
from mpremote.transport import TransportError
from mpremote.transport_serial import SerialTransport

from provisioning.errors import ConnectionLost, DeviceError, PortError, WrongBoard

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"


def known_ports():
    """Serial ports the host sees (device names), for "expected one of" messages."""
    return sorted(p.device for p in serial.tools.list_ports.comports())


def check_port(port):
    """Raise PortError unless ``port`` can be opened exclusively as a serial port (it is opened and closed)."""
    if not os.path.exists(port):
        seen = known_ports()
        where = "one of " + ", ".join(seen) if seen else "none is connected now (ls /dev/ttyACM* /dev/ttyUSB*)"
        raise PortError(
            port,
            "not_found",
            "no serial port %s" % port,
            "plug the node in with a data USB cable and pass its port: %s" % where,
        )
    try:
        s = serial.Serial(port, exclusive=True)
    except serial.SerialException as e:
        raise port_error(port, e) from None
    except OSError as e:
        raise port_error(port, e) from None
    s.close()


def port_error(port, exc):
    """The PortError for what pyserial raised opening ``port``."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in (errno.EAGAIN, errno.EBUSY) or "exclusively lock" in text or "busy" in text.lower():
        return PortError(port, "busy", "serial port %s is in use by another program" % port,
                         "close whatever holds it (a serial monitor, mpremote, Thonny, the gateway service: "
                         "`fuser %s` names it), then run again" % port)  # fmt: skip
    if code == errno.EACCES or "Permission denied" in text:
        return PortError(
            port,
            "permission",
            "no permission to open %s" % port,
            "add your user to the dialout group (sudo usermod -aG dialout $USER), log in again",
        )
    if code == errno.ENOENT or "No such file" in text:
        return PortError(port, "not_found", "serial port %s vanished" % port, "plug the node in again and rerun")
    return PortError(
        port,
        "not_serial",
        "%s cannot be opened as a serial port (%s)" % (port, text),
        "pass the node's USB serial port (e.g. /dev/ttyACM0)",
    )


class _Transport(SerialTransport):
    """SerialTransport whose raw-REPL entry has short time limits and raises instead of printing."""

    connect_timeout_s = 3.0
    reset_timeout_s = 10.0
    _rx = b""  # read past an ending: the next read_until starts with it

    def read_until(self, min_num_bytes, ending, timeout=10, data_consumer=None, timeout_overall=None):
        """mpremote's read_until, reading what is waiting in one go instead of byte by byte."""
        data = self._rx
        self._rx = b""
        begin = last = time.monotonic()
        while True:
            i = data.find(ending)
            if i >= 0:
                i += len(ending)
                data, self._rx = data[:i], data[i:]
                break
            n = self.serial.inWaiting()
            new = self.serial.read(n or 1)
            if new:
                data += new
                last = time.monotonic()
                continue
            now = time.monotonic()
            if timeout is not None and now >= last + timeout:
                break
            if timeout_overall is not None and now >= begin + timeout_overall:
                break
        if data_consumer:
            data_consumer(data)
            return data[-len(ending) :] if data.endswith(ending) else b""
        return data

    def enter_raw_repl(self, soft_reset=True, timeout_overall=None):
        self._rx = b""
        self.serial.write(b"\r\x03\x03")  # interrupt whatever runs (the node's main loop)
        got = b""
        n = self.serial.inWaiting()
        while n > 0:
            got += self.serial.read(n)
            n = self.serial.inWaiting()
        self.serial.write(b"\r\x01")
        data = self._expect(RAW_BANNER + b">", self.connect_timeout_s)
        if not data.endswith(RAW_BANNER + b">"):
            raise WrongBoard("%s answered, but not with a MicroPython REPL: got %s, expected %r after Ctrl-A"
                             % (self.device_name, _show(got + data), RAW_BANNER.decode().strip()),
                             "is this the node's USB port? A board without MicroPython needs --firmware-image "
                             "first; a node that is busy or asleep: press its RESET button and run again")  # fmt: skip
        if soft_reset:
            self.serial.write(b"\x04")
            data = self._expect(b"soft reboot\r\n", self.reset_timeout_s)
            if not data.endswith(b"soft reboot\r\n"):
                raise WrongBoard(
                    "%s did not soft-reset on Ctrl-D: got %s" % (self.device_name, _show(data)),
                    "press the node's RESET button and run again",
                )
            data = self._expect(RAW_BANNER, self.reset_timeout_s)
            if not data.endswith(RAW_BANNER):
                raise WrongBoard(
                    "%s did not come back to the raw REPL after its soft reset (boot.py hangs?): "
                    "got %s" % (self.device_name, _show(data)),
                    "press RESET; if it repeats, flash the runtime again with --firmware-image",
                )
        self.in_raw_repl = True

    def _expect(self, ending, timeout_s):
        """Bytes up to and including ``ending``, or what came within ``timeout_s`` (a chatty port too)."""
        data = bytearray()
        end = time.monotonic() + timeout_s
        while not data.endswith(ending) and time.monotonic() < end:
            n = self.serial.inWaiting()
            chunk = self.serial.read(1) if not n else b""
            while n:  # one byte at a time near the end: never read past the banner
                chunk += self.serial.read(1)
                if (bytes(data) + chunk).endswith(ending):
                    break
                n -= 1
            data += chunk
            del data[: max(0, len(data) - 4096)]
        return bytes(data)


def _show(data, limit=80):
    """A short printable rendering of bytes a port sent."""
    if not data:
        return "nothing"
    text = repr(bytes(data[-limit:]))
    return ("..." if len(data) > limit else "") + text


class Board:
    """A MicroPython board on ``port``: ``open()``, then ``exec``/``eval_json``; ``close()`` (or ``with``)."""

    def __init__(self, port, timeout_s=8.0, connect_timeout_s=3.0):
        self.port = port
        self.timeout_s = timeout_s  # longest silence while a command runs
        self.connect_timeout_s = connect_timeout_s
        self._t = None

    def open(self, soft_reset=True):
        if not os.path.exists(self.port):
            check_port(self.port)  # raises, naming the ports there are
        try:
            self._t = _Transport(self.port, baudrate=115200, exclusive=True, timeout=1.0)
        except TransportError as e:
            check_port(self.port)  # opened once more only to say why it failed (busy, permission, ...)
            raise PortError(self.port, "not_serial", "cannot open %s (%s)" % (self.port, e)) from None
        self._t.connect_timeout_s = self.connect_timeout_s
        try:
            self._t.enter_raw_repl(soft_reset=soft_reset)
        except BaseException:
            self.close()
            raise
        return self

    def soft_reset(self):
        """Ctrl-D: the board restarts its MicroPython (boot.py runs on a real board) and is back in raw REPL."""
        self._guard(lambda: self._t.enter_raw_repl(soft_reset=True))

    def exec(self, code, timeout_s=None):
        """Run ``code`` on the board; its printed output (text). DeviceError if it raised."""
        out, err = self._guard(lambda: self._t.exec_raw(code, timeout=timeout_s or self.timeout_s))
        if err:
            text = err.decode(errors="replace").strip()
            raise DeviceError("the board raised %s" % _last_line(text), text)
        return out.decode(errors="replace")

    def eval_json(self, code, timeout_s=None):
        """Run ``code``, which prints one JSON document as its last line; the parsed document."""
        out = self.exec(code, timeout_s).strip().splitlines()
        try:
            return json.loads(out[-1])
        except (IndexError, ValueError):
            raise WrongBoard("%s printed %r where JSON was expected" % (self.port, out[-3:])) from None

    def _guard(self, fn):
        try:
            return fn()
        except (serial.SerialException, OSError) as e:
            raise ConnectionLost(
                "%s stopped answering (%s)" % (self.port, _reason(e)),
                "check the cable, plug the node in again and run again",
            ) from None
        except TransportError as e:
            raise ConnectionLost(
                "%s stopped answering: %s" % (self.port, e), "the board reset or hangs: press RESET and run again"
            ) from None

    def close(self):
        t, self._t = self._t, None
        if t is None:
            return
        try:
            if t.in_raw_repl:
                t.exit_raw_repl()
        except (serial.SerialException, OSError):
            pass
        try:
            t.close()
        except (serial.SerialException, OSError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _last_line(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "an error"


def _reason(exc):
    text = str(exc)
    if re.search(r"readiness to read but returned no data|Input/output error|EIO|disconnected", text):
        return "the port hung up: unplugged?"
    return text
