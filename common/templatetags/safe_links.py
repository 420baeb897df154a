"""`{% safe_link url "label" %}`: the one way a page renders a URL someone supplied (see common/links.py).

An http(s) URL becomes a link that opens without handing Custody's page to the target (noopener, noreferrer);
anything else — a `javascript:` row stored before URLs were checked, a container image reference — is shown as
text, so it can be read and reported but never followed.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from common.links import is_http_url

register = template.Library()


@register.simple_tag
def safe_link(url, label: str = "", css_class: str = ""):
    """A link to `url` labelled `label` (the URL itself without one), or the URL as plain text if it is no http(s)."""
    if not url:
        return ""
    if is_http_url(url):
        return format_html(
            '<a href="{}"{} rel="noopener noreferrer">{}</a>',
            url,
            format_html(' class="{}"', css_class) if css_class else "",
            label or url,
        )
    return format_html(
        '<span class="unlinked-url" title="Not an http(s) address: shown as text, not as a link">{}</span>', url
    )
