"""Consistent Overhead Byte Stuffing: frames carry no 0x00, so 0x00 delimits them.

wire = cobs.encode(raw) + b"\\x00"
raw = cobs.decode(wire[:-1])
"""

from shared_protocol.errors import FramingError


def encode(data, delimiter=False):
    """Return the COBS encoding of ``data`` (with the trailing 0x00 when ``delimiter``).

    The output is sized once (one code byte per 254 data bytes at most): no growing buffer.
    """
    n = len(data)
    out = bytearray(n + n // 254 + 2)
    code_pos = 0
    o = 1
    code = 1
    for b in data:
        if b == 0:
            out[code_pos] = code
            code_pos = o
            o += 1
            code = 1
        else:
            out[o] = b
            o += 1
            code += 1
            if code == 0xFF:
                out[code_pos] = code
                code_pos = o
                o += 1
                code = 1
    out[code_pos] = code
    if delimiter:
        out[o] = 0
        o += 1
    return bytes(memoryview(out)[:o])


def decode(data):
    """Decode one COBS block (without its 0x00 delimiter); raise FramingError if malformed."""
    n = len(data)
    if n == 0:
        raise FramingError("empty frame: expected at least one COBS code byte")
    out = bytearray()
    i = 0
    while i < n:
        code = data[i]
        if code == 0:
            raise FramingError("stray 0x00 inside a COBS frame at byte %d" % i)
        end = i + code
        if end > n:
            raise FramingError("COBS block at byte %d announces %d bytes but only %d remain" % (i, code - 1, n - i - 1))
        chunk = data[i + 1 : end]
        for j in range(len(chunk)):
            if chunk[j] == 0:
                raise FramingError("stray 0x00 inside a COBS frame at byte %d" % (i + 1 + j))
        out.extend(chunk)
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


def encoded_max_len(raw_len):
    """Worst-case COBS length of a ``raw_len``-byte block (without delimiter)."""
    return raw_len + raw_len // 254 + 1
