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

from shared_protocol.compat import const
from shared_protocol.errors import DecodeError, SizeError

MAX_DEPTH = const(8)


def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out.extend(struct.pack(">H", n))
    elif n < 0x100000000:
        out.append(mt | 26)
        out.extend(struct.pack(">I", n))
    elif n <= 0xFFFFFFFFFFFFFFFF:
        out.append(mt | 27)
        out.extend(struct.pack(">Q", n))
    else:
        raise DecodeError("integer does not fit CBOR's 64-bit range")


def _half(x):
    # IEEE half-precision bits of x if exactly representable, else None
    a = -x if x < 0 else x
    sign = 0x8000 if x < 0 or (x == 0 and str(x)[0] == "-") else 0
    if a == 0:
        return sign
    e = -24
    while e < 16:
        m = a / 2.0**e
        if m < 1.0:
            return None
        if m < 2048.0 and m == int(m):
            m = int(m)
            if e == -24 and m < 1024:
                return sign | m  # subnormal
            while m >= 2048:
                m >>= 1
                e += 1
            while m < 1024:
                return None
            return sign | ((e + 25) << 10) | (m - 1024)
        e += 1
    return None


def _enc(out, obj, depth):
    if depth > MAX_DEPTH:
        raise SizeError("CBOR nesting deeper than %d levels" % MAX_DEPTH)
    if obj is None or obj is True or obj is False:
        out.append(0xF6 if obj is None else (0xF5 if obj else 0xF4))
    elif isinstance(obj, int):
        if obj >= 0:
            _head(out, 0, obj)
        else:
            _head(out, 1, -1 - obj)
    elif isinstance(obj, float):
        if obj != obj or obj in (float("inf"), float("-inf")):
            out.extend(b"\xf9\x7e\x00" if obj != obj else (b"\xf9\x7c\x00" if obj > 0 else b"\xf9\xfc\x00"))
            return
        h = _half(obj) if -65520.0 < obj < 65520.0 else None
        if h is not None:
            out.append(0xF9)
            out.extend(struct.pack(">H", h))
            return
        try:
            b = struct.pack(">f", obj)
        except OverflowError:  # CPython; MicroPython packs inf, which then differs
            b = b""
        if b and struct.unpack(">f", b)[0] == obj:
            out.append(0xFA)
            out.extend(b)
        else:
            out.append(0xFB)
            out.extend(struct.pack(">d", obj))
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
    if depth > MAX_DEPTH:
        raise SizeError("CBOR nesting deeper than %d levels at byte %d" % (MAX_DEPTH, pos))
    _need(data, pos, 1, "item")
    ib = data[pos]
    major = ib >> 5
    info = ib & 0x1F
    at = pos
    pos += 1
    if info < 24:
        n = info
    elif info < 28:
        w = 1 << (info - 24)
        _need(data, pos, w, "argument")
        n = int.from_bytes(data[pos : pos + w], "big")
        pos += w
    elif info == 31:
        raise DecodeError("indefinite-length CBOR item at byte %d is not supported" % at)
    else:
        raise DecodeError("reserved CBOR additional info %d at byte %d" % (info, at))
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major == 2 or major == 3:
        _need(data, pos, n, "string")
        raw = data[pos : pos + n]
        if major == 3:
            try:
                raw = str(raw, "utf-8")
            except Exception:
                raise DecodeError("CBOR text at byte %d is not valid UTF-8" % at)
        return raw, pos + n
    if major == 4 or major == 5:
        _need(data, pos, n * (major - 3), "array/map")  # each item takes >= 1 byte
        if major == 4:
            out = []
            for _ in range(n):
                v, pos = _item(data, pos, depth + 1)
                out.append(v)
            return out, pos
        out = {}
        for _ in range(n):
            kat = pos
            k, pos = _item(data, pos, depth + 1)
            if isinstance(k, (list, dict)) or k in out:
                raise DecodeError("CBOR map key at byte %d is a container or a duplicate" % kat)
            out[k], pos = _item(data, pos, depth + 1)
        return out, pos
    if major == 6:
        raise DecodeError("CBOR tag %d at byte %d is not supported" % (n, at))
    # major 7: simple values and floats
    if info < 24:
        if 20 <= info <= 22:
            return (False, True, None)[info - 20], pos
        raise DecodeError("CBOR simple value %d at byte %d is not supported" % (info, at))
    if info == 25:
        e = (n >> 10) & 0x1F
        f = n & 0x3FF
        v = (
            f * 2.0**-24
            if e == 0
            else (float("inf") if f == 0 else float("nan"))
            if e == 31
            else ((1024 + f) * 2.0 ** (e - 25))
        )
        return (-v if n & 0x8000 else v), pos
    if info == 26:
        return struct.unpack(">f", data[pos - 4 : pos])[0], pos
    if info == 27:
        return struct.unpack(">d", data[pos - 8 : pos])[0], pos
    raise DecodeError("CBOR simple value %d at byte %d is not supported" % (n, at))


def loads(data):
    """Decode exactly one CBOR item from ``data``; raise DecodeError/SizeError otherwise."""
    obj, pos = _item(data, 0, 0)
    if pos != len(data):
        raise DecodeError("%d bytes of trailing data after the CBOR item" % (len(data) - pos))
    return obj
