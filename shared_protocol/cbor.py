"""The node's own small CBOR codec (RFC 8949 subset), for MicroPython and CPython.

    data = cbor.dumps({1: [1, -2, "x", b"y", 1.5, None, True]})
    obj = cbor.loads(data)

Supported: definite-length unsigned/negative ints (64-bit), byte and text strings,
arrays, maps, half/single/double floats (written in the shortest exact width), false/true/null. Anything else (tags,
indefinite lengths, undefined and other simple values) is a DecodeError naming it.
Decoding is bounded: nesting depth, and every declared length is checked against the
bytes that remain before anything is allocated.
"""

import struct

from shared_protocol.compat import const
from shared_protocol.errors import DecodeError, SizeError

MAX_DEPTH = const(8)
_U64 = 0xFFFFFFFFFFFFFFFF


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
    else:
        out.append(mt | 27)
        out.extend(struct.pack(">Q", n))


def _half_bits(x):
    # IEEE half-precision bits of x if x is exactly representable, else None.
    if x == 0.0:
        return 0x8000 if str(x)[0] == "-" else 0
    sign = 0x8000 if x < 0 else 0
    a = -x if x < 0 else x
    for e in range(-14, 16):  # normal range
        m = a / 2.0**e
        if 1.0 <= m < 2.0:
            f = (m - 1.0) * 1024
            if f != int(f):
                return None
            return sign | ((e + 15) << 10) | int(f)
    f = a / 2.0**-24  # subnormal
    if f == int(f) and f < 1024:
        return sign | int(f)
    return None


def _float(out, x):
    # Shortest width that keeps the value (RFC 8949 deterministic encoding, as
    # cbor2's canonical mode), so both runtimes emit the same bytes.
    if x != x:
        out.extend(b"\xf9\x7e\x00")
        return
    if x in (float("inf"), float("-inf")):
        out.extend(b"\xf9\x7c\x00" if x > 0 else b"\xf9\xfc\x00")
        return
    h = _half_bits(x)
    if h is not None:
        out.append(0xF9)
        out.extend(struct.pack(">H", h))
        return
    b = struct.pack(">f", x) if -3.4e38 < x < 3.4e38 else None
    if b is not None and struct.unpack(">f", b)[0] == x:
        out.append(0xFA)
        out.extend(b)
    else:
        out.append(0xFB)
        out.extend(struct.pack(">d", x))


def _enc(out, obj, depth):
    if depth > MAX_DEPTH:
        raise SizeError("CBOR nesting deeper than %d levels" % MAX_DEPTH)
    if obj is None:
        out.append(0xF6)
    elif obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif isinstance(obj, int):
        if obj >= 0:
            if obj > _U64:
                raise DecodeError("integer %d does not fit CBOR's 64-bit range" % obj)
            _head(out, 0, obj)
        else:
            if -1 - obj > _U64:
                raise DecodeError("integer %d does not fit CBOR's 64-bit range" % obj)
            _head(out, 1, -1 - obj)
    elif isinstance(obj, float):
        _float(out, obj)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _head(out, 2, len(obj))
        out.extend(obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        _head(out, 3, len(b))
        out.extend(b)
    elif isinstance(obj, (list, tuple)):
        _head(out, 4, len(obj))
        for item in obj:
            _enc(out, item, depth + 1)
    elif isinstance(obj, dict):
        # Deterministic: keys sorted length-first, then by their encoded bytes (RFC 7049
        # canonical CBOR, as cbor2's canonical mode), so the bytes do not depend on dict
        # order (MicroPython dicts are unordered).
        _head(out, 5, len(obj))
        pairs = []
        for k in obj:
            kb = bytearray()
            _enc(kb, k, depth + 1)
            pairs.append((len(kb), bytes(kb), k))
        pairs.sort()
        for _, kb, k in pairs:
            out.extend(kb)
            _enc(out, obj[k], depth + 1)
    else:
        raise DecodeError("cannot encode a %s in CBOR" % type(obj).__name__)


def dumps(obj):
    """Encode ``obj`` as deterministic CBOR (shortest heads and floats, sorted map keys)."""
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


def _half(h):
    sign = -1.0 if h & 0x8000 else 1.0
    exp = (h >> 10) & 0x1F
    frac = h & 0x3FF
    if exp == 0:
        return sign * frac * 2.0**-24
    if exp == 31:
        return sign * float("inf") if frac == 0 else float("nan")
    return sign * (1024 + frac) * 2.0 ** (exp - 25)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.end = len(data)

    def take(self, n, what):
        p = self.pos
        if n > self.end - p:
            raise DecodeError(
                "CBOR %s at byte %d needs %d bytes but only %d remain" % (what, p, n, self.end - p)
            )
        self.pos = p + n
        return self.data[p : p + n]

    def arg(self, info, at):
        if info < 24:
            return info
        if info == 24:
            return self.take(1, "argument")[0]
        if info == 25:
            return struct.unpack(">H", self.take(2, "argument"))[0]
        if info == 26:
            return struct.unpack(">I", self.take(4, "argument"))[0]
        if info == 27:
            return struct.unpack(">Q", self.take(8, "argument"))[0]
        if info == 31:
            raise DecodeError("indefinite-length CBOR item at byte %d is not supported" % at)
        raise DecodeError("reserved CBOR additional info %d at byte %d" % (info, at))

    def item(self, depth):
        if depth > MAX_DEPTH:
            raise SizeError("CBOR nesting deeper than %d levels at byte %d" % (MAX_DEPTH, self.pos))
        at = self.pos
        ib = self.take(1, "initial byte")[0]
        major = ib >> 5
        info = ib & 0x1F
        if major == 7:
            return self.simple(info, at)
        n = self.arg(info, at)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2:
            return bytes(self.take(n, "byte string"))
        if major == 3:
            raw = self.take(n, "text string")
            try:
                return str(raw, "utf-8")
            except Exception:
                raise DecodeError("CBOR text string at byte %d is not valid UTF-8" % at)
        if major == 4:
            if n > self.end - self.pos:
                raise DecodeError(
                    "CBOR array at byte %d announces %d items but only %d bytes remain"
                    % (at, n, self.end - self.pos)
                )
            return [self.item(depth + 1) for _ in range(n)]
        if major == 5:
            if 2 * n > self.end - self.pos:
                raise DecodeError(
                    "CBOR map at byte %d announces %d pairs but only %d bytes remain"
                    % (at, n, self.end - self.pos)
                )
            out = {}
            for _ in range(n):
                kat = self.pos
                k = self.item(depth + 1)
                if isinstance(k, (list, dict)):
                    raise DecodeError("CBOR map key at byte %d is an array or map" % kat)
                if k in out:
                    raise DecodeError("duplicate CBOR map key %r at byte %d" % (k, kat))
                out[k] = self.item(depth + 1)
            return out
        raise DecodeError("CBOR tag (major type 6) at byte %d is not supported" % at)

    def simple(self, info, at):
        if info == 20:
            return False
        if info == 21:
            return True
        if info == 22:
            return None
        if info == 25:
            return _half(struct.unpack(">H", self.take(2, "half float"))[0])
        if info == 26:
            return struct.unpack(">f", self.take(4, "float"))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8, "double"))[0]
        if info == 31:
            raise DecodeError("CBOR 'break' at byte %d outside an indefinite item" % at)
        raise DecodeError("CBOR simple value %d at byte %d is not supported" % (info, at))


def loads(data):
    """Decode exactly one CBOR item from ``data``; raise DecodeError/SizeError otherwise."""
    r = _Reader(data)
    obj = r.item(0)
    if r.pos != r.end:
        raise DecodeError("%d bytes of trailing data after the CBOR item" % (r.end - r.pos))
    return obj
