"""`custody build register`, `custody artifact register` and `custody evidence upload`, run as CI runs them:
the installed command in its own process, against Custody itself served by pytest-django's live server."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.db import connection

from changecontrol.models import AuditEvent
from custody_cli.api import UsageError
from custody_cli.intake import commits_from_git
from custody_cli.main import main
from evidence import services
from evidence.models import Artifact, Build, Evidence
from evidence.models import TestResult as CaseResult  # not collected as a test class
from tests.evidence.conftest import KeyPair, dsse_envelope, slsa_statement
from tests.samples import sample_path

DIGEST = "sha256:" + hashlib.sha256(b"rsd scoring-service image, cli").hexdigest()
PIPELINE_URL = "https://github.com/acme/rsd/actions/runs/7001"
BROKEN_JUNIT = b'<?xml version="1.0"?>\n<testsuite name="unit">\n<testcase name="a">\n</testsuite>\n'

# Written into a scratch folder and run with pytest itself, so the report is what pytest really writes.
TINY_TEST_MODULE = """
import pytest


def test_amber_threshold_is_0_42(record_property):
    record_property("requirement", "REQ-017")
    assert 0.42 > 0.35


def test_scores_round_to_two_places():
    assert round(0.4249, 2) == 0.43  # fails on purpose: a report with a failure is still evidence


@pytest.mark.skip(reason="needs the clinical replay set")
def test_replay_of_last_quarter():
    pass
"""


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """The live server stores this test's evidence bytes in a folder of its own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture(autouse=True)
def no_custody_environment(monkeypatch):
    monkeypatch.delenv("CUSTODY_URL", raising=False)
    monkeypatch.delenv("CUSTODY_TOKEN", raising=False)


@pytest.fixture
def workspace(tmp_path) -> Path:
    """The CI job's working folder: the command runs here, as a pipeline step would."""
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder


@pytest.fixture
def custody(live_server, ci_token, workspace):
    """`custody(*args)` runs the command in a process of its own with CUSTODY_URL and CUSTODY_TOKEN set."""

    def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CUSTODY_")}
        env["CUSTODY_URL"] = live_server.url
        env["CUSTODY_TOKEN"] = token or ci_token
        return subprocess.run(
            [sys.executable, "-m", "custody_cli.main", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=workspace,
            timeout=120,
        )

    return run


@pytest.fixture
def build(product, ci_account):
    build, _ = services.build_register(
        product=product,
        actor=ci_account,
        commit="c" * 40,
        branch="main",
        pipeline_url=PIPELINE_URL,
        ci_system="github-actions",
    )
    return build


@pytest.fixture
def artifact(product, build, ci_account):
    artifact, _ = services.artifact_register(
        product=product, actor=ci_account, build=build, name="scoring-service", digest=DIGEST, kind="container-image"
    )
    return artifact


def _public_pem(key: ed25519.Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def junit_report_from_pytest(folder: Path) -> Path:
    """A JUnit XML report written by `pytest --junitxml` over a small generated test module."""
    (folder / "test_scoring.py").write_text(TINY_TEST_MODULE)
    (folder / "pytest.ini").write_text("[pytest]\n")  # this folder's own configuration, not the project's
    report = folder / "junit.xml"
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", "test_scoring.py"],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # 1: a test failed, as intended
    return report


def git(folder: Path, *args: str) -> str:
    identity = ["-c", "user.name=Alice Author", "-c", "user.email=alice@example.test", "-c", "commit.gpgsign=false"]
    result = subprocess.run(["git", *identity, *args], cwd=folder, capture_output=True, text=True, check=True)
    return result.stdout.strip()


# The whole CI sequence ------------------------------------------------------------------------------------


def test_a_pipeline_registers_its_build_and_image_then_uploads_pytests_own_report_and_waits_until_parsed(
    custody, workspace, product, ci_account
):
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "commit", "-q", "--allow-empty", "-m", "CR-1: raise the amber threshold\n\nImplements REQ-017.")
    before = git(workspace, "rev-parse", "HEAD")
    git(workspace, "commit", "-q", "--allow-empty", "-m", "REQ-018 add the audit log")
    commit = git(workspace, "rev-parse", "HEAD")
    register_build = [
        *("build", "register", "--product", "rsd", "--commit", commit, "--branch", "main"),
        *("--pipeline-url", PIPELINE_URL, "--ci-system", "github-actions", "--build-number", "7001"),
        *("--commits-from-git", f"{before}..{commit}"),
    ]

    first = custody(*register_build)
    assert first.returncode == 0, first.stderr
    build_id = first.stdout.strip()
    assert build_id == "rsd-b1"
    assert "registered build rsd-b1 of rsd" in first.stderr
    build = Build.objects.get(product=product, pipeline_url=PIPELINE_URL)
    assert (build.commit, build.branch, build.ci_system, build.ci_build_number) == (
        commit,
        "main",
        "github-actions",
        "7001",
    )
    assert [(c.sha, c.author_email, c.message) for c in build.commits.all()] == [
        (commit, "alice@example.test", "REQ-018 add the audit log")
    ]
    assert AuditEvent.objects.filter(action="build.registered", actor=ci_account).count() == 1

    rerun = custody(*register_build)  # a re-run of the job: the same id, nothing new
    assert (rerun.returncode, rerun.stdout.strip()) == (0, build_id), rerun.stderr
    assert "already registered" in rerun.stderr
    assert Build.objects.filter(product=product).count() == 1

    registered = custody(
        *("artifact", "register", "--product", "rsd", "--name", "ghcr.io/acme/rsd"),
        *("--digest", "sha256:" + DIGEST.removeprefix("sha256:").upper()),  # as some tools print it
        *("--build", build_id, "--kind", "container-image", "--uri", "ghcr.io/acme/rsd@" + DIGEST),
    )
    assert (registered.returncode, registered.stdout.strip()) == (0, DIGEST), registered.stderr
    artifact = Artifact.objects.get(digest=DIGEST)
    assert (artifact.build_id, artifact.name, artifact.kind) == (build.pk, "ghcr.io/acme/rsd", "container-image")

    report = junit_report_from_pytest(workspace)
    uploaded = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report), "--wait")
    assert uploaded.returncode == 0, uploaded.stderr
    evidence = Evidence.objects.get(artifact=artifact)
    assert uploaded.stdout.strip() == evidence.human_id
    assert (evidence.state, evidence.verdict, evidence.name) == ("parsed", "unsigned", "junit.xml")
    assert evidence.sha256 == hashlib.sha256(report.read_bytes()).hexdigest()  # the bytes exactly as pytest wrote
    assert (evidence.summary["total"], evidence.summary["failed"], evidence.summary["skipped"]) == (3, 1, 1)
    assert f"EV-{evidence.pk} parsed, unsigned: " in uploaded.stderr
    assert "failed=1" in uploaded.stderr
    linked = CaseResult.objects.get(evidence=evidence, requirement_ids__contains=["REQ-017"])
    assert linked.name.endswith("test_amber_threshold_is_0_42") and linked.status == "passed"


def test_the_same_pipeline_url_with_another_commit_is_refused_rather_than_filed_under_the_old_build(custody, build):
    result = custody(
        *("build", "register", "--product", "rsd", "--commit", "d" * 40, "--branch", "main"),
        *("--pipeline-url", PIPELINE_URL, "--ci-system", "github-actions"),
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"409: conflict: pipeline_url {PIPELINE_URL} is already build {build.human_id} of commit {'c' * 40}" in (
        result.stderr
    )


def test_a_digest_already_registered_under_another_build_exits_1_with_the_servers_sentence(
    custody, artifact, product, ci_account
):
    other_build, _ = services.build_register(
        product=product, actor=ci_account, commit="e" * 40, pipeline_url=PIPELINE_URL + "9"
    )
    result = custody(
        *("artifact", "register", "--product", "rsd", "--name", "scoring-service", "--digest", DIGEST),
        *("--build", other_build.human_id, "--kind", "container-image"),
    )
    assert result.returncode == 1
    assert "Custody answered HTTP 409: conflict: digest" in result.stderr
    assert f"is already registered under build {artifact.build.human_id}" in result.stderr


# Real tools' files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "evidence_type", "summary"),
    [
        ("junit/TEST-action.surefire.report.calc.StringUtilsTest.xml", "junit", "failed=2"),
        ("sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json", "cyclonedx", "format=cyclonedx"),
        ("vulns/trivy-schema2-alpine-310-image.json", "trivy", "vulnerabilities="),
    ],
)
def test_a_real_tools_report_is_uploaded_and_parsed(custody, artifact, sample, evidence_type, summary):
    path = sample_path(sample)
    result = custody("evidence", "upload", "--artifact", DIGEST, "--type", evidence_type, str(path), "--wait")
    assert result.returncode == 0, result.stderr
    evidence = Evidence.objects.get(artifact=artifact)
    assert (result.stdout.strip(), evidence.state, evidence.evidence_type) == (
        evidence.human_id,
        "parsed",
        evidence_type,
    )
    assert evidence.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary in result.stderr


def test_the_same_file_again_is_the_same_evidence(custody, artifact):
    path = str(sample_path("junit/go-junit-report.xml"))
    first = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", path)
    again = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", path, "--wait")
    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    assert first.stdout == again.stdout
    assert "uploaded before: the same evidence" in again.stderr
    assert Evidence.objects.filter(artifact=artifact).count() == 1


def test_json_prints_the_processed_evidence_document(custody, artifact, workspace):
    report = junit_report_from_pytest(workspace)
    result = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report), "--wait", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["state"], document["artifact"], document["summary"]["passed"]) == ("parsed", DIGEST, 1)


def test_the_name_and_an_awkward_file_name_arrive_intact(custody, artifact, workspace):
    report = workspace / 'résumé "final".xml'
    report.write_bytes(sample_path("junit/jest-junit.xml").read_bytes())
    default = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report))
    named = custody("evidence", "upload", "--artifact", DIGEST, "--type", "generic", str(report), "--name", "Jest ✓")
    assert (default.returncode, named.returncode) == (0, 0), default.stderr + named.stderr
    assert Evidence.objects.get(evidence_type="junit").name == 'résumé "final".xml'
    assert Evidence.objects.get(evidence_type="generic").name == "Jest ✓"


# Failures a person must act on ------------------------------------------------------------------------------


def test_a_broken_report_exits_1_with_the_parse_error_once_waited_for(custody, artifact, workspace):
    report = workspace / "junit.xml"
    report.write_bytes(BROKEN_JUNIT)
    result = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report), "--wait")
    assert result.returncode == 1
    evidence = Evidence.objects.get(artifact=artifact)
    assert evidence.state == "failed"
    assert result.stdout.strip() == evidence.human_id  # kept, as received, whatever parsing decided
    assert f"custody: {evidence.human_id} (junit.xml) could not be parsed: " in result.stderr
    assert "line 4" in result.stderr


def test_without_wait_the_upload_itself_is_the_success(custody, artifact, workspace):
    report = workspace / "junit.xml"
    report.write_bytes(BROKEN_JUNIT)
    result = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == Evidence.objects.get(artifact=artifact).human_id


def test_a_signature_by_a_registered_key_is_verified_and_a_forged_one_rejected(
    custody, artifact, product, admin_user, workspace
):
    key = ed25519.Ed25519PrivateKey.generate()
    services.signer_key_register(
        product=product, name="release signer", public_key_pem=_public_pem(key), actor=admin_user
    )
    report = sample_path("junit/pytest-with-properties.xml")
    (workspace / "junit.xml.sig").write_bytes(base64.b64encode(key.sign(report.read_bytes())))
    (workspace / "forged.sig").write_bytes(base64.b64encode(key.sign(b"some other bytes")))

    signed = custody(
        *("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report)),
        *("--signature", "junit.xml.sig", "--wait"),
    )
    assert signed.returncode == 0, signed.stderr
    assert "parsed, signed by release signer" in signed.stderr

    scan = str(sample_path("sarif/trivy-alpine-310.sarif"))
    forged = custody(
        *("evidence", "upload", "--artifact", DIGEST, "--type", "sarif", scan, "--signature", "forged.sig", "--wait")
    )
    assert forged.returncode == 1
    assert "was rejected (invalid_signature): " in forged.stderr
    assert Evidence.objects.get(evidence_type="sarif").state == "rejected"


def test_another_products_token_is_told_plainly_it_cannot_see_the_artifact(
    custody, artifact, other_product_token, workspace
):
    report = workspace / "junit.xml"
    report.write_bytes(sample_path("junit/go-junit-report.xml").read_bytes())
    result = custody(
        "evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report), token=other_product_token
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Custody answered HTTP 404 (no artifact with this digest that this token may see: " in result.stderr
    assert "not_found: Not found, or not visible to you with these credentials." in result.stderr
    assert not Evidence.objects.exists()

    registering = custody(
        *("build", "register", "--product", "rsd", "--commit", "f" * 40, "--branch", "main"),
        *("--pipeline-url", PIPELINE_URL + "0", "--ci-system", "github-actions"),
        token=other_product_token,
    )
    assert registering.returncode == 1
    assert "(no product 'rsd' that this token may see: check --product and the token's products)" in (
        registering.stderr
    )


def test_a_wrong_token_exits_1_saying_which_setting_to_check(custody, artifact, workspace):
    report = workspace / "junit.xml"
    report.write_bytes(BROKEN_JUNIT)
    result = custody("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report), token="cust_wrong")
    assert result.returncode == 1
    assert "Custody answered HTTP 401 (check CUSTODY_TOKEN / --token): " in result.stderr


def test_an_unknown_type_exits_1_with_the_supported_list(custody, artifact, workspace):
    report = workspace / "junit.xml"
    report.write_bytes(BROKEN_JUNIT)
    result = custody("evidence", "upload", "--artifact", DIGEST, "--type", "xunit", str(report))
    assert result.returncode == 1
    assert "unknown evidence type 'xunit'; supported types are: junit, cobertura" in result.stderr


def test_a_file_over_the_servers_limit_exits_1_with_the_413_sentence(custody, artifact, settings, workspace):
    settings.CUSTODY_MAX_UPLOAD_BYTES = 1000
    report = workspace / "sbom.json"
    report.write_bytes(sample_path("sbom/cyclonedx-1.4-php-composer-laravel.json").read_bytes())
    assert report.stat().st_size > 1000
    result = custody("evidence", "upload", "--artifact", DIGEST, "--type", "cyclonedx", str(report))
    assert result.returncode == 1, result.stderr
    assert "Custody answered HTTP 413: too_large: " in result.stderr
    assert not Evidence.objects.exists()


@pytest.mark.xdist_group("real-celery-worker")
@pytest.mark.worker  # publishes to the real broker and purges it: never beside another process's worker
def test_still_pending_when_the_timeout_runs_out_exits_2(custody, artifact, workspace):
    from config.celery import app

    report = workspace / "junit.xml"
    report.write_bytes(sample_path("junit/go-junit-report.xml").read_bytes())
    # The task goes to the broker and no worker takes it: the evidence stays pending, as when workers are down.
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        result = custody(
            *("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report)),
            *("--wait", "--timeout", "1"),
        )
    finally:
        app.conf.task_always_eager = eager
        app.control.purge()
    assert result.returncode == 2, result.stderr
    evidence = Evidence.objects.get(artifact=artifact)
    assert result.stdout.strip() == evidence.human_id
    assert f"{evidence.human_id} is still pending after 1 s" in result.stderr
    assert "asking again in 0.5 s" in result.stderr


# The documented CI jobs, run as written ---------------------------------------------------------------------

CI_INTEGRATION_DOC = Path(__file__).resolve().parents[2] / "docs" / "ci-integration.md"


def documented_pipeline(heading: str) -> dict:
    """The YAML example under `## {heading}` in docs/ci-integration.md."""
    text = CI_INTEGRATION_DOC.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))


@pytest.fixture
def ci_job(live_server, ci_token, workspace, product, admin_user):
    """A CI workspace holding every report the documented jobs upload, and `run(script, env)` to run their shell."""
    report = junit_report_from_pytest(workspace)
    key = ed25519.Ed25519PrivateKey.generate()
    signer = KeyPair(key, _public_pem(key), "ed25519")
    services.signer_key_register(product=product, name="provenance", public_key_pem=signer.public_pem, actor=admin_user)
    files = {
        "junit.xml": report.read_bytes(),
        "report.xml": report.read_bytes(),
        "coverage.xml": sample_path("coverage/cobertura-coveragepy-branch.xml").read_bytes(),
        "sbom.cdx.json": sample_path("sbom/cyclonedx-1.6-cyclonedx-py-pipenv.json").read_bytes(),
        "gl-sbom.cdx.json": sample_path("sbom/cyclonedx-1.4-php-composer-laravel.json").read_bytes(),
        "ruff.sarif": sample_path("sarif/semgrep-oss-1.69.0-gitlab-rules.sarif").read_bytes(),
        "grype.json": sample_path("vulns/grype-0.94-busybox-epss.json").read_bytes(),
        "trivy.json": sample_path("vulns/trivy-schema2-alpine-310-image.json").read_bytes(),
        "provenance.intoto.jsonl": dsse_envelope(signer, slsa_statement(DIGEST)) + b"\n",
    }
    for name, data in files.items():
        (workspace / name).write_bytes(data)
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "commit", "-q", "--allow-empty", "-m", "first")
    git(workspace, "commit", "-q", "--allow-empty", "-m", "CR-1: raise the amber threshold (REQ-017)")

    def run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        full_env = {key: value for key, value in os.environ.items() if not key.startswith("CUSTODY_")}
        full_env.update(env)
        full_env.update({"CUSTODY_URL": live_server.url, "CUSTODY_TOKEN": ci_token})
        # The installed `custody` script sits next to this Python, where `pip install` put it.
        full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
        return subprocess.run(
            ["bash", "-e", "-c", script], capture_output=True, text=True, env=full_env, cwd=workspace, timeout=300
        )

    return run


def test_the_documented_github_actions_job_runs_as_written(ci_job, workspace, product):
    pipeline = documented_pipeline("GitHub Actions")
    job = pipeline["jobs"]["build"]
    before, sha = git(workspace, "rev-list", "--reverse", "HEAD").split()
    expressions = {
        "${{ github.event.before }}": before,
        "${{ steps.image.outputs.digest }}": DIGEST,
        "${{ secrets.CUSTODY_TOKEN }}": "",  # the fixture sets the real token
    }
    github_env = workspace / "github.env"  # where a step exports variables to the steps after it
    github_env.write_text("")
    env = {
        **pipeline["env"],
        "GITHUB_SHA": sha,
        "GITHUB_REF_NAME": "main",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/rsd",
        "GITHUB_RUN_ID": "7001",
        "GITHUB_RUN_NUMBER": "12",
        "GITHUB_WORKFLOW_REF": "acme/rsd/.github/workflows/release.yml@refs/heads/main",
        "GITHUB_ENV": str(github_env),
    }
    steps = [step for step in job["steps"] if "run" in step and not step["run"].startswith("pip install")]
    assert [step["name"] for step in steps] == [
        "Register the build and its commits with Custody",
        "Register the image",
        "Upload evidence",
    ]
    for step in steps:
        script = step["run"]
        for expression, value in expressions.items():
            script = script.replace(expression, value)
        assert "${{" not in script, script
        step_env = {key: expressions.get(value, value) for key, value in step.get("env", {}).items()}
        exported = dict(line.split("=", 1) for line in github_env.read_text().splitlines())
        result = ci_job(script, {**env, **exported, **step_env})
        assert result.returncode == 0, f"{step['name']}: {result.stderr}"

    build = Build.objects.get(product=product)
    assert (build.commit, build.builder_identity) == (
        sha,
        "https://github.com/acme/rsd/.github/workflows/release.yml@refs/heads/main",
    )
    assert [c.sha for c in build.commits.all()] == [sha]
    assert Artifact.objects.get(digest=DIGEST).build == build
    evidence = Evidence.objects.filter(artifact__digest=DIGEST)
    assert sorted(evidence.values_list("evidence_type", "state")) == [
        ("cobertura", "parsed"),
        ("cyclonedx", "parsed"),
        ("dsse", "parsed"),
        ("grype", "parsed"),
        ("junit", "parsed"),
        ("sarif", "parsed"),
    ]
    assert evidence.get(evidence_type="dsse").verdict == "signed"


def test_the_documented_gitlab_ci_job_runs_as_written(ci_job, workspace, product):
    pipeline = documented_pipeline("GitLab CI")
    job = pipeline["register-and-upload"]
    sha = git(workspace, "rev-parse", "HEAD")
    env = {
        **{key: str(value) for key, value in pipeline["variables"].items()},
        **{"CI_COMMIT_SHA": sha, "CI_COMMIT_BEFORE_SHA": "0" * 40, "CI_COMMIT_REF_NAME": "main"},
        **{"CI_PIPELINE_URL": "https://gitlab.example.com/acme/rsd/-/pipelines/88", "CI_PIPELINE_IID": "88"},
        **{"CI_SERVER_URL": "https://gitlab.example.com", "CI_PROJECT_PATH": "acme/rsd"},
        **{"CI_CONFIG_PATH": ".gitlab-ci.yml", "CI_REGISTRY_IMAGE": "registry.example.com/acme/rsd"},
        "IMAGE_DIGEST": DIGEST,  # from build-image's dotenv report
    }
    result = ci_job("\n".join(job["script"]), env)  # GitLab runs a job's script lines in one shell
    assert result.returncode == 0, result.stderr

    build = Build.objects.get(product=product)
    assert (build.pipeline_url, build.ci_system, build.ci_build_number) == (env["CI_PIPELINE_URL"], "gitlab", "88")
    assert [c.message for c in build.commits.all()] == ["CR-1: raise the amber threshold (REQ-017)"]
    assert Artifact.objects.get(digest=DIGEST).name == "registry.example.com/acme/rsd"
    assert sorted(Evidence.objects.values_list("evidence_type", "state")) == [
        ("cobertura", "parsed"),
        ("cyclonedx", "parsed"),
        ("junit", "parsed"),
        ("trivy", "parsed"),
    ]


# A real worker --------------------------------------------------------------------------------------------


@pytest.fixture
def celery_worker_process(transactional_db, private_media):
    """A real Celery worker on the test's Redis and database, so `--wait` meets real asynchrony."""
    from config.celery import app

    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
    env = {**os.environ, "CUSTODY_TASKS_EAGER": "0", "DATABASE_URL": database_url}
    env["CUSTODY_MEDIA_ROOT"] = str(private_media)
    app.conf.task_always_eager = False
    app.control.purge()
    log = Path(private_media).parent / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "-Q", "custody"),
                *("--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            yield log
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
            app.conf.task_always_eager = True


# Real workers share the Redis broker and queue: one at a time (see tests/evidence/test_worker.py).
@pytest.mark.xdist_group("real-celery-worker")
@pytest.mark.worker
def test_wait_follows_a_real_worker_until_the_report_is_parsed(celery_worker_process, custody, artifact, workspace):
    report = junit_report_from_pytest(workspace)
    result = custody(
        *("evidence", "upload", "--artifact", DIGEST, "--type", "junit", str(report)),
        *("--wait", "--timeout", "20"),
    )
    assert result.returncode == 0, result.stderr + celery_worker_process.read_text()[-3000:]
    evidence = Evidence.objects.get(artifact=artifact)
    assert (result.stdout.strip(), evidence.state) == (evidence.human_id, "parsed")
    assert CaseResult.objects.filter(evidence=evidence).count() == 3


# Usage, configuration and network errors (no server needed) ------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evidence", "upload", "--artifact", DIGEST, "--type", "junit", "missing.xml"], "FILE missing.xml: cannot"),
        (["evidence", "upload", "--artifact", "ab" * 32, "--type", "junit", "x"], "--artifact must be sha256:<64"),
        (["evidence", "upload", "--artifact", DIGEST, "--type", "junit"], "required: FILE"),
        (["evidence", "upload", "--artifact", DIGEST, "--type", "junit", __file__, "--timeout", "-1"], "--timeout"),
        (["build", "register", "--product", "rsd"], "required: --commit, --branch, --pipeline-url, --ci-system"),
        (
            ["build", "register", "--product", "rsd/x", "--commit", "a" * 40, "--branch", "main"]
            + ["--pipeline-url", "https://ci/1", "--ci-system", "gitlab"],
            "--product must be a product key",
        ),
        (
            ["build", "register", "--product", "rsd", "--commit", "HEAD", "--branch", "main"]
            + ["--pipeline-url", "https://ci/1", "--ci-system", "gitlab"],
            "--commit must be a git commit SHA",
        ),
        (
            ["artifact", "register", "--product", "rsd", "--name", "n", "--digest", "sha256:abc"]
            + ["--build", "rsd-b1", "--kind", "container-image"],
            "--digest must be sha256:<64 hex characters>",
        ),
        (["artifact"], "required: ACTION"),
    ],
)
def test_usage_errors_exit_3(capsys, argv, message):
    assert main(argv) == 3
    assert message in capsys.readouterr().err


def test_without_a_token_exits_3_naming_both_ways_to_give_one(capsys):
    argv = ["evidence", "upload", "--artifact", DIGEST, "--type", "junit", __file__, "--url", "http://127.0.0.1:9"]
    assert main(argv) == 3
    assert "no --token given: pass --token or set CUSTODY_TOKEN" in capsys.readouterr().err


def test_commits_from_a_range_git_cannot_read_exit_3(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # not a git repository
    argv = ["build", "register", "--product", "rsd", "--commit", "a" * 40, "--branch", "main"]
    argv += ["--pipeline-url", "https://ci/1", "--ci-system", "gitlab", "--commits-from-git", "a..b"]
    argv += ["--url", "http://127.0.0.1:9", "--token", "t"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "--commits-from-git a..b: git log failed: " in err
    assert "fetch-depth: 0" in err


@pytest.fixture
def repository(tmp_path) -> Path:
    folder = tmp_path / "repository"
    folder.mkdir()
    git(folder, "init", "-q", "-b", "main")
    git(folder, "commit", "-q", "--allow-empty", "-m", "first")
    git(folder, "commit", "-q", "--allow-empty", "-m", "CR-2: second\n\nVerifies REQ-017.")
    git(folder, "commit", "-q", "--allow-empty", "-m", "third")
    return folder


def test_commits_from_git_lists_the_range_newest_first_with_authors_and_whole_messages(repository):
    first, second, third = git(repository, "log", "--reverse", "--format=%H").split()
    commits = commits_from_git(f"{first}..{third}", cwd=str(repository))
    assert commits == [
        {"sha": third, "author_email": "alice@example.test", "author_name": "Alice Author", "message": "third"},
        {
            "sha": second,
            "author_email": "alice@example.test",
            "author_name": "Alice Author",
            "message": "CR-2: second\n\nVerifies REQ-017.",
        },
    ]


@pytest.mark.parametrize("before", ["0" * 40, "0" * 64, ""])
def test_commits_from_git_without_a_before_commit_lists_the_built_commit_only(repository, before):
    head = git(repository, "rev-parse", "HEAD")
    assert [c["sha"] for c in commits_from_git(f"{before}..{head}", cwd=str(repository))] == [head]


def test_commits_from_git_after_a_force_push_lists_the_built_commit_and_warns(repository, capsys):
    head = git(repository, "rev-parse", "HEAD")
    assert [c["sha"] for c in commits_from_git(f"{'ab' * 20}..{head}", cwd=str(repository))] == [head]
    assert f"{'ab' * 20} is not in this clone" in capsys.readouterr().err


def test_commits_from_git_of_one_revision_is_that_commit_not_its_history(repository):
    assert [c["message"] for c in commits_from_git("HEAD~1", cwd=str(repository))] == [
        "CR-2: second\n\nVerifies REQ-017."
    ]


def test_commits_from_git_refuses_what_git_would_read_as_an_option(repository):
    with pytest.raises(UsageError, match="takes a revision range"):
        commits_from_git("--output=/dev/null", cwd=str(repository))


def test_connection_refused_exits_4(capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = ["evidence", "upload", "--artifact", DIGEST, "--type", "junit", __file__]
    assert main([*argv, "--url", f"http://127.0.0.1:{port}", "--token", "t"]) == 4
    err = capsys.readouterr().err
    assert f"cannot reach Custody at http://127.0.0.1:{port}/api/v1/artifacts/{DIGEST}/evidence" in err
    assert "upload limit" not in err  # nothing was refused: nobody answered


def test_a_connection_cut_mid_upload_exits_4_naming_the_file_and_the_upload_limit(capsys, tmp_path):
    """A proxy or server that refuses a large body may close the connection before reading it, without a 413."""
    listener = socket.create_server(("127.0.0.1", 0))

    def cut_the_first_connection():
        client, _ = listener.accept()
        client.recv(1024)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not a close
        client.close()

    thread = threading.Thread(target=cut_the_first_connection, daemon=True)
    thread.start()
    report = tmp_path / "sbom.json"
    report.write_bytes(b"{}" * 8_000_000)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        argv = ["evidence", "upload", "--artifact", DIGEST, "--type", "cyclonedx", str(report)]
        code = main([*argv, "--url", url, "--token", "t"])
    finally:
        thread.join(timeout=10)
        listener.close()
    assert code == 4
    err = capsys.readouterr().err
    assert f"while sending {report} (16.0 MB); if it is larger than the server's upload limit" in err
