"""Policy versions through the API (DESIGN §5): list, propose, and a quality reviewer's Part 11 signature."""

from __future__ import annotations

import hashlib

import pytest

from changecontrol import roles, services
from changecontrol.api_auth import token_create
from changecontrol.models import AuditEvent, PolicyVersion, Role, Signature, User
from changecontrol.policy import DEFAULT_POLICY_YAML
from tests.builders import activate_policy
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/products/rsd/policy-versions"
# The default policy with a shorter production approval window: a small, valid change.
POLICY_V2 = DEFAULT_POLICY_YAML.replace("valid_for_hours: 72 ", "valid_for_hours: 48 ")
assert POLICY_V2 != DEFAULT_POLICY_YAML

# Invalid twice over: line 8 names a role that does not exist, and line 12 misspells a gate's `max_failed`.
BROKEN_POLICY = """\
policy: rsd
risk:
  questions:
    patient_safety_impact: {none: 0, direct: 4}
  tiers: [{tier: high, min_score: 4}, {tier: low, min_score: 0}]
change_approval:
  low: {auto: true}
  high: {roles: [qa], count: 1}
environments:
  staging:
    gates:
      - {id: unit-tests, kind: tests, max_failures: 0}
"""


def signatures_url(version: int) -> str:
    return f"{VERSIONS}/{version}/signatures"


def proposer() -> User:
    """The product's policy author: a quality reviewer, who may propose by default (policy_changes.propose_roles)."""
    return User.objects.get(username="polly")


def propose(api, user, source=POLICY_V2, reason="Shorter approval window after the Q3 audit"):
    return api(user).post(VERSIONS, {"source": source, "reason": reason}, format="json")


def sign(api, user, version=2, *, username=None, password=PASSWORD, comment="Reviewed against SOP-QA-012"):
    """Read the version as an API client does, then sign the content_sha256 it answered."""
    client = api(user)
    read = client.get(f"{VERSIONS}/{version}")
    body = {"username": username or user.username, "password": password, "comment": comment}
    if read.status_code == 200:
        body["content_sha256"] = read.json()["content_sha256"]
    return client.post(signatures_url(version), body, format="json")


def personal_token(product, user, admin_user, scopes=("changes:write",)) -> str:
    _, secret = token_create(actor=admin_user, name="mine", user=user, products=[product], scopes=list(scopes))
    return secret


def test_listing_shows_every_version_with_its_signer(api, cast, product):
    response = api(cast["audrey"]).get(VERSIONS)
    assert response.status_code == 200
    [version] = response.json()
    assert version["version"] == 1 and version["state"] == "active"
    assert version["sha256"] == hashlib.sha256(DEFAULT_POLICY_YAML.encode()).hexdigest()
    assert version["author"] == "polly" and version["reason"] == "initial policy"
    assert version["created_at"] and version["activated_at"]
    assert version["signed_by"] == "quentin"
    assert version["signature"]["printed_name"] == "Quentin Quality-Lead"
    assert version["signature"]["meaning"] == "approved"


def test_a_quality_reviewer_proposes_a_version_that_is_not_yet_in_force(api, cast, product):
    response = propose(api, proposer())
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["version"] == 2 and body["state"] == "proposed"
    assert body["author"] == "polly" and body["signed_by"] is None and body["activated_at"] is None
    assert body["sha256"] == hashlib.sha256(POLICY_V2.encode()).hexdigest()
    assert services.active_policy(product).version == 1
    assert AuditEvent.objects.filter(action="policy.proposed", object_human_id="rsd policy v2").exists()
    listed = api(cast["quinn"]).get(VERSIONS).json()
    assert [(v["version"], v["state"]) for v in listed] == [(2, "proposed"), (1, "active")]


def test_proposing_the_same_document_again_stores_nothing_new(api, cast, product):
    assert propose(api, proposer()).status_code == 201
    again = propose(api, proposer())
    assert again.status_code == 200 and again.json()["version"] == 2
    assert product.policy_versions.count() == 2


def test_an_invalid_policy_is_400_with_every_problem_by_line(api, cast, product):
    response = propose(api, proposer(), source=BROKEN_POLICY)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_input" and "not valid" in body["detail"]
    problems = body["errors"]
    assert len(problems) >= 2, problems
    assert all(set(p) == {"line", "path", "message"} for p in problems), problems
    assert any(p["line"] == 8 and "('qa') is not a known role" in p["message"] for p in problems), problems
    assert any(p["line"] == 12 and p["path"].endswith("max_failures") for p in problems), problems
    assert product.policy_versions.count() == 1


def test_a_proposal_needs_a_reason_and_a_source(api, cast, product):
    assert propose(api, proposer(), reason=" ").status_code == 400
    response = api(proposer()).post(VERSIONS, {"reason": "no document"}, format="json")
    assert response.status_code == 400 and "source" in response.json()["fields"]


def test_a_policy_naming_another_product_is_refused(api, cast, product):
    response = propose(api, proposer(), source=POLICY_V2.replace("\npolicy: rsd\n", "\npolicy: lab\n", 1))
    assert response.status_code == 400
    assert "names product 'lab'" in response.json()["detail"]


def test_an_auditor_cannot_propose(api, cast, product):
    response = propose(api, cast["audrey"])
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert "auditor" in response.json()["detail"]
    assert product.policy_versions.count() == 1


@pytest.mark.parametrize("who", ["rory", "alice", "sasha", "sam", "paula"])
def test_by_default_only_quality_reviewers_and_administrators_may_propose(api, cast, product, who):
    response = propose(api, cast[who])
    assert response.status_code == 403, response.json()
    detail = response.json()["detail"]
    assert "proposing a policy needs a quality reviewer or administrator of it" in detail
    assert "policy_changes.propose_roles" in detail
    assert product.policy_versions.count() == 1


def test_an_administrator_may_propose(api, product, admin_user):
    administrator = make_user("adele", "Adele Admin")
    roles.role_grant(actor=admin_user, user=administrator, product=product, role=Role.ADMIN)
    assert propose(api, administrator).status_code == 201


def test_the_policy_in_force_says_who_may_propose_its_next_version(api, cast, product):
    widened = DEFAULT_POLICY_YAML + "\npolicy_changes: {propose_roles: [release_manager, quality]}\n"
    activate_policy(product, widened, reason="release managers draft policy changes too")
    assert services.policy_proposer_roles(product) == ("release_manager", "quality")
    assert propose(api, cast["rory"]).status_code == 201
    narrowed = DEFAULT_POLICY_YAML + "\npolicy_changes: {propose_roles: [admin]}\n"
    activate_policy(product, narrowed, reason="only administrators propose")
    refused = propose(api, proposer(), source=POLICY_V2 + "\n# again\n")
    assert refused.status_code == 403 and "needs an administrator of it" in refused.json()["detail"]


def test_the_validator_refuses_an_auditor_among_the_proposers():
    from changecontrol.policy import PolicyInvalid, parse_policy

    with pytest.raises(PolicyInvalid, match="an auditor cannot propose"):
        parse_policy(DEFAULT_POLICY_YAML + "\npolicy_changes: {propose_roles: [auditor]}\n")


def test_a_quality_reviewer_signs_and_the_version_becomes_active(api, cast, product):
    propose(api, proposer())
    response = sign(api, cast["quinn"])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["signer"] == "quinn" and body["meaning"] == "approved" and body["role"] == "quality"
    assert body["comment"] == "Reviewed against SOP-QA-012"
    assert "Quinn Quality" in body["manifestation"]
    assert body["policy_version"]["version"] == 2 and body["policy_version"]["state"] == "active"
    assert body["policy_version"]["signed_by"] == "quinn"
    assert services.active_policy(product).version == 2
    assert product.policy_versions.get(version=1).state == PolicyVersion.State.SUPERSEDED
    # The signature is bound to the exact version (Part 11 §11.70).
    signature = Signature.objects.get(pk=body["id"])
    assert signature.content["sha256"] == hashlib.sha256(POLICY_V2.encode()).hexdigest()


def test_the_author_cannot_activate_their_own_version(api, cast, product):
    propose(api, cast["quinn"])
    response = sign(api, cast["quinn"])
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "separation_of_duties" and body["rule"] == "sod.policy_author_cannot_approve"
    assert "author" in body["detail"]
    assert product.policy_versions.get(version=2).state == PolicyVersion.State.PROPOSED
    assert AuditEvent.objects.filter(action="signature.refused", object_human_id="rsd policy v2").exists()


def test_only_a_quality_reviewer_can_sign(api, cast, product):
    propose(api, proposer())
    response = sign(api, cast["sasha"])
    assert response.status_code == 403
    assert "only a quality reviewer of rsd" in response.json()["detail"]
    assert services.active_policy(product).version == 1


def test_a_wrong_password_signs_nothing_and_is_audited(api, cast, product):
    propose(api, proposer())
    response = sign(api, cast["quinn"], password="not my password")
    assert response.status_code == 403 and response.json()["error"] == "reauthentication_failed"
    assert services.active_policy(product).version == 1
    assert AuditEvent.objects.filter(action="signature.failed", object_human_id="rsd policy v2").exists()


def test_signing_with_someone_elses_username_is_refused(api, cast, product):
    propose(api, proposer())
    response = sign(api, cast["quinn"], username="quentin")
    assert response.status_code == 403 and response.json()["error"] == "reauthentication_failed"


def test_a_version_no_longer_proposed_is_409(api, cast, product):
    response = sign(api, cast["quinn"], version=1)
    assert response.status_code == 409
    assert response.json()["error"] == "wrong_state" and "active" in response.json()["detail"]


def test_a_version_proposed_before_the_active_one_cannot_bring_its_older_rules_back(api, cast, product):
    assert propose(api, proposer()).status_code == 201
    later = DEFAULT_POLICY_YAML.replace("valid_for_hours: 72 ", "valid_for_hours: 24 ")
    assert propose(api, proposer(), source=later).status_code == 201
    assert sign(api, cast["quinn"], version=3).status_code == 201
    response = sign(api, cast["quinn"], version=2)
    assert response.status_code == 409, response.json()
    assert "proposed before the active v3" in response.json()["detail"]
    assert PolicyVersion.objects.get(product=product, state="active").version == 3


def test_an_unknown_version_is_404(api, cast, product):
    response = sign(api, cast["quinn"], version=9)
    assert response.status_code == 404 and "no policy v9" in response.json()["detail"]


def test_a_service_account_may_neither_propose_nor_sign(api, cast, product, ci_token):
    ci = api(token=ci_token)
    assert ci.get(VERSIONS).status_code == 200
    proposed = ci.post(VERSIONS, {"source": POLICY_V2, "reason": "from CI"}, format="json")
    assert proposed.status_code == 403 and "needs a person" in proposed.json()["detail"]
    propose(api, proposer())
    signed = ci.post(signatures_url(2), {"username": "ci-rsd", "password": "x"}, format="json")
    assert signed.status_code == 403 and "needs a person" in signed.json()["detail"]


def test_a_personal_token_needs_the_changes_write_scope(api, cast, product, admin_user):
    scoped = personal_token(product, proposer(), admin_user)
    response = api(token=scoped).post(VERSIONS, {"source": POLICY_V2, "reason": "from my laptop"}, format="json")
    assert response.status_code == 201 and response.json()["author"] == "polly"
    unscoped = personal_token(product, cast["quinn"], admin_user, scopes=("status:read",))
    response = api(token=unscoped).post(signatures_url(2), {"username": "quinn", "password": PASSWORD}, format="json")
    assert response.status_code == 403 and response.json()["required_scope"] == "changes:write"
    signing = api(token=personal_token(product, cast["quinn"], admin_user))
    # Without the content_sha256 of what was read, nothing is signed: 400 naming the field and where to read it.
    blind = signing.post(signatures_url(2), {"username": "quinn", "password": PASSWORD}, format="json")
    assert blind.status_code == 400 and "content_sha256" in blind.json()["fields"]
    assert f"GET {VERSIONS}/2" in blind.json()["detail"]
    seen = signing.get(f"{VERSIONS}/2").json()["content_sha256"]
    response = signing.post(
        signatures_url(2), {"username": "quinn", "password": PASSWORD, "content_sha256": seen}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["content_sha256"] == seen


def test_outsiders_and_other_products_tokens_get_404(api, cast, product, other_product_token):
    propose(api, proposer())
    for client in (api(cast["olga"]), api(token=other_product_token)):
        assert client.get(VERSIONS).status_code == 404
        assert client.post(VERSIONS, {"source": POLICY_V2, "reason": "x"}, format="json").status_code == 404
        response = client.post(signatures_url(2), {"username": "olga", "password": PASSWORD}, format="json")
        assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert services.active_policy(product).version == 1


def test_the_paths_are_in_the_openapi_schema(api, cast):
    schema = api(cast["audrey"]).get("/api/v1/schema/", {"format": "json"}).json()
    assert "/api/v1/products/{product}/policy-versions" in schema["paths"]
    assert "/api/v1/products/{product}/policy-versions/{version}/signatures" in schema["paths"]
