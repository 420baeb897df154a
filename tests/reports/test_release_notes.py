"""Release notes as structured evidence (issue 7, item 6): Markdown, HTML and PDF from the same data."""

from __future__ import annotations

import re

import pytest

from reports.release_notes import (
    affected_modules,
    release_notes_context,
    render_release_notes_html,
    render_release_notes_markdown,
    render_release_notes_pdf,
)
from tests.reports import test_packets
from tests.reports.test_packets import pdf_text

pytestmark = pytest.mark.django_db
release = test_packets.release  # the packet tests' release: rsd 7.2.4 with parsed evidence and an approved CR
SECTIONS = [
    "Scope",
    "Affected modules",
    "Approvals",
    "Validation summary",
    "Known limitations",
    "Rollback conditions",
    "Digests",
]


def test_context_holds_scope_modules_approvals_validation_limitations_rollback_and_digests(release):
    context = release_notes_context(release)
    change_request = release.change_requests.get()
    assert [s["id"] for s in context["scope"]] == [change_request.human_id]
    assert context["affected_modules"] == [
        {"name": "REQ-017", "change_requests": [change_request.human_id]},
        {"name": "scoring-service", "change_requests": [change_request.human_id]},
    ]
    assert [(a["printed_name"], a["meaning"]) for a in context["approvals"]] == [("Quinn Quality", "Approved")]
    assert context["validation"]["tests"]["passed"] == 2 and context["validation"]["tests"]["failed"] == 1
    assert context["validation"]["gates"], "the integration promotion's gates are summarised"
    assert [a["test"] for a in context["known_limitations"]["anomalies"]] == [
        "tests.test_scoring test_missing_vitals_rejected"
    ]
    assert context["known_limitations"]["vulnerabilities"], "the SBOM sample reports open vulnerabilities"
    assert "Revert the configuration commit" in context["rollback"][0]["plan"]
    assert context["digests"]["artifacts"][0]["digest"] == release.artifacts.get().digest
    assert context["digests"]["manifest_sha256"] == release.manifest_sha256


def test_affected_modules_split_on_commas_semicolons_and_lines_and_name_each_cr_once():
    class CR:
        def __init__(self, human_id, affected_items):
            self.human_id, self.affected_items = human_id, affected_items

    modules = affected_modules([CR("CR-1", "api; ui\nREQ-1, api"), CR("CR-2", "ui")])
    assert modules == [
        {"name": "api", "change_requests": ["CR-1"]},
        {"name": "REQ-1", "change_requests": ["CR-1"]},
        {"name": "ui", "change_requests": ["CR-1", "CR-2"]},
    ]


def test_markdown_html_and_pdf_say_the_same_things(release):
    context = release_notes_context(release)
    markdown = render_release_notes_markdown(context)
    html = render_release_notes_html(context)
    text = pdf_text(render_release_notes_pdf(context))
    digest = release.artifacts.get().digest
    cr_id = release.change_requests.get().human_id
    for rendering in (markdown, html, text):
        for section in SECTIONS:
            assert section in rendering
        assert cr_id in rendering and "Quinn Quality" in rendering and "scoring-service" in rendering
        assert "test_missing_vitals_rejected" in rendering and "Revert the configuration commit" in rendering
    assert f"`{digest}`" in markdown and digest in html
    assert digest in re.sub(r"\s+", "", text)  # digests wrap across lines in the PDF
    assert "rsd 7.2.4 release notes — page 1 of" in text
    assert "## Known limitations" in markdown and "| CR | Title |" in markdown


def test_api_serves_each_format_to_the_auditor(release, auditor, api):
    base = "/api/v1/releases/rsd/7.2.4/release-notes"
    markdown = api(auditor).get(base + ".md")
    assert markdown.status_code == 200 and markdown["Content-Type"].startswith("text/markdown")
    assert markdown.content.decode().startswith("# Risk Score Dashboard 7.2.4 — release notes")
    html = api(auditor).get(base + ".html")
    assert html.status_code == 200 and b"<h2>Rollback conditions</h2>" in html.content
    pdf = api(auditor).get(base + ".pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert api(auditor).get(base + ".docx").status_code == 404


def test_release_text_is_escaped_in_html(release, auditor, api):
    change_request = release.change_requests.get()
    type(change_request).objects.filter(pk=change_request.pk).update(title="<script>alert(1)</script>")
    body = api(auditor).get("/api/v1/releases/rsd/7.2.4/release-notes.html").content
    assert b"<script>alert(1)" not in body and b"&lt;script&gt;" in body
    # Opened in a browser it runs under the CSP: no inline style (the print-only @page rule is for the PDF).
    assert b"<style" not in body and b"<script" not in body and b"style=" not in body


def test_outsider_and_another_products_token_get_404(release, outsider, other_product_token, api):
    for extension in ("md", "html", "pdf"):
        url = f"/api/v1/releases/rsd/7.2.4/release-notes.{extension}"
        assert api(outsider).get(url).status_code == 404
        assert api(token=other_product_token).get(url).status_code == 404
    assert api(outsider).get("/api/v1/releases/rsd/9.9.9/release-notes.md").status_code == 404
