"""Alert pages."""

urlpatterns: list = []
