"""The policy history page: a quality reviewer signs a proposed version to activate it; a proposer proposes one."""

from __future__ import annotations

import pytest
from django.test import Client

from changecontrol import selectors, services
from changecontrol.models import AuditEvent, PolicyVersion, User
from changecontrol.policy import DEFAULT_POLICY_YAML
from common.canonical import canonical_sha256
from tests.conftest import PASSWORD, dialog_sha256, policy_version_sha256

pytestmark = pytest.mark.django_db

PAGE = "/products/rsd/policy"
POLICY_V2 = DEFAULT_POLICY_YAML.replace("valid_for_hours: 72 ", "valid_for_hours: 48 ")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def proposed(cast, product) -> PolicyVersion:
    return services.policy_version_propose(
        product=product,
        author=User.objects.get(username="polly"),
        source=POLICY_V2,
        reason="Shorter approval window after the Q3 audit",
    )


def sign(client, version=2, *, username="quinn", password=PASSWORD, comment="Reviewed against SOP-QA-012"):
    """Post the dialog as the page would: with the content_sha256 of the version as the page showed it."""
    return client.post(
        f"/products/rsd/policy/{version}/sign",
        {
            "meaning": "approved",
            "username": username,
            "password": password,
            "comment": comment,
            "content_sha256": policy_version_sha256(PolicyVersion.objects.get(product__key="rsd", version=version)),
        },
        follow=True,
    )


def test_a_quality_reviewer_sees_the_sign_dialog_with_its_meaning(cast, proposed):
    page = client_for(cast["quinn"]).get(PAGE).content.decode()
    assert "v2 is proposed, not yet in force" in page
    assert "Sign to activate…" in page
    assert 'action="/products/rsd/policy/2/sign"' in page and 'type="password"' in page
    # Part 11 §11.50 / §11.70: the meaning, and the hash of the exact content the signature will be bound to.
    assert (
        "By signing I approve policy v2 of Risk Score Dashboard (rsd) as the rules its changes and releases are "
        "judged by from now on" in page
    )
    digest = canonical_sha256(selectors.policy_version_signing_content(proposed))
    assert f"content sha256 {digest[:12]}" in page
    assert dialog_sha256(page, "/products/rsd/policy/2/sign") == digest == policy_version_sha256(proposed)
    assert "21 CFR Part 11" in page
    assert "/products/rsd/policy/diff?a=1&amp;b=2" in page
    assert proposed.sha256 in page


@pytest.mark.parametrize("username", ["rory", "sasha", "audrey"])
def test_people_without_the_quality_role_do_not_see_the_sign_form(cast, proposed, username):
    page = client_for(cast[username]).get(PAGE).content.decode()
    assert "v2 is proposed, not yet in force" in page
    assert "Only a quality reviewer of rsd can sign it." in page
    assert 'type="password"' not in page and "/policy/2/sign" not in page


def test_signing_activates_the_version_and_says_so(cast, product, proposed):
    response = sign(client_for(cast["quinn"]))
    assert response.redirect_chain == [(PAGE, 302)]
    page = response.content.decode()
    assert "Signed: Quinn Quality — Approved as Quality reviewer" in page
    assert "rsd policy v2 is now the active policy." in page
    assert services.active_policy(product).version == 2
    assert "v2 is proposed" not in page
    assert 'data-testid="state-v2">Active<' in page and 'data-testid="state-v1">Superseded<' in page
    assert "Reviewed against SOP-QA-012" in page


def test_a_wrong_password_is_refused_on_the_page(cast, product, proposed):
    page = sign(client_for(cast["quinn"]), password="wrong").content.decode()
    assert "The password is not correct; nothing was signed." in page
    assert services.active_policy(product).version == 1
    assert AuditEvent.objects.filter(action="signature.failed", object_human_id="rsd policy v2").exists()


def test_the_author_signing_their_own_version_is_refused_with_the_rule(cast, product):
    services.policy_version_propose(product=product, author=cast["quinn"], source=POLICY_V2, reason="Shorter window")
    page = sign(client_for(cast["quinn"])).content.decode()
    assert "Refused by rule sod.policy_author_cannot_approve: the author of a policy version cannot approve it" in page
    assert services.active_policy(product).version == 1


def test_a_person_without_the_quality_role_posting_anyway_is_refused(cast, product, proposed):
    page = sign(client_for(cast["sasha"]), username="sasha").content.decode()
    assert "Only a quality reviewer of rsd can approve a policy change; you hold security." in page
    assert services.active_policy(product).version == 1


def test_signing_a_version_already_active_says_its_state(cast, product):
    page = sign(client_for(cast["quinn"]), version=1).content.decode()
    assert "Rsd policy v1 is active, not awaiting a signature." in page


def test_outsiders_and_unknown_versions_get_404(cast, proposed):
    outsider = client_for(cast["olga"])
    assert outsider.post("/products/rsd/policy/2/sign", {"password": PASSWORD}).status_code == 404
    assert outsider.post("/products/rsd/policy/propose", {"source": POLICY_V2, "reason": "x"}).status_code == 404
    assert client_for(cast["quinn"]).post("/products/rsd/policy/9/sign", {}).status_code == 404
    assert client_for(cast["quinn"]).get("/products/rsd/policy/2/sign").status_code == 405


def test_a_release_manager_may_not_propose_by_default(cast, product):
    client = client_for(cast["rory"])
    assert "/policy/propose" not in client.get(PAGE).content.decode()
    page = client.post("/products/rsd/policy/propose", {"source": POLICY_V2, "reason": "x"}, follow=True)
    assert "proposing a policy needs a quality reviewer or administrator of it" in page.content.decode()
    assert product.policy_versions.count() == 1


def test_a_quality_reviewer_proposes_from_the_page(cast, product):
    client = client_for(cast["quinn"])
    form = client.get(PAGE).content.decode()
    assert 'action="/products/rsd/policy/propose"' in form and "Propose a new version" in form
    response = client.post(
        "/products/rsd/policy/propose", {"source": POLICY_V2, "reason": "Shorter approval window"}, follow=True
    )
    page = response.content.decode()
    assert "Proposed rsd policy v2: it takes effect once a quality reviewer signs it." in page
    version = product.policy_versions.get(version=2)
    assert version.state == PolicyVersion.State.PROPOSED and version.author == cast["quinn"]
    again = client.post("/products/rsd/policy/propose", {"source": POLICY_V2, "reason": "again"}, follow=True)
    assert "already holds this exact document" in again.content.decode()


def test_an_invalid_proposal_lists_every_problem_by_line_and_keeps_the_draft(cast, product):
    broken = POLICY_V2.replace("kind: tests, max_failed: 0", "kind: tests, max_failures: 0", 1)
    assert broken != POLICY_V2
    response = client_for(cast["quinn"]).post("/products/rsd/policy/propose", {"source": broken, "reason": "typo"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was stored: the policy has 1 problem(s), listed below." in page
    assert "unknown parameter &#x27;max_failures&#x27;" in page and "<li>line " in page
    assert "max_failures: 0" in page  # the draft stays in the textarea to fix
    assert product.policy_versions.count() == 1


def test_an_auditor_neither_sees_nor_may_use_the_propose_form(cast, product):
    client = client_for(cast["audrey"])
    assert "/policy/propose" not in client.get(PAGE).content.decode()
    page = client.post("/products/rsd/policy/propose", {"source": POLICY_V2, "reason": "x"}, follow=True)
    assert "You hold auditor on rsd; proposing a policy needs a quality reviewer or administrator of it" in (
        page.content.decode()
    )
    assert product.policy_versions.count() == 1
