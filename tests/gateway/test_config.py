"""Gateway config: every schema rule fails with the file, line, dotted key and what was expected."""

import os

import pytest

from gateway.config import GatewayConfig, default_config, load_config, parse_config
from gateway.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "gateway", "gateway.example.toml")

BASE = """\
[gateway]
id = "gw-1"
data_dir = "data"
log_level = "info"

[stream]
grid_s = 900
lateness_s = 7200
rules = { precipitation = "sum" }

[registry]
path = "devices.toml"

[[sources]]
kind = "node"
name = "north"
port = "/dev/ttyUSB0"
baudrate = 115200
reopen_s = 2.0

[[sources]]
kind = "node"
name = "south"
port = "socket://127.0.0.1:4001"

[outbox]
max_mb = 512
alert_fraction = 0.8
batch_max_items = 5000

[[uplinks]]
kind = "file"
path = "out/stream.jsonl"

[[uplinks]]
kind = "mqtt"
host = "127.0.0.1"
port = 1883

[[uplinks]]
kind = "http"
url = "https://ingest.example.com/v1/batches"

[status]
bind = "127.0.0.1"
port = 8780
token = ""
health_every_s = 300
"""


def line_of(text, needle, nth=1):
    """1-based line of the nth line containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def config_error(text, tmp_path=None):
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="gw.toml", base_dir=str(tmp_path) if tmp_path else None)
    return info.value


# (old text in BASE, new text, dotted key, expected fragment, got fragment or None, line: needle or (needle, nth))
# An empty ``line`` means "the line of the new text"; missing keys point at their table header.
CASES = [
    # [gateway]
    ('id = "gw-1"\n', "", "gateway.id", "(required)", None, "[gateway]"),
    ('id = "gw-1"', 'id = "gw 1"', "gateway.id", "1-64 characters", "'gw 1'", ""),
    ('id = "gw-1"', 'id = "%s"' % ("a" * 65), "gateway.id", "1-64 characters", "aaaa", ""),
    ('id = "gw-1"', "id = 7", "gateway.id", "1-64 characters", "7", ""),
    ('data_dir = "data"', 'data_dir = ""', "gateway.data_dir", "a directory path", "''", ""),
    ('log_level = "info"', 'log_level = "verbose"', "gateway.log_level", '"debug", "info", "warning", "error"',
     None, ""),
    ('data_dir = "data"', 'dat_dir = "data"', "gateway.dat_dir", "did you mean 'data_dir'?", None, ""),
    # [stream]
    ("grid_s = 900", "grid_s = 59", "stream.grid_s", "an integer in 60..86400", "59", ""),
    ("grid_s = 900", "grid_s = 86401", "stream.grid_s", "an integer in 60..86400", "86401", ""),
    ("grid_s = 900", "grid_s = 700", "stream.grid_s", "divides 86400", "700", ""),
    ("grid_s = 900", "grid_s = 900.0", "stream.grid_s", "an integer", "900.0", ""),
    ("lateness_s = 7200", "lateness_s = -1", "stream.lateness_s", "0..604800", "-1", ""),
    ("lateness_s = 7200", "lateness_s = 604801", "stream.lateness_s", "0..604800", None, ""),
    ('precipitation = "sum"', 'precipitation = "total"', "stream.rules.precipitation", '"mean", "sum", "last"',
     "total", ""),
    ('precipitation = "sum"', 'precipitaton = "sum"', "stream.rules.precipitaton", "did you mean 'precipitation'?",
     None, ""),
    ('rules = { precipitation = "sum" }', 'rules = "sum"', "stream.rules", "a table", None, ""),
    ("lateness_s = 7200", "lateness_s = 7200\ngrids = 900", "stream.grids", "did you mean 'grid_s'?", None, ""),
    # [registry]
    ('path = "devices.toml"', "path = 5", "registry.path", "a file path", "5", ""),
    # [[sources]]
    ('kind = "node"\nname = "south"', 'kind = "lora"\nname = "south"', "sources[1].kind", '"node"', "lora", ""),
    ('kind = "node"\nname = "south"', 'name = "south"', "sources[1].kind", "(required)", None, ("[[sources]]", 2)),
    ('name = "south"\n', "", "sources[1].name", "(required)", None, ("[[sources]]", 2)),
    ('name = "south"', 'name = "north"', "sources[1].name", "unique among sources", "north", ('name = "north"', 2)),
    ('name = "south"', 'name = "so/uth"', "sources[1].name", "A-Z a-z 0-9", "so/uth", ""),
    ('port = "/dev/ttyUSB0"\n', "", "sources[0].port", "serial device path or pyserial URL (required)", None,
     ("[[sources]]", 1)),
    ('port = "/dev/ttyUSB0"', 'port = ""', "sources[0].port", "serial device path", "''", ""),
    ("baudrate = 115200", "baudrate = 1234", "sources[0].baudrate", "one of 1200, 2400", "1234", ""),
    ("baudrate = 115200", 'baudrate = "115200"', "sources[0].baudrate", "921600", "'115200'", ""),
    ("reopen_s = 2.0", "reopen_s = 0.05", "sources[0].reopen_s", "a number in 0.1..60", "0.05", ""),
    ("reopen_s = 2.0", "reopen_s = 61", "sources[0].reopen_s", "a number in 0.1..60", "61", ""),
    ("reopen_s = 2.0", 'reopen_s = "2"', "sources[0].reopen_s", "a number", "'2'", ""),
    ("reopen_s = 2.0", "reopen_s = nan", "sources[0].reopen_s", "a number", "nan", ""),
    ('name = "south"', 'name = "south"\nbaud = 9600', "sources[1].baud", "did you mean 'baudrate'?", None, ""),
    # [outbox]
    ("max_mb = 512", "max_mb = 0", "outbox.max_mb", "1..1000000", "0", ""),
    ("max_mb = 512", "max_mb = 1000001", "outbox.max_mb", "1..1000000", None, ""),
    ("alert_fraction = 0.8", "alert_fraction = 0.05", "outbox.alert_fraction", "0.1..1", "0.05", ""),
    ("alert_fraction = 0.8", "alert_fraction = 1.5", "outbox.alert_fraction", "0.1..1", "1.5", ""),
    ("batch_max_items = 5000", "batch_max_items = 0", "outbox.batch_max_items", "1..100000", "0", ""),
    ("batch_max_items = 5000", "batch_max_items = 100001", "outbox.batch_max_items", "1..100000", None, ""),
    # [[uplinks]] common
    ('kind = "file"\n', "", "uplinks[0].kind", '"file", "mqtt", "http" (required)', None, ("[[uplinks]]", 1)),
    ('kind = "file"', 'kind = "ftp"', "uplinks[0].kind", '"file", "mqtt", "http"', "ftp", ""),
    ('kind = "file"', 'kind = "file"\nbackoff_min_s = 0', "uplinks[0].backoff_min_s", "a number > 0", "0",
     "backoff_min"),
    ('kind = "file"', 'kind = "file"\nbackoff_min_s = 5.0\nbackoff_max_s = 2.0', "uplinks[0].backoff_max_s",
     ">= backoff_min_s (5)", "2.0", "backoff_max"),
    # file
    ('path = "out/stream.jsonl"\n', "", "uplinks[0].path", "a file path (required)", None, ("[[uplinks]]", 1)),
    ('path = "out/stream.jsonl"', 'path = "out/stream.jsonl"\nfsync = "yes"', "uplinks[0].fsync", "true or false",
     "yes", "fsync"),
    ('path = "out/stream.jsonl"', 'path = "out/stream.jsonl"\nmax_mb = -1', "uplinks[0].max_mb", "0..1000000", "-1",
     "max_mb = -1"),
    ('path = "out/stream.jsonl"', 'path = "out/stream.jsonl"\nhost = "x"', "uplinks[0].host",
     "'host' is for mqtt uplinks", None, 'host = "x"'),
    # mqtt
    ('host = "127.0.0.1"\n', "", "uplinks[1].host", "(required)", None, ("[[uplinks]]", 2)),
    ("port = 1883", "port = 0", "uplinks[1].port", "1..65535", "0", ""),
    ("port = 1883", "port = 65536", "uplinks[1].port", "1..65535", "65536", ""),
    ("port = 1883", "port = true", "uplinks[1].port", "an integer", "True", ""),
    ("port = 1883", "prot = 1883", "uplinks[1].prot", "did you mean 'port'?", None, ""),
    ("port = 1883", "tokn = 1883", "uplinks[1].tokn", "one of the keys kind, backoff_min_s", None, ""),
    ('kind = "file"', 'knd = "file"', "uplinks[0].knd", "did you mean 'kind'?", None, ""),
    ("port = 1883", 'url = "http://x"', "uplinks[1].url", "'url' is for http uplinks", None, ""),
    ("port = 1883", 'topic = "farm/#"', "uplinks[1].topic", "without wildcards", "farm/#", ""),
    ("port = 1883", 'topic = "farm/{site}"', "uplinks[1].topic", '"{gateway}" the only placeholder', None, ""),
    ("port = 1883", 'password = "s3cret-pw"', "uplinks[1].username", "a username when password is set", None,
     ("[[uplinks]]", 2)),
    ("port = 1883", "keepalive_s = -1", "uplinks[1].keepalive_s", "0..65535", "-1", ""),
    ("port = 1883", "max_inflight = 0", "uplinks[1].max_inflight", "1..65535", "0", ""),
    ("port = 1883", "timeout_s = 0", "uplinks[1].timeout_s", "(above 0)", "0", ""),
    ("port = 1883", 'tls = { ca = "no-such-ca.pem" }', "uplinks[1].tls.ca", "an existing file", "no-such-ca.pem", ""),
    ("port = 1883", 'tls = { cert = "cert.pem" }', "uplinks[1].tls.key", "tls.cert and tls.key together", None, ""),
    ("port = 1883", 'tls = "yes"', "uplinks[1].tls", "a table", "yes", ""),
    ("port = 1883", "tls = { insecur = true }", "uplinks[1].tls.insecur", "did you mean 'insecure'?", None, ""),
    ("port = 1883", '[uplinks.tls]\nca = "missing.pem"', "uplinks[1].tls.ca", "an existing file", None, 'ca = "'),
    # http
    ('url = "https://ingest.example.com/v1/batches"\n', "", "uplinks[2].url", "(required)", None, ("[[uplinks]]", 3)),
    ('url = "https://ingest.example.com/v1/batches"', 'url = "ftp://x/y"', "uplinks[2].url", "http:// or https://",
     "ftp://x/y", ""),
    ('url = "https://ingest.example.com/v1/batches"', 'url = "http://x"\ntls = { insecure = true }', "uplinks[2].tls",
     "an https:// url when tls is set", None, "tls = {"),
    ('url = "https://ingest.example.com/v1/batches"', 'url = "https://x"\nmax_inflight = 1001',
     "uplinks[2].max_inflight", "1..1000", "1001", "max_inflight"),
    ('url = "https://ingest.example.com/v1/batches"', 'url = "https://x"\ntopic = "t"', "uplinks[2].topic",
     "'topic' is for mqtt uplinks", None, "topic"),
    # [status]
    ('bind = "127.0.0.1"', 'bind = "0.0.0.0"', "status.token", "a token when bind is not a loopback address", None,
     'token = ""'),
    ('bind = "127.0.0.1"\nport = 8780\ntoken = ""', 'bind = "0.0.0.0"', "status.token", "a token when bind", None,
     "[status]"),
    ('bind = "127.0.0.1"', 'bind = "not a host!"', "status.bind", "an IP address or host name", "not a host!", ""),
    ("port = 8780", "port = 65536", "status.port", "0..65535", "65536", ""),
    ("port = 8780", "port = -1", "status.port", "0..65535", "-1", ""),
    ("health_every_s = 300", "health_every_s = 5", "status.health_every_s", "10..86400", "5", ""),
    ("health_every_s = 300", "health_every_s = 86401", "status.health_every_s", "10..86400", None, ""),
    ("health_every_s = 300", "health_every_s = 300\ntokn = 1", "status.tokn", "did you mean 'token'?", None, "tokn"),
    # top level
    ("[registry]", "[registy]", "registy", "did you mean 'registry'?", None, ""),
]  # fmt: skip


@pytest.mark.parametrize("old,new,key,expected,got,line", CASES, ids=[c[2] + ":" + c[1][:24] for c in CASES])
def test_schema_rule(tmp_path, old, new, key, expected, got, line):
    (tmp_path / "cert.pem").write_text("x")
    assert old in BASE, old
    text = BASE.replace(old, new, 1)
    e = config_error(text, tmp_path)
    if line == "":  # the line of ``new`` that sets the key, else its first line
        lines = new.splitlines()
        line = next((x for x in lines if x.startswith(key.rsplit(".", 1)[-1] + " ")), lines[0])
    needle, nth = line if isinstance(line, tuple) else (line, 1)
    want_line = line_of(text, needle, nth)
    assert (e.key, e.line, e.path) == (key, want_line, "gw.toml"), str(e)
    assert str(e).startswith("gw.toml:%d: %s: expected " % (want_line, key)), str(e)
    assert expected in e.expected, str(e)
    if got is not None:
        assert got in repr(e.got), str(e)


def test_valid_config_values_defaults_and_relative_paths(tmp_path):
    path = tmp_path / "etc" / "gw.toml"
    path.parent.mkdir()
    path.write_text(BASE.replace('port = "/dev/ttyUSB0"', 'port = "/dev/ttyUSB0"\nbaudrate = 9600', 1).replace(
        "baudrate = 115200\n", "", 1))  # fmt: skip
    cfg = load_config(path)
    etc = tmp_path / "etc"
    assert isinstance(cfg, GatewayConfig) and cfg.path == path
    assert (cfg.gateway_id, cfg.log_level, cfg.grid_s, cfg.lateness_s) == ("gw-1", "info", 900, 7200)
    assert cfg.rules == {"precipitation": "sum"}
    assert cfg.data_dir == etc / "data" and cfg.registry_path == etc / "devices.toml"
    north, south = cfg.sources
    assert (north.kind, north.name, north.port, north.baudrate, north.reopen_s) == (
        "node", "north", "/dev/ttyUSB0", 9600, 2.0)  # fmt: skip
    assert (south.port, south.baudrate, south.reopen_s) == ("socket://127.0.0.1:4001", 115200, 2.0)
    assert (cfg.outbox.max_mb, cfg.outbox.alert_fraction, cfg.outbox.batch_max_items) == (512, 0.8, 5000)
    file_up, mqtt_up, http_up = cfg.uplinks
    assert file_up == {"kind": "file", "backoff_min_s": 1.0, "backoff_max_s": 60.0,
                       "path": str(etc / "out" / "stream.jsonl"), "fsync": True, "max_mb": 0}  # fmt: skip
    assert mqtt_up == {  # unset options (client_id, username, password, tls) are absent
        "kind": "mqtt", "backoff_min_s": 1.0, "backoff_max_s": 60.0, "host": "127.0.0.1", "port": 1883,
        "topic": "fieldline/{gateway}/stream", "keepalive_s": 30, "max_inflight": 32, "timeout_s": 10.0,
    }  # fmt: skip
    assert http_up == {"kind": "http", "backoff_min_s": 1.0, "backoff_max_s": 60.0, "timeout_s": 10.0,
                       "url": "https://ingest.example.com/v1/batches", "max_inflight": 4}  # fmt: skip
    st = cfg.status
    assert (st.bind, st.port, st.token, st.health_every_s) == ("127.0.0.1", 8780, "", 300)
    with pytest.raises(AttributeError):
        cfg.grid_s = 60  # frozen


def test_minimal_config_gets_defaults_and_one_file_uplink(tmp_path):
    cfg = parse_config('[gateway]\nid = "gw-min"\n', base_dir=str(tmp_path))
    assert cfg.data_dir == tmp_path / "fieldline-data" and cfg.registry_path == tmp_path / "devices.toml"
    assert (cfg.grid_s, cfg.lateness_s, cfg.rules, cfg.sources, cfg.path) == (900, 7200, {}, (), None)
    path = str(tmp_path / "fieldline-data" / "stream.jsonl")
    assert cfg.uplinks == ({"kind": "file", "backoff_min_s": 1.0, "backoff_max_s": 60.0,
                            "path": path, "fsync": True, "max_mb": 0},)  # fmt: skip
    assert (cfg.status.bind, cfg.status.port, cfg.status.health_every_s) == ("127.0.0.1", 8780, 300)


def test_example_file_loads():
    cfg = load_config(EXAMPLE)
    assert cfg.gateway_id == "gw-farm-1"
    assert [s.kind for s in cfg.sources] == ["node"]
    assert [u["kind"] for u in cfg.uplinks] == ["file", "mqtt"]
    assert cfg.uplinks[0]["path"] == os.path.join(ROOT, "gateway", "fieldline-data", "stream.jsonl")


def test_default_config_for_demos(tmp_path):
    cfg = default_config(tmp_path / "demo")
    assert cfg.data_dir == tmp_path / "demo" and cfg.sources == ()
    assert [u["kind"] for u in cfg.uplinks] == ["file"]
    assert cfg.uplinks[0]["path"] == str(tmp_path / "demo" / "stream.jsonl")


@pytest.mark.parametrize(
    "text,line,detail",
    [
        ('[gateway]\nid = "gw-1"\nlog_level = \n', 3, "invalid value at column 13"),
        ('[gateway]\nid = "gw-1"\n[stream\ngrid_s = 900\n', 3, "at column 8"),
        ('[gateway]\nid = "gw-1"\nid = "gw-2"\n', 3, "cannot overwrite a value"),
        ('[gateway]\nid = "gw-1\n', 2, "at column"),
        ('[gateway]\nid = """gw-1\n\n', 3, "at the end of the file"),
    ],
)
def test_toml_syntax_error_names_the_line(text, line, detail):
    e = config_error(text)
    assert (e.key, e.line) == ("TOML syntax", line), str(e)
    assert detail in e.expected and str(e).startswith("gw.toml:%d: TOML syntax: expected valid TOML (" % line)


def test_unknown_key_without_close_match_lists_the_keys():
    e = config_error(BASE.replace("max_mb = 512", "zzz = 1"))
    assert e.key == "outbox.zzz" and "max_mb, alert_fraction, batch_max_items" in e.expected


def test_sources_must_be_an_array_of_tables():
    e = config_error('[gateway]\nid = "g"\n[sources]\nkind = "node"\n')
    assert (e.key, e.line) == ("sources", 3) and "an array of tables ([[sources]])" in e.expected


def test_missing_table_for_required_key_has_no_line():
    e = config_error("[stream]\ngrid_s = 900\n")
    assert (e.key, e.line) == ("gateway.id", None) and str(e).startswith("gw.toml: gateway.id: expected")


def test_lines_survive_multiline_strings_and_arrays():
    weird = "\n'weird key' = [\n  [1, 2],\n  \"x = ]\",\n]"
    text = BASE.replace("[registry]", 'note = """\n[fake]\nport = 1\n"""\n\n[registry]')
    text = text.replace('[[uplinks]]\nkind = "mqtt"', '[[uplinks]]\nkind = "mqtt"' + weird)
    e = config_error(text)
    assert e.key == "stream.note" and e.line == line_of(text, 'note = """')
    text = text.replace('note = """\n[fake]\nport = 1\n"""\n', "")
    e = config_error(text)
    assert e.key == 'uplinks[1]."weird key"' and e.line == line_of(text, "'weird key'")
    assert e.expected.startswith("one of the keys kind, backoff_min_s, backoff_max_s, host, port,")


def test_tls_defaults_and_resolved_paths(tmp_path):
    for name in ("ca.pem", "gw.pem", "gw.key"):
        (tmp_path / name).write_text("x")
    text = BASE.replace("port = 1883", 'tls = { ca = "ca.pem", cert = "gw.pem", key = "gw.key" }')
    text = text.replace('url = "https://ingest.example.com/v1/batches"', 'url = "https://x"\ntls = true')
    cfg = parse_config(text, base_dir=str(tmp_path))
    mqtt_up, http_up = cfg.uplinks[1], cfg.uplinks[2]
    assert mqtt_up["port"] == 8883
    assert mqtt_up["tls"] == {"ca": str(tmp_path / "ca.pem"), "cert": str(tmp_path / "gw.pem"),
                              "key": str(tmp_path / "gw.key"), "insecure": False}  # fmt: skip
    assert http_up["tls"] == {"ca": None, "cert": None, "key": None, "insecure": False}


def test_non_loopback_bind_with_token_and_loopback_names():
    cfg = parse_config(BASE.replace('bind = "127.0.0.1"', 'bind = "0.0.0.0"').replace('token = ""', 'token = "t0k"'))
    assert (cfg.status.bind, cfg.status.token) == ("0.0.0.0", "t0k")
    for bind in ("::1", "localhost", "127.0.0.2"):
        assert parse_config(BASE.replace('bind = "127.0.0.1"', 'bind = "%s"' % bind)).status.bind == bind


def test_secrets_stay_out_of_errors_and_reprs():
    e = config_error(BASE.replace('token = ""', "token = 12345"))
    assert e.key == "status.token" and "12345" not in str(e)
    text = BASE.replace("port = 1883", 'username = "u"\npassword = "pw-s3cret"').replace(
        'url = "https://ingest.example.com/v1/batches"', 'url = "https://x"\ntoken = "tk-s3cret"')  # fmt: skip
    text = text.replace('bind = "127.0.0.1"', 'bind = "0.0.0.0"').replace('token = ""', 'token = "st-s3cret"')
    cfg = parse_config(text)
    assert cfg.uplinks[1]["password"] == "pw-s3cret" and cfg.uplinks[2]["token"] == "tk-s3cret"
    assert "s3cret" not in repr(cfg)


def test_file_problems_are_config_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.key == "(file)" and str(tmp_path / "nope.toml") in str(info.value)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'[gateway]\nid = "\xff"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(bad)
