"""Every page works under the Content-Security-Policy, in real headless Chromium: an administrator walks every page
the navigation reaches over the demo data (and the detail pages behind them), and signs through a dialog; any
console message, page error or `securitypolicyviolation` event fails the test.

Set CUSTODY_SHOTS_DIR=/tmp/shots to keep screenshots of the API docs and a deployment page.
"""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from approvals.models import Release
from changecontrol.demo import DEMO_PASSWORD
from changecontrol.models import Signature, User
from config import demo
from tests.conftest import MEDIUM_RISK, open_change_request
from tests.signing.test_browser_signing import open_dialog, shoot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Reported to the console by the page itself, so console listeners see CSP violations however they arise.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"} ` +
                `at ${event.sourceFile}:${event.lineNumber}`);
});
"""
# Not pages: downloads, the API (its docs aside), signing out, the Django admin (visited apart, below).
NOT_PAGES = re.compile(
    r"^/(accounts/logout|admin/|api/(?!v1/docs/$))|/raw$|\.(pdf|zip|csv|json|md|html)$|/(packet|bundle|notes)\b"
)
# The detail pages the demo must lead to (issue: every page type, not only the lists).
DETAIL_PAGES = {
    "change request": r"^/change-requests/CR-\d+$",
    "release": r"^/products/[\w-]+/releases/[^/]+$",
    "auditor's release (auditor.js)": r"^/auditor/releases/",
    "promotion": r"^/promotions/PRM-\d+$",
    "deployment": r"^/deployments/DEP-\d+$",
    "evidence": r"^/evidence/EV-\d+$",
    "build": r"^/builds/",
    "artifact": r"^/artifacts/sha256:",
    "policy": r"^/products/[\w-]+/policy$",
    "audit trail": r"^/audit/$",
    "signature": r"^/signatures/\d+$",
    "API docs": r"^/api/v1/docs/$",
}
MAX_PAGES = 150


def watch(page) -> list[str]:
    """Everything the page says to the console, its uncaught errors and its CSP violations, as they happen."""
    heard: list[str] = []
    page.context.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda message: heard.append(f"{page.url} console.{message.type}: {message.text}"))
    page.on("pageerror", lambda error: heard.append(f"{page.url} uncaught: {error}"))
    return heard


def links_on(page) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    paths = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme in ("http", "https") and parts.netloc == urlsplit(page.url).netloc:
            paths.append(parts.path)  # query strings only filter or page a list already visited
    return paths


def test_every_page_the_navigation_reaches_runs_under_the_csp_without_a_console_message(signed_in_page):
    demo.seed(stdout=io.StringIO())
    page = signed_in_page(User.objects.get(username="admin"), password=DEMO_PASSWORD)
    heard = watch(page)
    # The auditor's release page is linked from search results and the population report's rows: start there too.
    release = Release.objects.select_related("product").order_by("pk").first()
    queue, seen = ["/", "/api/v1/docs/", f"/auditor/releases/{release.product.key}/{release.version}"], set()
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen or NOT_PAGES.search(path):
            continue
        seen.add(path)
        response = page.goto(path)
        assert response is not None and response.status == 200, f"{path} answered {response and response.status}"
        assert "Content-Security-Policy" in {name.title() for name in response.headers}, path
        if path == "/api/v1/docs/":
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Custody API")
            shoot(page, "api-docs")
            continue
        if re.match(DETAIL_PAGES["deployment"], path):
            shoot(page, "deployment")
        queue.extend(link for link in links_on(page) if link not in seen)
    # Release notes are served as HTML to open in the browser: under the same policy.
    notes = page.goto(f"/api/v1/releases/{release.product.key}/{release.version}/release-notes.html")
    assert notes is not None and notes.status == 200
    expect(page.locator("h1")).to_contain_text("release notes")
    assert heard == [], "\n".join(heard)
    missing = [name for name, pattern in DETAIL_PAGES.items() if not any(re.match(pattern, p) for p in seen)]
    assert missing == [], f"never reached: {missing} (visited {len(seen)} pages)"


def test_signing_through_the_dialog_works_under_the_csp(signed_in_page, product, release_manager, quality_reviewer):
    change_request = open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)
    page = signed_in_page(quality_reviewer)
    heard = watch(page)
    page.goto(f"/change-requests/{change_request.human_id}")
    dialog = open_dialog(page, "Sign…", username=quality_reviewer.username)
    dialog.get_by_role("button", name="Sign", exact=True).click()
    signature = Signature.objects.get(signer=quality_reviewer)
    expect(page.get_by_role("status").first).to_contain_text(f"Signed: {signature.manifestation}")
    assert heard == [], "\n".join(heard)


def test_the_admin_pages_run_under_the_csp_too(signed_in_page, admin_user, product):
    page = signed_in_page(admin_user)
    heard = watch(page)
    for path in (
        "/admin/",
        "/admin/changecontrol/product/",
        f"/admin/changecontrol/product/{product.pk}/change/",
        "/admin/changecontrol/product/add/",
        f"/admin/changecontrol/user/{admin_user.pk}/change/",
        "/admin/changecontrol/auditevent/",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
    page.goto(f"/admin/changecontrol/product/{product.pk}/change/")
    page.get_by_role("button", name=re.compile("Add another Environment")).click()  # the admin's own script
    assert heard == [], "\n".join(heard)
