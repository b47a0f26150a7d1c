"""The backend contract: a connection that runs the store's portable SQL on one database.

    with backend.transaction():
        n = backend.executemany("INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING", rows)
    cols = backend.columns("SELECT a, b FROM t WHERE a > ?", (3,))   # list of column lists

SQL is written once, for both databases: ``?`` placeholders, ``ON CONFLICT ... DO NOTHING/UPDATE``,
``RETURNING``; DDL uses the tokens ``{id}`` (an auto-increment primary key), ``{real}`` and
``{blob}``, which ``ddl()`` replaces with each database's spelling. A backend is used by one thread
at a time (the receiver runs every store call on one writer thread).
"""

import abc


class Backend(abc.ABC):
    """One database connection. Subclasses: SqliteBackend, PostgresqlBackend."""

    dialect = "base"
    DDL = {}  # token -> this database's spelling

    def ddl(self, text):
        for token, spelling in self.DDL.items():
            text = text.replace("{%s}" % token, spelling)
        return text

    @abc.abstractmethod
    def execute(self, sql, params=()):
        """Run one statement; return its rows (a list of tuples; empty for statements without rows)."""

    @abc.abstractmethod
    def executemany(self, sql, rows):
        """Run one statement per row; return the number of rows changed (conflicts skipped are not counted)."""

    @abc.abstractmethod
    def copy_rows(self, table, names, rows):
        """Append many new rows fast (COPY on PostgreSQL); the caller made sure no key conflicts."""

    @abc.abstractmethod
    def transaction(self):
        """A context manager: everything inside commits together, or rolls back on an exception."""

    @abc.abstractmethod
    def table_names(self):
        """The set of table names in the database."""

    @abc.abstractmethod
    def close(self):
        """Close the connection (safe to call twice)."""

    def columns(self, sql, params=(), n=None):
        """The result as a list of column lists (``n`` columns when there are no rows)."""
        rows = self.execute(sql, params)
        if not rows:
            return [[] for _ in range(n or 0)]
        return [list(c) for c in zip(*rows, strict=True)]

    def matrix(self, sql, params=(), ncols=0):
        """A numeric result as one float64 array [rows, columns] (NULL -> NaN): the fast path for reads."""
        import numpy as np

        rows = self.execute(sql, params)
        if not rows:
            return np.zeros((0, ncols))
        return np.array(rows, dtype=float)
