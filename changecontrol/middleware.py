"""The idle-session timeout (Part 11 §11.200(a)): a browser session ends after a period without activity."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect


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
