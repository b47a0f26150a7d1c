"""Device registry: round trip through the file, malformed entries, hot reload, keys kept secret."""

import logging
import os
import stat

import pytest

from gateway.errors import ConfigError
from gateway.registry import Device, Registry, parse_devices
from shared_protocol.frame import decode_frame

# golden frame "hello_provisioned_hmac" from shared_protocol/vectors/frames.jsonl
VECTOR_ID = 16949424
VECTOR_KEY = bytes(range(32))
VECTOR_HEX = (
    "030101050102a0b001010302a72865302e312e3001677669727475616c02f50306040306190e10071a684ee1803b3f9e48f4cccda900"
)
SECRET_HEX = "c0ffee00" * 8  # a key no message may ever show

GOOD = """\
[[devices]]
id = 1
key = "%s"
name = "north-1"

[[devices]]
id = 2
key = "%s"
customer = "acme"
""" % ("11" * 16, "22" * 32)


def write(path, text):
    path.write_text(text)
    return path


def test_round_trip_add_save_load(tmp_path):
    path = tmp_path / "reg" / "devices.toml"
    reg = Registry()
    reg.add(Device(VECTOR_ID, VECTOR_KEY, name="north-1", customer="acme"))
    reg.add(Device(7, bytes(range(64)), name='odd "name" \\ é\x7f'))
    reg.add(Device(0xFFFFFFFF, b"\xaa" * 16))
    reg.save(path)

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(path.parent) == ["devices.toml"]  # no temporary file left behind
    text = path.read_text()
    assert VECTOR_KEY.hex() in text and "[[devices]]" in text

    back = Registry.load(path)
    assert not back.missing and len(back) == 3 and back.path == str(path)
    assert list(back) == list(reg)
    assert back.get(7).name == 'odd "name" \\ é\x7f' and back.get(7).customer is None
    assert back.get(VECTOR_ID) == Device(VECTOR_ID, VECTOR_KEY, "north-1", "acme")
    assert back.get(123) is None and 123 not in back and 7 in back
    assert back.keyring == {VECTOR_ID: VECTOR_KEY, 7: bytes(range(64)), 0xFFFFFFFF: b"\xaa" * 16}


def test_keyring_authenticates_a_golden_frame(tmp_path):
    path = write(tmp_path / "devices.toml", '[[devices]]\nid = %d\nkey = "%s"\n' % (VECTOR_ID, VECTOR_KEY.hex()))
    msg = decode_frame(bytes.fromhex(VECTOR_HEX), Registry.load(path).keyring)
    assert (msg["type"], msg["device_id"], msg["auth"]) == ("hello", VECTOR_ID, "hmac")


def test_missing_file_is_an_empty_registry(tmp_path):
    reg = Registry.load(tmp_path / "devices.toml")
    assert reg.missing and len(reg) == 0 and reg.keyring == {}
    assert reg.reload_if_changed() is False


def test_save_keeps_the_mode_of_an_existing_file(tmp_path):
    path = write(tmp_path / "devices.toml", GOOD)
    os.chmod(path, 0o640)  # readable by the gateway's group
    reg = Registry.load(path)
    reg.add(Device(3, b"\x33" * 16))
    reg.save()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert len(Registry.load(path)) == 3


KEY_EXPECTED = "hex text of 16..64 bytes (32..128 hex digits)"
# (replace in GOOD, with, key, expected fragment, got, line of)
BAD = [
    ('key = "%s"' % ("22" * 32), 'key = "%s"' % ("22" * 15), "devices[1].key", KEY_EXPECTED, "30 hex characters",
     ("key =", 2)),
    ('key = "%s"' % ("22" * 32), 'key = "%s"' % ("22" * 65), "devices[1].key", KEY_EXPECTED, "130 hex characters",
     ("key =", 2)),
    ('key = "%s"' % ("22" * 32), 'key = "%s"' % (SECRET_HEX + "z"), "devices[1].key", KEY_EXPECTED,
     "65 non-hex characters", ("key =", 2)),
    ('key = "%s"' % ("22" * 32), 'key = "%s"' % SECRET_HEX[:-1], "devices[1].key", KEY_EXPECTED, "63 hex characters",
     ("key =", 2)),
    ('key = "%s"' % ("22" * 32), "key = 5", "devices[1].key", KEY_EXPECTED, "not text (int)", ("key =", 2)),
    ('key = "%s"\ncustomer' % ("22" * 32), "customer", "devices[1].key", KEY_EXPECTED + " (required)", None,
     ("[[devices]]", 2)),
    ("id = 2", "id = 1", "devices[1].id", "unique in the registry (devices[0] has it)", "1", ("id = 1", 2)),
    ("id = 2", "id = -1", "devices[1].id", "an integer in 0..4294967295", "-1", "id = -1"),
    ("id = 2", "id = 4294967296", "devices[1].id", "an integer in 0..4294967295", "4294967296", "id = 42"),
    ("id = 2", 'id = "2"', "devices[1].id", "an integer", "'2'", 'id = "2"'),
    ("id = 2\n", "", "devices[1].id", "(required)", None, ("[[devices]]", 2)),
    ('name = "north-1"', 'nam = "north-1"', "devices[0].nam", "did you mean 'name'?", None, "nam ="),
    ('name = "north-1"', 'name = ""', "devices[0].name", "a non-empty string", "''", "name ="),
    ('customer = "acme"', "customer = 3", "devices[1].customer", "a non-empty string", "3", "customer ="),
    ("[[devices]]\nid = 1", "[[device]]\nid = 1", "device", "did you mean 'devices'?", None, "[[device]]"),
]  # fmt: skip


@pytest.mark.parametrize("old,new,key,expected,got,line", BAD, ids=[b[2] + ":" + b[1][:20] for b in BAD])
def test_malformed_entries_name_key_and_line(tmp_path, old, new, key, expected, got, line):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    path = write(tmp_path / "devices.toml", text)
    with pytest.raises(ConfigError) as info:
        Registry.load(path)
    e = info.value
    needle, nth = line if isinstance(line, tuple) else (line, 1)
    want = [n for n, x in enumerate(text.splitlines(), 1) if needle in x][nth - 1]
    assert (e.key, e.line, e.path) == (key, want, str(path)), str(e)
    assert expected in e.expected, str(e)
    if got is not None:
        assert got in repr(e.got), str(e)
    assert SECRET_HEX[:8] not in str(e) and "22" * 15 not in str(e)


def test_devices_must_be_an_array_of_tables():
    with pytest.raises(ConfigError) as info:
        parse_devices("[devices]\nid = 1\n", "devices.toml")
    assert (info.value.key, info.value.line) == ("devices", 1)


def test_syntax_error_names_the_line():
    with pytest.raises(ConfigError) as info:
        parse_devices('[[devices]]\nid = 1\nkey = "%s\n' % SECRET_HEX, "devices.toml")
    assert (info.value.key, info.value.line) == ("TOML syntax", 3)
    assert SECRET_HEX[:8] not in str(info.value)


def test_reload_if_changed_picks_up_new_devices_in_the_same_keyring(tmp_path):
    path = write(tmp_path / "devices.toml", GOOD)
    gateway = Registry.load(path)
    keyring = gateway.keyring
    assert gateway.reload_if_changed() is False

    provisioning = Registry.load(path)
    provisioning.add(Device(3, b"\x33" * 16, name="south-1"))
    provisioning.add(Device(1, b"\x44" * 16), replace=True)  # re-keyed
    provisioning.remove(2)
    provisioning.save()

    assert gateway.reload_if_changed() is True
    assert gateway.keyring is keyring and keyring == {1: b"\x44" * 16, 3: b"\x33" * 16}
    assert gateway.get(3).name == "south-1" and gateway.get(2) is None
    assert gateway.reload_if_changed() is False


def test_reload_keeps_old_keys_on_a_bad_file_and_says_so_once(tmp_path, caplog):
    path = write(tmp_path / "devices.toml", GOOD)
    reg = Registry.load(path)
    before = dict(reg.keyring)
    write(path, GOOD.replace('key = "%s"' % ("11" * 16), 'key = "%s"' % (SECRET_HEX + "0")))
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as info:
        reg.reload_if_changed()
    assert (info.value.key, info.value.line) == ("devices[0].key", 3)
    assert SECRET_HEX[:8] not in str(info.value) and SECRET_HEX[:8] not in caplog.text
    assert reg.keyring == before and len(reg) == 2
    assert reg.reload_if_changed() is False  # the same bad file is reported once
    write(path, GOOD + '\n[[devices]]\nid = 9\nkey = "%s"\n' % SECRET_HEX)
    assert reg.reload_if_changed() is True and reg.keyring[9] == bytes.fromhex(SECRET_HEX)
    assert SECRET_HEX[:8] not in caplog.text


def test_vanished_file_keeps_the_keys(tmp_path):
    path = write(tmp_path / "devices.toml", GOOD)
    reg = Registry.load(path)
    os.unlink(path)
    assert reg.reload_if_changed() is False and len(reg) == 2 and reg.missing
    write(path, GOOD.split("[[devices]]\nid = 2")[0])
    assert reg.reload_if_changed() is True and list(reg.keyring) == [1] and not reg.missing


def test_add_checks_the_device_and_never_shows_its_key():
    reg = Registry([Device(1, b"\x11" * 16)])
    with pytest.raises(ConfigError) as info:
        reg.add(Device(1, b"\x22" * 16))
    assert info.value.key == "devices.id" and info.value.got == 1
    secret = bytes.fromhex(SECRET_HEX)
    for bad, key in [
        (Device(2, secret[:15]), "devices.key"),
        (Device(2, secret + secret + b"x"), "devices.key"),
        (Device(2, SECRET_HEX), "devices.key"),
        (Device(-1, secret), "devices.id"),
        (Device(2, secret, name=""), "devices.name"),
    ]:
        with pytest.raises(ConfigError) as info:
            reg.add(bad)
        assert info.value.key == key
        assert SECRET_HEX[:8] not in str(info.value) and "\\xc0\\xff" not in str(info.value)
    assert len(reg) == 1 and reg.remove(1).id == 1 and reg.remove(1) is None and reg.keyring == {}


def test_device_repr_hides_the_key():
    d = Device(5, bytes.fromhex(SECRET_HEX), name="n")
    assert "key" not in repr(d) and SECRET_HEX[:8] not in repr(d) and "\\xc0" not in repr(d)


def test_save_without_a_path_is_an_error():
    with pytest.raises(ConfigError) as info:
        Registry([Device(1, b"\x11" * 16)]).save()
    assert info.value.key == "registry.path"
