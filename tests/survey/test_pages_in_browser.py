"""The survey page and the results browser, opened from disk in a real headless Chromium.

Needs Chromium and its driver from the system's packages and Selenium
(`apt-get install chromium chromium-driver && pip install selenium`; `.ci/run` installs them).
Screenshots are stored under $FMTHEORY_ARTIFACTS (default: the test's tmp folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fmtheory.runs import execute
from fmtheory.runs.browser import write_index
from fmtheory.survey import run_survey, write_survey

pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
HOW = (
    "install Chromium and Selenium: apt-get install chromium chromium-driver; pip install selenium"
)


def _selenium():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


need_browser = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and _selenium()), reason=f"no Chromium/Selenium here: {HOW}"
)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,2000"):  # fmt: skip
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def store(test_claims, tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    s = run_survey(only=list(test_claims.NAMES), executor="inline", root=root)
    exp = test_claims.HOLDS
    execute(
        exp, exp.make_config(None, {"n": 7, "slope": 2.0}), root=root
    )  # a second run to compare
    bad = root / "survey-holds-000000000000"
    bad.mkdir()
    (bad / "config.yaml").write_text("n: 1\n")  # an interrupted run: no manifest
    write_index(root)
    page, _ = write_survey(s, root / "survey")
    return root, page


def _artifact(name: str, tmp_path: Path) -> Path:
    d = Path(os.environ.get("FMTHEORY_ARTIFACTS", tmp_path))
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def _console_errors(drv) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def _headings_in_order(drv) -> bool:
    from selenium.webdriver.common.by import By

    levels = [int(h.tag_name[1]) for h in drv.find_elements(By.CSS_SELECTOR, "h1,h2,h3,h4,h5,h6")]
    return levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))


@need_browser
def test_survey_page(browser, store, tmp_path):
    from selenium.webdriver.common.by import By

    _, page = store
    browser.get(page.resolve().as_uri())
    cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
    assert [c.get_attribute("id") for c in cards] == [
        "claim-survey-holds", "claim-survey-fails", "claim-survey-crash"]  # fmt: skip
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "✓ holds" in text and "✗ fails" in text and "! error" in text  # not colour alone
    for img in browser.find_elements(By.TAG_NAME, "img"):
        assert img.get_attribute("alt")
        assert browser.execute_script("return arguments[0].naturalWidth", img) > 0
    assert _headings_in_order(browser)
    assert _console_errors(browser) == []
    browser.save_screenshot(str(_artifact("survey.png", tmp_path)))
    assert _artifact("survey.png", tmp_path).stat().st_size > 1000


@need_browser
def test_index_filters_and_compare(browser, store, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    root, _ = store
    browser.get((root / "index.html").resolve().as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert len(rows) == 5  # holds (2 runs), fails, the crashed run, the interrupted folder
    text = browser.find_element(By.ID, "runs").text
    assert "incomplete: no manifest.json" in text and "failed: RuntimeError" in text
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("fails")
    visible = [r for r in rows if r.is_displayed()]
    assert len(visible) == 1 and "survey-fails" in visible[0].text
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("*")
    Select(browser.find_element(By.ID, "f-experiment")).select_by_value("survey-holds")
    picks = [r.find_element(By.CSS_SELECTOR, "input.pick") for r in rows
             if r.is_displayed() and r.find_elements(By.CSS_SELECTOR, "input.pick")]  # fmt: skip
    assert len(picks) == 2
    for p in picks:
        p.click()
    browser.find_element(By.ID, "compare-btn").click()
    body = browser.find_element(By.ID, "compare-body").text
    assert "Config diff" in body and "slope" in body and "the error rises" in body
    assert len(browser.find_elements(By.CSS_SELECTOR, "#compare-body svg path")) == 2
    assert _headings_in_order(browser)
    assert _console_errors(browser) == []
    browser.save_screenshot(str(_artifact("index.png", tmp_path)))
