"""API paths of the evidence app (builds, artifacts, evidence, trace matrix)."""

urlpatterns: list = []
