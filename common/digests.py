"""The one way Custody writes an artifact's identity: `sha256:` and 64 lowercase hex digits.

Standard library only: the `custody` command checks digests with it before it asks the server anything.
"""

from __future__ import annotations

import re

from common.errors import ValidationFailed

# Also the database CHECK constraints on every digest column (`^…$`), so a digest is valid in one sense only.
DIGEST_PATTERN = r"sha256:[0-9a-f]{64}"
_DIGEST = re.compile(DIGEST_PATTERN)


def is_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def digest_or_400(value: str | None, *, field: str = "artifact") -> str:
    """A digest as a person or a pipeline wrote it (spaces and upper case forgiven), or a 400 naming the field."""
    digest = (value or "").strip().lower()
    if not is_digest(digest):
        raise ValidationFailed(
            f"{field} must be a digest written sha256:<64 lowercase hex>, not {digest[:80]!r}",
            errors={field: [digest[:80]]},
        )
    return digest
