"""Herald's own token signing key: one ES256 (P-256) key, kept as PEM in the data directory."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

_log = logging.getLogger("herald.auth")

KEY_DIR = "keys"
KEY_FILE = "signing-key.pem"
ALGORITHM = "ES256"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The RFC 7517 JWK members of a P-256 public key (no `kid`, `alg` or `use`)."""
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of an EC JWK: the required members, sorted, no spaces."""
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"),
                           sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key with its stable `kid`. `repr` never shows key material."""

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    kid: str
    algorithm: str = ALGORITHM

    @classmethod
    def from_private_key(cls, private_key: ec.EllipticCurvePrivateKey) -> SigningKey:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError(f"the signing key must be a P-256 key, got {private_key.curve.name}")
        return cls(private_key, jwk_thumbprint(public_jwk(private_key.public_key())))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private_key(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.public_key), "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """The public JWK set to publish (`/api/herald/.well-known/jwks.json`)."""
        return {"keys": [self.public_jwk()]}

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption(),
        )


def key_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_DIR / KEY_FILE


def load_or_create_signing_key(data_dir: Path) -> SigningKey:
    """Load `data_dir/keys/signing-key.pem`, creating it (mode 0600, directory 0700) on first use.

    Creation is atomic and never overwrites: the key is written to a private temporary file and
    hard-linked into place, so two processes starting together end up using the same key.
    """
    path = key_path(data_dir)
    if path.exists():
        return _load(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = SigningKey.generate()
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_pem())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return _load(path)  # another process won the race: use its key
        _fsync_dir(path.parent)
        _log.info("created a new token signing key (kid %s) at %s", key.kid, path)
        return key
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _load(path: Path) -> SigningKey:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        _log.warning("signing key %s is readable by group or others (mode %o); chmod 600 it", path, mode)
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path} does not hold an unencrypted PEM private key") from e
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} must hold an EC P-256 private key")
    return SigningKey.from_private_key(private_key)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
