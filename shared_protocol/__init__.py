"""Fieldline wire format, shared by the node (MicroPython) and the gateway (CPython).

from shared_protocol import encode_frame, decode_frame, ProtocolError
wire = encode_frame({"type": "hello", "device_id": 7, "counter": 1, "fw_version": "1.0.0",
                     "hw": "virtual", "provisioned": False}, None)
"""

from shared_protocol.errors import (  # noqa: F401
    AuthError,
    DecodeError,
    FramingError,
    ProtocolError,
    ReplayError,
    SchemaError,
    SizeError,
)
from shared_protocol.frame import Deframer, decode_frame, encode_frame  # noqa: F401
from shared_protocol.replay import ReplayGuard  # noqa: F401

# the constants (frame.VERSION, frame.MAX_FRAME, ...) are read from their modules: see errors.constants
