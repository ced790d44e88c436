"""Backstage user tokens verified against a JWK set served by a real HTTP server on loopback."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from herald.auth import AuthConfig, Authenticator, KeysUnavailableError
from herald.core.errors import AuthenticationError
from herald.core.model import Principal


def make(signing_key, jwks_server, http_client, monotonic, **jwks):
    config = AuthConfig.model_validate({"jwks": {"url": jwks_server.url, **jwks}})
    return Authenticator(config, signing_key, http_client=http_client, monotonic=monotonic)


@pytest.fixture
def auth(signing_key, jwks_server, http_client, monotonic):
    return make(signing_key, jwks_server, http_client, monotonic)


async def test_backstage_user_token_is_accepted(auth, backstage_key, jwks_server):
    token = backstage_key.token("user:default/jane.doe")
    p = await auth.authenticate(f"Bearer {token}", {}, "10.0.0.1")
    assert p == Principal("user", "user:default/jane.doe", ("user:default/jane.doe", "group:default/team-a"))
    assert jwks_server.hits == 1
    # Cached keys (and the verified token): no further fetch.
    await auth.authenticate_token(backstage_key.token("user:default/bob"))
    assert jwks_server.hits == 1


async def test_without_ent_ownership_is_the_subject(auth, backstage_key):
    p = await auth.authenticate_token(backstage_key.token("user:default/jane", omit=("ent",)))
    assert p.ownership_refs == ("user:default/jane",)


async def test_wrong_or_missing_audience_is_refused(auth, backstage_key):
    with pytest.raises(AuthenticationError, match="wrong audience"):
        await auth.authenticate_token(backstage_key.token(aud="catalog"))
    with pytest.raises(AuthenticationError, match="missing audience"):
        await auth.authenticate_token(backstage_key.token(omit=("aud",)))
    # Legacy tokens without typ need the audience too.
    assert (await auth.authenticate_token(backstage_key.token(typ=None))).kind == "user"
    with pytest.raises(AuthenticationError, match="missing audience"):
        await auth.authenticate_token(backstage_key.token(typ=None, omit=("aud",)))


async def test_limited_user_token_needs_no_audience(auth, backstage_key):
    token = backstage_key.token("user:default/jane", typ="vnd.backstage.limited-user",
                                omit=("aud", "ent", "iss", "uip"))
    jane = "user:default/jane"
    assert await auth.authenticate_token(token) == Principal("user", jane, (jane,))


async def test_configured_audience_and_issuer(signing_key, jwks_server, http_client, monotonic,
                                              backstage_key):
    auth = make(signing_key, jwks_server, http_client, monotonic, audience="herald-aud",
                issuer="http://localhost:7007/api/auth")
    assert (await auth.authenticate_token(backstage_key.token(aud="herald-aud"))).kind == "user"
    assert (await auth.authenticate_token(backstage_key.token(aud=["x", "herald-aud"]))).kind == "user"
    with pytest.raises(AuthenticationError, match="wrong audience"):
        await auth.authenticate_token(backstage_key.token())
    with pytest.raises(AuthenticationError, match="wrong issuer"):
        await auth.authenticate_token(backstage_key.token(aud="herald-aud", iss="http://evil/api/auth"))


async def test_non_user_subjects_and_plugin_tokens_are_refused(auth, backstage_key):
    with pytest.raises(AuthenticationError, match="not a user"):
        await auth.authenticate_token(backstage_key.token("plugin:catalog"))
    with pytest.raises(AuthenticationError, match="plugin tokens"):
        await auth.authenticate_token(backstage_key.token("plugin:catalog", typ="vnd.backstage.plugin"))


async def test_expired_and_tampered(auth, backstage_key):
    with pytest.raises(AuthenticationError, match="expired"):
        await auth.authenticate_token(backstage_key.token(iat=int(time.time()) - 7200, ttl=-3600))
    token = backstage_key.token()
    with pytest.raises(AuthenticationError, match="bad signature"):
        await auth.authenticate_token(token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB"))


async def test_key_rotation_is_picked_up(auth, backstage_key, new_backstage_key, jwks_server, monotonic):
    assert (await auth.authenticate_token(backstage_key.token())).kind == "user"
    assert jwks_server.hits == 1

    rotated = new_backstage_key("backstage-key-2")
    token = rotated.token("user:default/after-rotation")
    # Not yet published: one refetch, then an unknown key.
    monotonic.advance(31)
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await auth.authenticate_token(token)
    assert jwks_server.hits == 2

    jwks_server.document = {"keys": [backstage_key.public_jwk(), rotated.public_jwk()]}
    # Published now, but within 30 s of the last fetch: no refetch yet.
    monotonic.advance(10)
    for _ in range(5):
        with pytest.raises(AuthenticationError, match="unknown signing key"):
            await auth.authenticate_token(token)
    assert jwks_server.hits == 2

    monotonic.advance(21)
    assert (await auth.authenticate_token(token)).subject == "user:default/after-rotation"
    assert jwks_server.hits == 3
    # The old key is still known.
    assert (await auth.authenticate_token(backstage_key.token("user:default/old"))).kind == "user"
    assert jwks_server.hits == 3


async def test_keys_are_refetched_after_cache_seconds(signing_key, jwks_server, http_client, monotonic,
                                                      backstage_key):
    auth = make(signing_key, jwks_server, http_client, monotonic, cacheSeconds=120)
    await auth.authenticate_token(backstage_key.token("user:default/a"))
    monotonic.advance(100)
    await auth.authenticate_token(backstage_key.token("user:default/b"))
    assert jwks_server.hits == 1
    monotonic.advance(30)
    await auth.authenticate_token(backstage_key.token("user:default/c"))
    assert jwks_server.hits == 2
    # A later outage keeps the keys we have.
    jwks_server.status = 500
    monotonic.advance(500)
    assert (await auth.authenticate_token(backstage_key.token("user:default/d"))).kind == "user"
    assert jwks_server.hits == 3


async def test_jwks_unavailable(auth, backstage_key, jwks_server, monotonic):
    jwks_server.status = 503
    with pytest.raises(KeysUnavailableError, match="unavailable"):
        await auth.authenticate_token(backstage_key.token())
    assert jwks_server.hits == 1
    # No retry storm: the next attempt waits 30 s.
    with pytest.raises(KeysUnavailableError):
        await auth.authenticate_token(backstage_key.token())
    assert jwks_server.hits == 1
    jwks_server.status = 200
    monotonic.advance(30)
    assert (await auth.authenticate_token(backstage_key.token())).kind == "user"
    assert jwks_server.hits == 2


async def test_jwks_unreachable(signing_key, http_client, monotonic, backstage_key, jwks_server):
    config = AuthConfig.model_validate({"jwks": {"url": "http://127.0.0.1:9/nothing-listens-here"}})
    auth = Authenticator(config, signing_key, http_client=http_client, monotonic=monotonic)
    with pytest.raises(KeysUnavailableError):
        await auth.authenticate_token(backstage_key.token())


async def test_rsa_keys_and_algorithm_restrictions(signing_key, jwks_server, http_client, monotonic):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa-1"}
    secret = "a-shared-secret-that-is-long-enough-for-hs256"
    k = base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()
    oct_jwk = {"kty": "oct", "k": k, "kid": "hmac-1"}
    jwks_server.document = {"keys": [jwk, oct_jwk]}
    now = int(time.time())
    claims = {"sub": "user:default/rsa", "aud": "backstage", "iat": now, "exp": now + 60}

    def token(alg: str, kid: str = "rsa-1") -> str:
        return jwt.encode(claims, rsa_key, algorithm=alg, headers={"kid": kid, "typ": "vnd.backstage.user"})

    auth = make(signing_key, jwks_server, http_client, monotonic)
    assert (await auth.authenticate_token(token("RS256"))).subject == "user:default/rsa"
    with pytest.raises(AuthenticationError, match="algorithm not allowed"):
        await auth.authenticate_token(token("PS256"))  # not in the default algorithms
    hmac_token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "hmac-1"})
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await auth.authenticate_token(hmac_token)  # symmetric keys are never loaded

    only_es = make(signing_key, jwks_server, http_client, monotonic, algorithms=["ES256"])
    with pytest.raises(AuthenticationError, match="unknown signing key"):
        await only_es.authenticate_token(token("RS256"))


async def test_own_tokens_still_work_with_jwks(auth, jwks_server):
    token = auth.issue_user_token("user:default/jane")
    assert (await auth.authenticate_token(token)).subject == "user:default/jane"
    assert jwks_server.hits == 0


async def test_own_http_client_is_closed(signing_key, jwks_server, backstage_key):
    config = AuthConfig.model_validate({"jwks": {"url": jwks_server.url}})
    auth = Authenticator(config, signing_key)
    assert (await auth.authenticate_token(backstage_key.token())).kind == "user"
    await auth.aclose()
    assert auth._http_client is not None and auth._http_client.is_closed
