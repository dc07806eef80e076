"""Versioned YAML files validated by a pydantic model — scoring rubrics and conformance profiles:
read from a path or bundled as `<package>/v<version>.yaml`, parsed and checked the same way with
one-line errors that name the file and the field, and hashed (SHA-256 of the file's bytes), as the
signed documents that use them name that digest."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def read_file(path: Path | None, version: str, package: str, what: str,
              error: type[Exception]) -> tuple[bytes, str]:
    """(the file's bytes, its name for messages): `path`, else the bundled v<version>.yaml of `package`."""
    if path is not None:
        try:
            return Path(path).read_bytes(), Path(path).name
        except OSError as exc:
            raise error(f"{what} {path}: cannot read: {exc.strerror}") from None
    entry = resources.files(package).joinpath(f"v{version}.yaml")
    if not entry.is_file():
        raise error(f"{what} version {version!r} is not bundled ({package.replace('.', '/')}/v{version}.yaml)")
    return entry.read_bytes(), f"v{version}.yaml"


def parse(data: bytes, source: str, model: type[Model], what: str, error: type[Exception]) -> tuple[Model, str]:
    """(the validated file, the SHA-256 hex of its bytes); `error` naming the file and the field if it is not valid."""
    try:
        raw = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise error(f"{what} {source}: not valid YAML: {first}") from None
    if not isinstance(raw, dict):
        raise error(f"{what} {source}: expected a mapping at the top level")
    try:
        parsed = model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise error(f"{what} {source}: {where}: {str(err['msg']).removeprefix('Value error, ')}") from None
    return parsed, hashlib.sha256(data).hexdigest()
