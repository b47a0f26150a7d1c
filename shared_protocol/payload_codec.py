"""Which CBOR codec decodes payloads: settled once, at import.

    obj = loads(payload)   # cbor2 on CPython (the gateway), shared_protocol.cbor on the node

Both raise only DecodeError/SizeError and return only plain values (int, float, str,
bytes, list, dict, bool, None): tags, undefined and other simple values are rejected
the same way on both runtimes.
"""

from shared_protocol import cbor

try:
    import cbor2 as _cbor2
except ImportError:  # MicroPython, or CPython without cbor2
    _cbor2 = None

BACKEND = "cbor2" if _cbor2 is not None else "shared_protocol.cbor"

if _cbor2 is not None:
    from shared_protocol.cbor2_backend import dumps, loads  # noqa: F401
else:
    loads = cbor.loads
    dumps = cbor.dumps
