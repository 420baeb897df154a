"""The build, artifact and evidence pages (Django test client; Chromium tests wait for tests/browser_fixtures.py)."""

from __future__ import annotations

import json

import pytest

from tests.evidence.conftest import DIGEST, evidence_of
from tests.evidence.test_evidence_signatures import GRYPE

pytestmark = pytest.mark.django_db

JUNIT = b'<testsuite name="unit"><testcase classname="c" name="test_passes"/><testcase classname="c" name="test_breaks"><failure message="expected amber">trace</failure></testcase></testsuite>'  # noqa: E501


def test_build_page_shows_commit_pipeline_commits_artifacts_and_pull_state(api, author, artifact):
    page = api(author).get("/builds/rsd-b1")
    assert page.status_code == 200
    html = page.content.decode()
    assert "c" * 40 in html and "https://github.com/acme/rsd/actions/runs/42" in html
    assert "CR-1: raise amber threshold (REQ-017)" in html
    assert DIGEST in html and "Not pulled" in html


def test_artifact_page_lists_failures_first_and_filters_vulnerabilities(api, auditor, upload, artifact):
    evidence_of(upload(DIGEST, "junit", JUNIT))
    evidence_of(upload(DIGEST, "grype", json.dumps(GRYPE).encode()))
    html = api(auditor).get(f"/artifacts/{DIGEST}").content.decode()
    assert html.index("test_breaks") < html.index("test_passes")
    assert "CVE-2024-0001" in html and "Unsigned" in html
    filtered = api(auditor).get(f"/artifacts/{DIGEST}?severity=low").content.decode()
    assert "CVE-2024-0001" not in filtered and "No vulnerabilities of severity low" in filtered


def test_evidence_page_shows_verdict_error_and_raw_download(api, auditor, upload, artifact):
    broken = evidence_of(upload(DIGEST, "junit", b"<testsuite><testcase"))
    html = api(auditor).get(f"/evidence/{broken.human_id}").content.decode()
    assert "Failed" in html and "line 1" in html and f"/evidence/{broken.human_id}/raw" in html
    raw = api(auditor).get(f"/evidence/{broken.human_id}/raw")
    assert b"".join(raw.streaming_content) == b"<testsuite><testcase"
    assert raw["X-Content-SHA256"] == broken.sha256


def test_outsider_gets_404_on_every_page(api, outsider, upload, artifact):
    evidence = evidence_of(upload(DIGEST, "junit", JUNIT))
    for path in (
        "/builds/rsd-b1",
        f"/artifacts/{DIGEST}",
        f"/evidence/{evidence.human_id}",
        f"/evidence/{evidence.human_id}/raw",
    ):
        assert api(outsider).get(path).status_code == 404, path


def test_pages_need_a_login(api, artifact):
    response = api().get("/builds/rsd-b1")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
