"""The upstream's exceptions: one root, subclasses that carry what went wrong.

    try: store = open_store("sqlite:///var/lib/fieldline/upstream.db")
    except UpstreamError as e: print("fieldline: %s" % e)

A bad batch (BadBatch) is recoverable: the receiver counts it, answers 400 with ``reason`` and goes
on. A store that cannot be opened or migrated (StoreError) is fatal for ``serve``.
"""


class UpstreamError(Exception):
    """Root of every error the upstream side raises."""


class ConfigError(UpstreamError):
    """A bad option: ``key`` names it, ``expected`` says what would have been accepted."""

    def __init__(self, key, expected, got=None):
        self.key, self.expected, self.got = key, expected, got
        msg = "%s: expected %s" % (key, expected)
        if got is not None:
            msg += ", got %r" % (got,)
        super().__init__(msg)


class StoreError(UpstreamError):
    """The store cannot be opened, migrated or written."""


class BadBatch(UpstreamError):
    """A batch document that cannot be stored; ``reason`` names the field or item and what was expected."""

    def __init__(self, reason, batch=None):
        self.reason, self.batch = reason, batch
        super().__init__("batch %s: %s" % (batch, reason) if batch else reason)


class DevicesFileError(UpstreamError):
    """A devices file (CSV/TOML) with a bad line: ``path``, ``line`` and what was wrong."""

    def __init__(self, path, line, reason):
        self.path, self.line, self.reason = path, line, reason
        super().__init__("%s:%s: %s" % (path, line, reason) if line else "%s: %s" % (path, reason))
