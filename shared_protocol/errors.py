"""Typed errors of the wire format: one root, one subclass per layer.

try: msg = decode_frame(data, keyring)
except ProtocolError as e: log(e.kind, e)

Also the constants convention of the package: the wire's numbers are private ``_NAME =
const(n)`` on MicroPython (folded in at compile time: no interned name, no dict entry on the
node, where every name costs heap) and public ``NAME`` on CPython through ``constants``.
"""


def const(x):
    """CPython's stand-in for micropython.const (MicroPython's compiler folds const() itself)."""
    return x


def constants(g):
    """A module ``__getattr__`` (PEP 562) serving ``NAME`` for a private ``_NAME = const(...)``.

    __getattr__ = constants(globals())     # CPython: frame.MAX_FRAME == frame._MAX_FRAME
    """

    def public(name):
        if name.isupper() and "_" + name in g:
            return g["_" + name]
        raise AttributeError("no constant %r (the wire's constants are upper case)" % name)

    return public


class ProtocolError(Exception):
    """Root of every error the wire format raises."""

    kind = "protocol"


class FramingError(ProtocolError):
    """COBS framing is broken (bad code byte, stray zero, empty frame)."""

    kind = "framing"


class SizeError(ProtocolError):
    """A frame, string, list or nesting depth exceeds its limit."""

    kind = "size"


class DecodeError(ProtocolError):
    """The header or the CBOR payload cannot be decoded."""

    kind = "decode"


class SchemaError(ProtocolError):
    """The payload decodes but does not match the message catalogue."""

    kind = "schema"


class AuthError(ProtocolError):
    """Unknown device, bad HMAC tag or bad CRC."""

    kind = "auth"


class ReplayError(AuthError):
    """The frame counter was already seen (replay, or a retransmission)."""

    kind = "replay"
