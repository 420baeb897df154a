"""URL paths (filled in by the owning module)."""

urlpatterns: list = []
