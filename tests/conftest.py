"""Fixtures for every test suite (tests/steps and tests/tooling)."""
import pytest

from tests.support import CI_HIDES_THE_BROWSER, skip_or_fail
from workshop.browser import HOW_TO_GET_A_BROWSER, find_browser, start_browser


@pytest.fixture(scope="session")
def browser():
    """A headless Chrome driven by Selenium, when one is installed."""
    found = find_browser()
    if found is None:
        skip_or_fail(HOW_TO_GET_A_BROWSER, allowed_in_ci=CI_HIDES_THE_BROWSER)
    driver = start_browser(*found)
    yield driver
    driver.quit()
