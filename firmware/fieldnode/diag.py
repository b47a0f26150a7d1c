"""Answers to diagnostics requests: what an installer or the gateway asks a node about itself.

    items, errors = answer(node, ["identity", "tilt", "sensors"])
    answer(node, [], send)          # or one frame per item: send(items, errors)

Items: identity, firmware, config, tilt, gnss, sensors (raw reads of every sensor), power,
link, clock, log, faults. An empty list means all of them. A sensor that fails is an
error entry naming the sensor and what went wrong, never a crash.
"""

from array import array

from fieldnode import FW_VERSION
from fieldnode.errors import NodeError

ITEMS = ("identity", "firmware", "config", "tilt", "gnss", "sensors", "power", "link", "clock", "log", "faults")


def answer(node, items, send=None):
    """Answer ``items`` (all when empty). With ``send(items, errors)`` each item goes out on
    its own as soon as it is known (small frames, little heap); else returns (items, errors)."""
    out, errors = {}, {}
    for name in items or ITEMS:
        fn = _ANSWERS.get(name)
        if fn is None:
            errors[name] = "unknown item; known: " + " ".join(ITEMS)
            continue
        try:
            value = fn(node)
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


def _identity(n):
    c = n.cfg
    return {"device_id": c.device_id, "name": c.name, "hw": n.board.hw, "uid": n.board.uid.hex(),
            "provisioned": c.provisioned, "reason": getattr(c, "reason", "")}


def _firmware(n):
    return {"version": FW_VERSION, "reset_cause": n.cause, "uptime_s": n.board.uptime_s(),
            "free_heap": n.board.mem_free()}


def _config(n):
    c = n.cfg  # the loaded settings (not the config module: its code is not kept in RAM)
    out = {}
    for k in c.__dict__:
        if k != "key":
            v = getattr(c, k)
            out[k] = [round(x, 4) for x in v] if type(v) is array else v
    return out


def _tilt(n):
    t = n.sensors.read_tilt()
    if t is None:
        raise NodeError(n.sensors.errors.get("accelerometer", "accelerometer failed"))
    n.last_tilt = t
    return {"tilt_deg": round(t, 2)}


def _gnss(n):
    g = n.sensors.poll_gnss()
    if g is None:
        return {"present": False}
    return {"fix": g.fix, "lat": g.lat, "lon": g.lon, "alt_m": g.alt_m, "sats": g.sats, "hdop": g.hdop,
            "utc": g.utc_epoch, "bad_checksum": g.bad_checksum}


def _sensors(n):
    s = n.sensors.read()
    d = {"spectral_up": [round(v, 2) for v in s.up] if "spectral_up" not in n.sensors.faults else None,
         "spectral_down": [round(v, 2) for v in s.down] if "spectral_down" not in n.sensors.faults else None,
         "ir_canopy_c": s.ir_canopy_c, "ir_sky_c": s.ir_sky_c, "air_c": s.air_c, "rh_pct": s.rh_pct,
         "pressure_pa": s.pressure_pa}
    for k in n.sensors.errors:
        if k in n.sensors.faults:
            d[k + "_error"] = n.sensors.errors[k]
    return d


def _power(n):
    s = n.sensors.read_power()
    return {"battery_v": s.battery_v, "soc_pct": s.soc_pct, "solar_a": s.solar_a, "mode": n.power.mode}


def _link(n):
    d = n.link.stats()
    d["rx_frames"] = n.link.rx_frames
    d["failed"] = n.link.failed
    return d


def _clock(n):
    return {"time_ms": n.board.time_ms(), "synced": n.synced, "offset_ms": n.clock_offset_ms}


def _log(n):
    lg = n.log
    return {"pending": lg.count_pending, "fill_pct": lg.fill_pct(), "dropped": lg.dropped, "corrupt": lg.corrupt}


def _faults(n):
    return sorted(n.sensors.faults)


_ANSWERS = {
    "identity": _identity,
    "firmware": _firmware,
    "config": _config,
    "tilt": _tilt,
    "gnss": _gnss,
    "sensors": _sensors,
    "power": _power,
    "link": _link,
    "clock": _clock,
    "log": _log,
    "faults": _faults,
}
