"""Packets and release notes print what was decided (DESIGN §6): the decisions recorded at the time, with their
policy version and digest, never a re-evaluation; the packet sets today's evaluation apart, where it differs."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import pytest

from approvals import services
from approvals import status as approval_status
from approvals.models import Decision
from reports.packets import packet_context, release_state_sha256, render_packet_html, render_packet_pdf
from reports.release_notes import release_notes_context, render_release_notes_markdown
from tests.approvals.conftest import _fresh_cache  # noqa: F401 - autouse: status answers are cached by inputs
from tests.builders import activate_policy, pass_through, sign
from tests.reports.conftest import STRICTER_POLICY, low_risk_release
from tests.runtime.helpers import approved_for_production

# The running footer and header of every PDF page, which text extraction puts wherever a page breaks.
PAGE_FURNITURE = re.compile(
    r"Custody release evidence packet — generated copy; the signed evidence bundle is the record "
    r"rsd 7\.2\.4 — page \d+ of \d+ "
)


def flat(text: str) -> str:
    return PAGE_FURNITURE.sub("", " ".join(text.split()) + " ")


def packet_text(release, **kwargs) -> str:
    """The packet's HTML as the words a reader sees."""
    return flat(html.unescape(re.sub(r"<[^>]+>", " ", render_packet_html(release, **kwargs))))


def section(text: str, start: str, end: str) -> str:
    """The text between a section's heading and the next one's (after the table of contents)."""
    return text.split(start)[-1].split(end)[0]


def production_record(context_or_records):
    records = context_or_records["decisions"] if isinstance(context_or_records, dict) else context_or_records
    return next(r for r in records if r["environment"] == "production")


# ---------------------------------------------------------------- the packet


def test_packet_prints_the_decision_the_deployment_acted_on_after_a_stricter_policy(
    shipped, decided_policy, stricter_policy
):
    release, promotion, deployment = shipped
    assert approval_status.promotion_status(promotion)["decision"] == "blocked"  # what today's policy says

    record = production_record(packet_context(release))
    recorded = record["recorded"]
    assert recorded["id"] == deployment.decision.human_id
    assert recorded["decision"] == "allowed"
    assert recorded["policy"] == {"name": "rsd", "version": decided_policy.version, "sha256": decided_policy.sha256}
    assert "coverage-floor" not in {g["id"] for g in recorded["gates"]}
    assert all(g["status"] == "pass" for g in recorded["gates"] if g["blocking"])
    assert [s["printed_name"] for s in recorded["approvals"]["signers"]] == ["Quinn Quality"]
    assert record["basis"].startswith(f"the decision {deployment.human_id} acted on when it deployed")


def test_packet_html_and_pdf_show_the_record_and_set_todays_difference_apart(
    shipped, decided_policy, stricter_policy, auditor, tmp_path
):
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler's pdftotext is not installed")
    release, promotion, deployment = shipped
    decision = deployment.decision
    words = packet_text(release, generated_by=auditor)
    pdf = tmp_path / "packet.pdf"
    pdf.write_bytes(render_packet_pdf(release, generated_by=auditor))
    pdf_text = flat(subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout)

    for text in (words, pdf_text):
        recorded = section(text, "Gate results: the recorded decisions", "Evaluated again today")
        production = recorded.split(f"{promotion.human_id} → Production")[1]
        assert production.split()[0].lower() == "allowed"
        assert re.search(rf"Recorded decision {decision.human_id} ?: allowed, evaluated", production)
        assert f"rsd v{decided_policy.version}" in production
        assert decided_policy.sha256 in re.sub(r"\s+", "", production)  # long digests wrap in the PDF
        assert "coverage-floor" not in recorded
        assert "acted on when it deployed" in production

        today = section(text, "Evaluated again today", "Approvals (electronic signatures)")
        assert f"Differs from the recorded decision: {promotion.human_id} → Production" in today
        assert "Outcome allowed blocked" in today
        assert f"Decision {decision.human_id}, evaluated" in today
        assert f"Policy rsd v{decided_policy.version} rsd v{stricter_policy.version} (a later version)" in today
        assert "coverage-floor (coverage) not in the policy then missing, blocking" in today
        assert "The recorded decision above is the record" in today
        # The deployments table names the decision the deployment acted on.
        deployments = section(text, "Deployments, rollbacks and break-glass", "Audit-trail excerpt")
        assert deployment.human_id in deployments and decision.human_id in deployments


def test_when_nothing_differs_the_packet_says_so_in_one_line(shipped, auditor):
    release, _, _ = shipped
    context = packet_context(release)
    assert context["evaluated_today"]["differences"] == []
    assert context["evaluated_today"]["same"] == 3  # integration, staging, production
    words = packet_text(release)
    today = section(words, "Evaluated again today", "Approvals (electronic signatures)").strip()
    assert re.fullmatch(
        r"Evaluated again .+ UTC under rsd v\d+: no difference from the recorded decisions above\.", today
    )


def test_the_record_is_printed_even_when_todays_policy_cannot_evaluate(shipped, monkeypatch):
    release, promotion, deployment = shipped

    def cannot_evaluate(*args, **kwargs):
        raise LookupError("policy v3 has no environment 'production'")

    monkeypatch.setattr(approval_status, "evaluate", cannot_evaluate)
    words = packet_text(release)
    recorded = section(words, "Gate results: the recorded decisions", "Evaluated again today")
    assert re.search(rf"Recorded decision {deployment.decision.human_id} ?: allowed", recorded)
    today = section(words, "Evaluated again today", "Approvals (electronic signatures)")
    assert f"Today's policy cannot evaluate {promotion.human_id}: policy v3 has no environment 'production'" in today
    assert "The recorded decision stands." in today


def test_a_promotion_reopened_by_a_later_policy_before_deployment_is_recorded_by_its_latest_decision(
    product, cast, ci_account, decided_policy, django_capture_on_commit_callbacks
):
    release, _ = low_risk_release(product, cast, ci_account)
    promotion = approved_for_production(release, cast)
    # The activation re-judges open promotions (on commit): the approved one no longer passes, so it is reopened
    # (its approval no longer stands) and a new, blocked decision is stored.
    with django_capture_on_commit_callbacks(execute=True):
        stricter = activate_policy(product, STRICTER_POLICY, reason="coverage now required before production")
    latest = Decision.objects.filter(promotion=promotion).latest("pk")
    assert latest.decision == "blocked" and latest.policy_version == stricter
    promotion.refresh_from_db()
    assert promotion.state == "reopened"

    record = production_record(packet_context(release))
    assert record["recorded"]["decision"] == "blocked"
    assert record["recorded"]["policy"]["version"] == stricter.version
    assert record["basis"].startswith("the latest recorded: it was approved, then reopened")
    # The history lists every recorded decision compactly: pending on request, allowed on approval, then blocked.
    assert [(e["decision"], e["policy"]["version"], e["counted"]) for e in record["history"]] == [
        ("pending", decided_policy.version, False),
        ("allowed", decided_policy.version, False),
        ("blocked", stricter.version, True),
    ]


def test_a_rejected_promotion_prints_the_decision_its_rejection_recorded(product, cast, ci_account, decided_policy):
    release, _ = low_risk_release(product, cast, ci_account)
    pass_through(release, actor=cast["rory"])
    promotion = services.promotion_request(release=release, environment_key="production", actor=cast["rory"])
    sign(promotion, cast["quinn"], meaning="rejected", comment="The scoring change lacks clinical sign-off.")

    record = production_record(packet_context(release))
    assert record["state"] == "Rejected"
    assert record["recorded"]["decision"] == "blocked"
    assert any("was rejected: The scoring change lacks clinical sign-off." in r for r in record["recorded"]["reasons"])
    assert record["basis"].startswith("recorded when it was rejected")


def test_a_kept_packet_is_rendered_again_once_another_policy_is_in_force(shipped, product):
    # Its "evaluated again today" section depends on the policy in force, which no event of the release records.
    release, _, _ = shipped
    before = release_state_sha256(release)
    activate_policy(product, STRICTER_POLICY, reason="coverage now required before production")
    assert release_state_sha256(release) != before


# ---------------------------------------------------------------- the release notes


def test_release_notes_print_the_recorded_outcome_without_evaluating_again(
    shipped, decided_policy, stricter_policy, monkeypatch
):
    release, promotion, deployment = shipped

    def no_fresh_evaluation(*args, **kwargs):
        raise AssertionError("release notes must print the recorded decisions, not evaluate again")

    monkeypatch.setattr(approval_status, "evaluate", no_fresh_evaluation)
    context = release_notes_context(release)
    production = production_record(context["validation"]["decisions"])
    assert production["decision"] == "allowed" and production["decision_id"] == deployment.decision.human_id
    assert production["policy"] == f"rsd v{decided_policy.version}"
    assert production["policy_sha256"] == decided_policy.sha256
    assert "coverage-floor" not in {g["id"] for g in context["validation"]["gates"]}
    markdown = render_release_notes_markdown(context)
    assert f"| {promotion.human_id} | production | Deployed | {deployment.decision.human_id} | allowed |" in markdown
    assert f"`{decided_policy.sha256}`" in markdown
