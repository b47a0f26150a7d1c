"""The device registry: which node ids may talk to this gateway, and each one's HMAC key.

    reg = Registry.load(cfg.registry_path)        # a missing file gives an empty registry (reg.missing)
    decode_frame(wire, reg.keyring); reg.reload_if_changed()

Provisioning writes it (``add`` then ``save``, atomically); the gateway reads it and picks up
changes with ``reload_if_changed``. The file is TOML, one table per device:

    [[devices]]
    id = 16949424                                   # u32, unique
    key = "00112233445566778899aabbccddeeff"        # hex, 16..64 bytes
    name = "north-1"                                # optional
    customer = "acme"                               # optional

Key material never appears in logs, reprs or exception messages.
"""

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field

from gateway.config import TomlDoc, read_text
from gateway.errors import ConfigError
from shared_protocol.frame import KEY_MAX, KEY_MIN

log = logging.getLogger(__name__)

_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+\Z")
_KEY_EXPECTED = "hex text of %d..%d bytes (%d..%d hex digits)" % (KEY_MIN, KEY_MAX, 2 * KEY_MIN, 2 * KEY_MAX)
_HEADER = (
    "# Fieldline device registry: node ids and their authentication keys. Keep it secret.\n"
    "# Written by provisioning; the gateway reloads it when it changes.\n"
)


@dataclass(frozen=True)
class Device:
    id: int  # u32, the device_id in every frame header
    key: bytes = field(repr=False)  # HMAC-SHA256 key, KEY_MIN..KEY_MAX bytes
    name: str | None = None
    customer: str | None = None


class Registry:
    """Devices by id. ``keyring`` (id -> key bytes) is one dict, updated in place on every change,
    so a decoder may hold on to it."""

    def __init__(self, devices=(), path=None):
        self.path = None if path is None else os.fspath(path)
        self.missing = False  # True when the file did not exist at the last (re)load
        self.keyring = {}
        self._devices = {}
        self._signature = None
        for d in devices:
            self.add(d)

    @classmethod
    def load(cls, path):
        """The registry in the file at ``path`` (empty, ``missing`` True, when there is none)."""
        reg = cls(path=path)
        sig = _signature(reg.path)
        reg._set(_read_devices(reg.path) if sig else [])
        reg._signature, reg.missing = sig, sig is None
        log.info("device registry %s: %d devices%s", reg.path, len(reg), " (no file yet)" if reg.missing else "")
        return reg

    def __len__(self):
        return len(self._devices)

    def __iter__(self):
        return iter(tuple(self._devices.values()))

    def __contains__(self, device_id):
        return device_id in self._devices

    def get(self, device_id):
        """The Device with ``device_id``, or None."""
        return self._devices.get(device_id)

    def reload_if_changed(self):
        """Re-read the file if it changed (inode, mtime or size); True when new devices were loaded.

        A bad new file raises ConfigError once (per change) and the devices already loaded stay in
        use; a file that vanished also leaves them in use (revoke a device by removing its entry).
        """
        sig = None if self.path is None else _signature(self.path)
        if sig == self._signature:
            return False
        self._signature = sig
        if sig is None:
            self.missing = True
            log.warning("device registry %s vanished: keeping the %d devices loaded", self.path, len(self))
            return False
        try:
            devices = _read_devices(self.path)
        except ConfigError:
            log.warning("device registry %s is invalid: keeping the %d devices loaded", self.path, len(self))
            raise
        self._set(devices)
        self.missing = False
        log.info("device registry %s reloaded: %d devices", self.path, len(self))
        return True

    def add(self, device, replace=False):
        """Add ``device`` (a Device); an id already present needs ``replace=True`` (re-keying)."""
        _check(device)
        if device.id in self._devices and not replace:
            raise ConfigError("devices.id", "an id not yet in the registry", path=self.path, got=device.id)
        self._devices[device.id] = device
        self.keyring[device.id] = device.key

    def remove(self, device_id):
        """Remove and return the Device with ``device_id`` (None if absent)."""
        self.keyring.pop(device_id, None)
        return self._devices.pop(device_id, None)

    def save(self, path=None):
        """Write the registry to ``path`` (default: where it came from) atomically: tmp, fsync, rename."""
        if path is None and self.path is None:
            raise ConfigError("registry.path", "a file to save the registry to")
        path = os.path.abspath(os.fspath(path if path is not None else self.path))
        folder = os.path.dirname(path)
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(self.to_toml())
                    f.flush()
                    os.fchmod(f.fileno(), mode)
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                _unlink(tmp)
                raise
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise ConfigError("(file)", "a writable registry file", path=path, got=e.strerror) from e
        if self.path is None or os.path.abspath(self.path) == path:
            self.path, self._signature, self.missing = path, _signature(path), False
        log.info("device registry %s saved: %d devices", path, len(self))

    def _set(self, devices):
        self._devices = {d.id: d for d in devices}
        self.keyring.clear()
        self.keyring.update((d.id, d.key) for d in devices)

    def to_toml(self):
        """The registry file's text (keys as lowercase hex)."""
        out = [_HEADER]
        for d in self._devices.values():
            out.append("\n[[devices]]\nid = %d\nkey = %s\n" % (d.id, _toml_str(d.key.hex())))
            for name in ("name", "customer"):
                value = getattr(d, name)
                if value is not None:
                    out.append("%s = %s\n" % (name, _toml_str(value)))
        return "".join(out)


def parse_devices(text, path="<string>"):
    """The Devices in registry ``text``; ConfigError naming ``devices[i].key`` and the line otherwise."""
    root = TomlDoc(text, path).root()
    root.only(("devices",))
    devices, seen = [], {}
    for i, t in enumerate(root.tables("devices")):
        t.only(("id", "key", "name", "customer"))
        device_id = t.integer("id", lo=0, hi=0xFFFFFFFF)
        if device_id in seen:
            t.fail("id", "an id unique in the registry (devices[%d] has it)" % seen[device_id], device_id)
        seen[device_id] = i
        if "key" not in t.data:
            t.fail("key", _KEY_EXPECTED + " (required)")
        key = _key_bytes(t.data["key"])
        if key is None:
            t.fail("key", _KEY_EXPECTED, _describe(t.data["key"]))
        name = t.text("name", None, "a non-empty string")
        customer = t.text("customer", None, "a non-empty string")
        devices.append(Device(device_id, key, name, customer))
    return devices


def _read_devices(path):
    return parse_devices(read_text(path, "a readable registry file"), path)


def _key_bytes(value):
    if not isinstance(value, str) or not _HEX.match(value) or not KEY_MIN <= len(value) // 2 <= KEY_MAX:
        return None
    return bytes.fromhex(value)


def _describe(value):
    """What a bad key looked like, without a single character of it."""
    if not isinstance(value, str):
        return "not text (%s)" % type(value).__name__
    what = "hex" if re.fullmatch(r"[0-9A-Fa-f]*", value) else "non-hex"
    return "%d %s characters" % (len(value), what)


def _check(device):
    if not isinstance(device, Device):
        raise ConfigError("devices", "a Device", got=type(device).__name__)
    if type(device.id) is not int or not 0 <= device.id <= 0xFFFFFFFF:
        raise ConfigError("devices.id", "an integer in 0..4294967295", got=device.id)
    if not isinstance(device.key, bytes) or not KEY_MIN <= len(device.key) <= KEY_MAX:
        got = "%d bytes" % len(device.key) if isinstance(device.key, bytes) else type(device.key).__name__
        raise ConfigError("devices.key", "%d..%d bytes" % (KEY_MIN, KEY_MAX), got=got)
    for name in ("name", "customer"):
        value = getattr(device, name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError("devices." + name, "a non-empty string or None", got=value)


def _signature(path):
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _toml_str(s):
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
