"""Playwright fixtures driving Debian's Chromium (filled in by the pages work)."""
