"""One provisioning run: flash (optional), deploy, configure, register, verify; a Summary at the end.

    req = Request(registry_path="devices.toml", lat=52.1, lon=5.2, customer="acme", field="north")
    summary = provision_serial("/dev/ttyACM0", req)          # a re-run: summary.files_copied == 0
    summary, board = provision_virtual("work/node1", req)    # then board.node(uart_path) runs the node

Order: what can be checked on the host is checked before the board is touched; the config is
staged on the board and accepted by the node's own loader before the registry is saved, and the
registry is saved before the config replaces the old one (a key on a board is always in the
registry); the verification reads back the manifest and the config and has the node load it.
"""

import dataclasses
import datetime
import json
import os
import time

from provisioning import configure, deploy
from provisioning.errors import BadInput, DeviceError, VerifyFailed
from provisioning.report import Summary
from provisioning.sites import SiteBook, check_position, inside
from provisioning.transport import Board


@dataclasses.dataclass
class Request:
    registry_path: str = "devices.toml"
    device_id: int | None = None
    name: str | None = None
    customer: str | None = None
    field: str | None = None
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    boundary: list | None = None  # [(lat, lon), ...] from sites.parse_boundary
    new_key: bool = False
    overrides: dict = dataclasses.field(default_factory=dict)  # config sections from --config FILE
    firmware_image: str | None = None

    def check(self):
        """Host-side checks, before any board is touched."""
        if (self.lat is None) != (self.lon is None):
            raise BadInput("--lat and --lon go together: expected both (decimal degrees) or neither")
        if self.lat is not None:
            check_position(self.lat, self.lon)
            check_inside(self.lat, self.lon, self.boundary)
        if self.name is not None and len(self.name) > 32:
            raise BadInput("--name %r: expected at most 32 characters" % self.name)


def check_inside(lat, lon, boundary):
    if boundary and not inside(lat, lon, boundary):
        raise BadInput("the node's position %.6f, %.6f is outside the field boundary (%d vertices): expected a "
                       "position inside its field" % (lat, lon, len(boundary)),
                       "check --lat/--lon (swapped? the other field's?) and --boundary")  # fmt: skip


def provision_serial(
    port, req, progress=None, after_copy=None, flash_progress=None, timeout_s=8.0, connect_timeout_s=3.0
):
    """Provision the board on serial ``port`` (see the module doc); returns the Summary."""
    t0 = time.monotonic()
    req.check()
    reg = configure.load_registry(req.registry_path)
    book = SiteBook.beside(req.registry_path)
    if req.firmware_image:
        from provisioning.flash import flash_firmware, wait_for_port

        flash_firmware(port, req.firmware_image, progress=flash_progress)
        wait_for_port(port)
    s = Summary(target="serial %s" % port, registry_path=os.path.abspath(req.registry_path))
    with Board(port, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s).open() as board:
        info = deploy.probe(board)
        res = deploy.deploy(board, info, progress, after_copy)
        if res.copied:
            board.soft_reset()  # the new firmware's boot.py runs (it mounts /flash on the real board)
        configure.ensure_flash(board)
        existing = configure.read_config(board)
        dev_id = _device_id(req, existing, info)
        was = (existing or {}).get("device_id")
        if type(was) is int and was != dev_id:
            s.notes.append("the node was device %d (0x%08X): its registry entry is kept" % (was, was))
        key, s.key = configure.choose_key(reg, dev_id, req.new_key)
        old = book.get(dev_id) or {}
        known = reg.get(dev_id)
        lat, lon = req.lat, req.lon
        if lat is None and not (existing or {}).get("site") and old.get("lat") is not None:
            lat, lon = old["lat"], old["lon"]  # a node whose flash was wiped: its recorded position
        doc = configure.build_config(existing, dev_id, key, req.name, lat, lon, req.alt_m, req.overrides)
        boundary = req.boundary if req.boundary is not None else old.get("boundary")
        check_inside(doc["site"]["lat"], doc["site"]["lon"], boundary)
        customer = req.customer or old.get("customer") or (known.customer if known else None)
        staged = configure.stage_config(board, doc, existing)  # the node's loader accepts it (or BadInput)
        s.registry = configure.register(reg, configure.device_record(dev_id, key, doc.get("name"), customer))
        if staged:
            configure.commit_config(board)
        s.config = "written" if staged else "unchanged"
        configure.verify_config(board, doc)
        if deploy.device_hashes(board, [deploy.MANIFEST_PATH]).get(deploy.MANIFEST_PATH) != res.manifest_sha256:
            raise VerifyFailed(
                "%s on the board does not match the firmware deployed" % deploy.MANIFEST_PATH, "run provision again"
            )
    s.verified = True
    s.device_id, s.name, s.hw = dev_id, doc.get("name"), info.kind
    s.uid = info.uid.hex() if info.uid else None
    s.fw_version, s.mpy = res.manifest["fw_version"], res.manifest["mpy"]
    s.files_total, s.files_copied = len(res.files), len(res.copied)
    s.files_repaired, s.files_removed, s.bytes_copied = len(res.repaired), len(res.removed), res.bytes_copied
    s.manifest_sha256 = res.manifest_sha256
    changed = bool(res.copied or res.removed or s.config != "unchanged" or s.registry != "unchanged")
    s.site = _record(book, dev_id, old, req, doc, customer, boundary, s, changed)
    s.elapsed_s = round(time.monotonic() - t0, 2)
    return s


def _device_id(req, existing, info):
    if req.device_id is not None:
        return req.device_id
    old = (existing or {}).get("device_id")
    if type(old) is int and 1 <= old <= 0xFFFFFFFF:
        return old
    if info.uid:
        return configure.default_device_id(info.uid)
    raise BadInput("the board reports no unique id: expected --device-id")


def _record(book, dev_id, old, req, doc, customer, boundary, s, changed):
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    rec = {
        "name": doc.get("name"),
        "customer": customer,
        "field": req.field or old.get("field"),
        "lat": doc["site"]["lat"],
        "lon": doc["site"]["lon"],
        "alt_m": doc["site"].get("alt_m"),
        "boundary": [list(v) for v in boundary] if boundary else None,
        "hw": s.hw,
        "uid": s.uid,
        "fw_version": s.fw_version,
        "manifest_sha256": s.manifest_sha256,
        "provisioned_at": old.get("provisioned_at") if old and not changed else now,
    }
    rec = {k: v for k, v in rec.items() if v is not None}
    keep = {k: v for k, v in old.items() if k not in rec and k not in ("verified_at",)}  # e.g. ble_counter
    rec.update(keep)
    rec["verified_at"] = now
    book.put(dev_id, rec)
    book.save()
    return {k: rec.get(k) for k in ("customer", "field", "lat", "lon", "alt_m", "boundary")}


def provision_virtual(workdir, req, seed=None, progress=None, after_copy=None, keep_running=False):
    """Start the REPL virtual board in ``workdir``, provision it, stop it (unless ``keep_running``).

    Returns (Summary, board); ``board.node(uart_path)`` then runs the provisioned node.
    """
    from tools.virtual_field.repl_board import BoardError, ReplBoard

    if req.firmware_image:
        raise BadInput("--firmware-image with --virtual: the virtual board runs the unix port, there is no "
                       "runtime to flash", "drop --firmware-image, or use --port with a real board")  # fmt: skip
    board = ReplBoard(workdir, seed=board_seed(workdir) if seed is None else seed)
    try:
        board.start()
    except (BoardError, OSError) as e:
        board.stop()
        raise DeviceError(
            "the virtual board in %s did not start: %s" % (workdir, e),
            advice="check that the workdir is writable and micropython is installed",
        ) from None
    try:
        s = provision_serial(board.console_path, req, progress, after_copy)
    finally:
        if not keep_running:
            board.stop()
    s.target = "virtual %s" % board.workdir
    s.notes.append("run the node: fieldline node virtual --provisioned %s --uart PTY" % board.workdir)
    return s, board


def board_seed(workdir, default=1):
    """The seed a virtual board in ``workdir`` was made with (its identity plate), else ``default``."""
    try:
        with open(os.path.join(workdir, "fs", "board.json")) as f:
            return int(json.load(f)["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return default
