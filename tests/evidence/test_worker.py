"""A real Celery worker on Redis takes an upload from pending to parsed (issue 3, item 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from evidence.models import Evidence, TestResult
from tests.evidence.conftest import DIGEST

JUNIT = b'<testsuite name="w"><testcase classname="worker" name="test_REQ-001 runs"/><testcase classname="worker" name="b"/></testsuite>'  # noqa: E501


@pytest.fixture
def celery_worker_process(transactional_db, private_media, settings):
    from config.celery import app

    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
    env = {
        **os.environ,
        "CUSTODY_TASKS_EAGER": "0",
        "DATABASE_URL": database_url,
        "CUSTODY_MEDIA_ROOT": str(private_media),
    }
    app.conf.task_always_eager = False
    app.control.purge()
    log = Path(private_media).parent / "worker.log"
    with open(log, "wb") as output:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "-Q",
                "custody",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        try:
            yield worker, log
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
            app.conf.task_always_eager = True


# Real workers share the Redis broker and queue: run them on one xdist worker, one after the other, so one
# test's worker never takes the other's task (and looks for it in the wrong test database).
@pytest.mark.xdist_group("real-celery-worker")
@pytest.mark.worker
def test_a_real_worker_processes_an_upload_to_parsed(celery_worker_process, api, ci_token, artifact):
    worker, log = celery_worker_process
    response = api(token=ci_token).post(
        f"/api/v1/artifacts/{DIGEST}/evidence",
        {"type": "junit", "file": SimpleUploadedFile("junit.xml", JUNIT)},
        format="multipart",
    )
    assert response.status_code == 202
    assert response.json()["state"] in ("pending", "processing", "parsed")  # accepted now; the worker processes it
    evidence_id = int(response.json()["id"].removeprefix("EV-"))
    deadline = time.monotonic() + 60
    state = "pending"
    while time.monotonic() < deadline and worker.poll() is None:
        state = Evidence.objects.get(pk=evidence_id).state
        if state in ("parsed", "failed", "rejected"):
            break
        time.sleep(0.3)
    assert state == "parsed", log.read_text()[-3000:]
    assert TestResult.objects.filter(evidence_id=evidence_id).count() == 2
    status = api(token=ci_token).get(f"/api/v1/evidence/EV-{evidence_id}").json()
    assert status["progress"] == 100 and status["summary"]["total"] == 2
