"""Gateway configuration: one TOML file, validated on load into frozen dataclasses.

    cfg = load_config("/etc/fieldline/gateway.toml")   # or ConfigError "gateway.toml:12: uplinks[1].port: ..."
    cfg.sources[0].port, cfg.uplinks[0]["kind"], cfg.status.port

Every error is a ConfigError naming the file, the line of the offending key (of its table header
when the key is missing), the dotted key (``uplinks[1].port``), what was expected and what was
found. Relative paths are resolved against the config file's directory. The schema, with its
defaults, is ``gateway/gateway.example.toml``. ``TomlDoc`` and ``TableReader`` (line-aware typed
reads) are shared with ``registry.py``.
"""

import dataclasses
import datetime
import difflib
import importlib
import ipaddress
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gateway.errors import ConfigError
from gateway.stream import RULES, UNITS

LOG_LEVELS = ("debug", "info", "warning", "error")
SOURCE_KINDS = ("node",)
LATER_SOURCE_KINDS = ("sdi12", "modbus", "ble")  # each validated by gateway.sources.<kind>.check_config
UPLINK_KINDS = ("file", "mqtt", "http")
BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
DEFAULT_DATA_DIR = "fieldline-data"
DEFAULT_REGISTRY = "devices.toml"
DEFAULT_TOPIC = "fieldline/{gateway}/stream"
SECONDS_PER_DAY = 86400

_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_MISSING = object()

_UPLINK_COMMON = ("kind", "backoff_min_s", "backoff_max_s")
_UPLINK_KEYS = {
    "file": ("path", "fsync", "max_mb"),
    "mqtt": ("host", "port", "topic", "client_id", "username", "password", "keepalive_s", "max_inflight",
             "timeout_s", "tls"),
    "http": ("url", "token", "timeout_s", "max_inflight", "tls"),
}  # fmt: skip
_TLS_KEYS = ("ca", "cert", "key", "insecure")
_SECRETS = ("password", "token")


@dataclass(frozen=True)
class SourceConfig:
    kind: str
    name: str
    port: str = ""  # serial device path or pyserial URL (node, sdi12, modbus)
    baudrate: int = 115200
    reopen_s: float = 2.0
    # kind-specific settings, validated by gateway.sources.<kind>.check_config(table_reader)
    options: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class OutboxConfig:
    max_mb: int = 512
    alert_fraction: float = 0.8
    batch_max_items: int = 12800


@dataclass(frozen=True)
class StatusConfig:
    bind: str = "127.0.0.1"
    port: int = 8780
    token: str = field(default="", repr=False)
    health_every_s: int = 300


@dataclass(frozen=True)
class FieldConfig:
    """A field for the daily agronomic values (gateway.daily): its nodes, site, wind and crop."""

    name: str
    nodes: tuple  # device ids, or ("*",): every node not in another field
    lat: float
    lon: float
    elevation_m: float = 0.0  # used when a node reports no pressure
    utc_offset_min: int | None = None  # the nodes' own offset is used when they report it
    wind_source: str = ""  # stream source of the field's anemometer ("wind_speed"); "" = none
    wind_height_m: float = 2.0
    gdd_base_c: float = 10.0
    gdd_cap_c: float = 30.0  # as the node's default
    gdd_method: str = "modified"
    season_start: str = ""  # "YYYY-MM-DD"; "" = 1 January of the day's year
    cwsi_lower_a: float = 3.11  # non-water-stressed baseline dT = a + b VPD (degC, degC/kPa)
    cwsi_lower_b: float = -1.97
    cwsi_upper: float = 5.0  # non-transpiring upper limit of dT, degC
    kc_min: float = 0.15  # Kc from NDVI: kc_min at ndvi_min (bare soil) .. kc_max at ndvi_max (full cover)
    kc_max: float = 1.20
    ndvi_min: float = 0.15
    ndvi_max: float = 0.90


_FIELD_KEYS = tuple(f.name for f in dataclasses.fields(FieldConfig))
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True, repr=False)
class GatewayConfig:
    gateway_id: str
    data_dir: Path
    log_level: str
    grid_s: int
    lateness_s: int
    rules: dict  # quantity -> mean|sum|last|min|max (only the configured ones; stream.DEFAULT_RULES apply otherwise)
    registry_path: Path
    sources: tuple  # SourceConfig, ...
    outbox: OutboxConfig
    uplinks: tuple  # one dict of validated options per uplink, "kind" included; unset optional ones absent
    status: StatusConfig
    fields: tuple = ()  # FieldConfig, ...: daily agronomic values (gateway.daily); none = not computed
    path: Path | None = None  # the file it came from (None: parsed from a string)

    def __repr__(self):  # safe to log: uplink passwords and tokens are masked
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown["uplinks"] = tuple({k: "***" if k in _SECRETS and v else v for k, v in u.items()} for u in self.uplinks)
        return "GatewayConfig(%s)" % ", ".join("%s=%r" % kv for kv in shown.items())


def read_text(path, what="a readable TOML file"):
    """The UTF-8 text of ``path``; ConfigError (key "(file)") if it cannot be read or decoded."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("(file)", "UTF-8 text", path=path, got="undecodable byte at offset %d" % e.start) from e
    except OSError as e:
        raise ConfigError("(file)", what, path=path, got=e.strerror) from e


def load_config(path):
    """Read and validate the gateway config file at ``path``; raise ConfigError on any problem."""
    path = os.path.abspath(os.fspath(path))
    return parse_config(read_text(path), path=path, base_dir=os.path.dirname(path))


def parse_config(text, path="<string>", base_dir=None):
    """Validate TOML ``text``; relative paths resolve against ``base_dir`` (default: ``path``'s folder, or cwd)."""
    if base_dir is None:
        base_dir = os.getcwd() if path == "<string>" else os.path.dirname(os.path.abspath(path))
    doc = TomlDoc(text, path)
    cfg = _build(doc.root(), os.path.abspath(base_dir))
    return dataclasses.replace(cfg, path=None if path == "<string>" else Path(path))


def default_config(data_dir, gateway_id="gw-demo"):
    """A valid config for demos: no sources, one file uplink at <data_dir>/stream.jsonl."""
    data_dir = os.path.abspath(os.fspath(data_dir))
    data = {"gateway": {"id": gateway_id, "data_dir": data_dir}, "registry": {"path": DEFAULT_REGISTRY}}
    return _build(TableReader(TomlDoc.from_data(data, "<default>"), data), data_dir)


def is_loopback(bind):
    """True when ``bind`` only listens on this machine ("localhost", 127.0.0.0/8, ::1)."""
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


# ---- the schema ----


def _build(root, base_dir):
    root.only(("gateway", "stream", "registry", "sources", "outbox", "uplinks", "status", "fields"))
    gw = root.table("gateway", ("id", "data_dir", "log_level"))
    gateway_id = gw.text("id", expected="1-64 characters from A-Z a-z 0-9 . _ -", pattern=_NAME)
    data_dir = _resolve(base_dir, gw.text("data_dir", DEFAULT_DATA_DIR, "a directory path"))
    log_level = gw.text("log_level", "info", choices=LOG_LEVELS)

    st = root.table("stream", ("grid_s", "lateness_s", "rules"))
    grid_s = st.integer("grid_s", 900, 60, SECONDS_PER_DAY)
    if SECONDS_PER_DAY % grid_s:
        st.fail("grid_s", "an integer in 60..86400 that divides 86400 (e.g. 300, 600, 900, 1800, 3600)", grid_s)
    lateness_s = st.integer("lateness_s", 7200, 0, 604800)
    rules_t = st.table("rules", tuple(sorted(UNITS)))
    rules = {q: rules_t.text(q, choices=RULES) for q in rules_t.data}

    reg = root.table("registry", ("path",))
    registry_path = _resolve(base_dir, reg.text("path", DEFAULT_REGISTRY, "a file path"))

    sources = tuple(_source(t) for t in root.tables("sources"))
    seen = {}
    for i, s in enumerate(sources):
        if s.name in seen:
            root.fail(("sources", i, "name"), "a name unique among sources (sources[%d] has it)" % seen[s.name], s.name)
        seen[s.name] = i

    ob = root.table("outbox", ("max_mb", "alert_fraction", "batch_max_items"))
    outbox = OutboxConfig(
        max_mb=ob.integer("max_mb", OutboxConfig.max_mb, 1, 1000000),
        alert_fraction=ob.number("alert_fraction", OutboxConfig.alert_fraction, 0.1, 1.0),
        batch_max_items=ob.integer("batch_max_items", OutboxConfig.batch_max_items, 1, 100000),
    )

    # options left unset (client_id, username, password, token, tls) are absent: the uplink's defaults apply
    uplinks = tuple({k: v for k, v in _uplink(t, base_dir).items() if v is not None} for t in root.tables("uplinks"))
    if not uplinks:
        uplinks = (_file_uplink(os.path.join(data_dir, "stream.jsonl")),)

    sv = root.table("status", ("bind", "port", "token", "health_every_s"))
    bind = sv.text("bind", StatusConfig.bind, "an IP address or host name")
    if not _is_address(bind):
        sv.fail("bind", "an IP address or host name", bind)
    token = sv.text("token", "", "a string", secret=True, empty=True)
    if not token and not is_loopback(bind):
        sv.fail("token", "a token when bind is not a loopback address")
    status = StatusConfig(
        bind=bind,
        port=sv.integer("port", StatusConfig.port, 0, 65535),
        token=token,
        health_every_s=sv.integer("health_every_s", StatusConfig.health_every_s, 10, 86400),
    )
    fields = tuple(_field(t) for t in root.tables("fields"))
    names = {}
    for i, fc in enumerate(fields):
        if fc.name in names:
            root.fail(("fields", i, "name"), "a name unique among fields (fields[%d] has it)" % names[fc.name], fc.name)
        names[fc.name] = i
    return GatewayConfig(
        gateway_id=gateway_id,
        data_dir=Path(data_dir),
        log_level=log_level,
        grid_s=grid_s,
        lateness_s=lateness_s,
        rules=rules,
        registry_path=Path(registry_path),
        sources=sources,
        outbox=outbox,
        uplinks=uplinks,
        status=status,
        fields=fields,
    )


def _field(t):
    t.only(_FIELD_KEYS)
    nodes = t.data.get("nodes")
    ok = isinstance(nodes, list) and nodes and (
        nodes == ["*"] or all(type(d) is int and 0 <= d <= 0xFFFFFFFF for d in nodes))
    if not ok:
        t.fail("nodes", 'a list of device ids (integers), or ["*"] for every node in no other field', nodes)
    d = FieldConfig
    kc_min = t.number("kc_min", d.kc_min, 0.0, 2.0)
    kc_max = t.number("kc_max", d.kc_max, 0.0, 2.0)
    ndvi_min = t.number("ndvi_min", d.ndvi_min, -1.0, 1.0)
    ndvi_max = t.number("ndvi_max", d.ndvi_max, -1.0, 1.0)
    if ndvi_max <= ndvi_min:
        t.fail("ndvi_max", "a number above ndvi_min (%g)" % ndvi_min, ndvi_max)
    season = t.text("season_start", "", "a date YYYY-MM-DD", pattern=_DATE)
    if season:
        try:
            datetime.date.fromisoformat(season)
        except ValueError:
            t.fail("season_start", "a valid date YYYY-MM-DD", season)
    offset = t.integer("utc_offset_min", None, -840, 840) if "utc_offset_min" in t.data else None
    return FieldConfig(
        name=t.text("name", expected="1-64 characters from A-Z a-z 0-9 . _ -", pattern=_NAME),
        nodes=tuple(nodes),
        lat=t.number("lat", lo=-90.0, hi=90.0),
        lon=t.number("lon", lo=-180.0, hi=180.0),
        elevation_m=t.number("elevation_m", d.elevation_m, -500.0, 9000.0),
        utc_offset_min=offset,
        wind_source=t.text("wind_source", "", "the name of a source with wind_speed", pattern=_NAME),
        wind_height_m=t.number("wind_height_m", d.wind_height_m, 0.5, 100.0),
        gdd_base_c=t.number("gdd_base_c", d.gdd_base_c, -20.0, 40.0),
        gdd_cap_c=t.number("gdd_cap_c", d.gdd_cap_c, -20.0, 60.0),
        gdd_method=t.text("gdd_method", d.gdd_method, choices=("average", "modified")),
        season_start=season,
        cwsi_lower_a=t.number("cwsi_lower_a", d.cwsi_lower_a, -20.0, 20.0),
        cwsi_lower_b=t.number("cwsi_lower_b", d.cwsi_lower_b, -20.0, 20.0),
        cwsi_upper=t.number("cwsi_upper", d.cwsi_upper, -20.0, 30.0),
        kc_min=kc_min,
        kc_max=kc_max,
        ndvi_min=ndvi_min,
        ndvi_max=ndvi_max,
    )


def source_module(kind):
    """gateway.sources.<kind> if it exists (it provides check_config(t) and make_source(cfg, ctx))."""
    try:
        return importlib.import_module("gateway.sources." + kind)
    except ModuleNotFoundError:
        return None


def _source(t):
    kind = t.data.get("kind")
    if kind in LATER_SOURCE_KINDS:
        mod = source_module(kind)
        if mod is None or not hasattr(mod, "check_config"):
            t.fail("kind", '"node" (%s sources are not supported yet)' % kind, kind)
        t.text("name", expected="a name of 1-64 characters from A-Z a-z 0-9 . _ -", pattern=_NAME)
        return mod.check_config(t)  # a SourceConfig with its options
    t.only(("kind", "name", "port", "baudrate", "reopen_s"))
    return SourceConfig(
        kind=t.text("kind", choices=SOURCE_KINDS + LATER_SOURCE_KINDS),
        name=t.text("name", expected="a name of 1-64 characters from A-Z a-z 0-9 . _ -", pattern=_NAME),
        port=t.text("port", expected="a serial device path or pyserial URL"),
        baudrate=t.integer("baudrate", SourceConfig.baudrate, choices=BAUDRATES),
        reopen_s=t.number("reopen_s", SourceConfig.reopen_s, 0.1, 60.0),
    )


def _uplink(t, base_dir):
    every = _UPLINK_COMMON + tuple(k for keys in _UPLINK_KEYS.values() for k in keys)
    t.only(_UPLINK_COMMON, typos_only=True)  # "knd" before "kind is required"
    kind = t.text("kind", choices=UPLINK_KINDS)
    owners = {k: " and ".join(o for o in UPLINK_KINDS if k in _UPLINK_KEYS[o]) + " uplinks" for k in every}
    t.only(_UPLINK_COMMON + _UPLINK_KEYS[kind], owners, 'a key of a kind = "%s" uplink' % kind)
    lo = t.number("backoff_min_s", 1.0, 0.0, lo_open=True)
    hi = t.number("backoff_max_s", 60.0, lo, expected="a number >= backoff_min_s (%g)" % lo)
    if kind == "file":
        return _file_uplink(_resolve(base_dir, t.text("path", expected="a file path")),
                            t.flag("fsync", True), t.integer("max_mb", 0, 0, 1000000), lo, hi)  # fmt: skip
    if kind == "mqtt":
        tls = _tls(t, base_dir)
        topic = t.text("topic", DEFAULT_TOPIC, 'an MQTT topic without wildcards, "{gateway}" allowed')
        try:
            ok = "+" not in topic and "#" not in topic and bool(topic.format(gateway="gw"))
        except (KeyError, IndexError, ValueError):
            ok = False
        if not ok:
            t.fail("topic", 'an MQTT topic without wildcards, "{gateway}" the only placeholder', topic)
        username = t.text("username", None)
        password = t.text("password", None, secret=True)
        if password is not None and username is None:
            t.fail("username", "a username when password is set")
        return {
            "kind": "mqtt", "backoff_min_s": lo, "backoff_max_s": hi,
            "host": t.text("host", expected="a broker host name or address"),
            "port": t.integer("port", 8883 if tls else 1883, 1, 65535),
            "topic": topic, "client_id": t.text("client_id", None), "username": username, "password": password,
            "keepalive_s": t.integer("keepalive_s", 30, 0, 65535),
            "max_inflight": t.integer("max_inflight", 32, 1, 65535),
            "timeout_s": t.number("timeout_s", 10.0, 0.0, 3600.0, lo_open=True),
            "tls": tls,
        }  # fmt: skip
    url = t.text("url", expected="an http:// or https:// URL")
    if not re.match(r"https?://[^/?#\s]+", url):
        t.fail("url", "an http:// or https:// URL", url)
    tls = _tls(t, base_dir)
    if tls and not url.startswith("https://"):
        t.fail("tls", "an https:// url when tls is set")
    return {
        "kind": "http", "backoff_min_s": lo, "backoff_max_s": hi, "url": url,
        "token": t.text("token", None, secret=True),
        "timeout_s": t.number("timeout_s", 10.0, 0.0, 3600.0, lo_open=True),
        "max_inflight": t.integer("max_inflight", 4, 1, 1000),
        "tls": tls,
    }  # fmt: skip


def _file_uplink(path, fsync=True, max_mb=0, backoff_min_s=1.0, backoff_max_s=60.0):
    return {"kind": "file", "backoff_min_s": backoff_min_s, "backoff_max_s": backoff_max_s,
            "path": path, "fsync": fsync, "max_mb": max_mb}  # fmt: skip


def _tls(t, base_dir):
    """None (no TLS) or {"ca", "cert", "key": absolute paths or None, "insecure": bool}; ``tls = true`` = {}."""
    v = t.data.get("tls")
    if v is None or v is False:
        return None
    if v is True:
        return {"ca": None, "cert": None, "key": None, "insecure": False}
    tt = t.table("tls", _TLS_KEYS)
    out = {"insecure": tt.flag("insecure", False)}
    for name in ("ca", "cert", "key"):
        p = tt.text(name, None, "a file path")
        if p is not None:
            p = _resolve(base_dir, p)
            if not os.path.isfile(p):
                tt.fail(name, "an existing file", p)
        out[name] = p
    if (out["cert"] is None) != (out["key"] is None):
        missing = "key" if out["key"] is None else "cert"
        tt.fail(missing, "tls.cert and tls.key together (a client certificate needs its key)")
    return out


def _resolve(base_dir, p):
    return os.path.abspath(os.path.join(base_dir, os.path.expanduser(p)))


def _is_address(bind):
    try:
        ipaddress.ip_address(bind)
        return True
    except ValueError:
        return bool(_HOST.match(bind))


# ---- line-aware TOML reading (shared with registry.py) ----


class TomlDoc:
    """A parsed TOML document plus where each key sits: ``error(key, ...)`` builds a ConfigError."""

    def __init__(self, text, path):
        self.path = path
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise _syntax_error(e, text, path) from e
        self.lines = LineIndex(text)

    @classmethod
    def from_data(cls, data, path):
        doc = cls.__new__(cls)
        doc.path, doc.data, doc.lines = path, data, LineIndex("")
        return doc

    def root(self):
        return TableReader(self, self.data)

    def error(self, key, expected, got=None):
        return ConfigError(dotted(key), expected, self.lines.line_of(key), self.path, got)


def _syntax_error(e, text, path):
    msg = str(e)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
    if m:
        line, detail = int(m.group(1)), "%s at column %s" % (msg[: m.start()], m.group(2))
    else:
        line, detail = max(1, len(text.splitlines())), msg.replace("(at end of document)", "at the end of the file")
    detail = detail[:1].lower() + detail[1:]
    return ConfigError("TOML syntax", "valid TOML (%s)" % detail.strip(), line, path)


def dotted(key):
    """('uplinks', 1, 'tls', 'ca') -> 'uplinks[1].tls.ca'."""
    out = ""
    for part in key:
        if isinstance(part, int):
            out += "[%d]" % part
        else:
            part = part if _BARE_KEY.match(part) else '"%s"' % part
            out += ("." if out else "") + part
    return out


class LineIndex:
    """Line (1-based) of every table header and key in a TOML text, by path ("sources", 0, "port").

    Array-of-tables entries are numbered as tomllib numbers them. A key inside an inline table or
    a multi-line array maps to the line of the key that holds it (``line_of`` falls back to the
    nearest enclosing path); a missing key maps to its table's header.
    """

    def __init__(self, text):
        self.lines, self._aot = {}, {}
        table, depth, ml = (), 0, None
        for n, line in enumerate(text.splitlines(), 1):
            if ml or depth:  # continuation of a multi-line string or array
                depth, ml = _scan_value(line, 0, depth, ml)
                continue
            s = line.lstrip()
            if s.startswith("[["):
                parts = _key_parts(s[2 : _find_outside_quotes(s, "]")])
                table = self._array_entry(parts, n)
            elif s.startswith("["):
                table = self._resolve(_key_parts(s[1 : _find_outside_quotes(s, "]")]))
                self.lines.setdefault(table, n)
            elif s and not s.startswith("#"):
                eq = _find_outside_quotes(s, "=")
                parts = _key_parts(s[:eq])
                for i in range(1, len(parts) + 1):
                    self.lines.setdefault(table + tuple(parts[:i]), n)
                depth, ml = _scan_value(s, eq + 1, 0, None)

    def line_of(self, key):
        key = tuple(key)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None

    def _resolve(self, parts):
        path = ()
        for p in parts:
            path += (p,)
            if path in self._aot:
                path += (self._aot[path] - 1,)
        return path

    def _array_entry(self, parts, n):
        base = self._resolve(parts[:-1]) + (parts[-1],)
        i = self._aot.get(base, 0)
        self._aot[base] = i + 1
        self.lines.setdefault(base, n)
        self.lines[base + (i,)] = n
        return base + (i,)


def _find_outside_quotes(s, ch):
    i, q = 0, None
    while i < len(s):
        c = s[i]
        if q:
            if c == "\\" and q == '"':
                i += 1
            elif c == q:
                q = None
        elif c in "\"'":
            q = c
        elif c == ch:
            return i
        i += 1
    return len(s)


def _key_parts(key_text):
    try:
        d = tomllib.loads("%s = 0" % key_text)
    except tomllib.TOMLDecodeError:
        return [key_text.strip()]
    parts = []
    while isinstance(d, dict) and d:
        k = next(iter(d))
        parts.append(k)
        d = d[k]
    return parts


def _scan_value(s, i, depth, ml):
    """Bracket depth and open multi-line string delimiter after scanning ``s[i:]``."""
    while i < len(s):
        if ml:
            j = s.find(ml, i)
            while j > 0 and ml == '"""' and (len(s[:j]) - len(s[:j].rstrip("\\"))) % 2:
                j = s.find(ml, j + 1)
            if j < 0:
                return depth, ml
            i, ml = j + 3, None
            continue
        c = s[i]
        if c == "#":
            break
        if s.startswith('"""', i) or s.startswith("'''", i):
            ml, i = s[i : i + 3], i + 3
            continue
        if c in "\"'":
            i += _string_len(s, i)
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return depth, ml


def _string_len(s, i):
    q, j = s[i], i + 1
    while j < len(s) and s[j] != q:
        j += 2 if q == '"' and s[j] == "\\" else 1
    return j + 1 - i


class TableReader:
    """Typed reads from one TOML table at ``key`` (a path); every failure raises a ConfigError."""

    def __init__(self, doc, data, key=()):
        self.doc, self.data, self.key = doc, data, tuple(key)

    def fail(self, name, expected, got=None):
        raise self.doc.error(self.key + (name if isinstance(name, tuple) else (name,)), expected, got)

    def only(self, known, owners=None, what="a key this table takes", typos_only=False):
        """Reject keys not in ``known``, suggesting the closest; ``owners`` names where a stray key belongs.

        With ``typos_only``, only keys close to a known one are rejected (a first pass before ``kind``).
        """
        for name in self.data:
            if name in known:
                continue
            if owners and name in owners:
                self.fail(name, "%s (%r is for %s)" % (what, name, owners[name]))
            close = difflib.get_close_matches(name, known, n=1)
            if close:
                self.fail(name, "a known key (did you mean %r?)" % close[0])
            if not typos_only:
                self.fail(name, "one of the keys " + ", ".join(known))

    def _present(self, name, default, expected):
        if name in self.data:
            return True
        if default is _MISSING:
            self.fail(name, "%s (required)" % expected)
        return False

    def text(self, name, default=_MISSING, expected="a string", pattern=None, choices=None, secret=False, empty=False):
        if choices:
            expected = "one of " + ", ".join('"%s"' % c for c in choices)
        if not self._present(name, default, expected):
            return default
        v = self.data[name]
        ok = isinstance(v, str) and (empty or v) and (pattern is None or pattern.match(v))
        if not ok or (choices and v not in choices):
            self.fail(name, expected, "<hidden %s>" % type(v).__name__ if secret else v)
        return v

    def integer(self, name, default=_MISSING, lo=None, hi=None, choices=None):
        expected = "one of " + ", ".join(map(str, choices)) if choices else "an integer in %d..%d" % (lo, hi)
        if not self._present(name, default, expected):
            return default
        v = self.data[name]
        if type(v) is not int or (choices and v not in choices) or (not choices and not lo <= v <= hi):
            self.fail(name, expected, v)
        return v

    def number(self, name, default=_MISSING, lo=None, hi=None, lo_open=False, expected=None):
        if expected is None:
            if hi is None:
                expected = "a number %s %g" % (">" if lo_open else ">=", lo)
            else:
                expected = "a number in %g..%g" % (lo, hi) + (" (above %g)" % lo if lo_open else "")
        if not self._present(name, default, expected):
            return float(default)
        v = self.data[name]
        ok = type(v) in (int, float) and math.isfinite(v) and (v > lo if lo_open else v >= lo)
        if not ok or (hi is not None and v > hi):
            self.fail(name, expected, v)
        return float(v)

    def flag(self, name, default=_MISSING):
        if not self._present(name, default, "true or false"):
            return default
        v = self.data[name]
        if type(v) is not bool:
            self.fail(name, "true or false", v)
        return v

    def table(self, name, known=None):
        """The sub-table ``name`` (empty when absent), its keys checked against ``known``."""
        v = self.data.get(name, {})
        if not isinstance(v, dict):
            self.fail(name, "a table ([%s])" % dotted(self.key + (name,)), v)
        t = TableReader(self.doc, v, self.key + (name,))
        if known is not None:
            t.only(known)
        return t

    def tables(self, name):
        """The entries of the array of tables ``name`` ([[name]]), none when absent."""
        v = self.data.get(name, [])
        if not isinstance(v, list):
            self.fail(name, "an array of tables ([[%s]])" % dotted(self.key + (name,)), "a %s" % type(v).__name__)
        for i, item in enumerate(v):
            if not isinstance(item, dict):
                self.fail((name, i), "a table", item)
        return [TableReader(self.doc, item, self.key + (name, i)) for i, item in enumerate(v)]
