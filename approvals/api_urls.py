"""API paths of the approvals app (releases, promotions, status, deployments, snapshots)."""

urlpatterns: list = []
