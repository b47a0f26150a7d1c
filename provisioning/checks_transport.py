"""The installer's end of a node's link: bytes of frames to and from the node, over serial or BLE.

    with open_link("serial", "/dev/ttyUSB0") as link:          # or ("ble", "C0:FF:EE:00:00:01")
        link.write(wire); data = link.read(0.2)                 # bytes that arrived within 0.2 s

FrameLink is the contract; SerialLink (pyserial: USB, a pty in the virtual field) and BleLink
(bleak, a Nordic-UART-style GATT service: frames written in chunks to the RX characteristic, the
node's bytes notified on TX) are its two sides. Frames are COBS with 0x00 delimiters, so chunks
of any size reassemble in the reader's deframer. BleLink takes ``backend=`` (any bleak
BaseBleakClient subclass, with ``backend_kwargs``): tests use a simulated one, no radio.
Opening or using a link that fails raises LinkError naming the target.
"""

import abc
import asyncio
import threading

from provisioning.checks_result import CheckError

NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"  # Nordic UART Service
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"  # the central writes here (towards the node)
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"  # the node notifies here
KINDS = ("serial", "ble")


class LinkError(CheckError):
    """The link to the node cannot be opened or used; the message names the target and why."""


class FrameLink(abc.ABC):
    """Bytes to and from one node."""

    target = ""

    @abc.abstractmethod
    def write(self, data):
        """Send ``data`` (whole frames) towards the node."""

    @abc.abstractmethod
    def read(self, timeout_s):
        """The bytes that arrived from the node, waiting at most ``timeout_s`` for the first (b"" if none)."""

    @abc.abstractmethod
    def close(self):
        """Release the link (safe to call twice)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialLink(FrameLink):
    """A serial port (or pyserial URL): the node's USB console, its RS-485 adapter, a pty."""

    def __init__(self, port, baudrate=115200):
        import serial

        self.target = port
        self._serial_error = serial.SerialException
        try:
            self._ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0, write_timeout=2)
        except (serial.SerialException, OSError) as e:
            raise LinkError("cannot open serial port %s: %s" % (port, e)) from None

    def write(self, data):
        try:
            self._ser.write(data)
        except (self._serial_error, OSError) as e:
            raise LinkError("write to %s failed: %s" % (self.target, e)) from None

    def read(self, timeout_s):
        try:
            self._ser.timeout = timeout_s
            first = self._ser.read(1)
            if not first:
                return b""
            self._ser.timeout = 0
            return first + self._ser.read(self._ser.in_waiting or 0)
        except (self._serial_error, OSError) as e:
            raise LinkError("read from %s failed: %s" % (self.target, e)) from None

    def close(self):
        if self._ser is not None:
            self._ser.close()
            self._ser = None


class BleLink(FrameLink):
    """A node's Nordic UART service over bleak; bleak runs on its own event loop in a thread."""

    def __init__(self, address, backend=None, backend_kwargs=None, timeout_s=20.0):
        from bleak import BleakClient
        from bleak.exc import BleakError

        self.target = address
        self._bleak_error = BleakError
        self._timeout_s = timeout_s
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ble-link", daemon=True)
        self._thread.start()
        self._client = None
        try:
            self._client = BleakClient(address, timeout=timeout_s, backend=backend, **(backend_kwargs or {}))
            self._call(self._connect())
        except BaseException:
            self.close()
            raise

    async def _connect(self):
        await self._client.connect()
        rx = self._client.services.get_characteristic(NUS_RX)
        if rx is None or self._client.services.get_characteristic(NUS_TX) is None:
            raise LinkError("%s has no Nordic UART service (%s): is it a Fieldline node?" % (self.target, NUS_SERVICE))
        self._response = "write-without-response" not in rx.properties
        self._chunk = max(20, rx.max_write_without_response_size)
        await self._client.start_notify(NUS_TX, self._notified)

    def _notified(self, _sender, data):
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def _call(self, coro):
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self._timeout_s)
        except self._bleak_error as e:
            raise LinkError("BLE %s: %s" % (self.target, e)) from None
        except TimeoutError:
            raise LinkError("BLE %s: no answer within %.0f s" % (self.target, self._timeout_s)) from None

    def write(self, data):
        async def chunks():
            for i in range(0, len(data), self._chunk):
                await self._client.write_gatt_char(NUS_RX, data[i : i + self._chunk], response=self._response)

        self._call(chunks())

    def read(self, timeout_s):
        with self._cond:
            if not self._buf:
                self._cond.wait(timeout_s)
            out = bytes(self._buf)
            self._buf.clear()
        return out

    def close(self):
        if self._client is not None:
            client, self._client = self._client, None
            try:
                self._call(client.disconnect())
            except LinkError:
                pass  # already gone: nothing to release
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._thread = None
            self._loop.close()


def open_link(kind, target, **options):
    """A FrameLink of ``kind`` ("serial": a port path or URL; "ble": an address) to ``target``."""
    if kind == "serial":
        return SerialLink(target, **options)
    if kind == "ble":
        return BleLink(target, **options)
    raise LinkError("link kind must be one of %s, got %r" % (", ".join(KINDS), kind))
