#!/usr/bin/env python3
"""The plugin's AMD module (moodle-plugin/amd/build/progress.min.js) in a real browser, in CI.

CI has no Moodle, so a small FAKE of Moodle's side runs here (127.0.0.1, a free port): it serves a
FIXTURE page (Tests/EndToEnd/amd/page.php: the plugin's own screen.mustache with its example context,
a fixture AMD loader and fixture stubs of core modules, then the built module and its init call as
Moodle's footer makes it), answers the module's core/ajax calls as lib/ajax/service.php does with
the plugin's external functions (tool_delivery_start_operation starts job "fixture-job";
tool_delivery_get_job answers a running Secure with a percentage (`steps[].percent`, 40) and a log
line until the test has seen the bar show it, then the job's success with its result and the site's
state: the banner's and rollback plan's template contexts and the buttons allowed next), and renders
the plugin's templates for the core/templates stub (Tests/EndToEnd/amd/render.php).

Headless Chromium (Selenium) presses Secure and checks that the page draws the running step's
percentage, the log line, then the success rendered from tool_delivery/job_result and the banner
from tool_delivery/banner; the rollback asks in Moodle's dialogue first. It fails on any JavaScript
error (the browser's SEVERE log entries, uncaught errors and unhandled rejections the page caught).

Prints "ok - …" / "not ok - …" lines (Tests/EndToEnd/e2e.sh counts them); exit 1 when one failed.
Usage: amd_browser.py [--chromium PATH] [--chromedriver PATH]
"""

import argparse
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import browser_support
from browser_support import headless_chromium, ok

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))
FILES = {
    "/fixture/loader.js": os.path.join(HERE, "amd", "loader.js"),
    "/fixture/stubs.js": os.path.join(HERE, "amd", "stubs.js"),
    "/amd/build/progress.min.js": os.path.join(PROJECT, "moodle-plugin", "amd", "build", "progress.min.js"),
}
JOB = "fixture-job"


def example_context(template):
    """The example context of one of the plugin's templates (its "Example context (json)")."""
    with open(os.path.join(PROJECT, "moodle-plugin", "templates", f"{template}.mustache"), encoding="utf-8") as handle:
        match = re.search(r"Example context \(json\):\s*(\{.*?\})\s*\}\}", handle.read(), re.S)
    return json.loads(match.group(1))


class FakeMoodle:
    """What the module asks of Moodle, scripted: the state moves to "done" when the test says so."""

    def __init__(self):
        self.page = ""
        self.done = threading.Event()
        self.requests = []
        self.operation = "secure"
        self.render_failures = 0

    def get_job(self, args):
        offset = args.get("offset", 0)
        step = {"operation": "secure", "name": "Secure", "statename": "Running", "message": "",
                "state": "running", "percent": 40}
        answer = {"id": JOB, "operation": "secure", "state": "running", "steps": [step],
                  "lines": ["Copying production into the backup copy…"] if offset == 0 else [],
                  "nextoffset": 1, "totallines": 1, "truncated": False, "statusline": "Secure is running…"}
        if self.operation == "rollback":
            return {"id": JOB, "operation": "rollback", "state": "running", "steps": [], "lines": [],
                    "nextoffset": 0, "totallines": 0, "truncated": False, "statusline": "Rollback is running…"}
        if self.done.is_set():
            banner = example_context("banner")
            banner.update(phase="secured", phasename="FIXTURE banner: Secured")
            step.update(state="succeeded", statename="Succeeded", percent=100, message="secured")
            answer.update(state="succeeded",
                          site={"phase": "secured", "allowed": ["secure", "switch", "run-all", "cancel"], "rollback": True,
                                "bannercontext": json.dumps(banner),
                                "rollbackplancontext": json.dumps(example_context("rollback_plan"))},
                          result={"succeeded": True, "refused": False, "message": "Secure succeeded.", "detail": "",
                                  "served": "Production is served.", "next": "Next: switch to delivery.",
                                  "reload": "Reload the page"})
        return answer

    def service(self, request):
        """One call of lib/ajax/service.php: {"error": false, "data": …} or Moodle's exception."""
        method, args = request.get("methodname"), request.get("args") or {}
        if method == "tool_delivery_start_operation":
            self.operation = args.get("action")
            return {"error": False, "data": {"job": JOB, "operation": args.get("action")}}
        if method == "tool_delivery_get_job" and args.get("jobid") == JOB:
            return {"error": False, "data": self.get_job(args)}
        if method == "tool_delivery_get_console_link":
            return {"error": False, "data": {"url": "http://127.0.0.1/delivery-console/#token=" + "0" * 64,
                                             "expires": "soon"}}
        return {"error": True, "exception": {"errorcode": "invalidparameter", "message": f"FIXTURE: no {method}"}}


def handler_for(fake):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: the test prints its own lines
            pass

        def send(self, status, body, content_type):
            data = body.encode("utf-8") if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            fake.requests.append(("GET", url.path, urllib.parse.parse_qs(url.query)))
            if url.path == "/admin/tool/delivery/index.php":
                self.send(200, fake.page, "text/html; charset=utf-8")
            elif url.path in FILES:
                with open(FILES[url.path], "rb") as handle:
                    self.send(200, handle.read(), "application/javascript")
            else:
                self.send(404, "not found", "text/plain")

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            if url.path == "/fixture/render" and fake.render_failures > 0:
                # Moodle went into maintenance mode between the job's answer and the template's.
                fake.render_failures -= 1
                fake.requests.append(("RENDER-503", url.path, body))
                self.send(503, "<html>Moodle under maintenance</html>", "text/html; charset=utf-8")
                return
            if url.path == "/fixture/render":
                rendered = subprocess.run(["php", os.path.join(HERE, "amd", "render.php")], input=body,
                                          capture_output=True, text=True)
                self.send(200 if rendered.returncode == 0 else 500, rendered.stdout or rendered.stderr,
                          "text/html; charset=utf-8")
                return
            query = urllib.parse.parse_qs(url.query)
            if url.path == "/lib/ajax/service.php":
                requests = json.loads(body)
                fake.requests.append(("CALL", query, requests))
                if query.get("sesskey") != ["fixture-sesskey"]:
                    self.send(200, json.dumps({"error": "Invalid sesskey", "errorcode": "invalidsesskey"}),
                              "application/json")
                    return
                self.send(200, json.dumps([fake.service(request) for request in requests]), "application/json")
            else:
                fake.requests.append(("POST", url.path, body))
                self.send(404, "not found", "text/plain")

    return Handler


def calls(fake, method):
    """The module's calls of one external function so far: their arguments."""
    return [request["args"] for kind, query, requests in (r for r in fake.requests if r[0] == "CALL")
            for request in requests if request["methodname"] == method]


def javascript_errors(driver):
    """SEVERE browser log entries (the browser's own /favicon.ico request aside) and what the page caught."""
    errors = [entry.get("message", "")[:300] for entry in driver.get_log("browser")
              if entry.get("level") == "SEVERE" and "/favicon.ico" not in entry.get("message", "")]
    return errors + [f"page: {error}" for error in (driver.execute_script("return window.fixtureErrors || [];") or [])]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args()

    fake = FakeMoodle()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    fake.page = subprocess.run(["php", os.path.join(HERE, "amd", "page.php"), base], check=True,
                               capture_output=True, text=True).stdout
    threading.Thread(target=server.serve_forever, daemon=True).start()

    driver = headless_chromium(args.chromium, args.chromedriver)
    try:
        wait = WebDriverWait(driver, args.timeout, poll_frequency=0.1)
        driver.get(f"{base}/admin/tool/delivery/index.php")
        loaded = driver.execute_script(
            "var m = null; require(['tool_delivery/progress'], function(p) { m = p; });"
            " return m !== null && typeof m.init === 'function';")
        errors = javascript_errors(driver)
        ok(loaded and not errors, "the built module loads through the AMD loader and init runs without a JavaScript error",
           f"loaded {loaded}; " + " | ".join(errors))

        driver.find_element(By.CSS_SELECTOR, 'input[name="securitycopy"]').click()
        secure = driver.find_element(By.CSS_SELECTOR, '[data-action="tool_delivery-start"][value="secure"]')
        secure.click()
        try:
            question = driver.switch_to.alert.text
            driver.switch_to.alert.accept()
        except WebDriverException:
            question = None
        bar = '[data-region="tool_delivery-bar"][data-operation="secure"]'
        try:
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, bar).text.strip() == "40%")
            running = True
        except TimeoutException:
            running = False
        element = driver.find_element(By.CSS_SELECTOR, bar)
        state = {"text": element.text, "width": element.value_of_css_property("width"),
                 "valuenow": element.get_attribute("aria-valuenow"), "class": element.get_attribute("class")}
        ok(running and state["valuenow"] == "40" and "progress-bar-animated" in state["class"],
           "while Secure runs the step's bar shows the helper's percentage (40%), animated",
           json.dumps(state) + (f"; confirmation {question!r}" if question else ""))
        log = driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-log"]').text
        ok("Copying production into the backup copy" in log, "the streamed log line is shown", repr(log))
        started = calls(fake, "tool_delivery_start_operation")
        posted = [r for r in fake.requests if r[0] == "POST"]
        ok(len(started) == 1 and started[0].get("action") == "secure" and started[0].get("securitycopy") is True
           and not posted, "the action was started once through tool_delivery_start_operation (core/ajax), "
           "with the form's options (the security copy ticked), and no form was posted", repr(started)[:300])
        followed = calls(fake, "tool_delivery_get_job")
        ok(followed and all(args.get("jobid") == JOB for args in followed),
           "the job is followed through tool_delivery_get_job", repr(followed)[:200])
        ok(not calls(fake, "tool_delivery_get_console_link"),
           "no console link is asked for while a Secure runs (it cannot take Moodle down)")

        fake.render_failures = 1
        fake.done.set()
        result = '[data-region="tool_delivery-result"]'
        try:
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, result).is_displayed()
                       and "Secure succeeded." in d.find_element(By.CSS_SELECTOR, result).text)
            finished = True
        except TimeoutException:
            finished = False
        element = driver.find_element(By.CSS_SELECTOR, bar)
        box = driver.find_element(By.CSS_SELECTOR, result)
        outcome = driver.find_elements(By.CSS_SELECTOR, f'{result} [data-region="tool_delivery-outcome"]')
        switch = driver.find_element(By.CSS_SELECTOR, '[data-action="tool_delivery-start"][value="switch"]')
        update = driver.find_element(By.CSS_SELECTOR, '[data-action="tool_delivery-start"][value="update"]')
        banner = driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-banner"][data-phase="secured"]')
        banner_text = banner[0].text if banner else ""
        ok(finished and element.text.strip() == "100%" and "bg-success" in (element.get_attribute("class") or "")
           and len(outcome) == 1 and "alert-success" in (outcome[0].get_attribute("class") or "")
           and "Next: switch to delivery." in box.text,
           "on success the bar is full and green, the result (tool_delivery/job_result) says what happened and what comes next",
           json.dumps({"bar": element.text, "class": element.get_attribute("class"), "result": box.text}))
        ok(switch.is_enabled() and not update.is_enabled() and len(banner) == 1
           and "FIXTURE banner: Secured" in banner_text,
           "the buttons follow the state allowed next (Switch on, Update off) and the banner is drawn again "
           "from its template (tool_delivery/banner) with the context the server sent",
           f"switch {switch.is_enabled()}, update {update.is_enabled()}, banner {len(banner)}: {banner_text[:80]!r}")
        refused = [r for r in fake.requests if r[0] == "RENDER-503"]
        ok(len(refused) == 1 and finished, "a template Moodle did not serve (maintenance mode turned on meanwhile) "
           "is drawn from the next answer: following the job goes on", f"{len(refused)} refused renders")
        errors = [error for error in javascript_errors(driver) if "/fixture/render" not in error]
        ok(not errors, "no JavaScript error while the module followed the job", " | ".join(errors))

        # The emergency rollback asks first, in Moodle's dialogue (core/notification), never the
        # browser's confirm(): Cancel starts nothing, "Roll back now" starts it.
        for box in driver.find_elements(By.CSS_SELECTOR, 'input[name="confirmdatabaserestore"]'):
            if not box.is_selected():
                box.click()
        # The plan drawn again from the server's context asks for the second factor's code too.
        for field in driver.find_elements(By.CSS_SELECTOR, 'input[name="secondfactorcode"]'):
            field.send_keys("123456")
        rollback = driver.find_element(By.CSS_SELECTOR, '[data-action="tool_delivery-start"][value="rollback"]')
        posts = lambda: [args for args in calls(fake, "tool_delivery_start_operation") if args.get("action") == "rollback"]
        rollback.click()
        modal = '[data-fixture="modal"]'
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, modal))
        texts = {part: driver.find_element(By.CSS_SELECTOR, f'{modal} [data-part="{part}"]').text
                 for part in ("title", "question")}
        ok(texts["title"] == "[tool_delivery:rollback:confirmtitle]" and texts["question"].strip() != ""
           and not posts(), "the rollback asks in Moodle's dialogue (core/notification) with the plan's question",
           json.dumps(texts))
        driver.find_element(By.CSS_SELECTOR, f'{modal} [data-action="cancel"]').click()
        time.sleep(0.5)
        ok(not posts() and not driver.find_elements(By.CSS_SELECTOR, modal), "Cancel starts nothing",
           f"{len(posts())} rollback requests")
        rollback.click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, modal))
        driver.find_element(By.CSS_SELECTOR, f'{modal} [data-action="save"]').click()
        try:
            wait.until(lambda d: posts())
        except TimeoutException:
            pass
        codes = [field.get_attribute("value") for field in driver.find_elements(By.CSS_SELECTOR, 'input[name="secondfactorcode"]')]
        ok(len(posts()) == 1 and posts()[0].get("confirmdatabaserestore") is True
           and posts()[0].get("secondfactorcode") == "123456" and codes == [""],
           "confirming in the dialogue starts the rollback (one call, with the ticked confirmation and the code, "
           "which the page then forgets)", f"{posts()!r}; fields after: {codes!r}")
        try:
            wait.until(lambda d: calls(fake, "tool_delivery_get_console_link"))
        except TimeoutException:
            pass
        ok(len(calls(fake, "tool_delivery_get_console_link")) == 1,
           "following a rollback (which can take Moodle down) asks once for the emergency console's link",
           f"{len(calls(fake, 'tool_delivery_get_console_link'))} calls")
        errors = javascript_errors(driver)
        ok(not errors, "no JavaScript error around the dialogue", " | ".join(errors))
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - any failure of the harness is a failed test
        ok(False, "the AMD module's browser test ran to its end", f"{type(error).__name__}: {error}")
    sys.exit(1 if browser_support.failures else 0)
