from shared_protocol import auth


def test_hmac_sha256_rfc4231_case1():
    key = b"\x0b" * 20
    mac = auth.hmac_sha256(key, b"Hi There")
    assert mac.hex() == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"


def test_hmac_sha256_rfc4231_case2():
    mac = auth.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_hmac_sha256_rfc4231_case6_long_key():
    key = b"\xaa" * 131
    mac = auth.hmac_sha256(key, b"Test Using Larger Than Block-Size Key - Hash Key First")
    assert mac.hex() == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_tag_is_truncated_hmac():
    key = bytes(range(32))
    assert auth.tag(key, b"abc") == auth.hmac_sha256(key, b"abc")[:8]
    assert len(auth.tag(key, b"")) == 8


def test_crc32_check_value():
    assert auth.crc32(b"123456789") == 0xCBF43926


def test_equal():
    assert auth.equal(b"abcd", b"abcd")
    assert not auth.equal(b"abcd", b"abce")
    assert not auth.equal(b"abc", b"abcd")
