"""Accepted test failures are records of their own: a reviewer accepts one failing test for one release with a Part 11
signature ("failure accepted"), a justification and, where the policy asks, a problem report; the tests gate counts
the failure as accepted (not passed), the policy says which tiers may accept failures at all, and the packet lists
each acceptance with its signature.
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from approvals import gates, services
from approvals import status as approval_status
from approvals.models import AcceptedFailure, Promotion
from changecontrol.models import AuditEvent, Signature
from changecontrol.policy import PolicyInvalid, parse_policy
from reports.packets import packet_context
from tests.builders import POLICY_WITHOUT_TRACE_BLOCK, activate_policy, add_tests
from tests.conftest import PASSWORD

ACCEPTING = POLICY_WITHOUT_TRACE_BLOCK + "\ntests:\n  accept_failures: {tiers: [low, medium]}\n"
ACCEPTING_WITH_REPORTS = (
    POLICY_WITHOUT_TRACE_BLOCK + "\ntests:\n  accept_failures: {tiers: [low], problem_report: required}\n"
)
ACCEPTING_HIGH_ONLY = POLICY_WITHOUT_TRACE_BLOCK + "\ntests:\n  accept_failures: {tiers: [high]}\n"
FAILING_TEST = "test_failed_0"  # the failing case tests.builders.add_tests writes


@pytest.fixture
def blocked(product, release, artifact, cast):
    """The release with a failing test, its integration promotion held by the tests gate."""
    activate_policy(product, ACCEPTING, reason="known failures may be accepted at low and medium tiers")
    add_tests(artifact, passed=5, failed=1)
    promotion = services.promotion_request(release=release, environment_key="integration", actor=cast["rory"])
    promotion.refresh_from_db()
    assert promotion.state == Promotion.State.AWAITING_APPROVAL
    return promotion


def _failures(api, user, release):
    response = api(user).get(f"/api/v1/releases/rsd/{release.version}/test-failures")
    assert response.status_code == 200, response.json()
    return response.json()


def _accept(
    api, user, release, *, seen=None, justification="Known flaky fixture; tracked and scoring unaffected.", **more
):
    body = _failures(api, user, release)
    (test,) = [t for t in body["tests"] if t["name"] == FAILING_TEST]
    payload = {
        "classname": test["classname"],
        "name": test["name"],
        "justification": justification,
        "username": user.username,
        "password": PASSWORD,
        "content_sha256": seen or test["content_sha256"],
        **more,
    }
    return api(user).post(f"/api/v1/releases/rsd/{release.version}/accepted-failures", payload, format="json")


def test_a_reviewer_accepts_a_failing_test_and_the_tests_gate_counts_it_as_accepted(api, blocked, release, cast):
    body = _failures(api, cast["quinn"], release)
    assert body["accepting"] == {
        "allowed": True,
        "tier": "low",
        "tiers": ["low", "medium"],
        "roles": ["quality"],
        "problem_report": "optional",
    }
    (test,) = body["tests"]
    assert test["test"] == FAILING_TEST and test["accepted"] is None and test["failures"][0]["status"] == "failed"

    response = _accept(api, cast["quinn"], release, problem_report="PR-7 (tracker)")
    assert response.status_code == 201, response.json()
    accepted = response.json()
    assert accepted["id"].startswith("AF-") and accepted["test"] == FAILING_TEST
    assert accepted["problem_report"] == "PR-7 (tracker)"
    # 1. A Part 11 signature meaning "failure accepted", over what the reviewer was shown, with the justification.
    signature = accepted["signature"]
    assert signature["meaning"] == "failure_accepted" and signature["printed_name"] == "Quinn Quality"
    assert signature["content_sha256"] == test["content_sha256"]
    assert signature["comment"].startswith("Known flaky fixture")
    # 2. Audited with the record's seal.
    event = AuditEvent.objects.get(action="accepted_failure.recorded", object_human_id=accepted["id"])
    assert event.seals and event.after["signature"] == f"SIG-{Signature.objects.latest('pk').pk}"
    signed = AuditEvent.objects.get(action="signature.failure_accepted", object_human_id=accepted["id"])
    assert signed.product_key == "rsd"  # where the product's auditors look
    # 3. The promotion held by the gate is judged again at once: accepted, not passed.
    blocked.refresh_from_db()
    assert blocked.state == Promotion.State.APPROVED
    gate = next(g for g in approval_status.promotion_status(blocked)["gates"] if g["kind"] == "tests")
    assert gate["status"] == "pass"
    assert "15 of 16 test(s) passed, 0 failed" in gate["detail"]
    assert (
        f"1 failing result(s) accepted by signed record, not passed ({accepted['id']} {FAILING_TEST})" in gate["detail"]
    )
    # 4. The failing tests list shows it accepted.
    assert _failures(api, cast["quinn"], release)["tests"][0]["accepted"]["id"] == accepted["id"]


def test_the_policy_says_which_tiers_may_accept_failures_and_nothing_is_written_otherwise(
    api, blocked, product, release, cast
):
    activate_policy(product, ACCEPTING_HIGH_ONLY, reason="only high-tier releases may carry accepted failures")
    signatures = Signature.objects.count()
    response = _accept(api, cast["quinn"], release)
    assert response.status_code == 409, response.json()
    assert "lets no failing test be accepted for a low-tier release" in response.json()["detail"]
    assert "tests.accept_failures.tiers: high" in response.json()["detail"]
    assert AcceptedFailure.objects.count() == 0 and Signature.objects.count() == signatures


def test_a_policy_without_the_option_accepts_no_failure(api, product, release, artifact, cast, policy):
    add_tests(artifact, passed=5, failed=1)
    services.promotion_request(release=release, environment_key="integration", actor=cast["rory"])
    body = _failures(api, cast["quinn"], release)
    assert body["accepting"]["allowed"] is False and body["accepting"]["tiers"] == []
    assert _accept(api, cast["quinn"], release).status_code == 409


def test_a_problem_report_is_required_where_the_policy_asks_for_one(api, blocked, product, release, cast):
    activate_policy(product, ACCEPTING_WITH_REPORTS, reason="every accepted failure names its problem report")
    response = _accept(api, cast["quinn"], release)
    assert response.status_code == 400, response.json()
    assert "problem_report" in response.json()["errors"]
    assert _accept(api, cast["quinn"], release, problem_report="PR-12").status_code == 201


def test_a_justification_is_required(api, blocked, release, cast):
    response = _accept(api, cast["quinn"], release, justification="   ")
    assert response.status_code == 400, response.json()
    assert AcceptedFailure.objects.count() == 0


def test_only_the_roles_the_policy_names_may_accept(api, blocked, release, cast):
    response = _accept(api, cast["alice"], release)
    assert response.status_code == 403, response.json()
    assert "needs a quality reviewer" in response.json()["detail"]
    assert AcceptedFailure.objects.count() == 0


def test_an_outsider_sees_no_failing_tests_and_accepts_nothing(api, blocked, release, cast):
    outsider = api(cast["olga"])
    assert outsider.get(f"/api/v1/releases/rsd/{release.version}/test-failures").status_code == 404
    posted = outsider.post(
        f"/products/rsd/releases/{release.version}/accept-failure",
        {"meaning": "failure_accepted", "name": FAILING_TEST, "comment": "x", "username": "olga", "password": PASSWORD},
    )
    assert posted.status_code == 404 and AcceptedFailure.objects.count() == 0


def test_a_new_failure_of_the_test_after_reading_refuses_the_signature(api, blocked, release, artifact, cast):
    seen = _failures(api, cast["quinn"], release)["tests"][0]["content_sha256"]
    add_tests(artifact, passed=5, failed=1)  # the same test fails again in a new report
    response = _accept(api, cast["quinn"], release, seen=seen)
    assert response.status_code == 409 and response.json()["error"] == "content_changed"
    assert AcceptedFailure.objects.count() == 0


def test_the_same_test_is_accepted_once(api, blocked, release, cast):
    assert _accept(api, cast["quinn"], release).status_code == 201
    again = _accept(api, cast["quinn"], release)
    assert again.status_code == 409 and "already accepted" in again.json()["detail"]


def test_an_acceptance_no_longer_allowed_by_the_policy_counts_as_failed(api, blocked, product, release, cast):
    assert _accept(api, cast["quinn"], release).status_code == 201
    activate_policy(product, POLICY_WITHOUT_TRACE_BLOCK, reason="no more accepted failures")
    promotion = Promotion.objects.get(pk=blocked.pk)
    gate = next(g for g in approval_status.promotion_status(promotion)["gates"] if g["kind"] == "tests")
    assert gate["status"] == gates.FAIL
    assert "1 accepted failing result(s) count as failed" in gate["detail"]


def test_the_database_refuses_to_change_an_accepted_failure(api, blocked, release, cast):
    assert _accept(api, cast["quinn"], release).status_code == 201
    with pytest.raises(DatabaseError, match="sealed"), transaction.atomic():
        AcceptedFailure.objects.update(justification="rewritten later")


def test_the_packet_lists_each_accepted_failure_with_its_signature(api, blocked, release, cast):
    accepted = _accept(api, cast["quinn"], release, problem_report="PR-7").json()
    (record,) = packet_context(release)["tests"]["accepted_records"]
    assert record["id"] == accepted["id"] and record["test"] == FAILING_TEST and record["problem_report"] == "PR-7"
    assert record["signature"]["printed_name"] == "Quinn Quality"
    assert record["signature"]["meaning"] == "Failure accepted"
    assert record["signature"]["content_sha256"] == accepted["signature"]["content_sha256"]


def test_the_release_page_offers_the_signing_dialog_and_records_the_acceptance(api, blocked, release, cast):
    client = api(cast["quinn"])
    page = client.get(f"/products/rsd/releases/{release.version}").content.decode()
    assert "Accept failure…" in page and 'name="problem_report"' in page
    seen = _failures(api, cast["quinn"], release)["tests"][0]["content_sha256"]
    assert seen in page
    response = client.post(
        f"/products/rsd/releases/{release.version}/accept-failure",
        {
            "meaning": "failure_accepted",
            "classname": "",
            "name": FAILING_TEST,
            "problem_report": "PR-9",
            "comment": "Accepted for this release: the fixture is wrong, not the code.",
            "username": "quinn",
            "password": PASSWORD,
            "content_sha256": seen,
        },
        follow=True,
    )
    assert response.status_code == 200
    acceptance = AcceptedFailure.objects.get()
    assert acceptance.problem_report == "PR-9" and acceptance.justification.startswith("Accepted for this release")
    page = response.content.decode()
    assert f"{acceptance.human_id} accepted" in page and "Quinn Quality — Failure accepted as Quality reviewer" in page


def test_the_release_page_offers_no_dialog_to_someone_the_policy_does_not_name(api, blocked, release, cast):
    page = api(cast["alice"]).get(f"/products/rsd/releases/{release.version}").content.decode()
    assert FAILING_TEST in page and "Accept failure…" not in page


def test_the_policy_validator_names_an_unknown_tier_and_a_wrong_problem_report_rule():
    source = POLICY_WITHOUT_TRACE_BLOCK + "\ntests:\n  accept_failures: {tiers: [tiny], problem_report: sometimes}\n"
    with pytest.raises(PolicyInvalid) as refused:
        parse_policy(source)
    messages = [str(error) for error in refused.value.errors]
    assert any("tests.accept_failures.tiers[0]" in m and "not a known tier" in m for m in messages), messages
    document = parse_policy(ACCEPTING_WITH_REPORTS)
    assert document.tests.accept_failure_tiers == ("low",) and document.tests.problem_report_required
    assert parse_policy(POLICY_WITHOUT_TRACE_BLOCK).tests.accept_failure_tiers == ()
