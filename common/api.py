"""Helpers every REST view uses that know no domain."""

from __future__ import annotations

from typing import Any

# Room for the boundaries and small form fields around the files of a multipart upload, over the files' own limit.
MULTIPART_OVERHEAD = 1024 * 1024


def validated(serializer_class, data, *, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The request body checked by an input serializer; a bad one is a 400 naming every field (DRF's ValidationError).

    `context` reaches the serializer's fields (e.g. the path an error message should point the caller to)."""
    serializer = serializer_class(data=data, context=context or {})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
