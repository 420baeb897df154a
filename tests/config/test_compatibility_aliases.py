"""The deprecated names of the old layout still start Custody (docs/architecture.md, "Compatibility aliases")."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

from celery.app.utils import find_app

import config.celery
import config.settings
import config.wsgi

ROOT = Path(__file__).resolve().parents[2]


def test_celery_minus_a_changecontrol_finds_the_one_celery_app():
    assert find_app("changecontrol") is config.celery.app


def test_gunicorn_changecontrol_wsgi_serves_the_one_application():
    assert importlib.import_module("changecontrol.wsgi").application is config.wsgi.application


def test_django_settings_module_changecontrol_settings_is_the_same_settings():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "changecontrol.settings"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.ROOT_URLCONF, len(settings.INSTALLED_APPS))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [config.settings.ROOT_URLCONF, str(len(config.settings.INSTALLED_APPS))]
