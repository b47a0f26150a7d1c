"""docs/gateway-config.md against gateway/config.py: every key, its type and its default.

    .venv/bin/python -m pytest tests/docs/test_gateway_config_doc.py

The schema is not written down twice in the code: it is what ``gateway.config`` (and each
``gateway.sources.<kind>.check_config``) reads through ``TableReader``. So the test validates a
config that visits every table and every branch with ``TableReader`` instrumented, and records
each table's accepted keys (``only``) and each typed read (method and default). The doc is parsed
by its headings (a TOML table header in backticks, e.g. ``### `[[uplinks]]` with `kind = "mqtt"` ``)
and the tables under them (columns ``key``/``quantity``, ``type``, ``default``).
"""

import math
import re
import tomllib
from pathlib import Path

import pytest

from gateway import config as gwconfig
from gateway.stream import DEFAULT_RULES, UNITS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gateway-config.md"

# A config that reaches every table and every optional key the validator reads.
FULL = """
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
kind = "sdi12"
name = "soil"
port = "/dev/ttyUSB1"
interval_s = 300

[[sources.probes]]
address = "0"
concurrent = true

[[sources.probes.values]]
index = 0
quantity = "soil_water_content"
scale = 0.01
offset = 0.0
lo = 0.0
hi = 0.6

[[sources.probes.values]]
index = 1
quantity = "soil_temperature"
coeffs = [0.0, 1.0]

[[sources]]
kind = "modbus"
name = "wind"
port = "/dev/ttyUSB2"
interval_s = 60

[[sources.devices]]
slave = 1
sensor = "anemometer"

[[sources.devices.registers]]
address = 0
quantity = "wind_speed"
lo = 0.0
hi = 60.0

[[sources.devices.registers]]
address = 2
type = "float32"
word_order = "little"
quantity = "wind_direction"

[[sources]]
kind = "ble"
name = "tags"
adapter = "hci0"

[[sources.tags]]
mac = "CB:B8:33:4C:88:4F"

[outbox]
max_mb = 512

[[uplinks]]
kind = "file"
path = "stream.jsonl"

[[uplinks]]
kind = "mqtt"
host = "127.0.0.1"
username = "u"
password = "p"
client_id = "c"

[[uplinks]]
kind = "http"
url = "https://example.com/batches"
token = "t"

[uplinks.tls]
ca = "ca.pem"
cert = "gw.pem"
key = "gw.key"

[status]
bind = "127.0.0.1"

[[fields]]
name = "north-pivot"
nodes = ["*"]
lat = 52.0
lon = 5.0
utc_offset_min = 60
"""

TYPE_OF_READ = {"text": "string", "integer": "integer", "number": "number", "flag": "boolean",
                "table": "table", "tables": "array of tables"}  # fmt: skip
# defaults the code computes from other values: the doc describes them in words
COMPUTED_DEFAULTS = {("sources.probes", "sensor"), ("sources.probes", "crc"), ("sources.tags", "name"),
                     ("sources.probes.values", "unit"), ("sources.devices.registers", "unit")}  # fmt: skip


def _section_of(reader):
    """'sources:sdi12', 'sources.probes', 'uplinks:mqtt', 'uplinks.tls', 'gateway', '' (the root)."""
    names = [p for p in reader.key if isinstance(p, str)]
    sid = ".".join(names)
    if sid in ("sources", "uplinks") and isinstance(reader.data.get("kind"), str):
        sid += ":" + reader.data["kind"]
    return sid


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    """{section: {"known": set of keys, "reads": {key: (method, default)}}} from validating FULL."""
    base = tmp_path_factory.mktemp("gwcfg")
    for name in ("ca.pem", "gw.pem", "gw.key"):
        (base / name).write_text("-")
    out = {}
    orig = {m: getattr(gwconfig.TableReader, m) for m in ("only", *TYPE_OF_READ)}

    def entry(reader):
        return out.setdefault(_section_of(reader), {"known": set(), "reads": {}})

    def spy_only(self, known, *a, **kw):
        entry(self)["known"].update(known)
        return orig["only"](self, known, *a, **kw)

    def spy(method):
        def read(self, name, *a, **kw):
            default = a[0] if a and method not in ("table", "tables") else kw.get("default", gwconfig._MISSING)
            if method in ("table", "tables"):
                default = None
            entry(self)["reads"].setdefault(name, (method, default))
            return orig[method](self, name, *a, **kw)

        return read

    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(gwconfig.TableReader, "only", spy_only)
        for m in TYPE_OF_READ:
            mp.setattr(gwconfig.TableReader, m, spy(m))
        cfg = gwconfig.parse_config(FULL, base_dir=str(base))
    finally:
        mp.undo()
    assert [s.kind for s in cfg.sources] == ["node", "sdi12", "modbus", "ble"]
    assert [u["kind"] for u in cfg.uplinks] == ["file", "mqtt", "http"]
    return out


_HEADING = re.compile(r"^#{2,4}\s+(.*)$")
_TABLE_HEADER = re.compile(r"`\[\[?([a-z_.]+)\]\]?`")
_KIND = re.compile(r'kind = "(\w+)"')


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_doc(text):
    """{section: {key: {"type": ..., "default": ...}}}; ``uplinks`` (every kind) merged into each kind."""
    sections, current, header = {}, None, None
    for line in text.splitlines():
        m = _HEADING.match(line)
        if m:
            t = _TABLE_HEADER.search(m.group(1))
            current, header = None, None
            if t:
                k = _KIND.search(m.group(1)[t.end() :])
                current = t.group(1) + (":" + k.group(1) if k else "")
                sections.setdefault(current, {})
            continue
        if current is None or not line.startswith("|"):
            if not line.startswith("|"):
                header = None
            continue
        cells = _cells(line)
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set(line) <= set("|- "):
            continue
        row = dict(zip(header, cells, strict=False))
        key = (row.get("key") or row.get("quantity") or "").strip("`")
        if key:
            sections[current][key] = row
    common = sections.pop("uplinks", {})
    for sid in list(sections):
        if sid.startswith("uplinks:"):
            sections[sid] = {**common, **sections[sid]}
    return sections


@pytest.fixture(scope="module")
def doc():
    return parse_doc(DOC.read_text())


def test_every_table_is_documented(schema, doc):
    missing = sorted(set(schema) - {""} - set(doc))
    assert not missing, "docs/gateway-config.md has no section (### `[table]`) for: %s" % missing
    stale = sorted(set(doc) - set(schema))
    assert not stale, "docs/gateway-config.md documents tables the gateway no longer reads: %s" % stale
    for table in schema[""]["known"]:
        assert any(s == table or s.startswith(table + ":") for s in doc), "top-level [%s] undocumented" % table


def test_every_key_is_documented_and_exists(schema, doc):
    problems = []
    for sid, s in sorted(schema.items()):
        if sid == "":
            continue
        documented = set(doc.get(sid, {}))
        for k in sorted(s["known"] - documented):
            problems.append("%s: key %r is accepted by the gateway but not documented" % (sid, k))
        for k in sorted(documented - s["known"]):
            problems.append("%s: documented key %r is not accepted by the gateway" % (sid, k))
    assert not problems, "docs/gateway-config.md vs gateway/config.py:\n" + "\n".join(problems)


def _code_span(cell):
    m = re.match(r"`([^`]*)`", cell.strip())
    return None if m is None else m.group(1)


def _same(doc_value, code_value):
    if isinstance(code_value, bool) or isinstance(doc_value, bool):
        return doc_value is code_value
    if isinstance(code_value, int | float) and isinstance(doc_value, int | float):
        return math.isclose(doc_value, code_value)
    return doc_value == code_value


def test_types_and_defaults_match_the_code(schema, doc):
    problems = []
    for sid, s in sorted(schema.items()):
        if sid in ("", "stream.rules"):
            continue
        for key, (method, default) in sorted(s["reads"].items()):
            row = doc.get(sid, {}).get(key)
            if row is None:
                continue  # reported by test_every_key_is_documented_and_exists
            where = "%s.%s" % (sid, key)
            if TYPE_OF_READ[method] not in row.get("type", ""):
                problems.append("%s: type %r, the code reads a %s" % (where, row.get("type"), TYPE_OF_READ[method]))
            cell = row.get("default", "")
            if method in ("table", "tables"):
                continue  # a required array of tables is enforced by its own check, not by a default
            if default is gwconfig._MISSING:
                if not cell.startswith("required"):
                    problems.append("%s: the code requires it; the doc says default %r" % (where, cell))
                continue
            if cell.startswith("required") and not cell.startswith("required unless"):
                problems.append("%s: documented as required; the code defaults to %r" % (where, default))
                continue
            if default is None or (sid, key) in COMPUTED_DEFAULTS:
                continue
            span = _code_span(cell)
            if span is None:
                problems.append("%s: default %r should start with the value in backticks: %r" % (where, cell, default))
                continue
            try:
                value = tomllib.loads("v = " + span)["v"]
            except tomllib.TOMLDecodeError:
                problems.append("%s: default `%s` is not a TOML value" % (where, span))
                continue
            if not _same(value, default):
                problems.append("%s: documented default %s, the code's is %r" % (where, span, default))
    assert not problems, "docs/gateway-config.md vs gateway/config.py:\n" + "\n".join(problems)


def test_stream_rules_list_every_quantity_with_its_default(doc):
    rows = doc["stream.rules"]
    assert set(rows) == set(UNITS), "quantities: missing %s, unknown %s" % (
        sorted(set(UNITS) - set(rows)), sorted(set(rows) - set(UNITS)))  # fmt: skip
    for q, row in rows.items():
        assert row["unit"] == UNITS[q], "%s: unit %r, the stream's is %r" % (q, row["unit"], UNITS[q])
        assert _code_span(row["default"]) == '"%s"' % DEFAULT_RULES.get(q, "mean"), q


def _toml_blocks(text):
    return re.findall(r"^```toml\n(.*?)^```", text, flags=re.S | re.M)


def test_toml_examples_are_valid_configs(tmp_path):
    for name in ("ca.pem", "gw.pem", "gw.key"):
        (tmp_path / name).write_text("-")
    blocks = _toml_blocks(DOC.read_text())
    assert len(blocks) >= 4
    for block in blocks:
        text = block if "[gateway]" in block else '[gateway]\nid = "gw-doc"\n' + block
        gwconfig.parse_config(text, base_dir=str(tmp_path))  # raises ConfigError naming line and key


def test_example_column_sets_the_key_of_its_row(doc):
    for sid, rows in doc.items():
        for key, row in rows.items():
            example = _code_span(row.get("example", "")) if "example" in row else None
            if example is None:
                continue
            parsed = tomllib.loads(example)
            assert list(parsed) == [key], "%s.%s: example `%s` sets another key" % (sid, key, example)


def test_the_example_file_is_valid():
    gwconfig.load_config(ROOT / "gateway" / "gateway.example.toml")


def test_the_traced_config_covers_every_kind(schema):
    """A new source or uplink kind must be added to FULL, so that its keys are held to the doc too."""
    traced = {sid for sid in schema if ":" in sid}
    want = {"sources:" + k for k in gwconfig.SOURCE_KINDS + gwconfig.LATER_SOURCE_KINDS}
    want |= {"uplinks:" + k for k in gwconfig.UPLINK_KINDS}
    assert traced == want, "add %s to FULL in this test" % sorted(want - traced)
