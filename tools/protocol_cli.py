"""`fieldline protocol ...`: look inside frames.

fieldline protocol decode 0401010101...00 --key 000102...1f
"""

import json
import re

import typer

from gateway.cbor_codec import install as _use_cbor2
from shared_protocol import ProtocolError, decode_frame
from shared_protocol.frame import parse_header, unframe

_use_cbor2()  # CPython decodes as the gateway does: with cbor2

app = typer.Typer(help="Inspect wire-format frames.", no_args_is_help=True)


class _OneKey:
    """A keyring that offers one key for whatever device the frame names."""

    def __init__(self, key):
        self.key = key

    def get(self, device_id, default=None):
        return self.key


class HexError(ValueError):
    """A command-line argument that should be hexadecimal is not."""


def _hex_arg(text, what):
    cleaned = re.sub(r"[\s:_-]", "", text)
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise HexError("%s is not hexadecimal (expected pairs of 0-9a-f): %r" % (what, text[:40])) from None


def to_jsonable(obj):
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def decode_hex(frame_hex: str, key_hex: str | None = None) -> dict:
    """Decode a hex frame; raises ProtocolError or HexError."""
    data = _hex_arg(frame_hex, "frame")
    keyring = _OneKey(_hex_arg(key_hex, "--key")) if key_hex else {}
    try:
        return decode_frame(data, keyring)
    except ProtocolError as e:
        if not key_hex and "no key in the keyring" in str(e):
            _, _, _, device_id, _ = parse_header(unframe(data))
            raise type(e)(
                "frame from device %d is HMAC-authenticated: pass --key HEX (the device key) to verify and decode it"
                % device_id
            ) from None
        raise


@app.command()
def decode(
    frame: str = typer.Argument(..., help="the frame in hex (with or without the trailing 00)"),
    key: str | None = typer.Option(None, "--key", help="device key in hex, to verify the HMAC tag"),
):
    """Print a frame as readable JSON, or one line saying what is wrong with it."""
    try:
        msg = decode_hex(frame, key)
    except ProtocolError as e:
        typer.echo("fieldline: bad frame (%s): %s" % (e.kind, e), err=True)
        raise typer.Exit(1) from None
    except HexError as e:
        typer.echo("fieldline: bad input: %s" % e, err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(to_jsonable(msg), indent=2))
