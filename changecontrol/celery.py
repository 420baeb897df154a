"""The Celery app. Workers: `celery -A changecontrol worker`; beat: `celery -A changecontrol beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "changecontrol.settings")

app = Celery("custody")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
