"""The node's own small CBOR codec (RFC 8949 subset), for MicroPython and CPython.

    data = cbor.dumps({1: [1, -2, "x", b"y", 1.5, None, True]})
    obj = cbor.loads(data)

Supported: definite-length unsigned/negative ints (64-bit), byte and text strings,
arrays, maps, half/single/double floats, false/true/null. Encoding is deterministic and
matches cbor2's canonical mode (shortest heads and floats, map keys sorted length-first).
Anything else (tags, indefinite lengths, undefined, other simple values) is a
DecodeError naming it. Decoding is bounded: nesting depth, and every declared length is
checked against the bytes that remain before anything is allocated.
"""

import struct

from shared_protocol.errors import DecodeError, SizeError, const, constants

_MAX_DEPTH = const(8)
__getattr__ = constants(globals())  # CPython: cbor.MAX_DEPTH


def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
        return
    for i in range(4):
        if n < 1 << (8 << i):
            out.append(mt | 24 + i)
            out.extend(n.to_bytes(1 << i, "big"))
            return
    raise DecodeError("integer does not fit CBOR's 64-bit range")


def _enc(out, obj, depth):
    if depth > _MAX_DEPTH:
        raise SizeError("CBOR nesting deeper than %d levels" % _MAX_DEPTH)
    if obj is None or obj is True or obj is False:
        out.append(0xF6 if obj is None else (0xF5 if obj else 0xF4))
    elif isinstance(obj, int):
        if obj >= 0:
            _head(out, 0, obj)
        else:
            _head(out, 1, -1 - obj)
    elif isinstance(obj, float):
        # the shortest of half, single and double that holds the value exactly (as cbor2 canonical)
        a = -obj if obj < 0 else obj
        if obj != obj:
            out.extend(b"\xf9\x7e\x00")
        elif a < 6.103515625e-05 and a * 16777216.0 == int(a * 16777216.0):
            # zero and half subnormals (multiples of 2**-24), by hand: some ports pack them wrong
            out.append(0xF9)
            out.extend(struct.pack(">H", int(a * 16777216.0) | (0x8000 if str(obj)[0] == "-" else 0)))
        else:
            for ib, fmt in ((0xF9, ">e"), (0xFA, ">f"), (0xFB, ">d")):
                try:
                    b = struct.pack(fmt, obj)
                except OverflowError:  # CPython, beyond the format's range
                    continue
                if struct.unpack(fmt, b)[0] == obj:
                    out.append(ib)
                    out.extend(b)
                    return
    elif isinstance(obj, (bytes, bytearray, str)):
        b = obj.encode("utf-8") if isinstance(obj, str) else obj
        _head(out, 3 if isinstance(obj, str) else 2, len(b))
        out.extend(b)
    elif isinstance(obj, (list, tuple)):
        _head(out, 4, len(obj))
        for item in obj:
            _enc(out, item, depth + 1)
    elif isinstance(obj, dict):
        # keys sorted length-first, then bytewise (RFC 7049 canonical, as cbor2), so the
        # bytes do not depend on dict order (MicroPython dicts are unordered)
        _head(out, 5, len(obj))
        pairs = []
        for k in obj:
            kb = bytearray()
            _enc(kb, k, depth + 1)
            pairs.append((len(kb), bytes(kb), k))
        pairs.sort()
        for p in pairs:
            out.extend(p[1])
            _enc(out, obj[p[2]], depth + 1)
    else:
        raise DecodeError("cannot encode a %s in CBOR" % type(obj).__name__)


def dumps(obj):
    """Encode ``obj`` as deterministic CBOR bytes."""
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


def _need(data, pos, n, what):
    if n > len(data) - pos:
        raise DecodeError("CBOR %s at byte %d needs %d bytes, %d remain" % (what, pos, n, len(data) - pos))


def _item(data, pos, depth):
    # decode one item at pos; return (value, next pos)
    if depth > _MAX_DEPTH:
        raise SizeError("CBOR nesting deeper than %d levels" % _MAX_DEPTH)
    _need(data, pos, 1, "item")
    at = pos
    major = data[pos] >> 5
    info = data[pos] & 0x1F
    pos += 1
    n = info
    bad = None
    if 24 <= info < 28:
        w = 1 << (info - 24)
        _need(data, pos, w, "argument")
        n = int.from_bytes(data[pos : pos + w], "big")
        pos += w
    elif info == 31:
        bad = "indefinite-length item"
    elif info > 24:
        bad = "additional info %d" % info
    if bad is None:
        if major < 2:
            return n if major == 0 else -1 - n, pos
        if major < 4:
            _need(data, pos, n, "string")
            raw = data[pos : pos + n]
            if major == 3:
                try:
                    raw = str(raw, "utf-8")
                except Exception:
                    raise DecodeError("CBOR text at byte %d is not valid UTF-8" % at)
            return raw, pos + n
        if major < 6:
            _need(data, pos, n * (major - 3), "array/map")  # each item takes >= 1 byte
            out = [] if major == 4 else {}
            for _ in range(n):
                kat = pos
                v, pos = _item(data, pos, depth + 1)
                if major == 4:
                    out.append(v)
                    continue
                if isinstance(v, (list, dict)) or v in out:
                    raise DecodeError("CBOR map key at byte %d is a container or a duplicate" % kat)
                out[v], pos = _item(data, pos, depth + 1)
            return out, pos
        if major == 6:
            bad = "tag %d" % n
        elif 20 <= info <= 22:  # major 7: simple values and floats
            return (False, True, None)[info - 20], pos
        elif info > 24:  # half, single, double: the argument bytes are the float
            return struct.unpack((">e", ">f", ">d")[info - 25], data[pos - (1 << (info - 24)) : pos])[0], pos
        else:
            bad = "simple value %d" % n
    raise DecodeError("CBOR %s at byte %d is not supported" % (bad, at))


def loads(data):
    """Decode exactly one CBOR item from ``data``; raise DecodeError/SizeError otherwise."""
    obj, pos = _item(data, 0, 0)
    if pos != len(data):
        raise DecodeError("%d bytes of trailing data after the CBOR item" % (len(data) - pos))
    return obj
