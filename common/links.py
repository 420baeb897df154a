"""The one rule for every URL Custody stores or links to: http or https, with a host, bounded in length.

A stored URL becomes a link someone clicks (a pipeline, a repository, a webhook receiver): `javascript:`,
`data:` or `vbscript:` there would run script in Custody's origin as whoever clicked it. So every way in
(API serializers, page forms, the admin, and last the services themselves) refuses anything but http(s), and
every page renders stored URLs through `{% safe_link %}` (common/templatetags/safe_links.py), which links only
what this module accepts — rows stored before the rule existed show as plain text.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from rest_framework import serializers

from common.errors import ValidationFailed

# The stored columns are 500 characters; CI pipeline and runbook URLs are far shorter.
MAX_URL_LENGTH = 500
SCHEMES = ("http", "https")


def _shape_problem(value: str) -> str | None:
    """Why `value` is not an absolute http(s) URL with a host (whatever its length), or None."""
    # Browsers drop tabs and newlines inside a URL and strip control characters around it ("java\tscript:"):
    # refuse them outright, so the string checked here is the string a browser would follow.
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — raises ValueError on a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        found = f"{parts.scheme}:" if parts.scheme else "no scheme"
        return f"must be an http or https URL (https://host/path), not {found}"
    if not parts.hostname:
        return "has no host (write it as https://host/path)"
    return None


def url_problem(value: str, *, max_length: int = MAX_URL_LENGTH) -> str | None:
    """Why `value` may not be stored as a URL, in words that finish the sentence "<field> …", or None."""
    if len(value) > max_length:
        return f"is {len(value)} characters long; the limit is {max_length}"
    problem = _shape_problem(value)
    if problem is None and "@" in urlsplit(value).netloc:
        # Credentials in a URL end up in logs, the audit trail and every page that shows the link.
        return "must not carry credentials (user:password@)"
    return problem


def is_http_url(value) -> bool:
    """Whether a stored value may be rendered as a link (any length; the rule above without its input limits)."""
    return isinstance(value, str) and bool(value) and _shape_problem(value) is None


def check_url(value: str, *, field: str, max_length: int = MAX_URL_LENGTH, blank: bool = False) -> str:
    """The URL a service may store: `value` stripped, or ValidationFailed (400) naming `field` and what to fix.

    Services call this even when their API serializer already did: they are the last line for every caller."""
    value = (value or "").strip()
    if not value:
        if blank:
            return ""
        raise ValidationFailed(f"{field} is required: give an http:// or https:// URL", errors={field: ["required"]})
    problem = url_problem(value, max_length=max_length)
    if problem is not None:
        raise ValidationFailed(f"{field} {problem}", errors={field: [problem]})
    return value


def validate_http_url(value: str) -> None:
    """Django validator (forms, the admin): the same rule, as a form error on the field."""
    problem = url_problem(value or "")
    if problem is not None:
        raise ValidationError(f"This URL {problem}.", code="invalid_url")


class HttpUrlField(serializers.URLField):
    """An API input URL held to the rule above (OpenAPI: string, format uri, maxLength); 400 names the field."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_URL_LENGTH)
        super().__init__(**kwargs)
        # DRF's URLField brings Django's URLValidator, which also takes ftp:// and refuses internal hosts such as
        # http://jenkins/job/7: ours replaces it, so the API and the services answer the same.
        self.validators = [v for v in self.validators if not isinstance(v, URLValidator)]

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        problem = url_problem(value, max_length=self.max_length) if value else None
        if problem is not None:
            raise serializers.ValidationError(f"This URL {problem}.")
        return value
