"""Find a Chrome or Chromium and its driver, and start it headless for Selenium.

Nothing is ever downloaded: we only use a browser and a chromedriver that are
already installed, and say how to install them when they are not.
"""
import os
import shutil

HOW_TO_GET_A_BROWSER = """\
The browser tests need Chrome or Chromium and a matching chromedriver on PATH.
  Debian/Ubuntu:  sudo apt-get install chromium chromium-driver
                  (Ubuntu: sudo snap install chromium, which includes the driver)
  Fedora:         sudo dnf install chromium chromedriver
  macOS:          brew install --cask google-chrome chromedriver
Or point CHROME_BIN and CHROMEDRIVER at the two programs."""

BROWSER_NAMES = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
MACOS_CHROME = "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"


def find_browser():
    """(browser, driver) paths, or None if either is missing."""
    browser = os.environ.get("CHROME_BIN") or next(
        filter(None, map(shutil.which, BROWSER_NAMES)), None
    )
    if browser is None and os.path.exists(MACOS_CHROME):
        browser = MACOS_CHROME
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    return None


def start_browser(browser, driver):
    """A headless Chrome driven by Selenium. Call .quit() when done."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in [
        "--headless=new",
        "--no-sandbox",  # needed when running as root, as CI does
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1000,700",
        # No phoning home: conference wifi and CI have better things to do.
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]:
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(driver))
