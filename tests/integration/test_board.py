"""The live board in a real headless browser (Debian's chromium and chromedriver, through selenium) over a real
worker on the real broker: an alarm appears, its acceptance countdown turns amber then red as the deadline of a
short test policy passes, and clears when the acceptance arrives. Screenshots go to var/artifacts/."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from streams.reference_files import DEFAULT_DIRECTORY
from tests.integration.conftest import REPO, Stack
from tests.integration.test_sla import _noise_alarm

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "var" / "artifacts"
# Acceptance due 28 s after the alarm: with the default 20 s lead, green for 8 s, amber for 20 s, then red.
ACCEPT_S = 28


@pytest.fixture
def board_district(tmp_path: Path) -> Path:
    target = tmp_path / "district"
    shutil.copytree(DEFAULT_DIRECTORY, target)
    default = {"accept_s": ACCEPT_S, "contact_s": 300, "arrive_s": 600}
    (target / "sla.json").write_text(json.dumps({"default": default, "by_priority": {}, "by_category": {}}))
    return target


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless chromium through the system chromedriver: `make test` installs both (make browser); no download."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: run `make browser` (apt-get chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(what: str, check: Callable[[], Any], timeout: float, stack: Stack) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except WebDriverException:
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"{what} not seen within {timeout:.0f} s\n{stack.worker_log()}")


def _shot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"board-{name}.png"
    driver.save_screenshot(str(path))
    print(f"board screenshot: {path}")
    return path


def test_the_board_shows_a_case_turn_amber_then_red_and_clear_when_accepted(
    stack: Stack, board_district: Path, browser: webdriver.Chrome
) -> None:
    stack.start_worker(ALARMFLOW_DISTRICT_DIR=str(board_district))
    browser.get(f"{stack.settings.web_url}/board")
    assert browser.find_element(By.TAG_NAME, "h1").text == "指挥室实时看板"  # Chinese by default
    browser.find_element(By.ID, "lang").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "Command room live board"
    browser.find_element(By.ID, "lang").click()

    case = f"BOARD-{uuid.uuid4().hex[:6]}"
    stack.publish([_noise_alarm(case, datetime.now(UTC))])
    row = f'tr.case[data-case="{case}"]'
    accept = f'{row} td[data-stage="accept"]'

    def status() -> str:
        return str(browser.find_element(By.CSS_SELECTOR, accept).get_attribute("data-status"))

    _wait("the case on the board", lambda: browser.find_elements(By.CSS_SELECTOR, row), 30, stack)
    seen = [status()]
    assert seen[0] in ("ok", "at_risk"), seen
    cells = browser.find_element(By.CSS_SELECTOR, row).find_elements(By.TAG_NAME, "td")
    assert cells[1].text == "装修噪音" and cells[2].text == "网格员"  # category and force, named in Chinese
    assert cells[3].text and cells[4].text  # its grid and its assignee

    def turned(wanted: str) -> bool:
        s = status()
        if s != seen[-1]:
            seen.append(s)
        return s == wanted

    _wait("amber", lambda: turned("at_risk"), ACCEPT_S, stack)
    _shot(browser, "amber")
    _wait("red", lambda: turned("overdue"), ACCEPT_S, stack)
    assert browser.find_element(By.CSS_SELECTOR, row).get_attribute("data-status") == "overdue"
    assert int(browser.find_element(By.ID, "n-over").text) >= 1
    # past the deadline the cell counts up, with a minus sign, every second
    _wait("the overdue time", lambda: browser.find_element(By.CSS_SELECTOR, accept).text.startswith("−00:0"), 5, stack)
    _shot(browser, "red")
    assert seen[-2:] == ["at_risk", "overdue"], seen

    board = json.loads(urllib.request.urlopen(f"{stack.settings.web_url}/board.json", timeout=10).read())
    worker = next(c["assignee"] for c in board["cases"] if c["case_id"] == case) or "GW-01"
    accepted = {
        "type": "InstructionAccepted",
        "event_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "gridapp",
        "case_id": case,
        "worker_id": worker,
    }
    stack.publish([accepted])
    _wait("the acceptance", lambda: status() == "late", 30, stack)  # met, after its deadline
    assert browser.find_element(By.CSS_SELECTOR, row).get_attribute("data-status") == "ok"  # contact is far off
    assert browser.find_element(By.ID, "n-over").text == "0"
    _shot(browser, "accepted")

    def shown() -> bool:  # found again at each look: the board re-renders its rows every second (stale elements)
        return bool(browser.find_element(By.CSS_SELECTOR, row).is_displayed())

    for name, width, height in (("laptop", 1280, 800), ("wall", 3840, 2160)):
        browser.set_window_size(width, height)
        _wait(f"the case at {width}x{height}", shown, 10, stack)
        _shot(browser, name)
