"""The gateway's CBOR codec: cbor2, held to the same contract as shared_protocol.cbor.

    from gateway.cbor_codec import install
    install()        # shared_protocol.frame encodes and decodes payloads with cbor2 from now on

Only plain values come back (tags, undefined and other simple values are rejected) and
only DecodeError/SizeError escape; dumps is canonical so both runtimes emit the same bytes.
It lives in the gateway, not in shared_protocol: shared_protocol stays MicroPython-clean
and CPython plugs this in with ``install()`` (``shared_protocol.frame.use_codec``).
"""

import io

import cbor2 as _cbor2

from shared_protocol import cbor
from shared_protocol.errors import DecodeError, SizeError


class _RejectAllTags(dict):
    # cbor2 asks this mapping for every semantic tag it knows; refuse them all.
    def __contains__(self, tag):
        return True

    def __getitem__(self, tag):
        def refuse(decoder):
            raise _cbor2.CBORDecodeError("CBOR tag %d is not supported" % tag)

        return refuse

    def get(self, tag, default=None):
        return self[tag]


_NO_TAGS = _RejectAllTags()


def _tag_hook(decoder, tag):
    raise _cbor2.CBORDecodeError("CBOR tag %d is not supported" % tag.tag)


def _plain(obj, depth):
    t = type(obj)
    if obj is None or t in (bool, int, float, str, bytes):
        return
    if depth > cbor.MAX_DEPTH:
        raise SizeError("CBOR nesting deeper than %d levels" % cbor.MAX_DEPTH)
    if t is list:
        for x in obj:
            _plain(x, depth + 1)
        return
    if t is dict:
        for k, v in obj.items():
            if type(k) not in (int, str, bytes, float, bool) and k is not None:
                raise DecodeError("CBOR map key of type %s is not supported" % type(k).__name__)
            _plain(v, depth + 1)
        return
    raise DecodeError("CBOR value of type %s is not supported" % t.__name__)


def loads(data):
    data = bytes(data)
    fp = io.BytesIO(data)
    try:
        obj = _cbor2.CBORDecoder(
            fp,
            semantic_decoders=_NO_TAGS,
            tag_hook=_tag_hook,
            max_depth=cbor.MAX_DEPTH + 1,
            allow_indefinite=False,
            allow_duplicate_keys=False,
        ).decode()
    except Exception as e:  # cbor2 raises several types; the contract is one root
        if "depth" in str(e):
            raise SizeError("CBOR nesting deeper than %d levels" % cbor.MAX_DEPTH) from None
        raise DecodeError("bad CBOR payload: %s" % e) from None
    if fp.tell() != len(data):
        raise DecodeError("%d bytes of trailing data after the CBOR item" % (len(data) - fp.tell()))
    _plain(obj, 0)
    return obj


def dumps(obj):
    try:
        return _cbor2.dumps(obj, canonical=True)
    except Exception as e:
        raise DecodeError("cannot encode payload as CBOR: %s" % e) from None


def install():
    """Make shared_protocol.frame use cbor2 for payloads (idempotent)."""
    from shared_protocol import frame

    frame.use_codec(dumps, loads)
