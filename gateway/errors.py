"""The gateway's exceptions: one root, subclasses that carry what went wrong.

    try: cfg = load_config(path)
    except ConfigError as e: print("fieldline: %s" % e)   # names the key, the line and what was expected

Recoverable errors (a source unplugged, an uplink down) are logged, counted and retried by the
engine; fatal ones (a bad config, a store that cannot be opened) end the service with a message.
"""


class GatewayError(Exception):
    """Root of every error the gateway raises."""


class ConfigError(GatewayError):
    """Invalid configuration: ``key`` (dotted), ``line`` (1-based, or None) and ``expected``."""

    def __init__(self, key, expected, line=None, path=None, got=None):
        self.key, self.expected, self.line, self.path, self.got = key, expected, line, path, got
        where = path or "config"
        if line:
            where += ":%d" % line
        msg = "%s: %s: expected %s" % (where, key, expected)
        if got is not None:
            msg += ", got %r" % (got,)
        super().__init__(msg)


class SourceError(GatewayError):
    """A source failed (port gone, device answering garbage); the engine retries it."""


class StoreError(GatewayError):
    """The gateway's durable store (SQLite) failed or is corrupt."""


class OutboxFull(StoreError):
    """The outbox reached its configured disk limit: nothing is dropped, intake waits."""


class UplinkError(GatewayError):
    """An upstream did not acknowledge a batch (down, refused, timed out); retried with backoff."""
