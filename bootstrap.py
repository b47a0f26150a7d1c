#!/usr/bin/env python3
"""Set up everything Fieldline needs, idempotently, then run the demo or the tests.

    python3 bootstrap.py demo [fieldline demo options]   # the virtual field demo
    python3 bootstrap.py test [pytest options]           # the whole test suite
    python3 bootstrap.py setup                           # only set up (then .venv/bin/fieldline --help)

Installs the Debian packages the tests and the demo use (when run as root and missing),
creates .venv, installs the project with its dev extras when pyproject.toml changed.
Needs nothing but Python 3.11+ (and root, for the Debian packages).
"""

import hashlib
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(ROOT, ".venv")
PY = os.path.join(VENV, "bin", "python")
STAMP = os.path.join(VENV, ".fieldline-installed")
# Debian packages: servers and tools the tests and the demo run for real.
# postgresql: the upstream store tests; chromium: the dashboard and report tests (Playwright drives it)
APT_PACKAGES: list[str] = ["mosquitto", "openssl", "postgresql", "chromium"]


def say(msg):
    print("[bootstrap] " + msg, flush=True)


def run(cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def ensure_debian_packages():
    if not APT_PACKAGES or not shutil.which("dpkg-query"):
        return
    missing = []
    for pkg in APT_PACKAGES:
        r = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True
        )
        if "install ok installed" not in r.stdout:
            missing.append(pkg)
    if not missing:
        return
    if os.geteuid() != 0:
        say("missing Debian packages %s and not root: install them, or run as root" % " ".join(missing))
        return
    say("installing Debian packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], env=env)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)


def ensure_venv():
    if sys.version_info < (3, 11):  # noqa: UP036 - bootstrap runs on whatever python3 is there
        sys.exit("bootstrap: Python 3.11 or newer is needed, this is %s" % sys.version.split()[0])
    if not os.path.exists(PY):
        say("creating the virtual environment in .venv")
        run([sys.executable, "-m", "venv", VENV])
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    have = open(STAMP).read().strip() if os.path.exists(STAMP) else ""
    if have != want:
        say("installing Python packages (pip install -e .[dev])")
        run([PY, "-m", "pip", "install", "-q", "--upgrade", "pip"])
        run([PY, "-m", "pip", "install", "-q", "-e", ROOT + "[dev]"])
        with open(STAMP, "w") as f:
            f.write(want)


def main(argv):
    if not argv or argv[0] not in ("demo", "test", "setup"):
        print(__doc__)
        return 2
    ensure_debian_packages()
    ensure_venv()
    cmd, rest = argv[0], argv[1:]
    if cmd == "setup":
        say("ready: .venv/bin/fieldline --help")
        return 0
    if cmd == "demo":
        exe = [os.path.join(VENV, "bin", "fieldline"), "demo", *rest]
    else:
        # two workers (this machine's two cores): most sim tests wait on paced virtual fields
        own = any(a.startswith(("-n", "--numprocesses", "--dist")) or a.endswith("no:xdist") for a in rest)
        par = [] if own else ["-n", "2", "--dist", "loadgroup"]
        exe = [PY, "-m", "pytest", *par, *rest]
    os.chdir(ROOT)
    if cmd == "demo":  # the demo itself: its Ctrl-C/SIGTERM cleanup must not race a parent
        os.execv(exe[0], exe)
    return subprocess.call(exe)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
