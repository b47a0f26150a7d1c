"""A real PostgreSQL server for tests and benches: initdb into a temporary directory, 127.0.0.1, a free port.

    pg = PostgresServer()                     # skips nothing itself: RuntimeError says what is missing
    url = pg.create_database("t1")            # "postgresql://fieldline@127.0.0.1:<port>/t1"
    ...; pg.close()                           # pg_ctl stop, directory removed, throwaway user deleted

initdb refuses to run as root. As root, the server runs as an unprivileged user: the system's
``postgres`` account when it exists (the Debian package makes it), else a throwaway system user
(``fieldline-pg-<random>``, created with useradd and deleted again by ``close()``); commands run
through ``runuser -u USER --``. The data directory, the unix socket and the log live in a fresh
directory under the system temp dir (owned by that user: root's pytest tmp dirs are 0700 and closed
to it). Durability is off (fsync, synchronous_commit, full_page_writes): a throw-away server.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

from tools.virtual_field.broker import free_port

START_TIMEOUT_S = 30


def pg_bin(name):
    """Path of a PostgreSQL program (PATH, then /usr/lib/postgresql/*/bin), or None."""
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def missing_binaries():
    """Names of the programs this helper needs that are not installed (empty: all there)."""
    need = ["initdb", "pg_ctl", "postgres"]
    missing = [n for n in need if pg_bin(n) is None]
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing.append("runuser")
    return missing


class PostgresServer:
    """See the module doc. ``url`` is the server's ``postgres`` database; ``create_database`` makes more."""

    def __init__(self, superuser="fieldline"):
        missing = missing_binaries()
        if missing:
            raise RuntimeError("PostgreSQL programs not installed: %s" % ", ".join(missing))
        self.superuser = superuser
        self.port = free_port()
        self._made_user = None
        self.run_as = None
        if os.geteuid() == 0:
            self.run_as = self._unprivileged_user()
        self.dir = tempfile.mkdtemp(prefix="fieldline-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        try:
            self._run("initdb", "-D", self.data, "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-sync",
                      "--locale=C")  # fmt: skip
            opts = "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off " \
                   "-c full_page_writes=off -c max_connections=50" % (self.port, self.dir)  # fmt: skip
            self._run("pg_ctl", "start", "-D", self.data, "-l", self.log_path, "-w", "-t", str(START_TIMEOUT_S),
                      "-o", opts)  # fmt: skip
        except BaseException:
            self.close()
            raise
        self.url = self.database_url("postgres")

    def _unprivileged_user(self):
        try:
            pwd.getpwnam("postgres")
            return "postgres"
        except KeyError:
            pass
        name = "fieldline-pg-" + uuid.uuid4().hex[:6]
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True, timeout=30)  # fmt: skip
        self._made_user = name
        return name

    def _run(self, prog, *args, timeout=60):
        cmd = [pg_bin(prog), *args]
        if self.run_as:
            cmd = ["runuser", "-u", self.run_as, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(
                "%s failed (%d):\n%s\n%s\nlog %s:\n%s"
                % (" ".join(cmd), done.returncode, done.stdout[-2000:], done.stderr[-2000:], self.log_path, self.log())
            )
        return done

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def database_url(self, name):
        return "postgresql://%s@127.0.0.1:%d/%s" % (self.superuser, self.port, name)

    def create_database(self, name):
        """CREATE DATABASE ``name`` (dropped first if it exists); returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute('DROP DATABASE IF EXISTS "%s"' % name)
            c.execute('CREATE DATABASE "%s"' % name)
        return self.database_url(name)

    def close(self):
        if os.path.isdir(getattr(self, "data", "")) and os.path.exists(os.path.join(self.data, "postmaster.pid")):
            try:
                self._run("pg_ctl", "stop", "-D", self.data, "-m", "fast", "-w", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        if getattr(self, "dir", None):
            shutil.rmtree(self.dir, ignore_errors=True)
        if self._made_user:
            subprocess.run(["userdel", self._made_user], capture_output=True, timeout=30)
            self._made_user = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
