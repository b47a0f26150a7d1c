"""One node-day of realistic messages, the way the node sends them (hourly report frames).

    frames = day_messages(seed=1)   # 24 report messages: 4 intervals + health each, daily at the end

Values come from a small synthetic day at 60 s sampling (diurnal air temperature and
humidity, clear-sky irradiance with clouds, NDVI only while the sun is up, pressure
drift, sensor noise), summarised per 15-minute interval exactly as the node does: mean,
min, max per quantity. Pure Python: runs on CPython and on MicroPython.
"""

import math

from shared_protocol.quantities import INTERVAL_QUANTITIES, RANGED

# the node's interval quantity set, and those whose interval range (min/max) it sends
QUANTITY_SET = INTERVAL_QUANTITIES
START = 1750032000  # 2025-06-16 00:00 UTC
DEV = 0x0102A0B0


class _Rng:
    def __init__(self, seed):
        self.s = (seed * 2654435761) & 0xFFFFFFFF or 1

    def u(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s / 4294967296.0

    def g(self, sigma):
        return (self.u() + self.u() + self.u() + self.u() - 2.0) * sigma * 1.732


def _sample(minute, rng, cloud):
    h = minute / 60.0
    sun = math.sin(math.pi * (h - 5.0) / 15.0) if 5.0 < h < 20.0 else 0.0
    irr = max(0.0, 950.0 * sun**1.2 * cloud + rng.g(4.0)) if sun > 0 else 0.0
    air = 17.0 + 7.0 * math.sin(2 * math.pi * (h - 9.0) / 24.0) + rng.g(0.05)
    rh = min(100.0, max(5.0, 65.0 - 25.0 * math.sin(2 * math.pi * (h - 9.0) / 24.0) + rng.g(0.3)))
    v = {
        "incident_shortwave": irr,
        "canopy_temperature": air - 1.0 * sun + rng.g(0.08),
        "sky_temperature": air - 22.0 + 15.0 * (1 - cloud) + rng.g(0.2),
        "air_temperature": air,
        "relative_humidity": rh,
        "air_pressure": 101300.0 - 60.0 * h / 24.0 + rng.g(3.0),
    }
    if irr > 20.0:  # reflectance needs light: none at night
        v["ndvi"] = 0.78 + rng.g(0.004)
        v["chlorophyll_index"] = 4.6 + rng.g(0.03)
    return v


def day_messages(seed=1, device_id=DEV, counter0=1):
    """The 24 hourly report messages of one day (the last carries the daily summary)."""
    rng = _Rng(seed)
    msgs = []
    cloud = 1.0
    day = {"air": [], "canopy": [], "rh": [], "ndvi": []}
    for hour in range(24):
        samples = []
        stats = {}
        for q in QUANTITY_SET:
            stats[q] = {"mean": [], "min": [], "max": [], "count": []}
        for k in range(4):
            acc = {}
            for m in range(15):
                minute = hour * 60 + k * 15 + m
                if minute % 20 == 0:
                    cloud = 1.0 if rng.u() < 0.7 else 0.4 + 0.5 * rng.u()
                s = _sample(minute, rng, cloud)
                for q in s:
                    acc.setdefault(q, []).append(s[q])
                day["air"].append(s["air_temperature"])
                day["canopy"].append(s["canopy_temperature"])
                day["rh"].append(s["relative_humidity"])
                if "ndvi" in s and 10 * 60 <= minute < 14 * 60:
                    day["ndvi"].append(s["ndvi"])
            samples.append(15)
            for q in QUANTITY_SET:
                xs = acc.get(q)
                col = stats[q]
                if not xs:
                    for c in ("mean", "min", "max"):
                        col[c].append(None)
                    col["count"].append(0)
                    continue
                col["mean"].append(sum(xs) / len(xs))
                col["min"].append(min(xs))
                col["max"].append(max(xs))
                col["count"].append(len(xs))
        for q in QUANTITY_SET:
            if q not in RANGED:
                del stats[q]["min"], stats[q]["max"]
        msg = {
            "type": "report",
            "device_id": device_id,
            "counter": counter0 + hour,
            "ack_req": True,
            "start": START + hour * 3600,
            "interval_min": 15,
            "samples": samples,
            "stats": stats,
            "health": {
                "battery_v": 3.95 - 0.002 * hour,
                "battery_soc": round(80.0 - 0.3 * hour),
                "solar_a": 0.12 if 6 <= hour <= 19 else -0.004,
                "power_mode": "full",
                "reset_cause": "deepsleep",
                "uptime_h": 24 * 3 + hour,
                "free_heap_kb": 51,
                "log_fill_pct": 2,
                "link": {"tx_frames": 1, "acked_frames": 1},
                "tilt_deg": 1.1,
                "clock_offset_ms": -40 + hour,
                "log_pending": 0,
            },
        }
        msgs.append(msg)
    air, can = day["air"], day["canopy"]
    msgs[-1]["daily"] = {
        "date": START // 86400,
        "ndvi_midday": sum(day["ndvi"]) / len(day["ndvi"]),
        "chlorophyll_midday": 4.6,
        "air_t_min": min(air),
        "air_t_max": max(air),
        "air_t_mean": sum(air) / len(air),
        "canopy_t_min": min(can),
        "canopy_t_max": max(can),
        "canopy_t_mean": sum(can) / len(can),
        "canopy_air_diff_midday": -1.0,
        "gdd": max(0.0, (min(air) + max(air)) / 2 - 10.0),
        "incident_mj_m2": 24.5,
        "samples": 1440,
        "intervals": 96,
        "rh_min": min(day["rh"]),
        "rh_max": max(day["rh"]),
        "pressure_mean": 101270.0,
        "utc_offset_min": 0,
    }
    return msgs


def rounded(msg):
    """The message with every statistic rounded to its wire resolution (what arrives)."""
    from shared_protocol import decode_frame, encode_frame

    key = bytes(32)
    out = decode_frame(encode_frame(msg, key), {msg["device_id"]: key})
    out.pop("auth")
    return out
