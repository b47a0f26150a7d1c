"""docs/protocol.md must not fall behind shared_protocol.

Everything is enumerated from the code (catalogue.SCHEMAS / SCHEMAS_BY_NAME / TABLES,
quantities.all_quantities(), the error classes and the frame limits), so a message type,
field, enumeration word, quantity or limit added or changed in shared_protocol fails here
until the spec documents it: each message has a section ``### <id> `<name>` ``, each field
a table row ``| <key> | `<name>` | `<spec>` | ... | yes/no | ... |`` in it.
"""

import os
import re

import pytest

from shared_protocol import catalogue, cbor, errors, frame, quantities, replay

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "protocol.md")


def _doc():
    with open(DOC, encoding="utf-8") as f:
        return f.read().replace("\u2212", "-")  # the doc may print minus signs as U+2212


TEXT = _doc()


def _sections(text):
    """{heading line: body} for every markdown heading."""
    out = {}
    head, body = None, []
    for line in text.splitlines():
        if line.startswith("#"):
            if head is not None:
                out[head] = "\n".join(body)
            head, body = line, []
        else:
            body.append(line)
    if head is not None:
        out[head] = "\n".join(body)
    return out


SECTIONS = _sections(TEXT)


def _section(pattern, what):
    found = [h for h in SECTIONS if re.match(pattern, h)]
    assert found, "docs/protocol.md has no section for %s (heading matching %r)" % (what, pattern)
    assert len(found) == 1, "docs/protocol.md has several sections for %s: %r" % (what, found)
    return SECTIONS[found[0]]


def _rows(body):
    """Cells of every markdown table row in ``body``."""
    rows = []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("|") and not set(line) <= set("|- :"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def _fields(schema):
    """[(key, name, spec, required)] of a catalogue schema string (key = position)."""
    out = []
    for key, field in enumerate(schema.split(",")):
        name, spec = field.split(":", 1)
        req = spec.endswith("!")
        out.append((key, name, spec[:-1] if req else spec, req))
    return out


def _message_section(tid, name):
    return _section(r"^### %d `%s`" % (tid, re.escape(name)), "message type %d %r" % (tid, name))


def _nested_section(schema_name):
    return _section(r"^### .*`%s`" % re.escape(schema_name), "nested schema %r" % schema_name)


SCHEMA_CASES = [("%d-%s" % (t, catalogue.TYPE_NAMES[t]), catalogue.SCHEMAS[t][1]) for t in sorted(catalogue.SCHEMAS)]
SCHEMA_CASES += [(n, catalogue.SCHEMAS_BY_NAME[n]) for n in sorted(catalogue.SCHEMAS_BY_NAME)]


def _body_for(case):
    if case in catalogue.SCHEMAS_BY_NAME:
        return _nested_section(case)
    tid = int(case.split("-", 1)[0])
    return _message_section(tid, catalogue.TYPE_NAMES[tid])


def test_every_message_type_has_its_section():
    assert catalogue.TYPE_NAMES, "the catalogue lists no message types"
    for tid in sorted(catalogue.TYPE_NAMES):
        name = catalogue.TYPE_NAMES[tid]
        _message_section(tid, name)
        assert "`%s`" % name in TEXT


def test_overview_table_lists_every_message_type():
    body = _section(r"^## \d+\. Message types", "the message types overview")
    rows = {(r[0], r[1]) for r in _rows(body) if len(r) >= 2}
    for tid in sorted(catalogue.TYPE_NAMES):
        assert (str(tid), "`%s`" % catalogue.TYPE_NAMES[tid]) in rows, "overview lacks type %d" % tid


@pytest.mark.parametrize("case,schema", SCHEMA_CASES, ids=[c for c, _ in SCHEMA_CASES])
def test_every_field_is_documented_with_key_spec_and_presence(case, schema):
    rows = _rows(_body_for(case))
    by_name = {}
    for r in rows:
        if len(r) >= 3 and r[1].startswith("`"):
            by_name[r[1].strip("`")] = r
    for key, name, spec, req in _fields(schema):
        row = by_name.get(name)
        assert row is not None, "%s: field %r has no table row in docs/protocol.md" % (case, name)
        assert row[0] == str(key), "%s.%s: documented key %s, the code uses %d" % (case, name, row[0], key)
        assert row[2] == "`%s`" % spec, "%s.%s: documented spec %s, the code has `%s`" % (case, name, row[2], spec)
        presence = [c for c in row if c in ("yes", "no")]
        assert presence == ["yes" if req else "no"], "%s.%s: required should read %r" % (
            case,
            name,
            "yes" if req else "no",
        )
    documented = set(by_name) - {name for _, name, _, _ in _fields(schema)}
    assert not documented, "%s: docs/protocol.md documents fields the code lacks: %s" % (case, sorted(documented))


def test_every_enumeration_word_is_documented_with_its_index():
    for table in sorted(catalogue.TABLES):
        rows = _rows(_nested_section(table))
        for i, word in enumerate(catalogue.TABLES[table].split()):
            assert any(r[0] == str(i) and "`%s`" % word in r for r in rows), "%s: %d %r is not documented" % (
                table,
                i,
                word,
            )


def test_every_quantity_is_in_the_quantity_table():
    rows = _rows(_section(r"^## \d+\. Quantities", "the quantity table"))
    by_id = {r[0]: r for r in rows if r and r[0].isdigit()}
    qs = quantities.all_quantities()
    assert qs, "quantities.all_quantities() is empty"
    for qid, name, unit, dec, lo, hi in qs:
        row = by_id.get(str(qid))
        assert row is not None, "quantity %d %r is missing from the table" % (qid, name)
        assert row[1:4] == ["`%s`" % name, unit, str(dec)], "quantity %d: doc row %r, code %r" % (
            qid,
            row[:4],
            (name, unit, dec),
        )
        assert "%g..%g" % (lo, hi) in row[5], "quantity %d %s: range %g..%g not in %r" % (qid, name, lo, hi, row[5])
    assert len(by_id) == len(qs), "the quantity table has rows the code lacks"


def test_limits_and_flags_match_the_code():
    rows = {r[0]: r[1] for r in _rows(_section(r"^## Limits and constants", "the limits table")) if len(r) > 1}
    expect = {
        "VERSION": str(frame.VERSION),
        "HEADER_LEN": str(frame.HEADER_LEN),
        "MAX_FRAME": str(frame.MAX_FRAME),
        "MAX_WIRE": str(frame.MAX_WIRE),
        "FLAG_CRC": "0x%02x" % frame.FLAG_CRC,
        "FLAG_ACK_REQ": "0x%02x" % frame.FLAG_ACK_REQ,
        "TAG_LEN": str(frame.TAG_LEN),
        "CRC_LEN": str(frame.CRC_LEN),
        "KEY_MIN": str(frame.KEY_MIN),
        "KEY_MAX": str(frame.KEY_MAX),
        "MAX_DEPTH": str(cbor.MAX_DEPTH),
        "WINDOW": str(replay.WINDOW),
    }
    for name, value in expect.items():
        assert rows.get("`%s`" % name) == value, "%s: doc says %r, code has %s" % (name, rows.get("`%s`" % name), value)


def test_keyless_types_are_the_documented_ones():
    rows = _rows(_section(r"^## \d+\. Message types", "the message types overview"))
    for r in rows:
        if r and r[0].isdigit():
            keyless = int(r[0]) in catalogue.KEYLESS
            assert r[3] == ("yes" if keyless else "no"), "type %s: keyless CRC column should read %s" % (
                r[0],
                "yes" if keyless else "no",
            )


def test_every_error_kind_is_documented():
    rows = _rows(_section(r"^## \d+\. Decoding order and errors", "the error kinds"))
    documented = {(r[0], r[1].split()[0]) for r in rows if len(r) > 1 and r[1].startswith("`")}
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.ProtocolError)]
    for cls in classes:
        if cls is errors.ProtocolError:
            continue
        assert ("`%s`" % cls.kind, "`%s`" % cls.__name__) in documented, "error kind %r (%s) is not documented" % (
            cls.kind,
            cls.__name__,
        )
