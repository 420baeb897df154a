"""Evidence upload → Celery task → rows, with files made by real tools inside the test run (issue 3, items 2-4, 6, 9)."""  # noqa: E501

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from changecontrol.models import AuditEvent
from evidence.models import CoverageFile, Evidence, SbomComponent, StaticFinding, TestResult, Vulnerability
from tests.evidence.conftest import DIGEST, evidence_of
from tests.samples import sample_bytes

pytestmark = pytest.mark.django_db
VENV_BIN = Path(sys.executable).parent

# ---------------------------------------------------------------- files made by real tools

SCORING = textwrap.dedent(
    """
    def amber(score):
        if score >= 0.42:
            return "amber"
        return "green"


    def red(score):
        return score >= 0.8
    """
)
TESTS = textwrap.dedent(
    """
    from scoring import amber

    def test_REQ_017_threshold_flags_amber(record_property):
        record_property("requirement", "REQ-017")
        assert amber(0.5) == "amber"

    def test_green_below_threshold():
        assert amber(0.1) == "green"

    def test_known_failure():
        assert amber(0.3) == "amber", "0.3 should not be amber yet"
    """
)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "scoring.py").write_text(SCORING)
    (folder / "test_scoring.py").write_text(TESTS)
    return folder


@pytest.fixture(scope="module")
def pytest_junit(project) -> bytes:
    report = project / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:django",
            f"--junitxml={report}",
            "test_scoring.py",
        ],
        cwd=project,
        capture_output=True,
        check=False,
    )
    return report.read_bytes()


@pytest.fixture(scope="module")
def coverage_reports(project) -> dict[str, bytes]:
    env = {"PATH": str(VENV_BIN), "COVERAGE_FILE": str(project / ".coverage")}
    subprocess.run(
        [
            str(VENV_BIN / "coverage"),
            "run",
            "--branch",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:django",
            "test_scoring.py",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        check=False,
    )
    subprocess.run(
        [str(VENV_BIN / "coverage"), "xml", "-o", "coverage.xml"], cwd=project, env=env, check=True, capture_output=True
    )
    subprocess.run(
        [str(VENV_BIN / "coverage"), "lcov", "-o", "coverage.lcov"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return {"cobertura": (project / "coverage.xml").read_bytes(), "lcov": (project / "coverage.lcov").read_bytes()}


@pytest.fixture(scope="module")
def ruff_sarif(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("lint")
    (folder / "bad.py").write_text("import os\nimport sys\n\n\ndef f():\n    x = 1\n")
    result = subprocess.run(
        [
            str(VENV_BIN / "ruff"),
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "F",
            "--output-format",
            "sarif",
            "bad.py",
        ],
        cwd=folder,
        capture_output=True,
        check=False,
    )
    return result.stdout


@pytest.fixture(scope="module")
def cyclonedx_environment(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("sbom") / "sbom.json"
    subprocess.run(
        [str(VENV_BIN / "cyclonedx-py"), "environment", "--of", "JSON", "-o", str(out), sys.executable],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def test_pytest_junit_becomes_test_results_with_requirement_ids(upload, artifact, pytest_junit):
    response = upload(DIGEST, "junit", pytest_junit, name="junit.xml")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status_url"] == f"/api/v1/evidence/{body['id']}"
    evidence = evidence_of(response)
    assert evidence.state == "parsed", evidence.error
    assert evidence.verdict == "unsigned" and evidence.counts_as_evidence()
    assert evidence.summary["total"] == 3 and evidence.summary["failed"] == 1 and evidence.summary["passed"] == 2
    rows = {r.name: r for r in TestResult.objects.filter(evidence=evidence)}
    assert rows["test_REQ_017_threshold_flags_amber"].requirement_ids == ["REQ-017"]
    assert rows["test_known_failure"].status == "failed"
    assert "0.3 should not be amber yet" in rows["test_known_failure"].message
    assert rows["test_green_below_threshold"].classname == "test_scoring"


def test_status_endpoint_reports_the_contract_fields(api, ci_token, upload, artifact, pytest_junit):
    evidence = evidence_of(upload(DIGEST, "junit", pytest_junit))
    body = api(token=ci_token).get(f"/api/v1/evidence/{evidence.human_id}").json()
    for field in (
        "id",
        "type",
        "name",
        "sha256",
        "size",
        "state",
        "progress",
        "verdict",
        "verdict_detail",
        "signer_key",
        "summary",
        "error",
        "uploaded_at",
        "processed_at",
        "raw_url",
    ):
        assert field in body
    assert body["sha256"] == hashlib.sha256(pytest_junit).hexdigest()
    assert body["size"] == len(pytest_junit) and body["progress"] == 100 and body["signer_key"] is None
    raw = api(token=ci_token).get(body["raw_url"])
    assert raw.status_code == 200 and b"".join(raw.streaming_content) == pytest_junit


def test_coverage_py_xml_and_lcov_become_coverage_rows(upload, artifact, coverage_reports):
    for kind in ("cobertura", "lcov"):
        evidence = evidence_of(upload(DIGEST, kind, coverage_reports[kind]))
        assert evidence.state == "parsed", evidence.error
        files = {f.path: f for f in CoverageFile.objects.filter(evidence=evidence)}
        scoring = next(f for path, f in files.items() if path.endswith("scoring.py"))
        assert scoring.lines_valid == 6 and scoring.lines_covered == 5  # red() body never ran
        assert 0 < evidence.summary["line_rate"] < 1


def test_ruff_sarif_becomes_static_findings(upload, artifact, ruff_sarif):
    evidence = evidence_of(upload(DIGEST, "sarif", ruff_sarif))
    assert evidence.state == "parsed", evidence.error
    rules = sorted(StaticFinding.objects.filter(evidence=evidence).values_list("rule_id", flat=True))
    assert rules == ["F401", "F401", "F841"]
    finding = StaticFinding.objects.filter(evidence=evidence, rule_id="F841").get()
    assert finding.path.endswith("bad.py") and finding.start_line == 6 and finding.tool == "ruff"


def test_cyclonedx_py_environment_sbom_becomes_components(upload, artifact, cyclonedx_environment):
    evidence = evidence_of(upload(DIGEST, "cyclonedx", cyclonedx_environment))
    assert evidence.state == "parsed", evidence.error
    document = json.loads(cyclonedx_environment)
    assert SbomComponent.objects.filter(evidence=evidence).count() == len(document["components"])
    django = SbomComponent.objects.get(evidence=evidence, name__iexact="django")
    assert django.version.startswith("5.2") and django.purl.startswith("pkg:pypi/django@5.2")
    assert "BSD" in django.license_expression


# ---------------------------------------------------------------- the shared samples, end to end

SAMPLES = [
    ("junit/TEST-action.surefire.report.calc.StringUtilsTest.xml", "junit", TestResult),
    ("junit/jest-junit.xml", "junit", TestResult),
    ("junit/TEST-testng-junitreportreporter.xml", "junit", TestResult),
    ("junit/go-junit-report.xml", "junit", TestResult),
    ("coverage/lcov-istanbul.info", "lcov", CoverageFile),
    ("coverage/cobertura-istanbul-flat.xml", "cobertura", CoverageFile),
    ("coverage/jacoco-single-line.xml", "cobertura", CoverageFile),
    ("sarif/codeql-2.19.0-ruby.sarif", "sarif", StaticFinding),
    ("sarif/semgrep-oss-1.69.0-gitlab-rules.sarif", "sarif", StaticFinding),
    ("sbom/spdx-2.3-k8s-bom-rust-hello-server.spdx.json", "spdx", SbomComponent),
    ("sbom/cyclonedx-1.4-php-composer-laravel.json", "cyclonedx", SbomComponent),
    ("sbom/cyclonedx-1.5-trivy-pom-with-vulnerabilities.json", "cyclonedx", Vulnerability),
    ("vulns/grype-0.75-nul-chars-in-version.json", "grype", Vulnerability),
    ("vulns/grype-0.94-busybox-epss.json", "grype", Vulnerability),
    ("vulns/trivy-schema2-alpine-310-image.json", "trivy", Vulnerability),
    ("vulns/trivy-legacy-array-null-vulnerabilities.json", "trivy", None),
    ("vulns/osv-scanner-go-cargo-lockfiles.json", "osv", Vulnerability),
    ("vulns/osv-scanner-yarn-malware.json", "osv", Vulnerability),
]


@pytest.mark.parametrize(("sample", "evidence_type", "model"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_every_sample_goes_through_upload_task_and_rows(upload, artifact, sample, evidence_type, model):
    evidence = evidence_of(upload(DIGEST, evidence_type, sample_bytes(sample), name=sample))
    assert evidence.state == "parsed", evidence.error
    if model is not None:
        assert model.objects.filter(evidence=evidence).exists()
    assert AuditEvent.objects.filter(action="evidence.parsed", object_id=str(evidence.pk)).count() == 1


def test_grype_nul_characters_never_reach_the_database(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "grype", sample_bytes("vulns/grype-0.75-nul-chars-in-version.json")))
    # PostgreSQL refuses NUL in text columns: storing the rows at all proves they were cleaned.
    assert evidence.state == "parsed", evidence.error
    assert not any(
        "\x00" in v for v in Vulnerability.objects.filter(evidence=evidence).values_list("package_version", flat=True)
    )
    assert set(Vulnerability.objects.filter(evidence=evidence).values_list("severity", flat=True)) <= {
        "critical",
        "high",
        "medium",
        "low",
        "unknown",
    }


def test_lcov_hit_counts_of_two_to_the_64_are_handled(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "lcov", sample_bytes("coverage/lcov-istanbul.info")))
    assert evidence.state == "parsed", evidence.error
    assert all(f.lines_covered <= f.lines_valid for f in CoverageFile.objects.filter(evidence=evidence))


def test_generic_evidence_is_kept_not_parsed(upload, artifact):
    evidence = evidence_of(upload(DIGEST, "generic", b"%PDF-1.4 review minutes", name="review.pdf"))
    assert evidence.state == "parsed" and evidence.summary == {"kept": True, "parsed": False}
    assert default_storage.exists(f"evidence/{evidence.sha256[:2]}/{evidence.sha256}")


# ---------------------------------------------------------------- storage and idempotency


def test_raw_bytes_are_stored_content_addressed(upload, artifact, pytest_junit, private_media):
    evidence = evidence_of(upload(DIGEST, "junit", pytest_junit))
    sha = hashlib.sha256(pytest_junit).hexdigest()
    assert evidence.storage_name == f"evidence/{sha[:2]}/{sha}"
    assert (private_media / "evidence" / sha[:2] / sha).read_bytes() == pytest_junit


def test_the_same_bytes_uploaded_twice_are_one_evidence(upload, artifact, pytest_junit, private_media):
    first = upload(DIGEST, "junit", pytest_junit)
    second = upload(DIGEST, "junit", pytest_junit)
    assert first.json()["id"] == second.json()["id"]
    assert (first.json()["created"], second.json()["created"]) == (True, False)
    assert Evidence.objects.count() == 1
    assert TestResult.objects.count() == 3
    assert len(list((private_media / "evidence").rglob("*"))) == 2  # one folder, one file


def test_an_unknown_type_is_400_listing_the_supported_types(upload, artifact, private_media):
    response = upload(DIGEST, "excel", b"data")
    assert response.status_code == 400
    body = response.json()
    assert "junit" in body["detail"] and "openvex" in body["detail"] and "generic" in body["detail"]
    assert "cyclonedx" in body["supported_types"]
    assert not (private_media / "evidence").exists()


def test_an_upload_over_the_limit_is_413_and_nothing_is_stored(upload, artifact, settings, private_media):
    settings.CUSTODY_MAX_UPLOAD_BYTES = 1024
    response = upload(DIGEST, "junit", b"<testsuite>" + b" " * 5000 + b"</testsuite>")
    assert response.status_code == 413
    assert response.json()["error"] == "too_large" and "1024 bytes" in response.json()["detail"]
    assert Evidence.objects.count() == 0
    assert not (private_media / "evidence").exists()


def test_content_length_over_the_limit_is_refused_before_the_body_is_read(api, ci_token, artifact, settings):
    from django.test import Client

    settings.CUSTODY_MAX_UPLOAD_BYTES = 1024
    client = Client(HTTP_AUTHORIZATION=f"Bearer {ci_token}")
    response = client.generic(
        "POST",
        f"/api/v1/artifacts/{DIGEST}/evidence",
        b"x" * 10,
        content_type="multipart/form-data; boundary=zzz",
        CONTENT_LENGTH=str(60 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert Evidence.objects.count() == 0


def test_another_products_token_gets_404_on_upload_and_status(api, upload, artifact, other_product_token, pytest_junit):
    response = upload(DIGEST, "junit", pytest_junit, token=other_product_token)
    assert response.status_code == 404
    assert Evidence.objects.count() == 0
    evidence = evidence_of(upload(DIGEST, "junit", pytest_junit))
    assert api(token=other_product_token).get(f"/api/v1/evidence/{evidence.human_id}").status_code == 404
    assert api(token=other_product_token).get(f"/api/v1/evidence/{evidence.human_id}/raw").status_code == 404
    assert api(token=other_product_token).get(f"/api/v1/artifacts/{DIGEST}").status_code == 404


def test_outsider_gets_404_on_every_evidence_endpoint(api, outsider, upload, artifact, pytest_junit):
    evidence = evidence_of(upload(DIGEST, "junit", pytest_junit))
    client = api(outsider)
    for path in (
        f"/api/v1/evidence/{evidence.human_id}",
        f"/api/v1/evidence/{evidence.pk}/raw",
        f"/api/v1/artifacts/{DIGEST}",
        "/api/v1/builds/rsd-b1",
        "/api/v1/products/rsd/signer-keys",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/api/v1/artifacts/{DIGEST}/evidence", {"type": "junit"}).status_code == 404


def test_a_person_with_a_role_may_upload_with_their_session(api, author, artifact, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=True):
        response = api(author).post(
            f"/api/v1/artifacts/{DIGEST}/evidence",
            {"type": "generic", "file": SimpleUploadedFile("notes.txt", b"manual test notes")},
            format="multipart",
        )
    assert response.status_code == 202
    assert evidence_of(response).uploaded_by == author
