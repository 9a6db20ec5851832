"""The status page in a real browser (issue 10): headless Chromium (Debian's ``chromium`` and ``chromium-driver``)
driven by selenium loads the page of an in-process daemon while a simulated 1.6 charger runs a session and the mock
province accepts its order. Without a reload, the page shows the charger turn online, the live session with its
energy rising, then the accepted order. Screenshots (desktop, and a phone's 390x844) go to ``tmp_path`` (pytest
artifacts) and ``var/screenshots/``; the desktop one is the README's ``docs/images/status-page.png`` (copied by hand).

Selenium's calls block: they run on a thread (``asyncio.to_thread``) so that the daemon, on this test's event loop,
serves the page meanwhile. Without a browser the test is skipped, unless EDGE_BRIDGE_REQUIRE_BROWSER=1 (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from simulators.charger import Sim16, SimClock
from tests.acceptance.conftest import Site, StartSite, sim_start
from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO / "var" / "screenshots"
DESKTOP, PHONE = (1366, 1500), (390, 844)
WAIT_S = 20.0
DC = "CP-DC-01"


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    missing = [str(p) for p in (CHROMIUM, DRIVER) if not p.exists()]
    return f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)" if missing else None


@pytest.fixture
def browser() -> Iterator[Any]:
    problem = _browser_missing()
    if problem is not None:
        if os.environ.get("EDGE_BRIDGE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EDGE_BRIDGE_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


async def _until(driver: Any, what: str, check: Callable[[Any], Any]) -> Any:
    """Wait (on a thread) until ``check(driver)`` is truthy; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    def wait() -> Any:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(check, message=f"the page never showed {what}")

    return await asyncio.to_thread(wait)


def _online(ocpp_id: str) -> Callable[[Any], Any]:
    return lambda d: d.execute_script(
        "const r = document.querySelector(`tr[data-charger='${arguments[0]}']`); return r && r.dataset.online;",
        ocpp_id,
    )


def _live_energy(driver: Any) -> Decimal | None:
    text = driver.execute_script(
        "const c = document.querySelector('#live .card[data-session]'); return c && c.dataset.energyKwh;"
    )
    return Decimal(text) if text not in (None, "-") else None


def _accepted_order(driver: Any) -> str | None:
    result: str | None = driver.execute_script(
        "const r = document.querySelector(\"#orders tr[data-verdict='accepted']\"); return r && r.dataset.order;"
    )
    return result


async def _charge_slowly(sim: Sim16, n: int, steps: int) -> None:
    """Ten simulated minutes of charging per step, a real half second apart: the page sees the energy grow."""
    for _ in range(steps):
        await sim.charge(n, power_kw=60, minutes=10, sample_every_s=60)
        await asyncio.sleep(0.5)


async def _switch_language(driver: Any) -> None:
    """The button switches every label to Chinese and back, without a reload."""
    heading = "return document.querySelector(\"[data-i18n='chargers']\").textContent;"
    assert await _script(driver, heading) == "Chargers"
    await asyncio.to_thread(lambda: driver.find_element("id", "lang").click())
    assert await _script(driver, heading) == "充电桩"
    await asyncio.to_thread(lambda: driver.find_element("id", "lang").click())
    assert await _script(driver, heading) == "Chargers"


async def _script(driver: Any, script: str) -> Any:
    """Every call that waits for the browser runs on a thread: the daemon serving the page is on this event loop, and
    a call blocking the loop while the page waits for the daemon hangs both (a full run once did, for 120 s)."""
    return await asyncio.to_thread(driver.execute_script, script)


async def _screenshots(driver: Any, tmp_path: Path) -> list[Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, (width, height) in (("status-page.png", DESKTOP), ("status-page-phone.png", PHONE)):
        await asyncio.to_thread(driver.set_window_size, width, height)
        await asyncio.sleep(0.5)  # layout settles at the new width
        await asyncio.to_thread(driver.save_screenshot, str(tmp_path / name))
        shutil.copyfile(tmp_path / name, SCREENSHOTS / name)
        saved.append(tmp_path / name)
    return saved


async def test_the_page_follows_a_session_to_its_accepted_order(
    start_site: StartSite, browser: Any, tmp_path: Path
) -> None:
    site: Site = await start_site()
    url = f"http://127.0.0.1:{site.daemon.app.web_port}/"
    await asyncio.to_thread(browser.get, url)
    await _script(browser, "localStorage.setItem('edge-bridge-lang', 'en'); window.sameLoad = 'yes';")
    assert await _until(browser, "the configured charger offline", _online(DC)) == "0"

    async with Sim16(site.daemon.url(DC), connectors=2, clock=SimClock(sim_start(), speed=0)) as sim:
        await sim.connect(boot=True)
        assert await _until(browser, "the charger online", lambda d: _online(DC)(d) == "1")
        await sim.plug_in(1)
        await sim.start_charging(1)
        await _charge_slowly(sim, 1, 2)
        first = await _until(browser, "the live session's energy", _live_energy)
        await _charge_slowly(sim, 1, 3)
        assert await _until(browser, "the energy rising", lambda d: (e := _live_energy(d)) is not None and e > first)
        await sim.stop_charging(1)
        await site.delivered()
        seq = await _until(browser, "the accepted order", _accepted_order)
        assert seq in {order["StartChargeSeq"] for order in site.province.accepted("notification_orderInfo")}

        await sim.plug_in(2)  # a second session stays live for the screenshot
        await sim.start_charging(2)
        await _charge_slowly(sim, 2, 3)
        await _until(browser, "the second live session", _live_energy)
        assert await _script(browser, "return window.sameLoad;") == "yes"  # never reloaded
        await _switch_language(browser)
        for shot in await _screenshots(browser, tmp_path):
            assert shot.stat().st_size > 10_000, f"{shot} looks empty"
