import os
import shutil

import pytest
from django.core.cache import caches
from django.db import connection

from supervision.workdays import forget_local_changes

from .factories import make_second_county, make_world

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Playwright's sync API runs an event loop in the test thread; Django's ORM calls there are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "zh-hans"
    # Tests make many keyless requests from one address; the limit's own tests lower it.
    settings.API_ANONYMOUS_RATE_LIMIT = 100_000
    forget_local_changes()  # each test has its own calendar changes
    for cache in caches.all():  # figures, counters, cards: one test's data
        cache.clear()


@pytest.fixture
def world(db):
    return make_world()


@pytest.fixture
def xihu(world):
    """A second county-level programme (杭州市西湖区) beside the world's 瑞安."""
    return make_second_county()


@pytest.fixture
def on_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://…")


@pytest.fixture(scope="session")
def browser_instance():
    """Debian's Chromium, never a downloaded browser."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def demo(transactional_db, settings):
    """The demo world of `make run`, for the browser tests."""
    import io

    from django.core.management import call_command

    settings.DEMO_DATA_ALLOWED = True
    call_command("load_demo", verbosity=0, stdout=io.StringIO())


# `make test-fast` leaves these out (marker "slow"); `make test` and CI run everything. They are
# the whole-world walks (every URL × role, every panel address × role, every step × role × state
# of the workflow: half the suite's tests on its own), the tests that load the whole demo world,
# the fuzzers, the property tests, the schema-driven API run and the ones that drive a browser.
SLOW_MODULES = {
    "test_browser",
    "test_accessibility",
    "test_api_schemathesis",
    "test_access_matrix",
    "test_fuzz",
    "test_demo",
}
SLOW_TESTS = {
    ("test_workflow", "test_step_role_state"),
    ("test_panel", "test_every_panel_address_keeps_to_the_users_scope"),
    ("test_letters", "test_the_demo_has_letters_in_every_state_on_two_projects"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        hypothesis_test = getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
        if (
            module in SLOW_MODULES
            or (module, item.originalname) in SLOW_TESTS
            or "demo" in item.fixturenames
            or hypothesis_test
            or item.get_closest_marker("browser")
        ):
            item.add_marker(pytest.mark.slow)
