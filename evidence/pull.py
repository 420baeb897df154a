"""Pulling a build's evidence from its CI provider (issue 3, item 7); the Celery task wraps this."""

from __future__ import annotations

from evidence import services
from evidence.models import Build, ProviderCredential
from evidence.providers import ProviderError, adapter_for


def provider_of(pipeline_url: str) -> str:
    if "/actions/runs/" in pipeline_url:
        return ProviderCredential.Provider.GITHUB
    if "/-/pipelines/" in pipeline_url:
        return ProviderCredential.Provider.GITLAB
    raise ProviderError(f"cannot tell the CI provider of {pipeline_url}; pulls support GitHub Actions and GitLab")


def build_pull(*, build_id: int) -> str:
    """Fetch the reports and take each in as evidence of every artifact of the build; returns what happened."""
    build = Build.objects.select_related("product", "registered_by").get(pk=build_id)
    provider = provider_of(build.pipeline_url)
    credential = ProviderCredential.objects.filter(product=build.product, provider=provider).first()
    if credential is None:
        raise ProviderError(
            f"{build.product.key} has no stored {provider} credential; an administrator adds one before pulls work"
        )
    artifacts = list(build.artifacts.all())
    if not artifacts:
        raise ProviderError(f"build {build.human_id} has no artifacts yet; register them, then pull again")
    files = adapter_for(provider).fetch(build, credential, services.credential_secret(credential))
    received = []
    for fetched in files:
        for artifact in artifacts:
            evidence, _ = services.evidence_receive_bytes(
                artifact=artifact,
                actor=build.registered_by,
                evidence_type=fetched.type,
                data=fetched.content,
                name=fetched.name,
            )
            received.append(f"{evidence.human_id} {fetched.type} {fetched.name}")
    if not files:
        return "the provider listed no recognisable reports (JUnit, coverage, SARIF, SBOM, scans)"
    return f"fetched {len(files)} report(s): " + "; ".join(received)
