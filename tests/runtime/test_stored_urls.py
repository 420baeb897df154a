"""Every URL Custody stores is http(s) and bounded, whichever way it comes in; stored rows that predate the rule are
shown as text. (The finding: a `deployments:write` token stored `javascript:` as a pipeline URL, and the deployment
page linked it for an administrator to click.)"""

from __future__ import annotations

import pytest
from django.test import Client

from alerts import services as alert_services
from alerts.models import AlertSubscription
from changecontrol import services as cc_services
from changecontrol.models import Product
from common.errors import ValidationFailed
from evidence import services as evidence_services
from evidence.models import Build, ProviderCredential
from runtime import deployments
from runtime.models import Deployment
from tests.builders import rewrite_sealed

pytestmark = pytest.mark.django_db

XSS = "javascript:alert(document.domain)"
BAD = [XSS, "data:text/html,<script>alert(1)</script>", "https://ci.example/" + "a" * 600]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# ---------------------------------------------------------------- the API


@pytest.mark.parametrize("url", BAD)
def test_a_deployment_with_a_bad_pipeline_url_is_400_naming_the_field(api, ci_token, artifact, url):
    response = api(token=ci_token).post(
        "/api/v1/deployments",
        {"artifact": artifact.digest, "environment": "production", "pipeline_url": url},
        format="json",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_input"
    assert "pipeline_url" in body["detail"] and list(body["fields"]) == ["pipeline_url"]
    assert not Deployment.objects.exists()


def test_a_deployment_without_a_pipeline_url_is_still_recorded(api, ci_token, artifact):
    response = api(token=ci_token).post(
        "/api/v1/deployments", {"artifact": artifact.digest, "environment": "production"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert Deployment.objects.get().pipeline_url == ""


@pytest.mark.parametrize("url", [*BAD, "ftp://ci.example/runs/1"])
def test_a_build_with_a_bad_pipeline_url_is_400_naming_the_field(api, ci_token, product, url):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/builds", {"commit": "c" * 40, "pipeline_url": url}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "pipeline_url" in response.json()["detail"] and list(response.json()["fields"]) == ["pipeline_url"]
    assert not Build.objects.exists()


def test_a_build_on_an_internal_ci_host_is_accepted(api, ci_token, product):
    response = api(token=ci_token).post(
        "/api/v1/products/rsd/builds", {"commit": "c" * 40, "pipeline_url": "http://jenkins/job/rsd/7/"}, format="json"
    )
    assert response.status_code == 201, response.content


def test_the_schema_tells_clients_the_rule(api, admin_user):
    schemas = api(admin_user).get("/api/v1/schema/", {"format": "json"}).json()["components"]["schemas"]
    assert schemas["BuildInput"]["properties"]["pipeline_url"] == {"type": "string", "format": "uri", "maxLength": 500}
    optional = schemas["DeploymentInput"]["properties"]["pipeline_url"]["oneOf"][0]
    assert optional["format"] == "uri" and optional["maxLength"] == 500


# ---------------------------------------------------------------- pages and the admin


def test_the_manual_deployment_page_refuses_a_bad_pipeline_url(artifact, cast):
    response = signed_in(cast["sam"]).post(
        "/deployments/new",
        {"artifact": artifact.digest, "environment": "production", "kind": "normal", "pipeline_url": XSS},
    )
    assert response.status_code == 400
    assert "pipeline_url must be an http or https url" in response.content.decode().lower()
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("url", BAD)
def test_the_alert_settings_page_refuses_a_bad_webhook_target(admin_user, product, url):
    response = signed_in(admin_user).post(
        "/products/rsd/alerts/", {"event_kind": "drift", "channel": "webhook", "target": url}
    )
    assert response.status_code == 400
    assert "target " in response.content.decode()
    assert not AlertSubscription.objects.exists()


def test_the_admin_refuses_a_bad_repository_url_and_never_links_the_stored_one(admin_user, product):
    client = signed_in(admin_user)
    Product.objects.filter(pk=product.pk).update(repository_url=XSS)  # a row from before the rule
    form = client.get(f"/admin/changecontrol/product/{product.pk}/change/").content.decode()
    assert f'href="{XSS}"' not in form
    response = client.post(
        f"/admin/changecontrol/product/{product.pk}/change/",
        {
            "name": product.name,
            "safety_class": product.safety_class,
            "safety_rationale": product.safety_rationale,
            "repository_url": XSS,
            "environments-TOTAL_FORMS": "0",
            "environments-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form again, with the error on the field
    assert "This URL must be an http or https URL" in response.content.decode()


# ---------------------------------------------------------------- the services, the last line


@pytest.mark.parametrize("url", BAD)
def test_every_service_that_stores_a_url_refuses_a_bad_one(artifact, cast, admin_user, product, url):
    environment = product.environments.get(key="production")
    calls = {
        "pipeline_url": lambda: deployments.deployment_record(
            artifact=artifact, environment=environment, deployer=cast["sam"], pipeline_url=url
        ),
        "pipeline_url ": lambda: evidence_services.build_register(
            product=product, actor=admin_user, commit="c" * 40, pipeline_url=url
        ),
        "repository_url": lambda: cc_services.product_create(
            actor=admin_user, key="new", name="New", safety_class="A", safety_rationale="x", repository_url=url
        ),
        "base_url": lambda: evidence_services.provider_credential_set(
            product=product, provider="github", base_url=url, secret="s", actor=admin_user
        ),
        "target": lambda: alert_services.alert_subscription_create(
            actor=admin_user, product=product, event_kind="drift", channel="webhook", target=url
        ),
    }
    for field, call in calls.items():
        with pytest.raises(ValidationFailed) as refused:
            call()
        assert refused.value.detail.startswith(field.strip() + " "), refused.value.detail
    assert not Deployment.objects.exists() and not ProviderCredential.objects.exists()
    assert not Product.objects.filter(key="new").exists()


# ---------------------------------------------------------------- rows stored before the rule


def test_a_stored_javascript_pipeline_url_is_shown_as_text_never_as_a_link(api, ci_token, artifact, admin_user):
    recorded = api(token=ci_token).post(
        "/api/v1/deployments",
        {"artifact": artifact.digest, "environment": "production", "pipeline_url": "https://ci.example/deploy/1"},
        format="json",
    )
    assert recorded.status_code == 201, recorded.content
    deployment = Deployment.objects.get()
    rewrite_sealed(Deployment.objects.filter(pk=deployment.pk), pipeline_url=XSS)
    Build.objects.filter(pk=artifact.build_id).update(pipeline_url="data:text/html,<script>alert(1)</script>")
    client = signed_in(admin_user)
    for path in (f"/deployments/{deployment.human_id}", f"/builds/{artifact.build.human_id}"):
        html = client.get(path).content.decode()
        assert 'href="javascript:' not in html and 'href="data:' not in html, path
        assert 'class="unlinked-url"' in html, path
        assert "<script>alert(1)</script>" not in html, path
