"""Frame integrity: truncated HMAC-SHA256 with the device key, or a keyless CRC-32.

    tag = hmac_sha256(key, header + payload)[:8]   # the wire's 64-bit tag (frame.TAG_LEN)
    ok = equal(tag, received_tag)

HMAC is written here (RFC 2104) because MicroPython ships ``hashlib.sha256`` but no
``hmac`` module. MicroPython's digest() may be called once per hash object. ``crc32`` is
binascii's (IEEE 802.3, as zlib), unsigned on every port.
"""

import hashlib
from binascii import crc32  # noqa: F401

# the tag's and keys' sizes are the frame's (frame.TAG_LEN, KEY_MIN, KEY_MAX)


def hmac_sha256(key, msg):
    """Full 32-byte HMAC-SHA256 of ``msg`` under ``key`` (keys over the 64-byte block are hashed)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    pad = bytearray(64)
    pad[: len(key)] = key
    for i in range(64):
        pad[i] ^= 0x36
    inner = hashlib.sha256(pad)
    inner.update(msg)
    for i in range(64):
        pad[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(pad)
    outer.update(inner.digest())
    return outer.digest()


def tag(key, msg):
    """The truncated tag carried on the wire."""
    return hmac_sha256(key, msg)[:8]  # frame.TAG_LEN


def equal(a, b):
    """Compare two byte strings in time independent of where they differ."""
    diff = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):
        diff |= a[i] ^ b[i]
    return diff == 0
