"""``tidecast serve`` in a real browser: Debian's chromium, headless, driven by Selenium, against a running
``tidecast run`` on the embedded servers. The fan chart, the accuracy panel and the counters show live values,
and a later close shows on a reload. Screenshots go to ``$TIDECAST_TEST_OUTPUT`` (default ``tests/output``).

Chromium and its driver are installed with apt-get when the machine lacks them (the test needs a browser;
it is not skipped)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from pipeline import TIDECAST, env_for, produce

from tidecast.config import Settings
from tidecast.producers.faults import with_faults
from tidecast.producers.synthetic import SyntheticConfig, generate
from tidecast.stream.timebuckets import from_iso

pytestmark = pytest.mark.integration

OUTPUT = Path(os.environ.get("TIDECAST_TEST_OUTPUT", Path(__file__).resolve().parents[1] / "output"))


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """Paths of Debian's chromium and chromedriver, installed with apt-get (as root) when missing."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]):
            done = subprocess.run(command, capture_output=True, env=env, timeout=1200)
            assert done.returncode == 0, f"{' '.join(command)}: {done.stderr.decode()[-2000:]}"
        found = shutil.which("chromium"), shutil.which("chromedriver")
    browser, driver = found
    assert browser and driver, "chromium and chromedriver are not on PATH after apt-get install"
    return browser, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_the_web_view_shows_live_values_in_a_real_browser(settings: Settings, chromium: tuple[str, str],
                                                          tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    settings = replace(settings, idle_timeout_seconds=1)
    config = SyntheticConfig(series=12, days=40, seed=4, stores=2)
    docs = list(generate(config))
    split = config.start.timestamp() * 1000 + 34 * 86_400_000  # the last days arrive later, while it runs
    produce(settings, with_faults(iter([d for d in docs if from_iso(d["ts"]) < split]), 0.0, 0.0))
    env = env_for(settings)
    runner = subprocess.Popen([*TIDECAST, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    report = tmp_path / "report"  # a backtest report folder, as `backtest --report` writes it
    report.mkdir()
    (report / "report.md").write_text("# Backtest of sales.csv\n\n| model | mase |\n|---|---|\n| tidecast | 0.87 |\n")
    shutil.copy(Path(__file__).resolve().parents[2] / "docs/img/stock_curve_online_retail.png", report)
    port = free_port()
    server = subprocess.Popen([*TIDECAST, "serve", "--port", str(port), "--refresh", "2", "--report", str(report)],
                              env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    browser = None
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: _answers(url + "health"), 60, "tidecast serve to answer")
        browser = _start(lambda: webdriver.Chrome(service=Service(chromium[1]), options=options))

        def loaded(selector: str) -> list:
            browser.get(url)
            return browser.find_elements(By.CSS_SELECTOR, selector)

        # forecasts and targets are followed by two threads: the target may show a moment after the fan
        wait_for(lambda: loaded("#fan polygon.fan") and browser.find_elements(By.CSS_SELECTOR, "#fan .order-up-to"),
                 180, "the fan chart and its stock target")
        assert browser.find_elements(By.CSS_SELECTOR, "#fan polyline.actuals")
        assert browser.find_elements(By.CSS_SELECTOR, "#fan polyline.median")
        assert number(browser.find_element(By.CSS_SELECTOR, "#counters .ingested").text) > 0
        assert number(browser.find_element(By.CSS_SELECTOR, "#fan .order-up-to").text) >= 0
        wait_for(lambda: loaded("#accuracy .tidecast") and browser.find_element(
            By.CSS_SELECTOR, "#accuracy .tidecast").text != "-", 120, "the accuracy panel")
        tide = number(browser.find_element(By.CSS_SELECTOR, "#accuracy .tidecast").text)
        naive = number(browser.find_element(By.CSS_SELECTOR, "#accuracy .naive").text)
        assert tide >= 0 and naive >= 0
        assert "Backtest of sales.csv" in browser.find_element(By.CSS_SELECTOR, "#report pre").text
        image = browser.find_element(By.CSS_SELECTOR, "#report img")
        assert browser.execute_script("return arguments[0].naturalWidth", image) > 0  # the PNG was served
        wait_for(lambda: loaded("#moved h2.explained"), 180, "an explained forecast move")
        OUTPUT.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(OUTPUT / "serve.png"))
        version = number(browser.find_element(By.CSS_SELECTOR, "#fan .model-version").text)

        produce(settings, with_faults(iter([d for d in docs if from_iso(d["ts"]) >= split]), 0.0, 0.0))
        wait_for(lambda: loaded("#fan .model-version") and number(
            browser.find_element(By.CSS_SELECTOR, "#fan .model-version").text) > version, 180,
            "a later close on the page")
        browser.save_screenshot(str(OUTPUT / "serve-later.png"))
        print(f"screenshots: {OUTPUT / 'serve.png'}, {OUTPUT / 'serve-later.png'}")
    finally:
        if browser is not None:
            browser.quit()
        for process in (server, runner):
            process.send_signal(signal.SIGTERM)
        for process in (server, runner):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert server.returncode == 0, server.stderr.read().decode()[-3000:] if server.stderr else ""
    assert runner.returncode == 0, runner.stderr.read().decode()[-3000:] if runner.stderr else ""


def _start(launch):
    """The browser; a first launch right after installing chromium can fail to open its DevTools port: one
    more try then."""
    from selenium.common.exceptions import WebDriverException

    try:
        return launch()
    except WebDriverException as exc:
        print(f"chromium did not start ({exc.msg}); trying once more")
        time.sleep(2)
        return launch()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False
