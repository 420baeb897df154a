"""Compatibility alias (deprecated): the Celery app moved to `config.celery` (`celery -A config worker`).

Kept so `celery -A changecontrol worker` and `beat` keep working; see docs/architecture.md.
"""

from config.celery import app

__all__ = ["app"]
