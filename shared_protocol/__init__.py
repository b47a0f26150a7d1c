"""Fieldline wire format, shared by the node (MicroPython) and the gateway (CPython).

    from shared_protocol import encode_frame, decode_frame, ProtocolError
    wire = encode_frame({"type": "hello", "device_id": 7, "counter": 1, "fw_version": "1.0.0",
                         "hw": "virtual", "provisioned": False}, None)

Names are resolved lazily (module ``__getattr__``) so that importing one submodule, e.g.
``shared_protocol.cbor``, does not load the whole catalogue into a small heap.
"""

PROTOCOL_VERSION = 1

_WHERE = {
    "encode_frame": "frame",
    "decode_frame": "frame",
    "encode_payload": "frame",
    "Deframer": "frame",
    "MAX_FRAME": "frame",
    "MAX_WIRE": "frame",
    "VERSION": "frame",
    "ProtocolError": "errors",
    "FramingError": "errors",
    "DecodeError": "errors",
    "SchemaError": "errors",
    "AuthError": "errors",
    "ReplayError": "errors",
    "SizeError": "errors",
    "ReplayGuard": "replay",
    "SCHEMAS": "catalogue",
    "TYPE_IDS": "catalogue",
    "TYPE_NAMES": "catalogue",
    "KEYLESS": "catalogue",
}


def __getattr__(name):
    sub = _WHERE.get(name)
    if sub is None:
        # MicroPython asks here for submodules (``from shared_protocol import cbor``).
        try:
            return __import__("shared_protocol." + name, None, None, ("x",))
        except ImportError:
            raise AttributeError("shared_protocol has no attribute %r" % name)
    mod = __import__("shared_protocol." + sub, None, None, (name,))
    return getattr(mod, name)


def __dir__():
    return list(_WHERE) + ["PROTOCOL_VERSION"]
