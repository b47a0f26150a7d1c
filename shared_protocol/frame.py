"""Frames: header + CBOR payload + tag, COBS-encoded and 0x00-delimited.

    wire = encode_frame({"type": "hello", "device_id": 7, "counter": 1, ...}, key)
    msg = decode_frame(wire, {7: key})

Raw frame (before COBS), big-endian header:
    version u8 | type u8 | flags u8 | device_id u32 | counter u32 | payload | tag
tag = first 8 bytes of HMAC-SHA256(key, header + payload), or, for keyless types with
FLAG_CRC set, CRC-32 of header + payload (4 bytes, big-endian).
"""

import struct

from shared_protocol import auth, catalogue, cobs
from shared_protocol.compat import const
from shared_protocol.errors import AuthError, DecodeError, FramingError, ProtocolError, SchemaError, SizeError
from shared_protocol.payload_codec import dumps, loads

VERSION = const(1)
HEADER_LEN = const(11)
MAX_FRAME = const(1024)  # raw bytes: header + payload + tag
MAX_WIRE = MAX_FRAME + MAX_FRAME // 254 + 2  # COBS worst case + delimiter
FLAG_CRC = const(0x01)
FLAG_ACK_REQ = const(0x02)
_KNOWN_FLAGS = FLAG_CRC | FLAG_ACK_REQ


def _type_id(t):
    if isinstance(t, str):
        tid = catalogue.TYPE_IDS.get(t)
        if tid is None:
            raise SchemaError("unknown message type %r" % t)
        return tid
    if isinstance(t, int) and t in catalogue.SCHEMAS:
        return t
    raise SchemaError("unknown message type %r" % (t,))


def _u32(message, name):
    v = message.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > 0xFFFFFFFF:
        raise SchemaError("header field %r must be an integer 0..4294967295, got %r" % (name, v))
    return v


def encode_payload(message):
    """The CBOR payload bytes of ``message`` (named fields, no header)."""
    tid = _type_id(message.get("type"))
    return tid, dumps(catalogue.to_wire(tid, message))


def encode_frame(message, key):
    """Encode ``message`` to wire bytes (COBS + trailing 0x00).

    ``key`` is the device key (16..64 bytes) or None for a keyless CRC frame, which only
    the catalogue's KEYLESS types may use.
    """
    if not isinstance(message, dict):
        raise SchemaError("message must be a dict, got %s" % type(message).__name__)
    tid, payload = encode_payload(message)
    device_id = _u32(message, "device_id")
    counter = _u32(message, "counter")
    flags = FLAG_ACK_REQ if message.get("ack_req") else 0
    if key is None:
        if tid not in catalogue.KEYLESS:
            raise AuthError("a %s frame needs a device key" % catalogue.TYPE_NAMES[tid])
        flags |= FLAG_CRC
    elif not (auth.KEY_MIN <= len(key) <= auth.KEY_MAX):
        raise AuthError("device key must be %d..%d bytes, got %d" % (auth.KEY_MIN, auth.KEY_MAX, len(key)))
    body = struct.pack(">BBBII", VERSION, tid, flags, device_id, counter) + payload
    if flags & FLAG_CRC:
        raw = body + struct.pack(">I", auth.crc32(body))
    else:
        raw = body + auth.tag(key, body)
    if len(raw) > MAX_FRAME:
        raise SizeError("frame of %d bytes exceeds the %d-byte maximum" % (len(raw), MAX_FRAME))
    return cobs.encode(raw) + b"\x00"


def parse_header(raw):
    """(version, type, flags, device_id, counter) of a raw (un-COBSed) frame."""
    if len(raw) < HEADER_LEN:
        raise DecodeError("frame of %d bytes is shorter than the %d-byte header" % (len(raw), HEADER_LEN))
    return struct.unpack(">BBBII", raw[:HEADER_LEN])


def unframe(data):
    """Wire bytes of one frame (trailing 0x00 optional) -> raw frame bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("frame must be bytes, got %s" % type(data).__name__)
    n = len(data)
    if n and data[n - 1] == 0:
        n -= 1
    if n == 0:
        raise FramingError("empty frame")
    if n > MAX_WIRE:
        raise SizeError("frame of %d wire bytes exceeds the %d-byte maximum" % (n, MAX_WIRE))
    raw = cobs.decode(bytes(data[:n]))
    if len(raw) > MAX_FRAME:
        raise SizeError("frame of %d bytes exceeds the %d-byte maximum" % (len(raw), MAX_FRAME))
    return raw


def _decode(data, keyring, guard):
    raw = unframe(data)
    version, tid, flags, device_id, counter = parse_header(raw)
    if version != VERSION:
        raise DecodeError("protocol version %d is not supported (expected %d)" % (version, VERSION))
    if flags & ~_KNOWN_FLAGS:
        raise DecodeError("unknown header flags 0x%02x" % (flags & ~_KNOWN_FLAGS))
    if tid not in catalogue.SCHEMAS:
        raise SchemaError("unknown message type %d" % tid)
    name = catalogue.TYPE_NAMES[tid]
    if flags & FLAG_CRC:
        if tid not in catalogue.KEYLESS:
            raise AuthError("a %s frame may not travel with a keyless CRC" % name)
        if len(raw) < HEADER_LEN + auth.CRC_LEN:
            raise DecodeError("frame too short for its CRC")
        body = raw[: len(raw) - auth.CRC_LEN]
        if struct.unpack(">I", raw[len(body) :])[0] != auth.crc32(body):
            raise AuthError("bad CRC on %s frame from device %d" % (name, device_id))
        how = "crc"
    else:
        if len(raw) < HEADER_LEN + auth.TAG_LEN:
            raise DecodeError("frame too short for its authentication tag")
        key = keyring.get(device_id) if keyring is not None else None
        if key is None:
            raise AuthError("unknown device %d: no key in the keyring" % device_id)
        body = raw[: len(raw) - auth.TAG_LEN]
        if not auth.equal(auth.tag(key, body), raw[len(body) :]):
            raise AuthError("bad authentication tag on %s frame from device %d" % (name, device_id))
        how = "hmac"
    if guard is not None and how == "hmac":
        # keyless frames prove nothing about who sent them: letting them move the
        # window would let a forged hello with a high counter lock the device out
        guard.check(device_id, counter)
    fields = catalogue.from_wire(tid, loads(body[HEADER_LEN:]))
    msg = {"type": name, "device_id": device_id, "counter": counter}
    if flags & FLAG_ACK_REQ:
        msg["ack_req"] = True
    msg["auth"] = how
    for k in fields:
        msg[k] = fields[k]
    return msg


def decode_frame(data, keyring, guard=None):
    """Decode and authenticate one frame; raise only ProtocolError (or a subclass).

    ``keyring`` maps device id -> key (anything with ``.get``). ``guard`` is an optional
    ReplayGuard, consulted only after the frame authenticated with an HMAC tag.
    """
    try:
        return _decode(data, keyring, guard)
    except ProtocolError:
        raise
    except Exception as e:  # the contract: nothing but ProtocolError escapes
        raise DecodeError("malformed frame (%s: %s)" % (type(e).__name__, e))
