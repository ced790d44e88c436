from __future__ import annotations

import ipaddress
import logging

import pydantic
import pytest

from herald.auth.config import (
    DEFAULT_USER_TOKEN_TTL_S,
    AuthConfig,
    JwksConfig,
    ServiceToken,
    service_tokens_from_backstage,
)

SECRET = "s3cr3t-service-token-value"


def test_camel_case_and_python_names():
    camel = AuthConfig.model_validate({
        "serviceTokens": [{"token": SECRET, "subject": "external:ci"}],
        "jwks": {"url": "http://backstage:7007/api/auth/.well-known/jwks.json", "cacheSeconds": 60},
        "proxy": {"header": "X-Forwarded-User", "trustedProxies": ["10.0.0.0/8", "::1"],
                  "userRefPrefix": "user:corp/"},
        "userTokenTtlSeconds": 3600,
        "dev": True,
    })
    snake = AuthConfig.model_validate({
        "service_tokens": [{"token": SECRET, "subject": "external:ci"}],
        "jwks": {"url": "http://backstage:7007/api/auth/.well-known/jwks.json", "cache_seconds": 60},
        "proxy": {"header": "X-Forwarded-User", "trusted_proxies": ["10.0.0.0/8", "::1"],
                  "user_ref_prefix": "user:corp/"},
        "user_token_ttl_seconds": 3600,
        "dev": True,
    })
    assert camel == snake
    assert camel.service_tokens[0].token.get_secret_value() == SECRET
    assert camel.jwks is not None and camel.jwks.cache_seconds == 60
    assert camel.proxy is not None
    assert camel.proxy.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1"))
    assert camel.proxy.user_ref_prefix == "user:corp/"


def test_defaults():
    c = AuthConfig()
    assert c.service_tokens == () and c.jwks is None and c.proxy is None and c.dev is False
    assert c.user_token_ttl_seconds == DEFAULT_USER_TOKEN_TTL_S == 12 * 3600
    j = JwksConfig(url="https://b.example/api/auth/.well-known/jwks.json")
    assert j.audience == "backstage" and j.issuer is None and j.cache_seconds == 600
    assert j.algorithms == ("ES256", "RS256", "EdDSA")


def test_backstage_external_access_list():
    external_access = [
        {"type": "static", "options": {"token": SECRET, "subject": "external:test-service"}},
        {"type": "legacy", "options": {"secret": "aGVsbG8td29ybGQ=", "subject": "legacy"}},
        {"type": "static", "options": {"token": "another-token-0123", "subject": "peer-tests-2"},
         "accessRestrictions": [{"plugin": "notifications"}]},
    ]
    tokens = service_tokens_from_backstage(external_access)
    assert [t.subject for t in tokens] == ["external:test-service", "peer-tests-2"]
    assert tokens[0].token.get_secret_value() == SECRET
    # The same entries also work directly inside serviceTokens.
    c = AuthConfig.model_validate({"serviceTokens": [external_access[0]]})
    assert c.service_tokens == (tokens[0],)


@pytest.mark.parametrize(("token", "message"), [
    ("short", "Illegal token, must be at least 8 characters length"),
    ("has spaces in it", "Illegal token, must be a set of non-space characters"),
    ("hasnewlinebutislongenough\n", "Illegal token, must be a set of non-space characters"),
])
def test_bad_tokens_are_refused_without_echoing_them(token, message):
    with pytest.raises(pydantic.ValidationError) as info:
        AuthConfig.model_validate({"serviceTokens": [{"token": token, "subject": "external:x"}]})
    text = str(info.value)
    assert message in text
    assert token.strip() not in text


def test_bad_subject_and_duplicate_token():
    with pytest.raises(pydantic.ValidationError, match="Illegal subject"):
        ServiceToken.model_validate({"token": SECRET, "subject": "has spaces"})
    with pytest.raises(pydantic.ValidationError, match="declared more than once") as info:
        AuthConfig.model_validate({"serviceTokens": [{"token": SECRET, "subject": "a"},
                                                     {"token": SECRET, "subject": "b"}]})
    assert SECRET not in str(info.value)


def test_secrets_never_in_repr_str_or_dumps(caplog):
    c = AuthConfig.model_validate({"serviceTokens": [{"token": SECRET, "subject": "external:ci"}]})
    for text in (repr(c), str(c), repr(c.service_tokens[0]), str(c.model_dump()), c.model_dump_json(),
                 f"{c}", f"{c!r}"):
        assert SECRET not in text
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("herald.test").info("config %s %r", c, c)
    assert SECRET not in caplog.text


@pytest.mark.parametrize("jwks", [
    {"url": "ftp://example.com/jwks"},
    {"url": "https://example.com/jwks", "algorithms": ["HS256"]},
    {"url": "https://example.com/jwks", "algorithms": ["none"]},
    {"url": "https://example.com/jwks", "algorithms": []},
    {"url": "https://example.com/jwks", "cacheSeconds": -1},
])
def test_bad_jwks_config(jwks):
    with pytest.raises(pydantic.ValidationError):
        AuthConfig.model_validate({"jwks": jwks})


@pytest.mark.parametrize("proxy", [
    {"header": "X-Forwarded-User", "trustedProxies": []},
    {"header": "X-Forwarded-User", "trustedProxies": ["not-an-ip"]},
    {"header": "X Forwarded User", "trustedProxies": ["127.0.0.1"]},
    {"header": "X-Forwarded-User", "trustedProxies": ["127.0.0.1"], "userRefPrefix": "group:default/"},
    {"header": "X-Forwarded-User"},
])
def test_bad_proxy_config(proxy):
    with pytest.raises(pydantic.ValidationError):
        AuthConfig.model_validate({"proxy": proxy})


def test_unknown_keys_are_refused():
    with pytest.raises(pydantic.ValidationError):
        AuthConfig.model_validate({"serviceToken": []})
