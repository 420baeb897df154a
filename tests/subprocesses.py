"""Processes the tests start for real (gunicorn, Celery workers), and how they are stopped."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, *, timeout: float = 20) -> None:
    """SIGTERM, so the process shuts down as it would in production; SIGKILL if it has not within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
