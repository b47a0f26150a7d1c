"""Typed errors of the wire format: one root, one subclass per layer.

try: msg = decode_frame(data, keyring)
except ProtocolError as e: log(e.kind, e)
"""


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
