"""The one canonical JSON encoding Custody hashes and signs, and its sha256.

Every hash that must be reproduced later — by `verify_audit`, by a reviewer's signature check, by
`custody verify-bundle` on an auditor's laptop — is taken over these bytes: audit events and checkpoints, the
content a signature is bound to, release manifests, status decisions, trace baselines and item fingerprints, and
evidence-bundle manifests. The rules: object keys sorted, no whitespace, UTF-8 (characters as themselves, never
`\\u` escapes), NaN and infinities refused; a datetime is written as ISO 8601, a Decimal as its digits, a set as a
sorted list, a tuple as a list, and any other value JSON has no type for is refused. Test vectors in
tests/common/test_canonical.py pin the bytes.

Standard library only: the offline verifier (`custody_cli`) imports this module without Django.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _as_text(value: Any) -> Any:
    try:
        return _default(value)
    except TypeError:
        return str(value)


def canonical_json(value: Any, *, ascii_only: bool = False) -> bytes:
    """The canonical bytes of a value.

    `ascii_only` reproduces the one older form Custody signed: release manifests of format
    `custody-release-manifest/1` escaped every non-ASCII character (`\\u2026`). Nothing new is hashed that way.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only, allow_nan=False, default=_default
    ).encode("utf-8")


def canonical_sha256(value: Any) -> str:
    """sha256 (hex) of the canonical bytes of a value."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def jsonable(value: Any) -> Any:
    """The value as a JSON column stores and returns it, so what is hashed is exactly what is kept.

    Lenient where canonical_json is strict: an object JSON has no type for (a UUID, a path) is kept as its text."""
    if value is None:
        return None
    return json.loads(json.dumps(value, sort_keys=True, allow_nan=False, default=_as_text))
