from shared_protocol import (
    decode_frame,
    encode_frame,
)
from shared_protocol.tests.samples import DEV, KEY, hello, report, strip
from shared_protocol.tests.support import close


def test_hello_roundtrip_hmac_and_crc():
    m = hello()
    got = decode_frame(encode_frame(m, KEY), {DEV: KEY})
    assert got["auth"] == "hmac"
    assert strip(got) == m
    got = decode_frame(encode_frame(m, None), {})
    assert got["auth"] == "crc"
    assert strip(got) == m


def test_report_roundtrip_with_gaps_and_counts():
    m = report()
    wire = encode_frame(m, KEY)
    assert wire[-1] == 0 and 0 not in wire[:-1]
    got = decode_frame(wire, {DEV: KEY})
    s = got["stats"]["air_temperature"]
    assert close(s["mean"], [20.1, 20.6, None, 21.0])  # 0.1 degC on the wire
    assert close(s["min"], [19.9, 20.3, None, 20.9])
    assert s["count"] == [15, 15, 0, 14]
    n = got["stats"]["ndvi"]
    assert n["count"] == [15, 15, 15, 15]  # omitted on the wire, filled from samples
    assert close(n["mean"], [0.712, 0.715, 0.716, 0.713])
    assert got["health"]["faults"] == ["gnss"]
    assert got["ack_req"] is True


def test_every_message_type_roundtrips():
    msgs = [
        {"type": "daily", "date": 20300, "ndvi_midday": 0.81, "gdd": 12.5, "air_t_min": -2.5, "rh_min": 35.0},
        {"type": "health", "time": 1750000000, "battery_soc": 55.0, "link": {"tx_frames": 3, "rssi_dbm": -80}},
        {"type": "ack", "counters": [1, 2, 3], "rejected": [9]},
        {"type": "time_sync", "t1_ms": 1750000000123, "t2_ms": 1750000000200, "t3_ms": 1750000000201},
        {"type": "config_get", "keys": ["interval_s"]},
        {"type": "config_set", "values": {"interval_s": 600, "site": {"lat": 52.1, "lon": 5.2}}},
        {"type": "config", "values": {"interval_s": 600}, "errors": {"sample_s": "must be 10..3600"}},
        {"type": "diag_request", "req_id": 7, "items": ["tilt", "battery"]},
        {"type": "diag_response", "req_id": 7, "items": {"tilt": {"deg": 1.5}, "battery": {"v": 3.9}}},
        {"type": "log", "time": 1750000000, "level": "warning", "text": "sht4x: bad CRC"},
    ]
    c = 10
    for m in msgs:
        c += 1
        m["device_id"] = DEV
        m["counter"] = c
        got = decode_frame(encode_frame(m, KEY), {DEV: KEY})
        assert close(strip(got), m), (m, got)
