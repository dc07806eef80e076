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


SIGNING_KEY_SETTING = "PILOTLAB_SIGNING_KEY"


def load_private_key(path: Path | None) -> Ed25519PrivateKey:
    if path is None:
        raise ConfigError("no signing key configured: set PILOTLAB_SIGNING_KEY to an Ed25519 PEM file "
                          "(`pilotlab record keygen FILE` makes one)", setting=SIGNING_KEY_SETTING)
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}", setting=SIGNING_KEY_SETTING) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"signing key {path} is not an unencrypted PEM private key: {exc}",
                          setting=SIGNING_KEY_SETTING) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is not an Ed25519 key", setting=SIGNING_KEY_SETTING)
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
    """Write a new private key to `path` (mode 0600) and its public key to `path` + '.pub': both or
    neither. ConfigError naming the path if either exists or cannot be written."""
    public_path = Path(f"{path}.pub")
    for target in (path, public_path):
        if target.exists() or target.is_symlink():
            raise ConfigError(f"{target} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise ConfigError(f"cannot write {path}: {exc.filename} is not a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    written: list[Path] = []
    try:
        for target, data, mode in ((path, pem, 0o600), (public_path, public_pem(key.public_key()), 0o644)):
            _write_new(target, data, mode)
            written.append(target)
    except OSError as exc:
        for done in written:
            done.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {exc.filename}: {exc.strerror}") from None
    return key


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (never over an existing file) holding `data`; on any failure no file remains."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError:
        path.unlink(missing_ok=True)
        raise


def ensure_key(path: Path) -> Ed25519PrivateKey:
    """The key at `path`, generated first if absent (the demo's key; a public key left without its
    private key is replaced)."""
    if path.exists():
        return load_private_key(path)
    Path(f"{path}.pub").unlink(missing_ok=True)
    return generate_key(path)
