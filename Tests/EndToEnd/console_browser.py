#!/usr/bin/env python3
"""The emergency console in a real browser (headless Chromium driven by Selenium), in CI.

Opens <url>/delivery-console/#token=TOKEN as an administrator would (the token was issued through
the plugin's client), fails on any JavaScript error (the browser's SEVERE log entries: uncaught
errors, a script the Content-Security-Policy blocks, a failed request), checks that the page fills
in the state the helper reports, then (with --rollback) presses **Emergency rollback**, goes
through the page's own confirmation dialog (Escape first: nothing happens), and checks that the
rollback happened: the page and the helper's status (the console's own status route, with the token) say rolled_back, and the site (the
fixture's index.php, "fixture-site version=… tree=…") serves the expected copy.

Run by Tests/EndToEnd/e2e.sh (Debian's chromium, chromium-driver and python3-selenium); prints
"ok - …" / "not ok - …" lines, which e2e.sh counts, and exits 1 when one failed.

Usage: console_browser.py --url URL --token-file FILE [--phase idle --served production]
           [--rollback --expect-tree backup --expect-version 2024100900]
"""

import argparse
import json
import re
import sys
import time
import urllib.request

from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

import browser_support
from browser_support import headless_chromium, ok



def http(url, headers=None):
    """GET: (status, body)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def served(base):
    """What the fixture site serves: (version, tree) or (None, raw)."""
    status, body = http(base + "/")
    match = re.fullmatch(r"fixture-site version=(\S+) tree=(\S+)\n?", body)
    return (match.group(1), match.group(2)) if status == 200 and match else (None, f"HTTP {status} {body[:200]}")


def helper_status(base, token):
    """The helper's status through the console's own route: (phase, served, latest job)."""
    status, body = http(base + "/delivery-console/status", {"X-Delivery-Console-Token": token})
    answer = json.loads(body) if status == 200 else {}
    site = answer.get("site", {}).get("site", {})
    return site.get("phase"), site.get("served"), answer.get("job") or {}


def javascript_errors(driver):
    """The browser's SEVERE log entries since the last call. The one request a browser makes by
    itself, /favicon.ico (nginx answers 404: the console has none), is not the page's."""
    entries = driver.get_log("browser")
    return [entry.get("message", "")[:300] for entry in entries
            if entry.get("level") == "SEVERE" and "/favicon.ico" not in entry.get("message", "")]


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text.strip()


def browser_confirm(driver):
    """Accepts the browser's own confirm box if one is open: its text, or None."""
    try:
        alert = driver.switch_to.alert
        question = alert.text
        alert.accept()
        return question
    except WebDriverException:
        return None


def dialog_open(driver):
    return driver.execute_script("var d = document.getElementById('confirmdialog'); return !!(d && d.open);")


def confirm_rollback(driver, wait):
    """Goes through the console's confirmation: it must be the page's own <dialog> (modal, the
    keyboard's focus on its Cancel button, Escape closes it without a rollback), never the
    browser's confirm box. Presses Emergency rollback, Escape, then Emergency rollback and the
    dialog's Roll back now. Returns True when the rollback was confirmed in the page's dialog."""
    button = driver.find_element(By.ID, "rollback")
    before = {name: text(driver, name) for name in ("phase", "job", "message")}
    button.click()
    question = browser_confirm(driver)
    if question is not None:
        ok(False, "the console asks in its own dialog, not with the browser's confirm box",
           f"the browser's confirm box asked {question!r} (accepted, to check the rollback all the same)")
        return False
    try:
        wait.until(dialog_open)
    except TimeoutException:
        ok(False, "pressing Emergency rollback opens the page's confirmation dialog")
        return False
    focused = driver.execute_script("return document.activeElement && document.activeElement.id;")
    modal = driver.execute_script("return document.querySelector('#confirmdialog:modal') !== null;")
    question = text(driver, "confirmquestion")
    ok(modal and focused == "confirmno" and question != "",
       "the rollback asks in the page's own modal dialog, the plan as its question, focus on Cancel",
       f"modal {modal}, focus on {focused!r}, question {question!r}")
    driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    try:
        wait.until(lambda d: not dialog_open(d))
        closed = True
    except TimeoutException:
        closed = False
    time.sleep(2.5)  # a poll of the page (every 2 s) would show a rollback started by mistake
    after = {name: text(driver, name) for name in ("phase", "job", "message")}
    ok(closed and after == before, "Escape closes the dialog and nothing is started",
       f"closed {closed}, before {before}, after {after}")
    button.click()
    wait.until(dialog_open)
    driver.find_element(By.ID, "confirmyes").click()
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the site's base URL (nginx)")
    parser.add_argument("--token-file", required=True, help="a file holding a console token")
    parser.add_argument("--phase", default="idle", help="the phase the page must show first")
    parser.add_argument("--served", default="production", help="the copy the page must show served first")
    parser.add_argument("--rollback", action="store_true", help="press Emergency rollback and check it")
    parser.add_argument("--expect-tree", default="backup", help="the copy served after the rollback")
    parser.add_argument("--expect-version", default="", help="the version the site serves after the rollback")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    base = args.url.rstrip("/")
    with open(args.token_file, encoding="utf-8") as handle:
        token = handle.read().strip()

    driver = headless_chromium(args.chromium, args.chromedriver)
    try:
        wait = WebDriverWait(driver, args.timeout, poll_frequency=0.2)
        driver.get(f"{base}/delivery-console/#token={token}")
        try:
            wait.until(lambda d: text(d, "phase") not in ("…", ""))
            filled = True
        except TimeoutException:
            filled = False
        state = {name: text(driver, name) for name in ("phase", "served", "who", "expires")}
        ok(filled and state["phase"] == args.phase and state["served"] == args.served
           and state["who"] not in ("…", "") and state["expires"] not in ("…", ""),
           f"the console fills in the state from the helper (phase {args.phase}, served {args.served})",
           json.dumps(state, ensure_ascii=False))
        ok("token" not in driver.current_url, "the token left the address bar (history.replaceState)",
           driver.current_url)
        errors = javascript_errors(driver)
        ok(not errors, "no JavaScript error while the console loads and polls", " | ".join(errors))
        if not args.rollback:
            return
        button = driver.find_element(By.ID, "rollback")
        try:
            wait.until(lambda d: d.find_element(By.ID, "rollback").is_enabled())
        except TimeoutException:
            pass
        plan = text(driver, "plan")
        ok(button.is_enabled() and plan != "", "the Emergency rollback button is enabled, its plan shown",
           f"enabled {button.is_enabled()}, plan {plan!r}")
        before = served(base)
        confirm_rollback(driver, wait)
        try:
            wait.until(lambda d: text(d, "phase") == "rolled_back" and text(d, "served") == args.expect_tree
                       and text(d, "job") == "rollback — succeeded")
            shown = True
        except TimeoutException:
            shown = False
        ok(shown, f"after the click the console shows rolled_back, served {args.expect_tree}, the rollback succeeded",
           json.dumps({name: text(driver, name) for name in ("phase", "served", "job", "message")},
                      ensure_ascii=False))
        phase, tree, job = helper_status(base, token)
        ok(phase == "rolled_back" and tree == args.expect_tree and job.get("operation") == "rollback"
           and job.get("state") == "succeeded",
           f"the helper's status: phase rolled_back, served {args.expect_tree}, its latest job the rollback, succeeded",
           f"phase {phase}, served {tree}, job {job.get('operation')} {job.get('state')}")
        version, served_tree = served(base)
        ok(version is not None and re.fullmatch(rf"\.?{re.escape(args.expect_tree)}(\.[A-Za-z0-9-]+)?", served_tree)
           and (not args.expect_version or version == args.expect_version),
           f"the site serves the {args.expect_tree} copy"
           + (f" (version {args.expect_version})" if args.expect_version else "") + " after the console's rollback",
           f"before the click {before}, now {(version, served_tree)}")
        errors = javascript_errors(driver)
        ok(not errors, "no JavaScript error during the rollback", " | ".join(errors))
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - any failure of the harness is a failed test
        ok(False, "the console's browser test ran to its end", f"{type(error).__name__}: {error}")
    sys.exit(1 if browser_support.failures else 0)
