"""Frame integrity: truncated HMAC-SHA256 with the device key, or a keyless CRC-32.

    tag = hmac_sha256(key, header + payload)[:TAG_LEN]
    ok = equal(tag, received_tag)

HMAC is written here (RFC 2104) because MicroPython ships ``hashlib.sha256`` but no
``hmac`` module. MicroPython's digest() may be called once per hash object.
"""

import hashlib

from shared_protocol.compat import const

TAG_LEN = const(8)  # bytes of HMAC-SHA256 kept on the wire (64-bit tag)
CRC_LEN = const(4)
KEY_MIN = const(16)
KEY_MAX = const(64)
_BLOCK = const(64)

try:
    from binascii import crc32 as _crc32
except ImportError:  # a port built without binascii.crc32
    _crc32 = None


def hmac_sha256(key, msg):
    """Full 32-byte HMAC-SHA256 of ``msg`` under ``key`` (key at most 64 bytes)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    pad = bytearray(key)
    for i in range(_BLOCK):
        pad[i] ^= 0x36
    inner = hashlib.sha256(pad)
    inner.update(msg)
    for i in range(_BLOCK):
        pad[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(pad)
    outer.update(inner.digest())
    return outer.digest()


def tag(key, msg):
    """The truncated tag carried on the wire."""
    return hmac_sha256(key, msg)[:TAG_LEN]


def equal(a, b):
    """Compare two byte strings in time independent of where they differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0


def crc32(data):
    """CRC-32 (IEEE 802.3, as zlib/binascii) of ``data``."""
    if _crc32 is not None:
        return _crc32(data) & 0xFFFFFFFF
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
