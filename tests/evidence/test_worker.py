"""A real Celery worker on Redis takes an upload from pending to parsed (issue 3, item 3)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from evidence.models import Evidence, TestResult
from tests.evidence.conftest import DIGEST

JUNIT = b'<testsuite name="w"><testcase classname="worker" name="test_REQ-001 runs"/><testcase classname="worker" name="b"/></testsuite>'  # noqa: E501


def _worker_env(private_media) -> dict[str, str]:
    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
    return {
        **os.environ,
        "CUSTODY_TASKS_EAGER": "0",
        "DATABASE_URL": database_url,
        "CUSTODY_MEDIA_ROOT": str(private_media),
    }


@pytest.fixture
def celery_workers(transactional_db, private_media, settings):
    """Start real workers (solo pool) on the shared Redis broker: `start()` returns (process, log path)."""
    from config.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    started: list[subprocess.Popen] = []
    outputs = []

    def start() -> tuple[subprocess.Popen, Path]:
        log = Path(private_media).parent / f"worker-{len(started)}.log"
        output = open(log, "wb")  # noqa: SIM115  # closed when the test ends
        outputs.append(output)
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
            env=_worker_env(private_media),
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        started.append(worker)
        return worker, log

    try:
        yield start
    finally:
        for worker in started:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        for output in outputs:
            output.close()
        app.conf.task_always_eager = True


@pytest.fixture
def celery_worker_process(celery_workers):
    return celery_workers()


def _wait_for(evidence_id: int, states: tuple[str, ...], worker, *, seconds: float = 60, every: float = 0.3) -> str:
    deadline = time.monotonic() + seconds
    state = "pending"
    while time.monotonic() < deadline and worker.poll() is None:
        state = Evidence.objects.get(pk=evidence_id).state
        if state in states:
            break
        time.sleep(every)
    return state


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
    state = _wait_for(evidence_id, ("parsed", "failed", "rejected"), worker)
    assert state == "parsed", log.read_text()[-3000:]
    assert TestResult.objects.filter(evidence_id=evidence_id).count() == 2
    status = api(token=ci_token).get(f"/api/v1/evidence/EV-{evidence_id}").json()
    assert status["progress"] == 100 and status["summary"]["total"] == 2


def _big_junit(cases: int) -> bytes:
    rows = "".join(f'<testcase classname="big" name="test_{n}" time="0.001"/>' for n in range(cases))
    return f'<testsuite name="big">{rows}</testsuite>'.encode()


@pytest.mark.xdist_group("real-celery-worker")
@pytest.mark.worker
def test_a_worker_killed_mid_task_leaves_processing_that_the_sweep_runs_again(celery_workers, api, ci_token, artifact):
    from evidence.processing import evidence_sweep

    first, log = celery_workers()
    response = api(token=ci_token).post(
        f"/api/v1/artifacts/{DIGEST}/evidence",
        {"type": "junit", "file": SimpleUploadedFile("big.xml", _big_junit(60_000))},
        format="multipart",
    )
    assert response.status_code == 202
    evidence_id = int(response.json()["id"].removeprefix("EV-"))
    assert _wait_for(evidence_id, ("processing",), first, every=0.02) == "processing", log.read_text()[-3000:]
    os.kill(first.pid, signal.SIGKILL)  # the worker dies mid-task; its message stays unacknowledged
    first.wait(timeout=10)
    assert Evidence.objects.get(pk=evidence_id).state == "processing"
    assert TestResult.objects.filter(evidence_id=evidence_id).count() == 0  # nothing half-written

    second, log = celery_workers()
    assert evidence_sweep(now=timezone.now() + timedelta(hours=1))["rerun"] == 1
    assert _wait_for(evidence_id, ("parsed", "failed"), second, seconds=120) == "parsed", log.read_text()[-3000:]
    evidence = Evidence.objects.get(pk=evidence_id)
    assert evidence.attempts == 2
    assert TestResult.objects.filter(evidence_id=evidence_id).count() == 60_000


@pytest.mark.xdist_group("real-celery-worker")
def _connect_anew(app) -> None:
    """Drop the app's broker connections and the producers bound to them (as Celery does after a fork), so the next
    publish connects to the broker the configuration names now; an earlier test's producer would keep the old one."""
    app._pool = None  # pylint: disable=protected-access
    app.amqp._producer_pool = None  # pylint: disable=protected-access


@pytest.mark.worker
def test_an_upload_while_the_broker_is_down_is_processed_by_a_worker_once_it_returns(
    celery_workers, api, ci_token, artifact, settings
):
    from config.celery import app
    from evidence.processing import evidence_sweep

    worker, log = celery_workers()
    # "The broker is down": the app publishes to a Redis port where nothing listens (the shared server stays up).
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    _connect_anew(app)
    try:
        response = api(token=ci_token).post(
            f"/api/v1/artifacts/{DIGEST}/evidence",
            {"type": "junit", "file": SimpleUploadedFile("junit.xml", JUNIT)},
            format="multipart",
        )
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL
        _connect_anew(app)
    assert response.status_code == 202, response.content
    evidence_id = int(response.json()["id"].removeprefix("EV-"))
    time.sleep(2)
    assert Evidence.objects.get(pk=evidence_id).state == "pending"  # no task reached the worker

    assert evidence_sweep(now=timezone.now() + timedelta(minutes=5))["requeued"] == 1  # the broker is back
    assert _wait_for(evidence_id, ("parsed", "failed"), worker) == "parsed", log.read_text()[-3000:]
