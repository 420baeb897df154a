"""Playwright fixtures driving Debian's Chromium against pytest-django's live server.

Loaded for the whole suite by tests/conftest.py (`pytest_plugins`). Browser tests use `signed_in_page(user)`,
which signs in through the real login form, so the sign-in page, the session cookie and CSRF are exercised
exactly as a person meets them.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",  # containers run as root without user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Nothing outside the live server: no update checks, sync or background fetches during tests.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the session (Playwright's bundled browsers are not used)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not on PATH: install Debian's chromium package (make system-packages)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop on the main thread; Django then refuses ORM calls from the
    # test body ("async context") although nothing runs concurrently with them. This is Django's documented
    # escape hatch for exactly this case.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """A factory of fresh pages, each in its own browser context (its own cookies: one person each)."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-GB")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def signed_in_page(new_page):
    """`signed_in_page(user)` → a page signed in as that user through the real sign-in form."""
    from tests.conftest import PASSWORD

    def sign_in(user, password: str = PASSWORD):
        page = new_page()
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill(user.username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        return page

    return sign_in
