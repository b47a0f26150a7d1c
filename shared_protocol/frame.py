"""Frames: header + CBOR payload + tag, COBS-encoded and 0x00-delimited.

    wire = encode_frame({"type": "hello", "device_id": 7, "counter": 1, ...}, key)
    msg = decode_frame(wire, {7: key})
    for wire in Deframer().feed(uart.read()): handle(decode_frame(wire, keyring))

Raw frame (before COBS), big-endian header:
    version u8 | type u8 | flags u8 | device_id u32 | counter u32 | payload | tag
tag = first 8 bytes of HMAC-SHA256(key, header + payload), or, for keyless types with
FLAG_CRC set, CRC-32 of header + payload (4 bytes, big-endian).

The payload codec is the node's own shared_protocol.cbor; CPython (the gateway) plugs in
cbor2 with ``use_codec`` (gateway.cbor_codec.install). Both raise only DecodeError/SizeError
and return only plain values.
"""

import struct

from shared_protocol import auth, catalogue, cobs
from shared_protocol.cbor import dumps, loads
from shared_protocol.errors import (
    AuthError,
    DecodeError,
    FramingError,
    ProtocolError,
    SchemaError,
    SizeError,
    const,
    constants,
)

_VERSION = const(1)
_HEADER_LEN = const(11)
_MAX_FRAME = const(1024)  # raw bytes: header + payload + tag
_MAX_WIRE = const(_MAX_FRAME + _MAX_FRAME // 254 + 2)  # COBS worst case + delimiter
_FLAG_CRC = const(1)
_FLAG_ACK_REQ = const(2)
_TAG_LEN = const(8)  # bytes of HMAC-SHA256 kept on the wire (64-bit tag)
_CRC_LEN = const(4)
_KEY_MIN = const(16)  # device key bytes
_KEY_MAX = const(64)
__getattr__ = constants(globals())  # CPython: frame.MAX_FRAME, frame.HEADER_LEN, ...


def use_codec(dumps_fn, loads_fn):
    """Encode/decode payloads with another codec holding the same contract (gateway: cbor2)."""
    global dumps, loads
    dumps, loads = dumps_fn, loads_fn


def _u32(message, name):
    v = message.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > 0xFFFFFFFF:
        raise SchemaError("header field %r must be an integer 0..4294967295, got %r" % (name, v))
    return v


def _size(n, limit, what):
    if n > limit:
        raise SizeError("frame of %d %sbytes exceeds the %d-byte maximum" % (n, what, limit))


def encode_frame(message, key):
    """Encode ``message`` to wire bytes (COBS + trailing 0x00).

    ``key`` is the device key (16..64 bytes) or None for a keyless CRC frame, which only
    the catalogue's KEYLESS types may use.
    """
    if not isinstance(message, dict):
        raise SchemaError("message must be a dict, got %s" % type(message).__name__)
    t = catalogue.lookup(message.get("type"))
    if t is None:
        raise SchemaError("unknown message type %r" % (message.get("type"),))
    tid, name, schema = t
    payload = dumps(catalogue.fields(schema, message, name, True))
    device_id = _u32(message, "device_id")
    counter = _u32(message, "counter")
    flags = _FLAG_ACK_REQ if message.get("ack_req") else 0
    if key is None:
        if tid not in catalogue.KEYLESS:
            raise AuthError("a %s frame needs a device key" % name)
        flags |= _FLAG_CRC
    elif not (_KEY_MIN <= len(key) <= _KEY_MAX):
        raise AuthError("device key must be %d..%d bytes, got %d" % (_KEY_MIN, _KEY_MAX, len(key)))
    body = struct.pack(">BBBII", _VERSION, tid, flags, device_id, counter) + payload
    raw = body + (struct.pack(">I", auth.crc32(body)) if flags & _FLAG_CRC else auth.tag(key, body))
    _size(len(raw), _MAX_FRAME, "")
    return cobs.encode(raw, True)


def parse_header(raw):
    """(version, type, flags, device_id, counter) of a raw (un-COBSed) frame."""
    if len(raw) < _HEADER_LEN:
        raise DecodeError("frame of %d bytes is shorter than the %d-byte header" % (len(raw), _HEADER_LEN))
    return struct.unpack(">BBBII", raw[:_HEADER_LEN])


def unframe(data):
    """Wire bytes of one frame (trailing 0x00 optional) -> raw frame bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("frame must be bytes, got %s" % type(data).__name__)
    n = len(data)
    if n and data[n - 1] == 0:
        n -= 1
    if n == 0:
        raise FramingError("empty frame")
    _size(n, _MAX_WIRE, "wire ")
    raw = cobs.decode(bytes(data[:n]))
    _size(len(raw), _MAX_FRAME, "")
    return raw


def decode_frame(data, keyring, guard=None):
    """Decode and authenticate one frame; raise only ProtocolError (or a subclass).

    ``keyring`` maps device id -> key (anything with ``.get``). ``guard`` is an optional
    ReplayGuard, consulted only after the frame authenticated with an HMAC tag.
    """
    try:
        raw = unframe(data)
        version, tid, flags, device_id, counter = parse_header(raw)
        if version != _VERSION:
            raise DecodeError("protocol version %d is not supported (expected %d)" % (version, _VERSION))
        if flags & ~(_FLAG_CRC | _FLAG_ACK_REQ):
            raise DecodeError("unknown header flags 0x%02x" % (flags & ~(_FLAG_CRC | _FLAG_ACK_REQ)))
        t = catalogue.lookup(tid)
        if t is None:
            raise SchemaError("unknown message type %d" % tid)
        _, name, schema = t
        crc = flags & _FLAG_CRC
        if crc and tid not in catalogue.KEYLESS:
            raise AuthError("a %s frame may not travel with a keyless CRC" % name)
        n = len(raw) - (_CRC_LEN if crc else _TAG_LEN)
        if n < _HEADER_LEN:
            raise DecodeError("frame too short for its %s" % ("CRC" if crc else "authentication tag"))
        body = raw[:n]
        if crc:
            if struct.unpack(">I", raw[n:])[0] != auth.crc32(body):
                raise AuthError("bad CRC on %s frame from device %d" % (name, device_id))
        else:
            key = keyring.get(device_id) if keyring is not None else None
            if key is None:
                raise AuthError("unknown device %d: no key in the keyring" % device_id)
            if not auth.equal(auth.tag(key, body), raw[n:]):
                raise AuthError("bad authentication tag on %s frame from device %d" % (name, device_id))
            if guard is not None:
                # only after the HMAC: keyless frames prove nothing about who sent them, and letting
                # them move the window would let a forged hello with a high counter lock the device out
                guard.check(device_id, counter)
        fields = catalogue.fields(schema, loads(body[_HEADER_LEN:]), name, False)
        msg = {"type": name, "device_id": device_id, "counter": counter}
        if flags & _FLAG_ACK_REQ:
            msg["ack_req"] = True
        msg["auth"] = "crc" if crc else "hmac"
        for k in fields:
            msg[k] = fields[k]
        return msg
    except ProtocolError:
        raise
    except Exception as e:  # the contract: nothing but ProtocolError escapes
        raise DecodeError("malformed frame (%s: %s)" % (type(e).__name__, e))


class Deframer:
    """Frames from a byte stream, split at 0x00 (bounded memory, resynchronising); runs longer
    than ``max_wire`` are dropped up to the next 0x00 and counted in ``oversized``.

    d = Deframer()
    for wire in d.feed(uart.read()): handle(wire)
    """

    def __init__(self, max_wire=_MAX_WIRE):
        self.max_wire = max_wire
        self.buf = bytearray()
        self.dropping = False
        self.oversized = 0

    def feed(self, chunk):
        frames = []
        for b in chunk:
            if b == 0:
                if self.buf and not self.dropping:
                    frames.append(bytes(self.buf))
                self.buf = bytearray()
                self.dropping = False
            elif not self.dropping:
                self.buf.append(b)
                if len(self.buf) > self.max_wire:
                    self.oversized += 1
                    self.dropping = True
                    self.buf = bytearray()
        return frames
