"""Pulling reports from GitHub Actions and GitLab, against recorded responses on a local HTTP server (item 7)."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from changecontrol.models import AuditEvent
from evidence import services
from evidence.models import Build, Evidence, ProviderCredential, TestResult
from evidence.providers.base import ProviderError, extract_reports
from tests.evidence.conftest import DIGEST

pytestmark = pytest.mark.django_db

JUNIT = b'<?xml version="1.0"?><testsuite name="unit"><testcase classname="api" name="test_REQ-017"/><testcase classname="api" name="test_x"><failure message="no"/></testcase></testsuite>'  # noqa: E501
COBERTURA = b'<?xml version="1.0"?><coverage line-rate="0.5" branch-rate="0" lines-valid="2" lines-covered="1"><packages><package name="p"><classes><class name="a" filename="a.py"><lines><line number="1" hits="1"/><line number="2" hits="0"/></lines></class></classes></package></packages></coverage>'  # noqa: E501


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


class Recorded(BaseHTTPRequestHandler):
    """Serves `routes` (path → list of (status, body) answered in turn, the last one repeating)."""

    routes: dict[str, list[tuple[int, bytes]]] = {}
    seen: list[tuple[str, dict]] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.seen.append((self.path, dict(self.headers)))
        answers = self.routes.get(self.path)
        status, body = (
            (404, b'{"message": "Not Found"}') if not answers else (answers.pop(0) if len(answers) > 1 else answers[0])
        )
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def ci_server():
    Recorded.routes = {}
    Recorded.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Recorded
    server.shutdown()
    server.server_close()


def github_setup(base, handler, product, admin_user, archive: bytes, *, failures_first: int = 0):
    services.provider_credential_set(
        product=product, provider="github", base_url=base, secret="ghp_secret", actor=admin_user
    )
    listing = {
        "total_count": 2,
        "artifacts": [
            {
                "id": 11,
                "name": "test-reports",
                "expired": False,
                "archive_download_url": f"{base}/repos/acme/rsd/actions/artifacts/11/zip",
            },
            {
                "id": 12,
                "name": "old",
                "expired": True,
                "archive_download_url": f"{base}/repos/acme/rsd/actions/artifacts/12/zip",
            },
        ],
    }
    handler.routes["/repos/acme/rsd/actions/runs/42/artifacts?per_page=100"] = [(503, b"busy")] * failures_first + [
        (200, json.dumps(listing).encode())
    ]
    handler.routes["/repos/acme/rsd/actions/artifacts/11/zip"] = [(200, archive)]


def test_github_actions_reports_are_pulled_into_evidence(
    api, ci_token, ci_server, product, admin_user, artifact, django_capture_on_commit_callbacks
):
    base, handler = ci_server
    github_setup(
        base,
        handler,
        product,
        admin_user,
        zipped({"junit.xml": JUNIT, "cov/coverage.xml": COBERTURA, "app.bin": b"\x00\x01"}),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api(token=ci_token).post("/api/v1/builds/rsd-b1/pull")
    assert response.status_code == 202
    build = Build.objects.get()
    assert build.pull_state == "done", build.pull_detail
    assert "fetched 2 report(s)" in build.pull_detail
    types = sorted(Evidence.objects.values_list("evidence_type", flat=True))
    assert types == ["cobertura", "junit"]
    assert TestResult.objects.filter(status="failed").count() == 1
    # The token went only to the configured API, as a bearer token.
    assert all(headers.get("Authorization") == "Bearer ghp_secret" for _, headers in handler.seen)
    assert AuditEvent.objects.filter(action="build.pull_done").count() == 1


def test_transient_provider_errors_are_retried_and_shown(
    ci_server, product, admin_user, artifact, django_capture_on_commit_callbacks, ci_account
):
    base, handler = ci_server
    github_setup(base, handler, product, admin_user, zipped({"junit.xml": JUNIT}), failures_first=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.build_pull_request(build=artifact.build, actor=ci_account)
    build = Build.objects.get()
    assert build.pull_state == "done" and build.pull_attempts == 3


def test_a_zip_bomb_in_a_github_artifact_is_refused(
    ci_server, product, admin_user, artifact, django_capture_on_commit_callbacks, ci_account
):
    base, handler = ci_server
    bomb = zipped({"junit.xml": b"<testsuite>" + b" " * (20 * 1024 * 1024) + b"</testsuite>"})
    assert len(bomb) < 100_000
    github_setup(base, handler, product, admin_user, bomb)
    with django_capture_on_commit_callbacks(execute=True):
        services.build_pull_request(build=artifact.build, actor=ci_account)
    build = Build.objects.get()
    assert build.pull_state == "failed" and "zip bomb" in build.pull_detail
    assert not Evidence.objects.exists()


def test_a_zip_with_too_many_members_is_refused():
    with pytest.raises(ProviderError, match="more than the 500 allowed"):
        extract_reports(zipped({f"r{i}.xml": b"<testsuite/>" for i in range(501)}), source="many")


def test_a_download_url_outside_the_configured_api_is_refused(
    ci_server, product, admin_user, artifact, django_capture_on_commit_callbacks, ci_account
):
    base, handler = ci_server
    github_setup(base, handler, product, admin_user, b"")
    listing = {
        "artifacts": [{"id": 1, "name": "x", "expired": False, "archive_download_url": "https://evil.example/steal"}]
    }
    handler.routes["/repos/acme/rsd/actions/runs/42/artifacts?per_page=100"] = [(200, json.dumps(listing).encode())]
    with django_capture_on_commit_callbacks(execute=True):
        services.build_pull_request(build=artifact.build, actor=ci_account)
    build = Build.objects.get()
    assert build.pull_state == "failed" and "outside" in build.pull_detail


def test_a_pull_without_a_credential_fails_with_what_to_do(
    product, artifact, django_capture_on_commit_callbacks, ci_account
):
    with django_capture_on_commit_callbacks(execute=True):
        services.build_pull_request(build=artifact.build, actor=ci_account)
    build = Build.objects.get()
    assert build.pull_state == "failed" and "no stored github credential" in build.pull_detail


def test_credentials_are_stored_encrypted(product, admin_user):
    credential = services.provider_credential_set(
        product=product,
        provider="gitlab",
        base_url="https://gitlab.example/api/v4",
        secret="glpat-abc",
        actor=admin_user,
    )
    stored = ProviderCredential.objects.get(pk=credential.pk)
    assert "glpat-abc" not in stored.secret_encrypted
    assert services.credential_secret(stored) == "glpat-abc"
    event = AuditEvent.objects.get(action="provider_credential.stored")
    assert "glpat" not in json.dumps(event.after)


def test_gitlab_job_artifacts_and_the_pipeline_test_report_are_pulled(
    ci_server, product, admin_user, ci_account, django_capture_on_commit_callbacks
):
    base, handler = ci_server
    build, _ = services.build_register(
        product=product,
        actor=ci_account,
        commit="d" * 40,
        pipeline_url="https://gitlab.example/acme/platform/rsd/-/pipelines/900",
    )
    services.artifact_register(product=product, actor=ci_account, build=build, name="rsd", digest=DIGEST)
    services.provider_credential_set(
        product=product, provider="gitlab", base_url=base, secret="glpat-abc", actor=admin_user
    )
    project = "acme%2Fplatform%2Frsd"
    jobs = [
        {"id": 5, "name": "test", "artifacts_file": {"filename": "artifacts.zip"}},
        {"id": 6, "name": "lint", "artifacts": []},
    ]
    report = {
        "total_count": 2,
        "test_suites": [
            {
                "name": "rspec",
                "test_cases": [
                    {"status": "success", "name": "scores <REQ-017>", "classname": "Score", "execution_time": 0.1},
                    {
                        "status": "failed",
                        "name": "rounds & clamps",
                        "classname": "Score",
                        "system_output": "expected 1 got 2",
                    },
                ],
            }
        ],
    }
    handler.routes[f"/projects/{project}/pipelines/900/jobs?per_page=100"] = [(200, json.dumps(jobs).encode())]
    handler.routes[f"/projects/{project}/jobs/5/artifacts"] = [(200, zipped({"coverage.xml": COBERTURA}))]
    handler.routes[f"/projects/{project}/pipelines/900/test_report"] = [(200, json.dumps(report).encode())]
    with django_capture_on_commit_callbacks(execute=True):
        services.build_pull_request(build=build, actor=ci_account)
    build.refresh_from_db()
    assert build.pull_state == "done", build.pull_detail
    assert sorted(Evidence.objects.values_list("evidence_type", flat=True)) == ["cobertura", "junit"]
    failed = TestResult.objects.get(status="failed")
    assert failed.name == "rounds & clamps" and "expected 1 got 2" in failed.message
    assert all(h.get("PRIVATE-TOKEN") == "glpat-abc" for _, h in handler.seen)
