"""The change-control pages through Django's test client: roles, hidden records, filters, actions, messages."""

from __future__ import annotations

import pytest
from django.test import Client

from changecontrol import roles, services
from changecontrol.models import AuditEvent, ChangeRequest, Signature, User
from tests.conftest import (
    HIGH_RISK,
    LOW_RISK,
    MEDIUM_RISK,
    PASSWORD,
    change_request_sha256,
    dialog_sha256,
    open_change_request,
    sign_change_request,
)

# The content_sha256 the signing dialog carries: what the reviewer was shown.
shown = change_request_sha256


def browser_for(user: User | None = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def page_text(response) -> str:
    return response.content.decode()


def flashed(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def submitted(product, release_manager):
    return open_change_request(product=product, requester=release_manager, answers=MEDIUM_RISK)


@pytest.fixture
def draft(product, release_manager):
    return open_change_request(
        product=product, requester=release_manager, submit=False, title="Add audit export to the admin console"
    )


# ---------------------------------------------------------------- sign-in and sign-out


def test_sign_in_page_shows_the_part_11_notice(db):
    response = browser_for().get("/accounts/login/")
    assert response.status_code == 200
    assert "21 CFR Part 11" in page_text(response) and "electronic signature components" in page_text(response)


def test_pages_send_anonymous_people_to_sign_in(db):
    for path in ("/", "/products/", "/change-requests/", "/audit/", "/change-requests/CR-1"):
        response = browser_for().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


def test_sign_in_with_the_real_form_reaches_home(cast):
    client = Client()
    response = client.post("/accounts/login/", {"username": "quinn", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "Quinn Quality" in page_text(response)


def test_failed_sign_in_reads_the_same_for_unknown_wrong_password_and_locked(cast, settings):
    settings.CUSTODY_LOCKOUT_THRESHOLD = 2
    settings.CUSTODY_LOCKOUT_CLIENTS = 1
    quinn = cast["quinn"]
    unknown = browser_for().post("/accounts/login/", {"username": "nobody-here", "password": "x" * 12})
    wrong = browser_for().post("/accounts/login/", {"username": "quinn", "password": "not the password"})
    browser_for().post("/accounts/login/", {"username": "quinn", "password": "still not it"})
    quinn.refresh_from_db()
    assert quinn.is_locked()
    locked = Client(REMOTE_ADDR="10.0.0.7").post("/accounts/login/", {"username": "quinn", "password": PASSWORD})
    throttled = browser_for().post("/accounts/login/", {"username": "quinn", "password": PASSWORD})
    errors = [response.context["form"].non_field_errors() for response in (unknown, wrong, locked, throttled)]
    assert errors[0] == errors[1] == errors[2] == errors[3]
    assert "locked after repeated failed attempts" in errors[0][0]
    assert AuditEvent.objects.filter(action="login.refused_locked", actor=quinn).exists()


def test_sign_out_ends_the_session(quality_reviewer):
    client = browser_for(quality_reviewer)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/").status_code == 302


# ---------------------------------------------------------------- home and products


def test_home_lists_my_roles_changes_awaiting_my_signature_and_my_drafts(
    submitted, draft, quality_reviewer, release_manager
):
    reviewer_home = page_text(browser_for(quality_reviewer).get("/"))
    assert "Quality reviewer" in reviewer_home
    assert f'href="/change-requests/{submitted.human_id}"' in reviewer_home
    assert draft.title not in reviewer_home  # someone else's draft is not mine

    requester_home = page_text(browser_for(release_manager).get("/"))
    assert draft.title in requester_home
    # The requester never waits on their own signature.
    assert "Nothing is waiting for your signature." in requester_home


def test_products_page_lists_only_products_where_i_hold_a_role(cast, other_product):
    text = page_text(browser_for(cast["quinn"]).get("/products/"))
    assert "Risk Score Dashboard" in text and "Lab Results Gateway" not in text
    assert "integration → staging → production" in text
    outsider_text = page_text(browser_for(cast["olga"]).get("/products/"))
    assert "Risk Score Dashboard" not in outsider_text and "You hold no role" in outsider_text


# ---------------------------------------------------------------- change request lists and filters


@pytest.fixture
def several(product, release_manager):
    return {
        "low": open_change_request(
            product=product, requester=release_manager, answers=LOW_RISK, title="Fix tooltip typo"
        ),
        "medium": open_change_request(
            product=product, requester=release_manager, answers=MEDIUM_RISK, title="Tune sepsis threshold"
        ),
        "high": open_change_request(
            product=product, requester=release_manager, answers=HIGH_RISK, title="New scoring model", kind="code"
        ),
        "draft": open_change_request(
            product=product, requester=release_manager, submit=False, title="Draft flag cleanup"
        ),
    }


def listed(response) -> set[str]:
    return {cr.human_id for cr in response.context["page"].object_list}


def test_change_request_list_filters_by_state_tier_kind_and_search(several, auditor):
    client = browser_for(auditor)
    base = "/products/rsd/change-requests/"
    assert listed(client.get(base)) == {cr.human_id for cr in several.values()}
    assert listed(client.get(base, {"state": "approved"})) == {several["low"].human_id}
    assert listed(client.get(base, {"tier": "high"})) == {several["high"].human_id}
    assert listed(client.get(base, {"kind": "code"})) == {several["high"].human_id}
    assert listed(client.get(base, {"q": "sepsis"})) == {several["medium"].human_id}
    assert listed(client.get(base, {"state": "submitted", "tier": "medium"})) == {several["medium"].human_id}


def test_change_request_list_across_products_shows_only_mine(several, other_product, admin_user, cast):
    roles.role_grant(actor=admin_user, user=cast["olga"], product=other_product, role="engineer")
    hidden = open_change_request(
        product=other_product, requester=cast["olga"], answers=None, submit=False, title="Lab only"
    )
    response = browser_for(cast["quinn"]).get("/change-requests/")
    assert listed(response) == {cr.human_id for cr in several.values()}
    assert hidden.human_id not in listed(response)


def test_an_unknown_filter_value_is_shown_as_a_form_error(several, auditor):
    response = browser_for(auditor).get("/change-requests/", {"state": "<script>"})
    assert response.status_code == 200 and "state" in response.context["form"].errors
    assert "<script>" not in page_text(response)


# ---------------------------------------------------------------- hidden is 404; visible but not allowed is 403


def test_outsider_gets_404_on_every_change_request_page(submitted, outsider):
    client = browser_for(outsider)
    cr = submitted.human_id
    for path in (
        f"/change-requests/{cr}",
        f"/change-requests/{cr}/edit",
        "/products/rsd/change-requests/",
        "/products/rsd/change-requests/new",
    ):
        assert client.get(path).status_code == 404, path
    for action in ("submit", "withdraw", "implemented", "close", "sign"):
        assert client.post(f"/change-requests/{cr}/{action}", {"reason": "x"}).status_code == 404, action
    assert client.get("/change-requests/CR-999999").status_code == 404
    assert client.get("/change-requests/not-an-id").status_code == 404
    assert ChangeRequest.objects.get(pk=submitted.pk).state == "submitted"


def test_auditor_reads_a_change_request_but_cannot_open_or_edit_one(submitted, auditor):
    client = browser_for(auditor)
    detail = client.get(f"/change-requests/{submitted.human_id}")
    assert detail.status_code == 200 and detail.context["actions"] == {
        "edit": False,
        "submit": False,
        "withdraw": False,
        "implement": False,
        "close": False,
        "sign": False,
    }
    assert client.get("/products/rsd/change-requests/new").status_code == 403
    assert client.get(f"/change-requests/{submitted.human_id}/edit").status_code == 403


# ---------------------------------------------------------------- create, classify, edit


def test_create_page_builds_the_questionnaire_from_the_active_policy(product, release_manager):
    response = browser_for(release_manager).get("/products/rsd/change-requests/new")
    text = page_text(response)
    assert response.status_code == 200
    assert 'name="risk_patient_safety_impact"' in text and 'data-risk-question="patient_safety_impact"' in text
    assert '<option value="direct">Direct</option>' in text
    assert 'data-preview-url="/api/v1/products/rsd/risk-preview"' in text


def test_creating_a_change_request_computes_its_tier(product, release_manager):
    response = browser_for(release_manager).post(
        "/products/rsd/change-requests/new",
        {
            "title": "Show the model version in the footer",
            "kind": "code",
            "change_type": "normal",
            "why": "Clinicians asked which model produced a score.",
            **{f"risk_{q}": a for q, a in HIGH_RISK.items()},
        },
        follow=True,
    )
    cr = ChangeRequest.objects.get(title="Show the model version in the footer")
    assert (cr.state, cr.tier, cr.risk_score, cr.requester) == ("draft", "high", 4, release_manager)
    assert response.redirect_chain[-1][0] == f"/change-requests/{cr.human_id}"
    assert f"{cr.human_id} was opened as a draft." in flashed(response)


def test_partial_answers_are_refused_with_the_questions_named(product, release_manager):
    response = browser_for(release_manager).post(
        "/products/rsd/change-requests/new",
        {"title": "Half answered", "kind": "code", "change_type": "normal", "risk_patient_safety_impact": "direct"},
    )
    assert response.status_code == 200
    assert not ChangeRequest.objects.filter(title="Half answered").exists()
    assert "data_sensitivity" in " ".join(response.context["form"].non_field_errors())


def test_missing_title_and_bad_choice_are_form_errors(product, release_manager):
    response = browser_for(release_manager).post(
        "/products/rsd/change-requests/new", {"title": "", "kind": "teleportation", "change_type": "normal"}
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"title", "kind"}


def test_editing_answers_reclassifies_and_resets_an_approval(submitted, release_manager, quality_reviewer):
    sign_change_request(submitted, quality_reviewer)
    submitted.refresh_from_db()
    assert submitted.state == "approved"
    client = browser_for(release_manager)
    form = client.get(f"/change-requests/{submitted.human_id}/edit")
    assert "resets the approval" in page_text(form)
    data = {field: getattr(submitted, field) for field in services.CR_CONTENT_FIELDS}
    data.update({f"risk_{q}": a for q, a in HIGH_RISK.items()}, reason="Clinical review says the impact is direct.")
    client.post(f"/change-requests/{submitted.human_id}/edit", data)
    submitted.refresh_from_db()
    assert (submitted.tier, submitted.state) == ("high", "submitted")
    assert Signature.objects.get(signer=quality_reviewer).invalidated_at is not None
    detail = page_text(client.get(f"/change-requests/{submitted.human_id}"))
    assert "no longer counts" in detail


# ---------------------------------------------------------------- state actions


def test_submit_from_the_page_and_a_second_submit_names_the_state(draft, release_manager):
    client = browser_for(release_manager)
    first = client.post(f"/change-requests/{draft.human_id}/submit", follow=True)
    assert f"{draft.human_id} was submitted for approval." in flashed(first)
    second = client.post(f"/change-requests/{draft.human_id}/submit", follow=True)
    assert flashed(second) == [f"{draft.human_id} is submitted, not a draft, so it cannot be submitted."]


def test_submitting_an_incomplete_draft_lists_what_is_missing(product, release_manager):
    cr = services.change_request_create(product=product, requester=release_manager, title="Tidy logging")
    client = browser_for(release_manager)
    detail = page_text(client.get(f"/change-requests/{cr.human_id}"))
    assert "Before it can be submitted" in detail and "write the rollback plan" in detail
    response = client.post(f"/change-requests/{cr.human_id}/submit", follow=True)
    assert "risk questionnaire" in flashed(response)[0]
    cr.refresh_from_db()
    assert cr.state == "draft"


def test_action_pages_refuse_get(submitted, release_manager):
    assert browser_for(release_manager).get(f"/change-requests/{submitted.human_id}/submit").status_code == 405


def test_withdraw_needs_a_reason_and_then_records_it(submitted, release_manager):
    client = browser_for(release_manager)
    refused = client.post(f"/change-requests/{submitted.human_id}/withdraw", {"reason": " "}, follow=True)
    assert flashed(refused) == ["Say why the change request is withdrawn."]
    client.post(f"/change-requests/{submitted.human_id}/withdraw", {"reason": "Superseded by CR-99."})
    submitted.refresh_from_db()
    assert submitted.state == "withdrawn"
    assert AuditEvent.objects.get(action="change_request.withdrawn").reason == "Superseded by CR-99."


def test_implemented_then_closed_and_a_wrong_state_close_names_the_state(product, release_manager):
    cr = open_change_request(product=product, requester=release_manager, answers=LOW_RISK)
    client = browser_for(release_manager)
    early = client.post(f"/change-requests/{cr.human_id}/close", follow=True)
    assert flashed(early)[0].startswith(f"{cr.human_id} is approved, so it cannot be closed")
    client.post(f"/change-requests/{cr.human_id}/implemented")
    client.post(f"/change-requests/{cr.human_id}/close")
    cr.refresh_from_db()
    assert cr.state == "closed"


# ---------------------------------------------------------------- signatures


def test_detail_offers_the_signing_dialog_with_the_meaning_statement_to_an_eligible_reviewer(
    submitted, quality_reviewer
):
    response = browser_for(quality_reviewer).get(f"/change-requests/{submitted.human_id}")
    text = page_text(response)
    assert response.context["actions"]["sign"]
    assert '<dialog class="sign-dialog"' in text
    statement = response.context["sign"]["statements"][0]["statement"]
    assert statement.startswith(f"By signing I approve {submitted.human_id} “{submitted.title}” (content version ")
    assert statement.endswith("This is the legally binding equivalent of my handwritten signature (21 CFR Part 11).")


def test_security_reviewer_is_not_offered_a_medium_tier_signature(submitted, security_reviewer):
    response = browser_for(security_reviewer).get(f"/change-requests/{submitted.human_id}")
    assert not response.context["actions"]["sign"] and "sign-dialog" not in page_text(response)


def test_quality_reviewer_signs_and_the_manifestation_shows(submitted, quality_reviewer):
    client = browser_for(quality_reviewer)
    action = f"/change-requests/{submitted.human_id}/sign"
    seen = dialog_sha256(page_text(client.get(f"/change-requests/{submitted.human_id}")), action)
    response = client.post(
        action,
        {
            "meaning": "approved",
            "username": "quinn",
            "password": PASSWORD,
            "comment": "Replay results reviewed.",
            "content_sha256": seen,
        },
        follow=True,
    )
    signature = Signature.objects.get(signer=quality_reviewer)
    assert flashed(response) == [f"Signed: {signature.manifestation}."]
    text = page_text(response)
    assert "Quinn Quality" in text and "Quality reviewer" in text and signature.content_sha256[:12] in text
    assert f"{signature.signed_at:%Y-%m-%d %H:%M:%S} UTC" in text
    assert "Approved" in text and "valid" in text and "signature.approved" in text
    submitted.refresh_from_db()
    assert submitted.state == "approved"


def test_requester_signing_own_change_is_refused_with_the_rule_named(submitted, release_manager, admin_user, product):
    roles.role_grant(actor=admin_user, user=release_manager, product=product, role="quality")
    response = browser_for(release_manager).post(
        f"/change-requests/{submitted.human_id}/sign",
        {"meaning": "approved", "username": "rory", "password": PASSWORD, "content_sha256": shown(submitted)},
        follow=True,
    )
    assert flashed(response) == [
        "Refused by rule sod.requester_cannot_sign: the requester of a change request cannot sign its approval"
    ]
    assert not Signature.objects.filter(subject_id=submitted.pk).exists()


def test_wrong_password_signs_nothing_and_says_so(submitted, quality_reviewer):
    response = browser_for(quality_reviewer).post(
        f"/change-requests/{submitted.human_id}/sign",
        {"meaning": "approved", "username": "quinn", "password": "wrong password!", "content_sha256": shown(submitted)},
        follow=True,
    )
    assert flashed(response) == ["The password is not correct; nothing was signed."]
    assert not Signature.objects.exists() or not Signature.objects.filter(signer=quality_reviewer).exists()
    assert AuditEvent.objects.filter(action="signature.failed", actor=quality_reviewer).exists()


def test_signing_with_someone_elses_username_is_refused(submitted, quality_reviewer):
    response = browser_for(quality_reviewer).post(
        f"/change-requests/{submitted.human_id}/sign",
        {"meaning": "approved", "username": "sasha", "password": PASSWORD, "content_sha256": shown(submitted)},
        follow=True,
    )
    assert "username given is not the signed-in user's" in flashed(response)[0]
    assert not Signature.objects.filter(subject_id=submitted.pk).exists()


def test_incomplete_sign_form_signs_nothing(submitted, quality_reviewer):
    response = browser_for(quality_reviewer).post(
        f"/change-requests/{submitted.human_id}/sign", {"meaning": "adored", "username": "quinn"}, follow=True
    )
    assert flashed(response)[0].startswith("Nothing was signed: meaning:")
    assert not Signature.objects.exists() or not Signature.objects.filter(signer=quality_reviewer).exists()


# ---------------------------------------------------------------- the audit trail


def test_detail_shows_the_change_requests_own_audit_trail(submitted, auditor):
    response = browser_for(auditor).get(f"/change-requests/{submitted.human_id}")
    actions = [event.action for event in response.context["events"]]
    assert actions == ["change_request.submitted", "change_request.created"]
    assert submitted_hash_prefix(submitted) in page_text(response)


def submitted_hash_prefix(change_request) -> str:
    return AuditEvent.objects.get(action="change_request.submitted", object_id=str(change_request.pk)).hash[:10]


def test_audit_page_filters_by_object_actor_action_and_date(submitted, draft, auditor):
    client = browser_for(auditor)
    by_object = client.get("/audit/", {"object": submitted.human_id})
    assert {e.object_human_id for e in by_object.context["page"].object_list} == {submitted.human_id}
    by_action = client.get("/audit/", {"action": "change_request.submitted"})
    assert [e.object_human_id for e in by_action.context["page"].object_list] == [submitted.human_id]
    by_actor = client.get("/audit/", {"actor": "rory", "object": draft.human_id})
    assert [e.action for e in by_actor.context["page"].object_list] == ["change_request.created"]
    future = client.get("/audit/", {"since": "2999-01-01"})
    assert list(future.context["page"].object_list) == []
    today = submitted.created_at.date().isoformat()
    bounded = client.get("/audit/", {"since": today, "until": today, "object": submitted.human_id})
    assert len(bounded.context["page"].object_list) == 2


def test_audit_page_refuses_a_bad_date_without_failing(submitted, auditor):
    response = browser_for(auditor).get("/audit/", {"since": "yesterday-ish"})
    assert response.status_code == 200 and "since" in response.context["form"].errors


def test_audit_page_shows_only_my_products_events(submitted, other_product, admin_user, cast):
    roles.role_grant(actor=admin_user, user=cast["olga"], product=other_product, role="auditor")
    response = browser_for(cast["olga"]).get("/audit/")
    assert {e.product_key for e in response.context["page"].object_list} == {"lab"}


def test_audit_export_links_carry_the_filters_and_download(submitted, auditor):
    client = browser_for(auditor)
    response = client.get("/audit/", {"object": submitted.human_id, "product": "rsd"})
    csv_url, json_url = response.context["csv_url"], response.context["json_url"]
    assert csv_url.startswith("/api/v1/audit-events?format=csv&") and f"object={submitted.human_id}" in csv_url
    assert json_url.startswith("/api/v1/audit-events?format=json&")
    as_json = client.get(json_url)
    assert as_json.status_code == 200 and {row["object_human_id"] for row in as_json.json()} == {submitted.human_id}


def test_audit_csv_export_link_downloads_csv(submitted, auditor):
    client = browser_for(auditor)
    csv_url = client.get("/audit/", {"object": submitted.human_id}).context["csv_url"]
    as_csv = client.get(csv_url)
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    assert submitted.human_id in as_csv.content.decode()
