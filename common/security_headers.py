"""The response headers Django and django-csp do not set themselves (docs/security.md lists them all).

- `Permissions-Policy`: Custody uses no camera, microphone, location, payment or USB; a page that asked would be
  an injected one, so the browser is told to refuse.
- `Cross-Origin-Resource-Policy: same-origin`: no other site may embed Custody's answers (a page, an API answer,
  the API docs' start-up script) with its visitors' cookies; CI clients are not browsers and are unaffected.
- `Cache-Control: no-store` on every API answer and on every page served to someone signed in: records, tokens
  shown once and signing dialogs must not stay in a shared or back-button cache after sign-out. Static files
  are answered by WhiteNoise before anyone is known to be signed in, and keep their long-lived caching.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.cache import patch_cache_control

from common.api_errors import is_api_path


class SecurityHeadersMiddleware:
    """Permissions-Policy and CORP on every response; no-store on API answers and on pages for signed-in people."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.CUSTODY_PERMISSIONS_POLICY:
            response.setdefault("Permissions-Policy", settings.CUSTODY_PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        # `user` is set by AuthenticationMiddleware, further in; a request answered before it (a static file)
        # has none and keeps its own caching.
        user = getattr(request, "user", None)
        if is_api_path(request.path_info) or (user is not None and user.is_authenticated):
            patch_cache_control(response, no_store=True, private=True)
        return response
