"""The node's identity and configuration: config.json on its flash, its key in the gateway's registry.

    key, how = choose_key(registry, device_id, new_key=False)   # the registry's key unless re-keying
    doc = build_config(existing, device_id, key, lat=52.1, lon=5.2)  # schema: firmware/fieldnode/config.py
    if stage_config(board, doc, existing):                        # config.json.new, checked by the node
        register(registry, device); commit_config(board)          # the registry first, then the rename

The key is 32 bytes from ``secrets``; it travels to the board inside the code run there, is
written only to the board's flash and the registry (mode 0600), and is never printed: summaries
say "new" or "kept". Settings the node keeps per unit (calibration, intervals, gdd, power) are
carried over from its current config unless a --config file sets them, so re-provisioning never
wipes a calibration. The file goes to ``config.json.new``, the node's loader validates it on the
board (a refused value changes nothing anywhere), the registry is saved, then the file is renamed
over ``config.json`` (atomic on littlefs): a node never boots a half file, and a key on a board is
always in the registry; a run that stops between the two is completed by the next one (it reuses
the registry's key).
"""

import binascii
import json
import os
import secrets

from gateway.errors import ConfigError
from gateway.registry import Device, Registry
from provisioning.errors import BadInput, DeviceError, VerifyFailed
from provisioning.sites import check_position

CONFIG_PATH = "/flash/config.json"
KEY_BYTES = 32
KEEP_SECTIONS = ("intervals", "calibration", "gdd", "power")
OVERRIDABLE = KEEP_SECTIONS + ("site", "name")

_STAGE = """\
import os
from fieldnode import config as _c
with open(%(new)r, 'w') as f:
    f.write(%(text)r)
try:
    _c.load(%(new)r)
except Exception:
    os.remove(%(new)r)
    raise
"""

_COMMIT = """\
import os
os.rename(%r, %r)
"""

_LOAD = """\
import json
from fieldnode import config as _c
c = _c.load(%r)
print(json.dumps({'device_id': c.device_id, 'provisioned': c.provisioned}))
"""

_READ = """\
try:
    with open(%r) as f:
        print(f.read())
except OSError:
    print('@@NONE')
"""

_FLASH = """\
import os
try:
    os.stat('/flash')
    print('yes')
except OSError:
    print('no')
"""


def default_device_id(uid):
    """The id an unprovisioned node announces (crc32 of its unique id, never 0): kept by provisioning."""
    return binascii.crc32(bytes(uid)) & 0xFFFFFFFF or 0xFFFFFFFF


def parse_device_id(text):
    """'0x0F1E0003' or '253624323' -> int in 1..2**32-1; BadInput otherwise."""
    try:
        v = int(str(text), 0)
    except ValueError:
        v = -1
    if not 1 <= v <= 0xFFFFFFFF:
        raise BadInput("--device-id %r: expected an integer 1..4294967295 (decimal, or hex with 0x)" % (text,))
    return v


def load_registry(path):
    try:
        return Registry.load(path)
    except ConfigError as e:
        raise BadInput("device registry: %s" % e, "fix or restore %s; provisioning rewrites it whole" % path) from None


def choose_key(registry, device_id, new_key=False):
    """(key bytes, "kept" | "new"): the registry's key for ``device_id``, or a fresh one."""
    old = registry.get(device_id)
    if old is not None and not new_key and len(old.key) == KEY_BYTES:
        return old.key, "kept"
    return secrets.token_bytes(KEY_BYTES), "new"


def register(registry, device):
    """Add or update ``device`` and save the registry (mode 0600). "added", "updated" or "unchanged"."""
    old = registry.get(device.id)
    if old == device and registry.path and os.path.exists(registry.path):
        _private(registry.path)
        return "unchanged"
    try:
        registry.add(device, replace=old is not None)
        registry.save()
    except ConfigError as e:
        raise BadInput("device registry: %s" % e) from None
    _private(registry.path)
    return "added" if old is None else "updated"


def _private(path):
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)  # it holds every node's key


def read_overrides(path):
    """The --config FILE: JSON with any of the node's sections; never device_id or key."""
    if not path:
        return {}
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise BadInput("--config %s: %s: expected a JSON object of config sections" % (path, e)) from None
    if not isinstance(doc, dict):
        raise BadInput("--config %s: expected a JSON object of config sections" % path)
    bad = sorted(k for k in doc if k not in OVERRIDABLE)
    if bad:
        raise BadInput("--config %s: %s cannot be set there: expected only %s (device_id and key are set by "
                       "provisioning)" % (path, ", ".join(bad), ", ".join(OVERRIDABLE)))  # fmt: skip
    return doc


def build_config(existing, device_id, key, name=None, lat=None, lon=None, alt_m=None, overrides=None):
    """The config.json document (a dict) for the node; BadInput when its position is unknown."""
    existing = existing if isinstance(existing, dict) else {}
    overrides = overrides or {}
    doc = {"device_id": device_id, "key": key.hex()}
    name = name if name is not None else overrides.get("name", existing.get("name"))
    if name:
        if not isinstance(name, str) or len(name) > 32:
            raise BadInput("--name %r: expected at most 32 characters" % (name,))
        doc["name"] = name
    old_site = existing.get("site") if isinstance(existing.get("site"), dict) else {}
    site = dict(old_site)
    site.update(overrides.get("site") or {})
    for k, v in (("lat", lat), ("lon", lon), ("alt_m", alt_m)):
        if v is not None:
            site[k] = float(v)
    if site.get("lat") is None or site.get("lon") is None:
        raise BadInput("the node's position is unknown: expected --lat and --lon (decimal degrees, WGS 84)")
    check_position(site["lat"], site["lon"])
    doc["site"] = site
    for sec in KEEP_SECTIONS:
        value = dict(existing.get(sec) or {}) if isinstance(existing.get(sec), dict) else {}
        value.update(overrides.get(sec) or {})
        if value:
            doc[sec] = value
    return json.loads(json.dumps(doc))  # as it will read back


def read_config(board, path=CONFIG_PATH):
    """The board's config document, or None (missing or not JSON: provisioning writes a new one)."""
    out = board.exec(_READ % path)
    if out.strip() == "@@NONE":
        return None
    try:
        doc = json.loads(out)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def ensure_flash(board):
    """VerifyFailed unless the board has its /flash mounted (boot.py does it on the ESP32-S3)."""
    if board.exec(_FLASH).strip() != "yes":
        raise VerifyFailed(
            '%s has no /flash: boot.py did not mount the littlefs "vfs" partition' % board.port,
            "press RESET and run again; if it repeats, flash the runtime again (--firmware-image)",
        )


def stage_config(board, doc, existing=None):
    """Put ``doc`` on the board as config.json.new, checked by the node's own loader; False when the
    board already holds it. BadInput (naming the key) if the node refuses it: its config is untouched."""
    if existing == doc:
        return False
    text = json.dumps(doc, sort_keys=True)
    try:
        board.exec(_STAGE % {"new": CONFIG_PATH + ".new", "text": text})
    except DeviceError as e:
        why = e.message.split("config " + CONFIG_PATH + ".new: ", 1)[-1]
        raise BadInput(
            "the node refuses the configuration: %s" % why.replace("the board raised ", ""),
            "correct the option or --config value named, then run again",
        ) from None
    return True


def commit_config(board):
    """The staged config.json.new replaces config.json (one rename: atomic on littlefs)."""
    board.exec(_COMMIT % (CONFIG_PATH + ".new", CONFIG_PATH))


def verify_config(board, doc):
    """Read the config back and load it with the node's own code; VerifyFailed naming what differs."""
    back = read_config(board)
    if back is None:
        raise VerifyFailed(
            "%s is missing or unreadable on the board after writing it" % CONFIG_PATH, "run provision again"
        )
    for k in ("device_id", "key"):
        if back.get(k) != doc[k]:
            raise VerifyFailed(
                "%s on the board holds another %s than was written" % (CONFIG_PATH, k), "run provision again"
            )
    if back != doc:
        diff = sorted(k for k in set(back) | set(doc) if back.get(k) != doc.get(k))
        raise VerifyFailed(
            "%s on the board differs from what was written in %s" % (CONFIG_PATH, ", ".join(diff)),
            "run provision again",
        )
    try:
        loaded = board.eval_json(_LOAD % CONFIG_PATH)
    except DeviceError as e:
        why = "the node's firmware cannot load its config: %s" % e.message
        raise VerifyFailed(why, "run provision again") from None
    if loaded.get("device_id") != doc["device_id"] or not loaded.get("provisioned"):
        raise VerifyFailed("the node loads device id %s, expected %d" % (loaded.get("device_id"), doc["device_id"]))
    return back


def device_record(device_id, key, name=None, customer=None):
    return Device(device_id, key, name or None, customer or None)
