"""The project itself: settings, URLs, the Celery app, WSGI, and the demo that seeds every app.

Importing the package creates the Celery app, so `shared_task`s bind to it whoever starts first (web or worker).
"""

from config.celery import app as celery_app

__all__ = ["celery_app"]
