"""Server-rendered pages of the core domain."""

from django.contrib.auth import views as auth_views
from django.urls import path

from changecontrol import views

urlpatterns = [
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
]
