"""Answers to diagnostics requests: what an installer or the gateway asks a node about itself.

    items, errors = answer(node, ["identity", "tilt", "sensors"])
    answer(node, [], send)          # or one frame per item: send(items, errors)

Items: identity, firmware, config, tilt, gnss, sensors (raw reads of every sensor), power,
link, clock, log, faults. An empty list means all of them. A sensor that fails is an
error entry naming the sensor and what went wrong, never a crash. One function answers
every item: this module is loaded at the node's busiest moment, and each function costs heap.
"""

from array import array

from fieldnode import FW_VERSION
from fieldnode.errors import NodeError

ITEMS = "identity firmware config tilt gnss sensors power link clock log faults"


def answer(node, items, send=None):
    """Answer ``items`` (all when empty). With ``send(items, errors)`` each item goes out on
    its own as soon as it is known (small frames, little heap); else returns (items, errors)."""
    out, errors = {}, {}
    for name in items or ITEMS.split():
        try:
            value = _item(node, name)
        except (NodeError, OSError, ValueError) as e:
            errors[name] = str(e)
            continue
        if send is None:
            out[name] = value
        else:
            send({name: value}, None)
        value = None
    if send is None:
        return out, errors
    if errors:
        send({}, errors)
    return None, None


def _item(n, name):
    b, s, c, lk = n.board, n.sensors, n.cfg, n.link
    if name == "identity":
        return {"device_id": c.device_id, "name": c.name, "hw": b.hw, "uid": b.uid.hex(),
                "provisioned": c.provisioned, "reason": getattr(c, "reason", "")}
    if name == "firmware":
        return {"version": FW_VERSION, "reset_cause": n.cause, "uptime_s": b.uptime_s(), "free_heap": b.mem_free()}
    if name == "config":  # the loaded settings (not the config module: its code is not kept in RAM)
        d = {}
        for k in c.__dict__:
            if k != "key":
                v = getattr(c, k)
                d[k] = [round(x, 4) for x in v] if type(v) is array else v
        return d
    if name == "tilt":
        t = s.read_tilt()
        if t is None:
            raise NodeError(s.errors.get("accelerometer", "accelerometer failed"))
        n.last_tilt = t
        return {"tilt_deg": round(t, 2)}
    if name == "gnss":
        g = s.poll_gnss()
        if g is None:
            return {"present": False}
        return {"fix": g.fix, "lat": g.lat, "lon": g.lon, "alt_m": g.alt_m, "sats": g.sats, "hdop": g.hdop,
                "utc": g.utc_epoch, "bad_checksum": g.bad_checksum}
    f = s.faults
    if name == "sensors":
        r = s.read()
        d = {"spectral_up": [round(v, 2) for v in r.up] if "spectral_up" not in f else None,
             "spectral_down": [round(v, 2) for v in r.down] if "spectral_down" not in f else None,
             "ir_canopy_c": r.ir_canopy_c, "ir_sky_c": r.ir_sky_c, "air_c": r.air_c, "rh_pct": r.rh_pct,
             "pressure_pa": r.pressure_pa}
        for k in s.errors:
            if k in f:
                d[k + "_error"] = s.errors[k]
        return d
    if name == "power":
        r = s.read_power()
        return {"battery_v": r.battery_v, "soc_pct": r.soc_pct, "solar_a": r.solar_a, "mode": n.power.mode}
    if name == "link":
        d = lk.stats()
        d["rx_frames"] = lk.rx_frames
        d["failed"] = lk.failed
        return d
    if name == "clock":
        return {"time_ms": b.time_ms(), "synced": n.synced, "offset_ms": n.clock_offset_ms}
    if name == "log":
        lg = n.log
        return {"pending": lg.count_pending, "fill_pct": lg.fill_pct(), "dropped": lg.dropped, "corrupt": lg.corrupt}
    if name == "faults":
        return sorted(f)
    raise ValueError("unknown item; known: " + ITEMS)
