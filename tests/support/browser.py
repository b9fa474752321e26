"""Debian's chromium, headless, driven by Selenium through Debian's chromedriver.

Both come from apt (``make tools``); Selenium is given their paths, so it never looks for or
downloads a browser of its own. Screenshots go to ARTIFACTS_DIR (git-ignored), one PNG per
page a test looks at, so a person can look at them after the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = Path(os.environ.get("SLATESIM_ARTIFACTS_DIR", REPO_ROOT / ".artifacts"))
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1400, 1000)
T = TypeVar("T")


class BrowserMissing(RuntimeError):
    """chromium or chromedriver is not installed (``make tools`` installs both)."""


class Browser:
    """One headless chromium session against a base URL."""

    def __init__(self, base_url: str, artifacts: Path = ARTIFACTS_DIR / "dashboard") -> None:
        for path in (CHROMIUM, CHROMEDRIVER):
            if shutil.which(path) is None:
                raise BrowserMissing(f"{path} is missing: run `make tools`")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.base_url = base_url.rstrip("/")
        self.artifacts = artifacts
        self.artifacts.mkdir(parents=True, exist_ok=True)

    def open(self, path: str) -> None:
        """Load a page of the service."""
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> WebElement:
        """The first element matching ``css``."""
        return self.driver.find_element("css selector", css)

    def find_all(self, css: str) -> list[WebElement]:
        """Every element matching ``css``."""
        return self.driver.find_elements("css selector", css)

    def text(self, css: str) -> str:
        """The visible text of the first element matching ``css``."""
        return self.find(css).text

    def script(self, source: str, *args: Any) -> Any:
        """Run JavaScript in the page and return its value."""
        return self.driver.execute_script(source, *args)

    def wait(self, condition: Callable[[], T], timeout: float = 15.0, what: str = "") -> T:
        """Poll ``condition`` until it is truthy; its value.

        A page that is replaced between finding an element and reading it (a redirect, the
        script's reload when a job ends) is polled again, as is one whose element is not there
        yet.
        """
        value: T = WebDriverWait(
            self.driver,
            timeout,
            poll_frequency=0.1,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(lambda _: condition(), message=what)
        return value

    def screenshot(self, name: str) -> Path:
        """Save the window as ``<name>.png``."""
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def console_errors(self) -> list[str]:
        """The page's console errors so far (CSP violations among them)."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")  # type: ignore[no-untyped-call]
        return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]

    def close(self) -> None:
        """End the session and the browser."""
        self.driver.quit()
