"""API paths of the evidence app (DESIGN §7): builds, artifacts, evidence, signer keys."""

from django.urls import path

from evidence import api

urlpatterns = [
    path("products/<slug:product>/builds", api.BuildRegisterApi.as_view(), name="api-builds"),
    path("products/<slug:product>/artifacts", api.ArtifactRegisterApi.as_view(), name="api-artifacts"),
    path("products/<slug:product>/signer-keys", api.SignerKeyListCreateApi.as_view(), name="api-signer-keys"),
    path(
        "products/<slug:product>/signer-keys/<str:key_id>/revoke",
        api.SignerKeyRevokeApi.as_view(),
        name="api-signer-key-revoke",
    ),
    path("builds/<str:build_id>", api.BuildDetailApi.as_view(), name="api-build"),
    path("builds/<str:build_id>/pull", api.BuildPullApi.as_view(), name="api-build-pull"),
    path("artifacts/<str:digest>", api.ArtifactDetailApi.as_view(), name="api-artifact"),
    path("artifacts/<str:digest>/evidence", api.EvidenceUploadApi.as_view(), name="api-evidence-upload"),
    path("evidence/<str:evidence_id>", api.EvidenceDetailApi.as_view(), name="api-evidence"),
    path("evidence/<str:evidence_id>/raw", api.EvidenceRawApi.as_view(), name="api-evidence-raw"),
]
