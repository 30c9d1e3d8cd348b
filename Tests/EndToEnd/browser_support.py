"""What the CI browser tests share (Tests/EndToEnd/console_browser.py, Tests/EndToEnd/amd_browser.py): the
result lines e2e.sh counts, and headless Chromium driven by Selenium with the browser's log kept."""

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

failures = 0


def ok(condition, description, detail=""):
    """Prints one result line ("ok - …" / "not ok - …: detail") and counts the failures."""
    global failures
    if condition:
        print(f"ok - {description}", flush=True)
    else:
        failures += 1
        print(f"not ok - {description}" + (f": {detail}" if detail else ""), flush=True)
    return condition


def headless_chromium(chromium, chromedriver, window="1200,1000"):
    """Debian's chromium through chromium-driver, headless, its console log kept (SEVERE = error)."""
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={window}", "--lang=en"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=options)
