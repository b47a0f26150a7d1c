# Config: load and validate the provisioned JSON, defaults, errors that name the key, unprovisioned
# state, get() and the gateway's atomic apply_set(). Runs inside MicroPython.
import binascii
import json
import os
import time

from fieldnode import config
from fieldnode.errors import ConfigError

KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
_n = [0]


def _path():
    _n[0] += 1
    return "/tmp/fieldline_cfg_%d_%d.json" % (time.ticks_us(), _n[0])


def _remove(path):
    for p in (path, path + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass


def _minimal():
    return {"device_id": 4242, "key": KEY_HEX, "site": {"lat": 48.1, "lon": 11.6}}


def _write_text(text):
    path = _path()
    with open(path, "w") as fh:
        fh.write(text)
    return path


def _write(doc):
    return _write_text(json.dumps(doc))


def _read_bytes(path):
    with open(path, "rb") as fh:
        return fh.read()


def _load_error(doc_or_text):
    path = _write_text(doc_or_text) if type(doc_or_text) is str else _write(doc_or_text)
    try:
        config.load(path)
    except ConfigError as e:
        return str(e), e.key
    finally:
        _remove(path)
    assert False, "expected ConfigError for %r" % (doc_or_text,)


def _doc(section, key, value):
    d = _minimal()
    if section is None:
        d[key] = value
    else:
        d.setdefault(section, {})[key] = value
    return d


def test_minimal_file_gets_defaults():
    path = _write(_minimal())
    try:
        cfg = config.load(path)
    finally:
        _remove(path)
    assert cfg.provisioned and cfg.reason is None
    assert cfg.device_id == 4242 and cfg.key == binascii.unhexlify(KEY_HEX) and len(cfg.key) == 32
    assert cfg.name == "" and cfg.lat == 48.1 and cfg.lon == 11.6 and cfg.alt_m == 0.0 and cfg.utc_offset_min == 0
    assert (cfg.sample_s, cfg.summary_min, cfg.report_min, cfg.health_min) == (60, 15, 60, 60)
    assert cfg.spectral_cal == [1.0] * 10
    assert cfg.shortwave_w_m2_per_count == config.DEFAULT_SHORTWAVE
    assert cfg.emissivity == 0.98 and cfg.tilt_offset_deg == 0.0
    assert cfg.gdd_base_c == 10.0 and cfg.gdd_cap_c == 30.0
    thresholds = (cfg.saver_below_pct, cfg.saver_above_pct, cfg.survival_below_pct, cfg.survival_above_pct)
    assert thresholds == (30, 40, 12, 20), thresholds


def test_full_file_roundtrip():
    doc = _minimal()
    doc["name"] = "north-field-3"
    doc["site"].update({"alt_m": 520, "utc_offset_min": -300})
    doc["intervals"] = {"sample_s": 30, "summary_min": 10, "report_min": 120, "health_min": 30}
    doc["calibration"] = {
        "spectral": [1, 1.1, 0.9, 1, 1, 1, 1, 1, 2.5, 0.5],
        "shortwave_w_m2_per_count": 28.5,
        "emissivity": 0.95,
        "tilt_offset_deg": 1.5,
    }
    doc["gdd"] = {"base_c": 8, "cap_c": 8}
    doc["power"] = {"saver_below_pct": 25, "saver_above_pct": 35, "survival_below_pct": 10, "survival_above_pct": 25}
    path = _write(doc)
    try:
        cfg = config.load(path)
    finally:
        _remove(path)
    assert cfg.name == "north-field-3" and cfg.alt_m == 520.0 and cfg.utc_offset_min == -300
    assert (cfg.sample_s, cfg.summary_min, cfg.report_min, cfg.health_min) == (30, 10, 120, 30)
    assert cfg.spectral_cal[1] == 1.1 and cfg.spectral_cal[8] == 2.5 and type(cfg.spectral_cal[0]) is float
    assert cfg.shortwave_w_m2_per_count == 28.5 and cfg.emissivity == 0.95 and cfg.tilt_offset_deg == 1.5
    assert cfg.gdd_base_c == 8.0 == cfg.gdd_cap_c
    assert cfg.survival_above_pct == 25.0 == cfg.saver_below_pct  # the ordering allows equality here


def test_errors_name_the_key():
    cases = (
        (_doc(None, "device_id", 0), "device_id", "1..4294967295"),
        (_doc(None, "device_id", 2**32), "device_id", "1..4294967295"),
        (_doc(None, "device_id", "12"), "device_id", "integer"),
        (_doc(None, "key", KEY_HEX[:-2]), "key", "64 hex"),
        (_doc(None, "key", KEY_HEX[:-1] + "g"), "key", "non-hex"),
        (_doc(None, "name", "x" * 33), "name", "at most 32"),
        (_doc("site", "lat", 90.5), "site.lat", "-90..90"),
        (_doc("site", "lon", True), "site.lon", "number"),
        (_doc("site", "alt_m", 9001), "site.alt_m", "-500..9000"),
        (_doc("site", "utc_offset_min", 60.0), "site.utc_offset_min", "integer"),
        (_doc("intervals", "sample_s", 5), "intervals.sample_s", "10..3600"),
        (_doc("intervals", "sample_s", False), "intervals.sample_s", "integer"),
        (_doc("intervals", "summary_min", 7), "intervals.summary_min", "one of 5, 10, 15, 20, 30, 60"),
        (_doc("intervals", "report_min", 50), "intervals.report_min", "multiple of summary_min"),
        (_doc("intervals", "report_min", 1500), "intervals.report_min", "1..1440"),
        (_doc("intervals", "health_min", 10), "intervals.health_min", "15..1440"),
        (_doc("calibration", "spectral", [1.0] * 9), "calibration.spectral", "10 numbers"),
        (_doc("calibration", "spectral", [1.0] * 9 + [6]), "calibration.spectral", "item 9"),
        (_doc("calibration", "spectral", [1.0] * 9 + [None]), "calibration.spectral", "item 9"),
        (_doc("calibration", "shortwave_w_m2_per_count", 0), "calibration.shortwave_w_m2_per_count", "> 0"),
        (_doc("calibration", "emissivity", 0.85), "calibration.emissivity", "0.9..1.0"),
        (_doc("calibration", "tilt_offset_deg", -1), "calibration.tilt_offset_deg", "0..10"),
        (_doc("gdd", "base_c", 31), "gdd.base_c", "-10..30"),
        (_doc("gdd", "cap_c", 5), "gdd.cap_c", "below base_c"),
        (_doc("power", "saver_below_pct", 15), "power.survival_below_pct", "survival_below < survival_above"),
        (_doc("power", "survival_above_pct", 35), "power.survival_below_pct", "<= saver_below"),
    )
    for doc, key, expect in cases:
        msg, got_key = _load_error(doc)
        assert got_key == key, (key, got_key, msg)
        assert key in msg and expect in msg, (key, expect, msg)
        assert "/tmp/fieldline_cfg_" in msg, msg  # the file is named too


def test_missing_required_keys():
    for drop, key in (("device_id", "device_id"), ("key", "key")):
        d = _minimal()
        del d[drop]
        msg, got = _load_error(d)
        assert got == key and "missing" in msg, msg
    d = _minimal()
    del d["site"]["lon"]
    msg, got = _load_error(d)
    assert got == "site.lon" and "missing" in msg, msg
    for bad in ([48.1, 11.6], None, "48.1,11.6"):
        d = _minimal()
        d["site"] = bad
        msg, got = _load_error(d)
        assert got == "site" and "expected an object" in msg, msg
    d = _minimal()
    d["power"] = None
    msg, got = _load_error(d)
    assert got == "power" and "expected an object" in msg, msg


def test_unknown_keys_are_named():
    d = _minimal()
    d["intervall"] = {"sample_s": 30}
    d["colour"] = "red"
    d["site"]["latitude"] = 1
    msg, got = _load_error(d)
    assert got is None and "unknown keys: colour, intervall, site.latitude" in msg, msg


def test_missing_empty_corrupt_files():
    path = _path()
    try:
        config.load(path)
        assert False, "expected ConfigError for a missing file"
    except ConfigError as e:
        assert path in str(e) and "missing" in str(e), str(e)
    for text, expect in (
        ("", "empty file"),
        ('{"device_id": 1, "key": ', "corrupt JSON"),
        ('{"device_id": 1}}', "corrupt JSON"),
        ('{"device_id": tru}', "corrupt JSON"),
        ("[1, 2, 3]", "JSON object at the top level"),
        ("\x00\x00\x00\x00", "corrupt JSON"),
    ):
        msg, got = _load_error(text)
        assert got is None and expect in msg, (text, msg)
    try:
        config.load("/tmp")  # a directory: unreadable
        assert False, "expected ConfigError for a directory"
    except ConfigError as e:
        assert "/tmp" in str(e), str(e)


def test_unprovisioned_defaults():
    cfg = config.unprovisioned(b"\x24\x6f\x28\x01\x02\x03", "config /flash/config.json: missing")
    assert not cfg.provisioned and cfg.key is None and cfg.reason.endswith("missing")
    assert 1 <= cfg.device_id <= 0xFFFFFFFF
    assert cfg.device_id == config.unprovisioned(b"\x24\x6f\x28\x01\x02\x03", "x").device_id
    assert cfg.device_id != config.unprovisioned(b"\x24\x6f\x28\x01\x02\x04", "x").device_id
    assert config.unprovisioned(b"", "x").device_id != 0  # crc32 of nothing is 0
    assert cfg.lat is None and cfg.lon is None
    assert (cfg.sample_s, cfg.summary_min, cfg.report_min, cfg.health_min) == (60, 15, 60, 60)
    assert cfg.spectral_cal == [1.0] * 10
    path = _path()
    applied, errors = config.apply_set(cfg, {"intervals.sample_s": 30}, path)
    assert applied == {} and "not provisioned" in errors["intervals.sample_s"], errors
    try:
        config.save(cfg, path)
        assert False, "expected ConfigError saving an unprovisioned config"
    except ConfigError as e:
        assert "unprovisioned" in str(e), str(e)
    try:
        os.stat(path)
        assert False, "nothing may be written for an unprovisioned node"
    except OSError:
        pass


def test_get_never_returns_the_key():
    path = _write(_minimal())
    try:
        cfg = config.load(path)
    finally:
        _remove(path)
    allv = config.get(cfg, None)
    assert "key" not in allv and config.get(cfg, []) == allv and len(allv) == 20, allv
    assert allv["site.lat"] == 48.1 and allv["intervals.sample_s"] == 60 and allv["device_id"] == 4242
    assert allv["calibration.spectral"] == [1.0] * 10
    allv["calibration.spectral"][0] = 9.0
    assert cfg.spectral_cal[0] == 1.0  # a copy
    some = config.get(cfg, ["site.lat", "intervals.sample_s", "key", "nonsense"])
    assert some == {"site.lat": 48.1, "intervals.sample_s": 60}, some
    gdd = config.get(cfg, ["gdd"])
    assert gdd == {"gdd.base_c": 10.0, "gdd.cap_c": 30.0}, gdd
    assert config.get(cfg, ["key"]) == {}
    unp = config.get(config.unprovisioned(b"uid", "x"))
    assert "key" not in unp and unp["site.lat"] is None


def test_apply_set_persists():
    path = _write(_minimal())
    try:
        cfg = config.load(path)
        applied, errors = config.apply_set(
            cfg, {"intervals.sample_s": 30, "site.lat": 47, "calibration.spectral": [1.2] * 10}, path
        )
        assert errors == {} and applied == {
            "intervals.sample_s": 30,
            "site.lat": 47.0,
            "calibration.spectral": [1.2] * 10,
        }, (applied, errors)
        assert cfg.sample_s == 30 and cfg.lat == 47.0 and cfg.spectral_cal == [1.2] * 10
        again = config.load(path)
        assert again.sample_s == 30 and again.lat == 47.0 and again.spectral_cal == [1.2] * 10
        assert again.key == cfg.key and again.device_id == 4242 and again.lon == 11.6
        assert config.get(again) == config.get(cfg)
        try:
            os.stat(path + ".tmp")
            assert False, "temp file left behind"
        except OSError:
            pass
        # summary and report changed together: checked against each other, not the old values
        applied, errors = config.apply_set(cfg, {"intervals.summary_min": 20, "intervals.report_min": 40}, path)
        assert errors == {} and config.load(path).report_min == 40, errors
        assert config.apply_set(cfg, {}, path) == ({}, {})
    finally:
        _remove(path)


def test_apply_set_is_atomic():
    path = _write(_minimal())
    try:
        cfg = config.load(path)
        before_file = _read_bytes(path)
        before = config.get(cfg)
        bad_sets = (
            ({"intervals.sample_s": 30, "site.lat": 91}, "site.lat", "-90..90"),
            ({"intervals.sample_s": 30, "intervals.summary_min": 7}, "intervals.summary_min", "one of"),
            ({"intervals.sample_s": 30, "bogus.key": 1}, "bogus.key", "unknown"),
            ({"intervals.sample_s": 30, "key": "00" * 32}, "key", "read-only"),
            ({"device_id": 7}, "device_id", "read-only"),
            ({"intervals.report_min": 50}, "intervals.report_min", "multiple"),  # summary_min 15 stays
            ({"intervals.summary_min": 20, "intervals.report_min": 90}, "intervals.summary_min", "multiple"),
            ({"gdd.cap_c": 9.5}, "gdd.cap_c", "below base_c"),
            ({"power.saver_below_pct": 10.0}, "power.saver_below_pct", "survival_below"),
            ({"site.lon": "11.6"}, "site.lon", "number"),
            ({"intervals.health_min": True}, "intervals.health_min", "integer"),
        )
        for values, key, expect in bad_sets:
            applied, errors = config.apply_set(cfg, values, path)
            assert applied == {} and key in errors and expect in errors[key], (values, errors)
            assert config.get(cfg) == before, values
            assert _read_bytes(path) == before_file, values
        applied, errors = config.apply_set(cfg, {"intervals.sample_s": 30, "site.lat": 91}, path)
        assert list(errors) == ["site.lat"], errors  # the good value gets no error, but is not applied
    finally:
        _remove(path)


def test_apply_set_write_failure_changes_nothing():
    path = _write(_minimal())
    try:
        cfg = config.load(path)
        before = config.get(cfg)
        missing_dir = "/tmp/fieldline_no_such_dir_%d/config.json" % time.ticks_us()
        applied, errors = config.apply_set(cfg, {"intervals.sample_s": 30}, missing_dir)
        assert applied == {} and "not saved" in errors["intervals.sample_s"], errors
        assert config.get(cfg) == before
    finally:
        _remove(path)


def test_save_then_load_is_identity():
    path = _write(_minimal())
    out = _path()
    try:
        cfg = config.load(path)
        config.save(cfg, out)
        assert config.get(config.load(out)) == config.get(cfg) and config.load(out).key == cfg.key
    finally:
        _remove(path)
        _remove(out)
