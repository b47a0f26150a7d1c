"""SqliteBackend: the embedded default, one file in WAL mode (readers never block the writer).

    b = SqliteBackend("sqlite:///var/lib/fieldline/upstream.db")

``sqlite:///relative/path`` and ``sqlite:////absolute/path`` follow the SQLAlchemy convention; a
path that starts with ``/`` after ``sqlite://`` is absolute. ``synchronous=NORMAL`` in WAL mode:
a commit survives a process crash; a power cut may lose the last commits but never corrupts.
"""

import contextlib
import os
import sqlite3

from upstream.backends.base import Backend
from upstream.errors import StoreError


def sqlite_path(url):
    """The file path of a sqlite:// URL (':memory:' for an in-memory database)."""
    rest = url[len("sqlite://") :]
    if rest in ("", "/:memory:", ":memory:"):
        return ":memory:"
    if rest.startswith("//"):
        return rest[1:]  # sqlite:////abs/path
    return rest if rest.startswith("/") else rest


class SqliteBackend(Backend):
    dialect = "sqlite"
    DDL = {"id": "INTEGER PRIMARY KEY", "real": "REAL", "blob": "BLOB", "bigint": "INTEGER",
           "without_rowid": " WITHOUT ROWID"}  # fmt: skip

    def __init__(self, url):
        self.url = url
        self.path = sqlite_path(url)
        if self.path != ":memory:":
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise StoreError("store %s: directory %s does not exist" % (url, parent))
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA cache_size=-200000")
            self.db.execute("PRAGMA temp_store=MEMORY")
        except sqlite3.Error as e:
            raise StoreError("store %s: cannot open: %s" % (url, e)) from e
        self._depth = 0

    def execute(self, sql, params=()):
        cur = self.db.execute(sql, params)
        return cur.fetchall() if cur.description else []

    def executemany(self, sql, rows):
        cur = self.db.executemany(sql, rows)
        return max(cur.rowcount, 0)

    def copy_rows(self, table, names, rows):
        sql = "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(names), ", ".join("?" * len(names)))
        self.db.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self):
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    def table_names(self):
        return {r[0] for r in self.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self):
        db, self.db = getattr(self, "db", None), None
        if db is not None:
            db.close()
