"""Write shared_protocol/vectors/frames.jsonl: the golden frames both runtimes test against.

    python -m tools.make_vectors            # rewrite the file
    python -m tools.make_vectors --check    # exit 1 if the file is not what this produces

Each line is JSON: first a ``keyring`` line, then ``{"name", "hex", "message"}`` for frames
that must decode to ``message``, and ``{"name", "hex", "error", "why"}`` for frames that
must be rejected with a ProtocolError of that ``kind``. Bytes are written {"$bytes": hex}.
"""

import json
import os
import struct
import sys

from shared_protocol import auth, cobs, decode_frame, encode_frame
from shared_protocol.frame import FLAG_CRC, VERSION

KEY = bytes(range(32))
DEV = 0x0102A0B0
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared_protocol", "vectors")


def _jsonable(obj):
    if isinstance(obj, bytes):
        return {"$bytes": obj.hex()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def valid_messages():
    base = {"device_id": DEV}
    yield (
        "hello_unprovisioned_crc",
        None,
        {
            **base,
            "type": "hello",
            "counter": 1,
            "fw_version": "0.1.0",
            "hw": "esp32s3",
            "provisioned": False,
            "reset_cause": "power_on",
            "uid": bytes.fromhex("a4cf12345678"),
        },
    )
    yield (
        "hello_provisioned_hmac",
        KEY,
        {
            **base,
            "type": "hello",
            "counter": 2,
            "fw_version": "0.1.0",
            "hw": "virtual",
            "provisioned": True,
            "mpy_version": 6,
            "reset_cause": "deepsleep",
            "uptime_s": 3600,
            "time": 1750000000,
        },
    )
    yield (
        "report_hour_with_health",
        KEY,
        {
            **base,
            "type": "report",
            "counter": 3,
            "ack_req": True,
            "start": 1750000500,
            "interval_min": 15,
            "samples": [15, 15, 15, 12],
            "stats": {
                "incident_shortwave": {
                    "mean": [512.0, 530.0, 498.0, 610.0],
                    "min": [480.0, 505.0, 300.0, 590.0],
                    "max": [540.0, 560.0, 520.0, 640.0],
                },
                "ndvi": {
                    "mean": [0.712, 0.715, 0.716, 0.713],
                    "min": [0.7, 0.71, 0.71, 0.701],
                    "max": [0.72, 0.72, 0.722, 0.72],
                },
                "air_temperature": {
                    "mean": [21.37, 21.52, None, 22.01],
                    "min": [21.2, 21.4, None, 21.9],
                    "max": [21.55, 21.7, None, 22.1],
                    "count": [15, 15, 0, 12],
                },
                "air_pressure": {
                    "mean": [101320.0, 101310.0, 101300.0, 101290.0],
                    "min": [101310.0, 101300.0, 101290.0, 101280.0],
                    "max": [101330.0, 101320.0, 101310.0, 101300.0],
                },
            },
            "health": {
                "time": 1750003600,
                "battery_v": 3.912,
                "battery_soc": 81.0,
                "solar_a": 0.215,
                "power_mode": "full",
                "reset_cause": "deepsleep",
                "free_heap_kb": 40, "uptime_h": 72,
                "log_fill_pct": 3,
                "link": {"tx_frames": 24, "acked_frames": 23, "retries": 1, "rx_bad": 0},
                "faults": [],
                "tilt_deg": 1.2,
                "clock_offset_ms": -120,
                "log_pending": 1,
            },
        },
    )
    yield (
        "daily",
        KEY,
        {
            **base,
            "type": "daily",
            "counter": 4,
            "date": 20255,
            "ndvi_midday": 0.803,
            "chlorophyll_midday": 3.41,
            "air_t_min": 9.85,
            "air_t_max": 24.1,
            "air_t_mean": 16.92,
            "canopy_t_min": 8.2,
            "canopy_t_max": 25.66,
            "canopy_t_mean": 16.4,
            "canopy_air_diff_midday": -1.35,
            "gdd": 6.98,
            "incident_mj_m2": 24.37,
            "samples": 1440,
            "intervals": 96,
            "rh_min": 41.2,
            "rh_max": 97.5,
            "pressure_mean": 101250.0,
            "utc_offset_min": 120,
        },
    )
    yield (
        "health_survival",
        KEY,
        {
            **base,
            "type": "health",
            "counter": 5,
            "time": 1750010000,
            "battery_v": 3.301,
            "battery_soc": 4.0,
            "solar_a": -0.012,
            "power_mode": "survival",
            "faults": ["gnss", "ir_sky"],
        },
    )
    yield "ack", KEY, {**base, "type": "ack", "counter": 6, "counters": [3, 4, 5], "rejected": [2]}
    yield (
        "time_sync_answer",
        KEY,
        {
            **base,
            "type": "time_sync",
            "counter": 7,
            "t1_ms": 1750000000123,
            "t2_ms": 1750000000180,
            "t3_ms": 1750000000181,
        },
    )
    yield "config_get", KEY, {**base, "type": "config_get", "counter": 8, "keys": ["interval_s", "site"]}
    yield (
        "config_set",
        KEY,
        {
            **base,
            "type": "config_set",
            "counter": 9,
            "values": {"interval_min": 15, "sample_s": 60, "site": {"lat": 52.0125, "lon": 5.5, "field": "north"}},
        },
    )
    yield (
        "config_report",
        KEY,
        {
            **base,
            "type": "config",
            "counter": 10,
            "values": {"interval_min": 15},
            "errors": {"sample_s": "expected 10..3600, got 5"},
        },
    )
    yield (
        "diag_request_crc",
        None,
        {**base, "type": "diag_request", "counter": 11, "req_id": 42, "items": ["identity", "tilt", "battery"]},
    )
    yield (
        "diag_response",
        KEY,
        {
            **base,
            "type": "diag_response",
            "counter": 12,
            "req_id": 42,
            "items": {"tilt": {"deg": 1.5, "x": 0.02}, "battery": {"v": 3.9, "soc": 80.5}, "identity": {"fw": "0.1.0"}},
            "errors": {"gnss": "no fix"},
        },
    )
    yield (
        "log_warning",
        KEY,
        {
            **base,
            "type": "log",
            "counter": 13,
            "time": 1750000000,
            "level": "warning",
            "text": "sht4x: bad CRC, retried",
        },
    )


def _raw(tid, payload, flags=0, counter=100, device=DEV, key=KEY, version=VERSION):
    body = struct.pack(">BBBII", version, tid, flags, device, counter) + payload
    if flags & FLAG_CRC:
        return body + struct.pack(">I", auth.crc32(body))
    return body + auth.tag(key, body)


def _wire(raw):
    return cobs.encode(raw) + b"\x00"


def rejected_frames():
    good = encode_frame({"type": "ack", "device_id": DEV, "counter": 50, "counters": [1]}, KEY)
    raw = cobs.decode(good[:-1])
    flipped = bytearray(raw)
    flipped[-1] ^= 0x01
    yield "bad_tag", _wire(bytes(flipped)), "auth", "last tag bit flipped"
    yield "unknown_device", _wire(_raw(5, bytes.fromhex("a10081 01"), device=0xDEAD)), "auth", "device not in keyring"
    hello = encode_frame(
        {"type": "hello", "device_id": DEV, "counter": 51, "fw_version": "1", "hw": "x", "provisioned": False}, None
    )
    hraw = bytearray(cobs.decode(hello[:-1]))
    hraw[-2] ^= 0x10
    yield "bad_crc", _wire(bytes(hraw)), "auth", "CRC-32 does not match"
    yield "crc_on_report", _wire(_raw(2, bytes.fromhex("a0"), flags=FLAG_CRC)), "auth", "reports need HMAC"
    yield "wrong_version", _wire(_raw(5, bytes.fromhex("a1008101"), version=2)), "decode", "protocol version 2"
    yield "unknown_type", _wire(_raw(99, bytes.fromhex("a0"))), "schema", "message type 99"
    yield "unknown_flags", _wire(_raw(5, bytes.fromhex("a1008101"), flags=0x80)), "decode", "reserved flag bit"
    yield "too_short", _wire(raw[:6]), "decode", "shorter than the header"
    yield "truncated", _wire(raw[:-3]), "auth", "tag cut short"
    yield "stray_zero", good[:5] + b"\x00" + good[5:], "framing", "0x00 inside the frame"
    yield "bad_cobs_code", b"\x20\x01\x02\x00", "framing", "COBS block runs past the end"
    yield "oversized", b"\x01" * 1100 + b"\x00", "size", "over the maximum frame size"
    yield "empty", b"\x00", "framing", "nothing between delimiters"
    yield "cbor_indefinite", _wire(_raw(5, bytes.fromhex("a1009f01ff"))), "decode", "indefinite array"
    yield "cbor_tag", _wire(_raw(5, bytes.fromhex("a100c11a514b67b0"))), "decode", "CBOR tag 1"
    yield (
        "cbor_deep",
        _wire(_raw(11, bytes.fromhex("a2000001") + b"\xa1\x61a" * 12 + b"\x00")),
        "size",
        "nested too deep",
    )
    yield "cbor_trailing", _wire(_raw(5, bytes.fromhex("a100810100"))), "decode", "bytes after the CBOR item"
    yield "missing_field", _wire(_raw(5, bytes.fromhex("a0"))), "schema", "ack without counters"
    yield "wrong_type", _wire(_raw(5, bytes.fromhex("a100816178"))), "schema", "counter list holds text"
    yield "out_of_range", _wire(_raw(4, bytes.fromhex("a2001a6553f100041903e8"))), "schema", "power mode 1000"
    yield "payload_not_map", _wire(_raw(5, bytes.fromhex("8101"))), "schema", "payload is an array"
    neg = bytes.fromhex("a4001a684ee1f4011903840281010" + "3a1088301" + "2001")  # lo offset -1
    yield "stats_negative_offset", _wire(_raw(2, neg)), "schema", "min above the mean"


def lines():
    yield {"keyring": {str(DEV): KEY.hex()}}
    for name, key, msg in valid_messages():
        wire = encode_frame(msg, key)
        # the golden message is the decoded form (counts filled in, auth named)
        expect = decode_frame(wire, {DEV: KEY})
        yield {"name": name, "hex": wire.hex(), "message": _jsonable(expect)}
    for name, wire, kind, why in rejected_frames():
        yield {"name": name, "hex": wire.hex(), "error": kind, "why": why}


def render():
    head = "# Golden frames: generated by `python -m tools.make_vectors`; see docs/protocol.md\n"
    return head + "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines())


def main(argv):
    path = os.path.join(OUT, "frames.jsonl")
    text = render()
    if "--check" in argv:
        with open(path) as f:
            same = f.read() == text
        print("vectors up to date" if same else "vectors differ from tools/make_vectors.py output")
        return 0 if same else 1
    with open(path, "w") as f:
        f.write(text)
    print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
