from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import threading

import jwt
import pytest

from herald.auth.keys import key_path, load_or_create_signing_key
from herald.auth.tokens import issue_user_token


def test_key_file_created_0600_and_reused(tmp_path):
    key = load_or_create_signing_key(tmp_path)
    path = tmp_path / "keys" / "signing-key.pem"
    assert key_path(tmp_path) == path
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in path.parent.iterdir()] == ["signing-key.pem"]  # no temp file left behind

    again = load_or_create_signing_key(tmp_path)
    assert again.kid == key.kid
    assert again.jwks() == key.jwks()


def test_concurrent_first_loads_agree_on_one_key(tmp_path):
    kids: list[str] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        kids.append(load_or_create_signing_key(tmp_path).kid)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(kids) == 8 and len(set(kids)) == 1
    assert load_or_create_signing_key(tmp_path).kid == kids[0]


def test_kid_is_the_rfc7638_thumbprint(signing_key):
    jwk = signing_key.public_jwk()
    canonical = '{"crv":"P-256","kty":"EC","x":"' + jwk["x"] + '","y":"' + jwk["y"] + '"}'
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    assert signing_key.kid == expected
    assert jwk["kid"] == expected and jwk["alg"] == "ES256" and jwk["use"] == "sig"
    assert "d" not in jwk


def test_published_jwks_verifies_issued_tokens(signing_key):
    token = issue_user_token(signing_key, "user:default/jane", ttl_s=60)
    (published,) = signing_key.jwks()["keys"]
    public = jwt.PyJWK(published)
    claims = jwt.decode(token, public.key, algorithms=["ES256"], audience="backstage", issuer="herald")
    assert claims["sub"] == "user:default/jane"
    assert claims["ent"] == ["user:default/jane"]
    assert claims["exp"] - claims["iat"] == 60
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "typ": "vnd.backstage.user", "kid": signing_key.kid}
    # The whole JWKS document is JSON-serialisable as is.
    json.dumps(signing_key.jwks())


def test_repr_hides_the_private_key(signing_key):
    pem = signing_key.private_pem().decode()
    assert "PRIVATE" not in repr(signing_key)
    assert pem.splitlines()[1] not in repr(signing_key)


def test_a_bad_key_file_is_a_clear_error(tmp_path):
    path = key_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("not a key")
    os.chmod(path, 0o600)
    with pytest.raises(ValueError, match="PEM private key"):
        load_or_create_signing_key(tmp_path)
