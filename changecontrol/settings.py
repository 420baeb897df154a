"""Compatibility alias (deprecated): settings moved to `config.settings`.

Kept so a deployment that still sets DJANGO_SETTINGS_MODULE=changecontrol.settings keeps starting; see
docs/architecture.md ("Compatibility aliases") for when it goes.
"""

from config.settings import *  # noqa: F403
