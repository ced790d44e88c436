"""Authentication: static service tokens, Herald-issued and Backstage user JWTs, a trusted proxy.

Build once at the composition root::

    config = AuthConfig.model_validate(settings["auth"])
    key = load_or_create_signing_key(data_dir)
    authenticator = Authenticator(config, key)          # aclose() on shutdown
    principal = await authenticator.authenticate(request.headers.get("authorization"),
                                                 request.headers, request.client.host)
"""

from herald.auth.authenticator import Authenticator, is_loopback, parse_user_ref
from herald.auth.config import (
    AuthConfig,
    JwksConfig,
    ProxyConfig,
    ServiceToken,
    service_tokens_from_backstage,
)
from herald.auth.jwks import KeysUnavailableError
from herald.auth.keys import SigningKey, load_or_create_signing_key
from herald.auth.tokens import issue_user_token

__all__ = [
    "AuthConfig",
    "Authenticator",
    "JwksConfig",
    "KeysUnavailableError",
    "ProxyConfig",
    "ServiceToken",
    "SigningKey",
    "is_loopback",
    "issue_user_token",
    "load_or_create_signing_key",
    "parse_user_ref",
    "service_tokens_from_backstage",
]
