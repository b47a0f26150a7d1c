"""Uplinks: where outbox batches go (a local JSON Lines file, an MQTT broker, an HTTP endpoint).

    up = make_uplink({"kind": "mqtt", "host": "broker.example", "tls": {"ca": "ca.pem"}}, gateway_id="gw-1")
    await up.start(); await up.send(batch); print(up.state()); await up.stop()

``make_uplink`` is the one factory; each kind lives in a sibling module with a parallel name
(file.py FileUplink, mqtt.py MqttUplink, http.py HttpUplink), imported only when configured, so a
gateway that writes files never loads paho or aiohttp. Every kind also takes ``backoff_min_s`` and
``backoff_max_s`` (the engine's retry backoff, read back from the uplink; MQTT also reconnects on
that schedule). Also here: option checks shared by the kinds (``check_number``, ``tls_context``)
and ``UplinkStats``, the counters behind ``state()``.
"""

import logging
import ssl
import time

from gateway.errors import ConfigError, UplinkError

log = logging.getLogger("fieldline.gateway.uplink")

KINDS = ("file", "mqtt", "http")
COMMON_OPTIONS = ("backoff_min_s", "backoff_max_s")
TLS_KEYS = ("ca", "cert", "key", "insecure")


def make_uplink(options, gateway_id):
    """The Uplink for an ``[uplinks]`` config table (a dict with "kind"); ConfigError if it is wrong."""
    opts = dict(options)
    kind = opts.pop("kind", None)
    cls = _uplink_class(kind)
    _check_keys(opts, cls)
    if kind == "mqtt":
        return cls(gateway_id=gateway_id, **opts)
    return cls(**opts)


def _uplink_class(kind):
    if kind == "file":
        from gateway.uplinks.file import FileUplink

        return FileUplink
    if kind == "mqtt":
        from gateway.uplinks.mqtt import MqttUplink

        return MqttUplink
    if kind == "http":
        from gateway.uplinks.http import HttpUplink

        return HttpUplink
    raise ConfigError("uplinks.kind", "one of " + ", ".join(KINDS), got=kind)


def _check_keys(opts, cls):
    known = cls.OPTIONS + COMMON_OPTIONS
    for key in opts:
        if key not in known:
            raise ConfigError("uplinks." + key, "one of the %s uplink's options: %s" % (cls.kind, ", ".join(known)))
    for key, expected in cls.REQUIRED.items():
        if opts.get(key) in (None, ""):
            raise ConfigError("uplinks." + key, expected)


# ---- option checks shared by the kinds ----


def check_number(value, key, minimum=0.0, integer=False, maximum=None, above=False):
    """``value`` as a float (or int) >= ``minimum`` (> with ``above``) and <= ``maximum``; else ConfigError."""
    kind = int if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or value < minimum
        or (above and value == minimum)
        or (maximum is not None and value > maximum)
    ):
        expected = "%s %s %s" % ("an integer" if integer else "a number", ">" if above else ">=", minimum)
        if maximum is not None:
            expected += " and <= %s" % maximum
        raise ConfigError("uplinks." + key, expected, got=value)
    return value if integer else float(value)


def check_backoff(backoff_min_s, backoff_max_s):
    """(min, max) retry backoff in seconds: 0 < min <= max."""
    lo = check_number(backoff_min_s, "backoff_min_s", 0.0, above=True)
    return lo, check_number(backoff_max_s, "backoff_max_s", lo)


def check_bool(value, key):
    if not isinstance(value, bool):
        raise ConfigError("uplinks." + key, "true or false", got=value)
    return value


def tls_context(tls, key="tls"):
    """An SSLContext from a ``tls`` table {ca, cert, key, insecure}; ConfigError for a bad table or file.

    ``ca``: PEM file of the CA(s) to trust (default: the system's); ``cert`` + ``key``: the client
    certificate; ``insecure = true``: no certificate or host name check (a test bench only).
    """
    if not isinstance(tls, dict):
        raise ConfigError("uplinks." + key, "a table {ca, cert, key, insecure}", got=tls)
    for k in tls:
        if k not in TLS_KEYS:
            raise ConfigError("uplinks.%s.%s" % (key, k), "one of " + ", ".join(TLS_KEYS))
    if bool(tls.get("cert")) != bool(tls.get("key")):
        raise ConfigError("uplinks.%s.cert" % key, "cert and key together (client certificate authentication)")
    ctx = _context_with_ca(tls.get("ca"), key)
    if tls.get("cert"):
        _load_client_cert(ctx, tls["cert"], tls["key"], key)
    if check_bool(tls.get("insecure", False), key + ".insecure"):
        log.warning("uplink TLS: certificate and host name checks are OFF (%s.insecure = true)", key)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _context_with_ca(ca, key):
    try:
        return ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("uplinks.%s.ca" % key, "a readable PEM CA file (%s)" % e, got=ca) from e


def _load_client_cert(ctx, cert, keyfile, key):
    try:
        ctx.load_cert_chain(cert, keyfile)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("uplinks.%s.cert" % key, "a readable PEM certificate matching key (%s)" % e, got=cert) from e


def describe_tls_error(exc):
    """'TLS: certificate verify failed: ...' for an ssl error, None for anything else."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS: certificate verify failed: %s" % (exc.verify_message or exc)
    if isinstance(exc, ssl.SSLError):
        return "TLS: %s" % (exc.reason or exc)
    return None


# ---- the counters behind state() ----


class UplinkStats:
    """sent/failed counts, last error and last success of one uplink; ``failed()`` logs and builds the error."""

    def __init__(self, kind):
        self.kind = kind
        self.sent_batches = 0
        self.failed_batches = 0
        self.last_error = None
        self.last_ok = None

    def ok(self):
        self.sent_batches += 1
        self.last_ok = time.time()

    def failed(self, batch, why):
        """Count a failed batch and return the UplinkError to raise; ``why`` becomes last_error."""
        self.failed_batches += 1
        self.note_error(why)
        return UplinkError("%s uplink: batch %s: %s" % (self.kind, batch.key, why))

    def note_error(self, why):
        """Record a problem (also one that fails no batch, e.g. a refused connection); logged once while it lasts."""
        level = logging.DEBUG if why == self.last_error else logging.WARNING
        log.log(level, "%s uplink: %s", self.kind, why)
        self.last_error = why

    def as_dict(self, connected, **extra):
        d = {
            "kind": self.kind,
            "connected": bool(connected),
            "sent_batches": self.sent_batches,
            "failed_batches": self.failed_batches,
            "last_error": self.last_error,
            "last_ok": self.last_ok,
        }
        d.update(extra)
        return d
