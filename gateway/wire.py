"""Node frames decoded at gateway speed: the contract of shared_protocol.decode_frame, faster.

    msg = decode(wire, registry.keyring, guard)    # the same dict decode_frame returns
    start, interval_s, samples, stats = msg["start"], msg["interval_min"] * 60, msg["samples"], msg["stats"]

Reports (the bulk of the traffic: 96 interval summaries per node and day) take a fast path:
COBS in C (the ``cobs`` package), HMAC-SHA256 from ``hmac.digest``, cbor2, and a column
decoder for the statistics that checks each value as it goes instead of walking the payload
twice. Every other frame, and every report the fast path cannot vouch for, goes through
shared_protocol.decode_frame, so the results and the errors (ProtocolError subclasses) are
the same; tests/gateway/test_wire.py holds the two to each other.
"""

import hmac
import io
import struct
from itertools import accumulate

import cbor2
from cobs import cobs as _cobs

from gateway import cbor_codec
from shared_protocol import catalogue, decode_frame
from shared_protocol.cbor import MAX_DEPTH
from shared_protocol.errors import AuthError, DecodeError, FramingError, ProtocolError, SchemaError, SizeError
from shared_protocol.frame import FLAG_ACK_REQ, HEADER_LEN, KEY_MAX, KEY_MIN, MAX_FRAME, MAX_WIRE, TAG_LEN, VERSION
from shared_protocol.quantities import all_quantities

cbor_codec.install()

_REPORT_TID, _, _REPORT_SCHEMA = catalogue.lookup("report")
_STATS_KEY = _REPORT_SCHEMA.split(",").index("stats:q32!")
_MAXN = 32
# the report's optional parts (health, daily) for the generic checker: same keys, the rest optional
_REST_ONLY_SCHEMA = ",".join(f.rstrip("!") for f in _REPORT_SCHEMA.split(","))
_HDR = struct.Struct(">BBBII")
# qid -> (name, divisor or None, multiplier or None, lo - step, hi + step): unscale as catalogue.unscale
_Q = {}
for _qid, _name, _unit, _dec, _lo, _hi in all_quantities():
    _step = 10.0 ** (-_dec)
    _Q[_qid] = (_name, 10**_dec if _dec >= 0 else None, 10 ** (-_dec) if _dec < 0 else None, _lo - _step, _hi + _step)


class _Slow(Exception):
    """The fast path hands this frame to decode_frame (which then raises the right error)."""


def _loads(body):
    fp = io.BytesIO(body)
    try:
        obj = cbor2.CBORDecoder(
            fp,
            semantic_decoders=cbor_codec._NO_TAGS,
            tag_hook=cbor_codec._tag_hook,
            max_depth=MAX_DEPTH + 1,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        ).decode()
    except Exception:
        raise _Slow() from None
    if fp.tell() != len(body):
        raise _Slow()
    return obj


def _unscale(raw, q):
    div, mul = q[1], q[2]
    v = raw / div if div is not None else float(raw * mul)
    if not (q[3] <= v <= q[4]):
        raise _Slow()
    return v


_INT_ONLY = {int}


def _full_row(row, n, k, q, samples):
    acc = list(accumulate(row[:n]))
    div, mul = q[1], q[2]
    if k >= 3:
        lo_off, hi_off = row[n : 2 * n], row[2 * n : 3 * n]
        if min(lo_off) < 0 or min(hi_off) < 0:
            raise _Slow()
        lows = [a - o for a, o in zip(acc, lo_off, strict=True)]
        highs = [a + o for a, o in zip(acc, hi_off, strict=True)]
        ends = (min(lows), max(highs))
    else:
        ends = (min(acc), max(acc))
    if div is not None:
        if not (q[3] <= ends[0] / div and ends[1] / div <= q[4]):
            raise _Slow()
        s = {"mean": [a / div for a in acc]}
        if k >= 3:
            s["min"] = [a / div for a in lows]
            s["max"] = [a / div for a in highs]
    else:
        if not (q[3] <= float(ends[0] * mul) and float(ends[1] * mul) <= q[4]):
            raise _Slow()
        s = {"mean": [float(a * mul) for a in acc]}
        if k >= 3:
            s["min"] = [float(a * mul) for a in lows]
            s["max"] = [float(a * mul) for a in highs]
    if k in (2, 4):
        counts = row[(k - 1) * n :]
        if min(counts) < 0 or max(counts) > 0xFFFF:
            raise _Slow()
        s["count"] = counts
    else:
        s["count"] = list(samples)
    return {"mean": s["mean"], "count": s["count"], **({"min": s["min"], "max": s["max"]} if k >= 3 else {})}


def _stats(wire, samples):
    """stats_from_wire's result, checking as it goes; anything irregular -> _Slow."""
    if type(wire) is not dict or samples is None:
        raise _Slow()
    n = len(samples)
    out = {}
    for qid, row in wire.items():
        q = _Q.get(qid) if type(qid) is int else None
        if q is None or type(row) is not list or n == 0:
            raise _Slow()
        k, rem = divmod(len(row), n)
        if rem or not 1 <= k <= 4:
            raise _Slow()
        if set(map(type, row)) == _INT_ONLY:  # every interval has data: whole columns at once
            out[q[0]] = _full_row(row, n, k, q, samples)
            continue
        ranged = k >= 3
        means = [None] * n
        mins = [None] * n if ranged else None
        maxs = [None] * n if ranged else None
        counts = list(row[(k - 1) * n :]) if k in (2, 4) else [0] * n
        prev = None
        for i in range(n):
            d = row[i]
            if d is None:
                if ranged and (row[n + i] is not None or row[2 * n + i] is not None):
                    raise _Slow()
                counts[i] = 0  # as stats_from_wire: an interval without data counts 0, whatever the wire says
                continue
            if type(d) is not int:
                raise _Slow()
            rm = d if prev is None else prev + d
            prev = rm
            means[i] = _unscale(rm, q)
            if ranged:
                lo_off = row[n + i]
                hi_off = row[2 * n + i]
                if type(lo_off) is not int or type(hi_off) is not int or lo_off < 0 or hi_off < 0:
                    raise _Slow()
                mins[i] = _unscale(rm - lo_off, q)
                maxs[i] = _unscale(rm + hi_off, q)
            if k in (2, 4):
                c = counts[i]
                if type(c) is not int or not 0 <= c <= 0xFFFF:
                    raise _Slow()
            else:
                counts[i] = samples[i]
        s = {"mean": means, "count": counts}
        if ranged:
            s["min"] = mins
            s["max"] = maxs
        out[q[0]] = s
    return out


_REPORT_KEYS = frozenset(range(len(_REPORT_SCHEMA.split(","))))
_U32 = 0xFFFFFFFF


def _report_rest(payload):
    """The report's fields other than stats: start, interval_min, samples inline; health/daily generic."""
    if set(map(type, payload)) != _INT_ONLY or not payload.keys() <= _REPORT_KEYS:
        raise _Slow()  # unknown keys (kept as "extra") or non-integer keys: the general path
    start = payload.get(0)
    interval = payload.get(1)
    samples = payload.get(2)
    if type(start) is not int or not 0 <= start <= _U32 or type(interval) is not int or not 0 <= interval <= 1440:
        raise _Slow()
    if type(samples) is not list or len(samples) > _MAXN or not samples:
        raise _Slow()
    if set(map(type, samples)) != _INT_ONLY or min(samples) < 0 or max(samples) > 0xFFFF:
        raise _Slow()
    fields = {"start": start, "interval_min": interval, "samples": samples}
    if len(payload) > 4:  # health and/or daily ride along: checked by the catalogue (rare: hourly)
        rest = {k: v for k, v in payload.items() if k not in (0, 1, 2, _STATS_KEY)}
        try:
            cbor_codec._plain(rest, 0)
            more = catalogue.fields(_REST_ONLY_SCHEMA, rest, "report", False)
        except ProtocolError:
            raise _Slow() from None  # decode_frame moves the replay window first, then raises the same
        fields.update(more)
    return fields


_QSET = frozenset(_Q)
_LIST_ONLY = {list}


def _shape(stats_wire, n):
    """Structural checks of the statistics map (values are checked where they are decoded)."""
    if type(stats_wire) is not dict or set(map(type, stats_wire)) - _INT_ONLY or not _QSET.issuperset(stats_wire):
        raise _Slow()
    rows = stats_wire.values()
    if rows and set(map(type, rows)) != _LIST_ONLY:
        raise _Slow()
    for length in set(map(len, rows)):
        k, rem = divmod(length, n)
        if rem or not 1 <= k <= 4:
            raise _Slow()


def _fast(data, keyring, guard):
    """A report, authenticated, with ``stats_raw`` ({qid: wire row}, shape-checked) instead of stats."""
    n = len(data)
    if n and data[n - 1] == 0:
        n -= 1
    if n == 0 or n > MAX_WIRE:
        raise _Slow()
    try:
        raw = _cobs.decode(bytes(data[:n]))
    except _cobs.DecodeError:
        raise _Slow() from None
    if len(raw) > MAX_FRAME or len(raw) < HEADER_LEN + TAG_LEN:
        raise _Slow()
    version, tid, flags, device_id, counter = _HDR.unpack_from(raw)
    if version != VERSION or tid != _REPORT_TID or flags & ~FLAG_ACK_REQ:
        raise _Slow()  # other types, CRC frames, bad versions and flags: the general path
    key = keyring.get(device_id) if keyring is not None else None
    if key is None or not KEY_MIN <= len(key) <= KEY_MAX:
        raise _Slow()
    body = raw[:-TAG_LEN]
    if not hmac.compare_digest(hmac.digest(key, body, "sha256")[:TAG_LEN], raw[-TAG_LEN:]):
        raise AuthError("bad authentication tag on report frame from device %d" % device_id)
    payload = _loads(body[HEADER_LEN:])
    if type(payload) is not dict or _STATS_KEY not in payload:
        raise _Slow()
    fields = _report_rest(payload)
    stats_wire = payload[_STATS_KEY]
    _shape(stats_wire, len(fields["samples"]))
    msg = {"type": "report", "device_id": device_id, "counter": counter}
    if flags & FLAG_ACK_REQ:
        msg["ack_req"] = True
    msg["auth"] = "hmac"
    msg.update(fields)
    msg["stats_raw"] = stats_wire
    return msg


def decode_fast(data, keyring, guard=None):
    """decode() for the pipeline: a report comes back with ``stats_raw`` (decode it with
    stats_of(), or in bulk with gateway.columns) -- the replay window has then already moved, as
    decode_frame moves it before it finds a bad value. Every other frame is decode_frame's."""
    try:
        msg = _fast(data, keyring, guard)
    except _Slow:
        return decode_frame(data, keyring, guard)
    except ProtocolError:
        raise
    except Exception as e:
        raise DecodeError("malformed frame (%s: %s)" % (type(e).__name__, e)) from None
    if guard is not None:
        guard.check(msg["device_id"], msg["counter"])
    return msg


def stats_of(msg):
    """The decoded statistics of a decode_fast report; SchemaError (as decode_frame's) if a value is bad."""
    try:
        return _stats(msg["stats_raw"], msg["samples"])
    except _Slow:
        from shared_protocol.stats_decode import stats_from_wire

        stats_from_wire(msg["stats_raw"], msg["samples"], _MAXN, "report.stats")  # raises the precise error
        raise SchemaError("report.stats: malformed statistics") from None


def decode(data, keyring, guard=None):
    """Decode and authenticate one frame; the same result and errors as shared_protocol.decode_frame."""
    try:
        msg = _fast(data, keyring, None)
        msg["stats"] = _stats(msg.pop("stats_raw"), msg["samples"])
    except _Slow:
        return decode_frame(data, keyring, guard)
    except ProtocolError:
        raise
    except Exception as e:  # the contract: nothing but ProtocolError escapes
        raise DecodeError("malformed frame (%s: %s)" % (type(e).__name__, e)) from None
    if guard is not None:
        guard.check(msg["device_id"], msg["counter"])
    return msg


__all__ = ["decode", "decode_fast", "stats_of", "AuthError", "DecodeError", "FramingError", "SchemaError", "SizeError"]
