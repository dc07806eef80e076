"""Ed25519 keys for reference records: load the operator's key, generate one for the demo.

The private key is a PEM (PKCS#8) file named by the `signing_key` setting
(PILOTLAB_SIGNING_KEY). Reviewers get the public key (PEM, SubjectPublicKeyInfo). A key's id is
the first 16 hex digits of SHA-256 over its raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pilotlab.errors import ConfigError


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path | None) -> Ed25519PrivateKey:
    if path is None:
        raise ConfigError("no signing key configured: set PILOTLAB_SIGNING_KEY to an Ed25519 PEM file "
                          "(`pilotlab record keygen FILE` makes one)")
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"signing key {path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the public key {path}: {exc.strerror}") from None
    return public_key_from_pem(data, str(path))


def public_key_from_pem(data: bytes, source: str = "public key") -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{source} is not a PEM public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{source} is not an Ed25519 public key")
    return key


def generate_key(path: Path) -> Ed25519PrivateKey:
    """Write a new private key to `path` (mode 0600) and its public key to `path` + '.pub'."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    Path(f"{path}.pub").write_bytes(public_pem(key.public_key()))
    return key


def ensure_key(path: Path) -> Ed25519PrivateKey:
    """The key at `path`, generated first if absent (the demo's key)."""
    return load_private_key(path) if path.exists() else generate_key(path)
