"""Store backends: one abstract base (base.Backend) and one module per database, parallel names.

backend = make_backend("sqlite:///tmp/up.db")      # or "postgresql://user@host:5432/db"
with backend.transaction(): backend.execute("INSERT ...", (...))
"""

from upstream.errors import ConfigError


def make_backend(url):
    """The backend for a store URL: ``sqlite:///path`` (``sqlite://:memory:``) or ``postgresql://...``."""
    if not isinstance(url, str):
        raise ConfigError("store", "a store URL (sqlite:///path or postgresql://...)", got=url)
    if url.startswith("sqlite://"):
        from upstream.backends.sqlite import SqliteBackend

        return SqliteBackend(url)
    if url.startswith(("postgresql://", "postgres://")):
        from upstream.backends.postgresql import PostgresqlBackend

        return PostgresqlBackend(url)
    raise ConfigError("store", "a store URL starting sqlite:/// or postgresql://", got=url)
