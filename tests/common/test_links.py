"""The one URL rule (common/links.py) and the one way pages link a supplied URL (`{% safe_link %}`)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template

from common.errors import ValidationFailed
from common.links import MAX_URL_LENGTH, check_url, is_http_url, url_problem, validate_http_url

# Every way a browser could be talked into running script, or into going somewhere other than the web.
HOSTILE = [
    "javascript:alert(document.domain)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://ci.example/run/1",
    "//evil.example/run/1",
    "ci.example/run/1",
    "https:///no-host",
    "http://ci.example:99999/x",
]
ACCEPTED = [
    "https://github.com/acme/rsd/actions/runs/77",
    "http://jenkins/job/release/7/",  # an internal host without a dot is fine
    "https://ci.example:8443/pipelines/9?tab=jobs#log",
    "HTTPS://CI.EXAMPLE/x",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_anything_but_an_http_url_with_a_host_is_refused(url):
    assert url_problem(url) is not None
    assert not is_http_url(url)
    with pytest.raises(ValidationFailed) as refused:
        check_url(url, field="pipeline_url")
    assert refused.value.detail.startswith("pipeline_url ")
    assert list(refused.value.extra["errors"]) == ["pipeline_url"]
    with pytest.raises(ValidationError):
        validate_http_url(url)


@pytest.mark.parametrize("url", ACCEPTED)
def test_http_and_https_urls_are_kept_as_given(url):
    assert url_problem(url) is None and is_http_url(url)
    assert check_url(f"  {url} ", field="pipeline_url") == url
    validate_http_url(url)


def test_the_refusal_says_what_to_fix():
    assert url_problem("javascript:alert(1)") == "must be an http or https URL (https://host/path), not javascript:"
    assert url_problem("ci.example/x") == "must be an http or https URL (https://host/path), not no scheme"
    assert url_problem("https://u:p@ci.example/x") == "must not carry credentials (user:password@)"
    assert url_problem("https://ci.example/" + "a" * MAX_URL_LENGTH) == (
        f"is {len('https://ci.example/') + MAX_URL_LENGTH} characters long; the limit is {MAX_URL_LENGTH}"
    )
    assert url_problem("https://ci.example/" + "a" * 90, max_length=100) is not None


def test_blank_is_allowed_only_where_the_field_is_optional():
    assert check_url("  ", field="pipeline_url", blank=True) == ""
    with pytest.raises(ValidationFailed, match="pipeline_url is required"):
        check_url("", field="pipeline_url")


def render(url, label=""):
    return Template("{% load safe_links %}{% safe_link url label %}").render(Context({"url": url, "label": label}))


def test_safe_link_links_an_http_url_without_handing_over_the_page():
    html = render("https://ci.example/runs/1?a=1&b=2", "pipeline")
    assert html == '<a href="https://ci.example/runs/1?a=1&amp;b=2" rel="noopener noreferrer">pipeline</a>'
    assert render("https://ci.example/runs/1").endswith(">https://ci.example/runs/1</a>")


@pytest.mark.parametrize("url", HOSTILE[:9])
def test_safe_link_shows_anything_else_as_text(url):
    html = render(url, "pipeline")
    assert "<a " not in html and "href" not in html
    assert 'class="unlinked-url"' in html
    assert "<script>" not in html  # escaped, like any text


def test_safe_link_renders_nothing_for_nothing():
    assert render("") == "" and render(None) == ""
