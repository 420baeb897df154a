"""Compatibility alias (deprecated): the WSGI application moved to `config.wsgi:application`.

Kept so `gunicorn changecontrol.wsgi:application` keeps serving; see docs/architecture.md.
"""

from config.wsgi import application

__all__ = ["application"]
