"""Approvals expire on a controlled clock; racing signers and racing requests; replaying a recorded decision."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from approvals import services
from approvals import status as approval_status
from approvals.models import Decision, Promotion
from changecontrol.models import Signature
from common.errors import Conflict, InvalidState
from tests.builders import POLICY_WITHOUT_TRACE_BLOCK, activate_policy, pass_through, sign


def status(api, token, artifact):
    return api(token=token).get("/api/v1/status", {"artifact": artifact.digest, "environment": "production"}).json()


@pytest.mark.django_db
def test_approval_expires_after_the_policys_hours(api, ci_token, production_promotion, artifact, cast):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        signature = sign(production_promotion, cast["quinn"])
        assert signature.expires_at == start + timedelta(hours=72)
        assert status(api, ci_token, artifact)["decision"] == "allowed"
    with time_machine.travel(start + timedelta(hours=71, minutes=59), tick=False):
        assert status(api, ci_token, artifact)["decision"] == "allowed"
    with time_machine.travel(start + timedelta(hours=72, seconds=1), tick=False):
        body = status(api, ci_token, artifact)  # the cached "allowed" must not outlive the signature
        assert body["decision"] == "pending"
        assert any("expired" in reason and "Quinn Quality" in reason for reason in body["reasons"])
        assert services.promotions_expire() == [production_promotion.human_id]
        production_promotion.refresh_from_db()
        assert production_promotion.state == Promotion.State.EXPIRED
        assert status(api, ci_token, artifact)["decision"] == "blocked"
        # A new promotion can be requested and signed again.
        again = services.promotion_request(
            release=production_promotion.release, environment_key="production", actor=cast["rory"]
        )
        sign(again, cast["quinn"])
        assert status(api, ci_token, artifact)["decision"] == "allowed"


@pytest.mark.django_db
def test_a_lapsed_signature_can_be_signed_again_while_awaiting(production_promotion, cast, product):
    production_promotion.refresh_from_db()
    start = timezone.now()
    # A high-tier promotion needs two signers; the first one's approval lapses before the second signs.
    with time_machine.travel(start, tick=False):
        Promotion.objects.filter(pk=production_promotion.pk).update(tier="high")
        production_promotion.refresh_from_db()
        sign(production_promotion, cast["quinn"])
    with time_machine.travel(start + timedelta(hours=80), tick=False):
        answer = approval_status.promotion_status(production_promotion)
        assert answer["approvals"]["missing"] == ["quality", "security"]
        sign(production_promotion, cast["quinn"])
        assert (
            Signature.objects.filter(
                subject_id=production_promotion.pk, subject_type="approvals.promotion", invalidated_at__isnull=True
            ).count()
            == 1
        )
        sign(production_promotion, cast["sasha"])
        production_promotion.refresh_from_db()
        assert production_promotion.state == "approved"


def _race(functions):
    results, barrier = [None] * len(functions), threading.Barrier(len(functions))

    def run(index, function):
        try:
            barrier.wait()
            results[index] = function()
        except Exception as error:  # noqa: BLE001 - the test inspects what each racer got
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_promotions_of_the_same_release_racing_open_only_one(release, cast):
    pass_through(release, actor=cast["rory"])
    results = _race(
        [lambda: services.promotion_request(release=release, environment_key="production", actor=cast["rory"])] * 2
    )
    created = [r for r in results if isinstance(r, Promotion)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(refused) == 1, results
    assert Promotion.objects.filter(release=release, environment__key="production").count() == 1
    release.refresh_from_db()
    assert release.is_frozen() and release.manifest_sha256


@pytest.mark.django_db(transaction=True)
def test_two_signatures_racing_both_count_and_approve_once(production_promotion, cast, product):
    Promotion.objects.filter(pk=production_promotion.pk).update(tier="high")
    results = _race(
        [lambda: sign(production_promotion, cast["quinn"]), lambda: sign(production_promotion, cast["sasha"])]
    )
    assert all(isinstance(r, Signature) for r in results), results
    production_promotion.refresh_from_db()
    assert production_promotion.state == "approved"
    from changecontrol.models import AuditEvent

    assert (
        AuditEvent.objects.filter(action="promotion.approved", object_human_id=production_promotion.human_id).count()
        == 1
    )


@pytest.mark.django_db(transaction=True)
def test_the_same_signer_racing_twice_counts_once(production_promotion, cast):
    results = _race([lambda: sign(production_promotion, cast["quinn"])] * 2)
    assert sum(isinstance(r, Signature) for r in results) == 1
    assert sum(isinstance(r, InvalidState) for r in results) == 1, results


@pytest.mark.django_db
def test_a_decision_replayed_with_its_recorded_policy_version_gives_the_same_answer(
    api, ci_token, production_promotion, artifact, cast, product
):
    sign(production_promotion, cast["quinn"])
    assert status(api, ci_token, artifact)["decision"] == "allowed"
    recorded = Decision.objects.filter(artifact=artifact).latest("id")
    # The policy changes: production now needs a security signature too, even for low-tier releases.
    stricter = POLICY_WITHOUT_TRACE_BLOCK.replace("        low: [quality]\n", "        low: [quality, security]\n")
    assert stricter != POLICY_WITHOUT_TRACE_BLOCK
    activate_policy(product, stricter, reason="security signs every production release")
    now = status(api, ci_token, artifact)
    assert now["decision"] == "pending"  # the policy changed, so the cached answer was not reused
    assert now["policy"]["version"] == recorded.policy_version.version + 1
    replay = approval_status.decision_replay(recorded)
    assert replay["matches"] is True
    assert replay["decision"] == recorded.decision == "allowed"
    assert replay["gates"] == recorded.gates
