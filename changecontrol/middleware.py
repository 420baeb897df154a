"""Sessions that end: after a period without activity (Part 11 §11.200(a)), and at once when the account is locked
or deactivated (§11.300: an account that may not sign in may not keep acting through a session it already holds)."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect

from changecontrol.auth import account_refusal
from changecontrol.models import User
from common.api_errors import error_response, is_api_path


class SessionRefusalMiddleware:
    """End the session of an account that is locked or deactivated, saying why (a page: a message; the API: 401).

    The authentication backend already refuses such an account its session user (`user_can_authenticate`); this
    says why, and flushes the session so the refusal is final."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        user_id = session.get(SESSION_KEY) if session is not None else None
        if user_id is None or request.user.is_authenticated:
            return self.get_response(request)
        account = User.objects.filter(pk=user_id).first()
        reason = account_refusal(account) if account is not None else ""
        if not reason:
            return self.get_response(request)
        logout(request)
        sentence = f"You were signed out: {reason}."
        if is_api_path(request.path_info):
            return error_response(401, sentence[0].upper() + sentence[1:])
        messages.error(request, sentence)
        return redirect_to_login(request.get_full_path())


class IdleSessionTimeoutMiddleware:
    """End a browser session after CUSTODY_IDLE_TIMEOUT_MINUTES without activity."""

    SESSION_KEY = "custody_last_activity"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session") and request.session.session_key:
            now = time.time()
            last = request.session.get(self.SESSION_KEY)
            if last is not None and now - last > settings.CUSTODY_IDLE_TIMEOUT_MINUTES * 60:
                logout(request)
                if request.path.startswith("/api/"):
                    return self.get_response(request)
                messages.info(request, "You were signed out after a period of inactivity. Please sign in again.")
                return redirect(f"{settings.LOGIN_URL and '/accounts/login/'}?next={request.path}")
            request.session[self.SESSION_KEY] = now
        return self.get_response(request)
