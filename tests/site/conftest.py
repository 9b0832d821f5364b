"""Fixtures shared by the browser checks of tests/site."""

import pytest
from browsing import launch_chromium


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (a Playwright ``Browser``) for one test module."""
    with launch_chromium() as chromium:
        yield chromium
