"""Every answer carries the security headers of docs/security.md: a strict CSP, no sniffing, no framing, no
referrer outside Custody, no powerful browser features, no caching of signed-in pages or API answers; over TLS,
HSTS and a redirect to https (settings in a fresh process, as production starts)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.config.test_settings import PRODUCTION, start_django

pytestmark = pytest.mark.django_db

STRICT_CSP = {
    "default-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
}


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.strip().split(" ")[0]: part.strip() for part in policy.split(";") if part.strip()}


def assert_hardened(response) -> None:
    found = directives(response)
    for directive in STRICT_CSP:
        assert found[directive.split(" ")[0]] == directive, response["Content-Security-Policy"]
    # Scripts from our files only (a nonce appears only on a page that had to use one); never inline or eval.
    assert found["script-src"].startswith("script-src 'self'")
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response  # served over http here (CUSTODY_TLS off)


def test_the_sign_in_page_is_hardened():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert_hardened(response)


def test_a_signed_in_page_is_hardened_and_never_stored(admin_user, product):
    client = Client()
    client.force_login(admin_user)
    response = client.get("/change-requests/")
    assert response.status_code == 200
    assert_hardened(response)
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_an_api_answer_is_hardened_and_never_stored(api, ci_token):
    response = api(token=ci_token).get("/api/v1/deployments")
    assert response.status_code == 200
    assert_hardened(response)
    assert "no-store" in response["Cache-Control"]


def test_an_api_refusal_is_never_stored_either():
    response = Client().get("/api/v1/deployments")
    assert response.status_code == 401
    assert "no-store" in response["Cache-Control"]
    assert_hardened(response)


def test_the_api_docs_load_swagger_from_our_static_files_with_no_inline_script(admin_user):
    client = Client()
    client.force_login(admin_user)
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    assert_hardened(page)
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html
    assert "<style" not in html and "<script>" not in html  # every script has a src
    script = client.get("/api/v1/docs/", {"script": ""})
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode() and '"validatorUrl": null' in script.content.decode()


def test_behind_tls_http_is_redirected_to_https_and_https_is_pinned(admin_user):
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000):
        assert Client().get("/accounts/login/").status_code == 301
        response = Client().get("/accounts/login/", secure=True)
        assert response["Strict-Transport-Security"] == "max-age=31536000"


def test_csp_reports_go_where_the_operator_says():
    read = "print(settings.CONTENT_SECURITY_POLICY['DIRECTIVES'].get('report-uri'))"
    assert start_django(then=read, **PRODUCTION).stdout.strip() == "None"
    collector = "https://csp.example.test/custody"
    assert start_django(then=read, **PRODUCTION, CUSTODY_CSP_REPORT_URI=collector).stdout.strip() == f"['{collector}']"


def test_tls_settings_follow_custody_tls():
    read = "print(settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS, settings.SECURE_PROXY_SSL_HEADER)"
    assert start_django(then=read, **PRODUCTION).stdout.split() == ["False", "0", "None"]
    tls = start_django(then=read, **PRODUCTION, CUSTODY_TLS="1", CUSTODY_BEHIND_TLS_PROXY="1").stdout
    assert tls.split() == ["True", "31536000", "('HTTP_X_FORWARDED_PROTO',", "'https')"]
    shorter = start_django(then=read, **PRODUCTION, CUSTODY_TLS="1", CUSTODY_HSTS_SECONDS="600").stdout
    assert shorter.split()[:2] == ["True", "600"]


def test_static_files_carry_the_headers_and_keep_their_caching():
    # WhiteNoise answers static files before sessions and authentication; the headers are set around it.
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        response = Client().get("/static/custody.css")
    assert response.status_code == 200
    assert_hardened(response)
    assert "no-store" not in response.get("Cache-Control", "")
