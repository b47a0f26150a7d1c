"""Sample messages shared by the frame tests (both runtimes)."""

KEY = bytes(range(32))
DEV = 0x0102A0B0


def hello(counter=1):
    return {
        "type": "hello",
        "device_id": DEV,
        "counter": counter,
        "fw_version": "0.1.0",
        "hw": "virtual",
        "provisioned": True,
        "reset_cause": "deepsleep",
        "uid": b"\x01\x02\x03",
    }


def report(counter=5):
    return {
        "type": "report",
        "device_id": DEV,
        "counter": counter,
        "ack_req": True,
        "start": 1750000500,
        "interval_min": 15,
        "samples": [15, 15, 15, 15],
        "stats": {
            "air_temperature": {
                "mean": [20.12, 20.55, None, 21.0],
                "min": [19.9, 20.3, None, 20.91],
                "max": [20.3, 20.8, None, 21.2],
                "count": [15, 15, 0, 14],
            },
            "ndvi": {
                "mean": [0.712, 0.715, 0.716, 0.713],
                "min": [0.7, 0.71, 0.71, 0.7],
                "max": [0.72, 0.72, 0.72, 0.72],
            },
        },
        "health": {"time": 1750003600, "battery_v": 3.912, "power_mode": "full", "faults": ["gnss"]},
    }


def strip(msg):
    out = {}
    for k in msg:
        if k != "auth":
            out[k] = msg[k]
    return out
