"""A real Celery worker on Redis delivers a signed webhook to a local receiver, retrying while it is down."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import tempfile
import time

import pytest
from django.db import connection, transaction

from alerts import services
from alerts.models import Delivery, DeliveryAttempt
from config.celery import app

WAIT_SECONDS = 60


def worker_env() -> dict[str, str]:
    db = connection.settings_dict
    # The worker must read the test database (test_<name>), not the one named in DATABASE_URL.
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    database_url = f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "CUSTODY_TASKS_EAGER": "0",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "CUSTODY_ALERT_BACKOFF_SECONDS": "1,1,1",
    }


@pytest.fixture
def celery_worker_process(transactional_db):
    log = tempfile.NamedTemporaryFile(prefix="custody-alerts-worker-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
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
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        env=worker_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=os.getcwd(),
    )
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # this process publishes to Redis; the worker consumes
    try:
        yield process, log.name
    finally:
        app.conf.task_always_eager = eager
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        os.unlink(log.name)


# Real workers share the Redis broker and queue: run them on one xdist worker, one after the other, so one
# test's worker never takes the other's task (and looks for it in the wrong test database).
@pytest.mark.xdist_group("real-celery-worker")
@pytest.mark.worker
def test_a_real_worker_retries_a_webhook_until_the_receiver_answers(
    celery_worker_process, product, admin_user, receiver_factory
):
    process, log_path = celery_worker_process
    receiver = receiver_factory(503, 200)
    subscription, secret = services.alert_subscription_create(
        actor=admin_user, product=product, event_kind="unauthorised_deployment", channel="webhook", target=receiver.url
    )
    with transaction.atomic():
        alert = services.alert_raise(
            product=product,
            event_kind="unauthorised_deployment",
            subject="DEP-9 reached production without an allowed status",
            body={"deployment": "DEP-9"},
        )
    delivery = Delivery.objects.get(alert=alert)

    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.state == "delivered" or process.poll() is not None:
            break
        time.sleep(0.25)

    with open(log_path) as log:
        worker_log = log.read()
    assert process.poll() is None, f"the worker exited:\n{worker_log[-3000:]}"
    assert delivery.state == "delivered", f"delivery is {delivery.state}; worker log:\n{worker_log[-3000:]}"
    assert delivery.attempts == 2
    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("status_code", "succeeded")) == [
        (503, False),
        (200, True),
    ]
    assert len(receiver.requests) == 2
    last = receiver.requests[-1]
    assert (
        last["headers"]["X-Custody-Signature"]
        == "sha256=" + hmac.new(secret.encode(), last["body"], hashlib.sha256).hexdigest()
    )
