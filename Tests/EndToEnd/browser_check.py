#!/usr/bin/env python3
"""Browser check of tool_delivery on a live Moodle site (headless Chromium driven by Selenium).

It logs in as an administrator, opens Site administration > Server > Code delivery
(/admin/tool/delivery/index.php) and presses every button as a person would, checking after each
what the page shows (banner state, served copy, progress bars, result message, log) and, when
run on the server, what the site serves. Not part of CI (CI has no Moodle).

Requirements (Debian 12):
    apt-get install -y chromium chromium-driver
    pip install selenium

Usage:
    python3 Tests/EndToEnd/browser_check.py --url http://127.0.0.1:8080 --user admin --password 'Admin-1234'

Options worth knowing:
    --out DIR           screenshots and page sources (default /tmp/browser-check)
    --steps LIST        comma-separated subset of: page,secure,switch,update,restore,runall,
                        cancel,rollback,finish,refused,helperdown,upgrade,cancelafterrollback,
                        status,logs (default: all, in that order). "refused" presses Cancel on a
                        page where the state does not allow it (as a stale page would) and expects
                        the helper's refusal shown;
                        "helperdown" points the plugin's socket setting elsewhere through the
                        admin settings page, checks the page and Reports > System status say the
                        helper is down, then puts the setting back. "upgrade" (needs --author)
                        publishes a revision that raises the version of --upgrade-plugin and
                        runs Run all: step 4 then runs Moodle's upgrade (in maintenance mode
                        when Moodle requires it) while the page keeps following the job.
                        "cancelafterrollback" (needs --author) replays a sequence that once served
                        code ahead of the database: it publishes such a revision, runs Secure (with
                        the security copy), Switch, Update and Restore (Moodle's upgrade runs),
                        then the Emergency rollback of code and database (confirmed; when it logs
                        the administrator out, the script logs in again), then Cancel; either
                        Cancel serves production whose code matches the database (upgrade.php
                        --is-pending, with --site-root) and says nothing untrue, or it is refused
                        with its reason shown while the served copy matches the database (then
                        Restore production ends the step).
    --totp-secret S     the administrator's second factor secret (from deliveryctl admin enrol-totp):
                        the code is computed when the rollback form asks for one
    --site-root DIR     the delivery site root (holds `current`): checks `readlink current`
                        after each step (the script must then run on the server)
    --author DIR        a clone of the upstream repository from which a new revision is published
                        before "update" and "run all" (needs root, to run git as --code-owner);
                        without it the steps run against whatever upstream holds
    --code-owner USER   the user that owns the clones (default moodlecode)
    --marker FILE       the file of the repository the published revisions change (default
                        delivery-e2e-marker.txt, served by the web server as a static file: the
                        script fetches it to see which revision the site serves)
    --upgrade-plugin D  the plugin whose version.php "upgrade" raises (default blocks/html)
    --watch-log FILE    a log to watch for new PHP errors/warnings during the run (repeatable,
                        e.g. /var/log/nginx/moodle-real.error.log /var/log/php8.2-fpm.log)
    --timeout S         seconds allowed for one operation (default 900)

Example on the test machine, as root:
    python3 Tests/EndToEnd/browser_check.py --url http://127.0.0.1:8080 --user admin \\
        --password Admin-1234 --site-root /srv/moodle-real/moodle-delivery \\
        --author /srv/moodle-real/author --watch-log /var/log/nginx/moodle-real.error.log \\
        --watch-log /var/log/php8.2-fpm.log

The run ends with a summary of every check and exits 1 when one failed. The site is left served
from production (the last steps roll back, then restore production).
"""

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service

# Selenium may otherwise try to download drivers and send usage statistics: this check talks to
# loopback only.
os.environ.setdefault("SE_AVOID_STATS", "true")
os.environ.setdefault("SE_OFFLINE", "true")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

PAGE = "/admin/tool/delivery/index.php"
ALL_STEPS = ["page", "secure", "switch", "update", "restore", "runall", "cancel", "rollback",
             "finish", "refused", "helperdown", "upgrade", "cancelafterrollback", "status", "logs"]
# What Moodle or PHP print into a page when something is wrong: in the HTML (debugging() output,
# PHP's own messages) and in the visible text (exceptions, missing strings shown as [[key]]).
HTML_PROBLEMS = re.compile(r'(data-rel="debugging"|<b>(Warning|Notice|Deprecated|Fatal error)</b>)')
TEXT_PROBLEMS = re.compile(
    r"(Coding error detected|Exception - |Stack trace:|Debug info:|Error code: |\[\[[A-Za-z0-9:_]+\]\])")


class Checker:
    """Runs the checks and remembers their results."""

    def __init__(self, args):
        self.args = args
        self.base = args.url.rstrip("/")
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.results = []
        self.warnings = []
        self.last_log = ""
        self.last_result = ("", "")
        self.unreachable_seen = False
        self.shot = 0
        self.revisions = 0
        self.log_sizes = {}
        for path in args.watch_log:
            self.log_sizes[path] = os.path.getsize(path) if os.path.exists(path) else 0
        options = webdriver.ChromeOptions()
        options.binary_location = args.chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1200", "--lang=en"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
        self.driver.set_page_load_timeout(120)

    # ----- reporting -------------------------------------------------------------------------

    def check(self, name, ok, detail=""):
        self.results.append((name, bool(ok), detail))
        print(f"[{'PASS' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def warn(self, name, detail=""):
        self.warnings.append((name, detail))
        print(f"[WARN] {name}" + (f": {detail}" if detail else ""), flush=True)

    def screenshot(self, label):
        """A full-page screenshot (the window grows to the page's height) and the page source."""
        self.shot += 1
        name = f"{self.shot:02d}-{label}"
        driver = self.driver
        height = driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);")
        driver.set_window_size(1400, min(max(int(height) + 150, 900), 6000))
        path = os.path.join(self.out, name + ".png")
        driver.save_screenshot(path)
        with open(os.path.join(self.out, name + ".html"), "w", encoding="utf-8") as handle:
            handle.write(driver.page_source)
        driver.set_window_size(1400, 1200)
        print(f"       screenshot {path}", flush=True)
        return path

    def page_problems(self, label):
        source = self.driver.page_source
        text = self.driver.find_element(By.TAG_NAME, "body").text
        found = sorted({match.group(0) for match in HTML_PROBLEMS.finditer(source)}
                       | {match.group(0) for match in TEXT_PROBLEMS.finditer(text)})
        self.check(f"{label}: no PHP/Moodle errors or missing strings in the page", not found,
                   ", ".join(found))
        errors = []
        try:
            for entry in self.driver.get_log("browser"):
                message = entry.get("message", "")
                # Resources of other hosts (a CDN the server cannot reach) are not the page's fault.
                if entry.get("level") == "SEVERE" and (message.startswith(self.base) or "://" not in
                                                       message.split(" ")[0]):
                    errors.append(entry.get("message", "")[:300])
        except Exception:  # noqa: BLE001 - the log is a bonus
            pass
        # The browser logs every failed request; a poll answered 503 while Moodle is in maintenance
        # mode is expected (the page says that Moodle does not answer and keeps following the job).
        errors = [e for e in errors if not ("/admin/tool/delivery/progress.php" in e and "status of 503" in e)]
        ours = [e for e in errors if "tool_delivery" in e or "/admin/tool/delivery/" in e]
        self.check(f"{label}: no JavaScript errors of the plugin in the console", not ours, " | ".join(ours))
        others = [e for e in errors if e not in ours]
        if others:
            # Errors of the site's other code (e.g. the first page after a cache purge): reported, not ours.
            self.warn(f"{label}: JavaScript errors of the site in the console", " | ".join(others))

    # ----- the server side -------------------------------------------------------------------

    def served_link(self):
        if not self.args.site_root:
            return None
        return os.readlink(os.path.join(self.args.site_root, "current"))

    def fetch(self, path):
        """Status and body of a plain HTTP GET (what the site serves to anybody)."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=60) as answer:
                return answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
        except Exception as error:  # noqa: BLE001
            return 0, str(error)

    def site_serves(self, label, copy, marker=None):
        """Checks the served tree (`current`), the login page and the marker file."""
        if copy is not None and self.args.site_root:
            link = self.served_link()
            self.check(f"{label}: current -> releases/{copy}", link == f"releases/{copy}", f"readlink: {link}")
        status, body = self.fetch("/login/index.php")
        self.check(f"{label}: the login page answers 200", status == 200 and "loginbtn" in body,
                   f"HTTP {status}")
        if marker is not None:
            status, body = self.fetch("/" + self.args.marker)
            served = body.strip() if status == 200 else f"HTTP {status}"
            self.check(f"{label}: the site serves marker {marker!r}", served == marker, f"served {served!r}")

    def code_matches_database(self, label):
        """Moodle's CLI in the served tree says no upgrade is pending: its code matches the database."""
        if not self.args.site_root:
            return None
        script = os.path.join(self.args.site_root, "current", "admin", "cli", "upgrade.php")
        answer = subprocess.run(["runuser", "-u", "www-data", "--", "php", script, "--is-pending"],
                                capture_output=True, text=True)
        output = " ".join((answer.stdout + answer.stderr).split())[:300]
        return self.check(f"{label}: the served code matches the database (upgrade.php --is-pending exits 0)",
                          answer.returncode == 0,
                          f"current -> {self.served_link()}, exit {answer.returncode}: {output}")

    def as_owner(self, *command, input=None):
        return subprocess.run(["setpriv", f"--reuid={self.args.code_owner}", f"--regid={self.args.code_owner}",
                               "--init-groups", "env", f"HOME={os.path.expanduser('~' + self.args.code_owner)}",
                               "GIT_TERMINAL_PROMPT=0", *command],
                              cwd=self.args.author, check=True, capture_output=True, text=True,
                              input=input).stdout

    def publish(self, bump=None):
        """Publishes a new upstream revision that changes the marker file (and raises the version of
        the plugin `bump`, so that Moodle needs an upgrade); returns the marker's text."""
        if not self.args.author:
            return None
        self.revisions += 1
        text = f"delivery e2e revision {self.revisions} {datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}"
        self.as_owner("git", "pull", "--ff-only", "-q")
        path = os.path.join(self.args.author, self.args.marker)
        self.as_owner("sh", "-c", 'printf "%s\\n" "$1" > "$2"', "sh", text, path)
        self.as_owner("git", "add", "--", self.args.marker)
        if bump:
            version = os.path.join(self.args.author, bump, "version.php")
            with open(version, encoding="utf-8", newline="") as handle:
                source = handle.read()
            match = re.search(r"(\$plugin->version\s*=\s*)(\d+)", source)
            raised = int(match.group(2)) + 1
            source = source[:match.start(2)] + str(raised) + source[match.end(2):]
            self.as_owner("sh", "-c", 'cat > "$1"', "sh", version, input=source)
            self.as_owner("git", "add", "--", os.path.join(bump, "version.php"))
            text_version = f"{bump} {raised}"
            print(f"       raised {text_version}", flush=True)
        self.as_owner("git", "commit", "-q", "-m", f"e2e: {text}")
        self.as_owner("git", "push", "-q", "origin", "HEAD")
        head = self.as_owner("git", "rev-parse", "--short=10", "HEAD").strip()
        print(f"       published upstream {head}: {text}", flush=True)
        return text

    def current_marker(self):
        status, body = self.fetch("/" + self.args.marker)
        return body.strip() if status == 200 else None

    def new_log_lines(self):
        lines = []
        for path, size in self.log_sizes.items():
            if not os.path.exists(path):
                continue
            with open(path, "rb") as handle:
                handle.seek(size)
                for line in handle.read().decode("utf-8", "replace").splitlines():
                    if re.search(r"PHP (Warning|Notice|Deprecated|Fatal|Parse)|tool/delivery|tool_delivery", line):
                        # The same message for several requests counts once (without date and request).
                        message = re.sub(r"^\S+ \S+ \[\w+\] [^:]*: \*\d+ ", "", line)
                        message = re.sub(r"\?[^ ]*", "", message)[:300]
                        if f"{os.path.basename(path)}: {message}" not in lines:
                            lines.append(f"{os.path.basename(path)}: {message}")
        return lines

    # ----- the page --------------------------------------------------------------------------

    def login(self):
        driver = self.driver
        for attempt in range(3):
            try:
                driver.get(self.base + "/login/index.php")
                WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
                time.sleep(1)  # Let the login page's own JavaScript settle before typing.
                username = driver.find_element(By.ID, "username")
                username.clear()
                username.send_keys(self.args.user)
                password = driver.find_element(By.ID, "password")
                password.clear()
                password.send_keys(self.args.password)
                if (username.get_attribute("value"), password.get_attribute("value")) != (
                        self.args.user, self.args.password):
                    raise StaleElementReferenceException("the login fields did not keep what was typed")
                driver.find_element(By.ID, "loginbtn").click()
                WebDriverWait(driver, 60).until(lambda d: "/login/index.php" not in d.current_url)
                break
            except (StaleElementReferenceException, TimeoutException):
                if attempt == 2:
                    raise
        self.check("login", "/login/" not in driver.current_url, driver.current_url)
        try:
            driver.get_log("browser")  # What the login page said is not ours to judge.
        except Exception:  # noqa: BLE001
            pass

    def open_page(self):
        self.driver.get(self.base + PAGE)
        WebDriverWait(self.driver, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-screen"], '
                                                       '[data-region="tool_delivery-helperdown"]'))
        # The AMD module is loaded once Moodle's page JS has finished.
        try:
            WebDriverWait(self.driver, 30).until(lambda d: d.execute_script(
                "return !!(window.M && M.util && M.util.pending_js && M.util.pending_js.length === 0"
                " && window.require && require.defined && require.defined('tool_delivery/progress'));"))
            return True
        except TimeoutException:
            return False

    def banner(self):
        driver = self.driver
        found = driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-banner"]')
        if not found:
            return {}
        banner = found[0]
        text = banner.text
        served = ""
        match = re.search(r"Served copy\s*\n\s*(.+)", text)
        if match:
            served = match.group(1).strip()
        production = ""
        match = re.search(r"\nProduction\s*\n\s*(\S+ @ \S+)", text)
        if match:
            production = match.group(1).strip()
        return {"phase": banner.get_attribute("data-phase"), "served": served, "production": production,
                "text": text}

    def button(self, action):
        return self.driver.find_element(By.CSS_SELECTOR, f'button[data-action="tool_delivery-start"][value="{action}"]')

    def enabled_buttons(self):
        return [b.get_attribute("value") for b in self.driver.find_elements(
            By.CSS_SELECTOR, 'button[data-action="tool_delivery-start"]') if b.is_enabled()]

    def run_button(self, label, action, fill=None, confirm=False, expect_phase=None, expect_served=None,
                   expect_success=True):
        """Reloads the page, fills the options, presses a button, follows the progress to the result.

        expect_success None accepts a success or a refusal (a warning); self.last_result keeps
        which ("success", "refusal" or "failure") and the result's text. When Moodle logs the
        administrator out meanwhile (a rollback that restores the database snapshot), it logs in
        again and follows the job from the page's link."""
        driver = self.driver
        self.last_log = ""
        self.last_result = ("", "")
        amd = self.open_page()
        self.check(f"{label}: the AMD module tool_delivery/progress is loaded", amd)
        enabled = self.enabled_buttons()
        if not self.check(f"{label}: the button '{action}' is enabled", action in enabled, f"enabled: {enabled}"):
            self.screenshot(f"{label}-disabled")
            return None
        if fill:
            fill(driver)
        before_url = driver.current_url
        started = time.time()
        self.button(action).click()
        if confirm:
            try:
                WebDriverWait(driver, 10).until(lambda d: d.switch_to.alert)
                alert = driver.switch_to.alert
                self.check(f"{label}: a confirmation is asked", bool(alert.text), alert.text)
                alert.accept()
            except (TimeoutException, NoAlertPresentException):
                self.check(f"{label}: a confirmation is asked", False, "no confirm() dialog")
        # Progress: the live area shows up and the bars move.
        try:
            WebDriverWait(driver, 30).until(lambda d: d.find_element(
                By.CSS_SELECTOR, '[data-region="tool_delivery-progress"]').is_displayed())
            self.check(f"{label}: the live progress area is shown", True)
        except TimeoutException:
            self.check(f"{label}: the live progress area is shown", False)
        time.sleep(1.5)
        self.check(f"{label}: the page stayed in place (started through AJAX)",
                   driver.current_url.split("?")[0] == before_url.split("?")[0], driver.current_url)
        others = [b for b in self.enabled_buttons() if b != "rollback"]
        results = driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-result"]')
        if not results:
            self.check(f"{label}: the delivery page is still shown", False, driver.current_url)
            self.screenshot(f"{label}-lost")
            self.page_problems(label)
            return None
        if not results[0].is_displayed():
            self.check(f"{label}: while it runs, only Emergency rollback stays enabled", not others,
                       f"enabled: {others}")
        self.screenshot(f"{label}-running")
        # Wait for the result; when Moodle stops answering meanwhile (maintenance mode during
        # step 4), the page says so: take a screenshot of that once.
        unreachable_seen = False
        deadline = time.time() + self.args.timeout
        while not driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-result"]').is_displayed():
            if time.time() > deadline:
                self.check(f"{label}: a result is shown within {self.args.timeout}s", False)
                self.screenshot(f"{label}-timeout")
                return None
            notice = driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-unreachable"]')
            if not unreachable_seen and notice and notice[0].is_displayed():
                unreachable_seen = True
                print(f"       {label}: the page says Moodle does not answer: {notice[0].text[:120]!r}", flush=True)
                self.screenshot(f"{label}-moodle-unreachable")
            lost = driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-sessionlost"]')
            if lost and lost[0].is_displayed():
                link = driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-login"]').get_attribute("href")
                print(f"       {label}: the page says the session has ended: {lost[0].text[:200]!r}", flush=True)
                self.screenshot(f"{label}-session-lost")
                self.login()
                driver.get(link)
            time.sleep(0.5)
        self.unreachable_seen = unreachable_seen
        elapsed = time.time() - started
        result = driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-result"]')
        classes = result.get_attribute("class") or ""
        succeeded = "alert-success" in classes
        outcome = "success" if succeeded else "refusal" if "alert-warning" in classes else "failure"
        self.last_result = (outcome, result.text)
        if expect_success is None:
            self.check(f"{label}: the result says success or refusal ({elapsed:.0f}s)", outcome != "failure",
                       f"{outcome}: " + result.text.replace("\n", " | "))
        else:
            self.check(f"{label}: the result says {'success' if expect_success else 'failure'} "
                       f"({elapsed:.0f}s)", succeeded == expect_success, result.text.replace("\n", " | "))
        log = driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-log"]').text
        self.last_log = log
        self.check(f"{label}: the log shows lines", bool(log.strip()), f"{len(log.splitlines())} lines")
        bars = driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-bar"]')
        widths = {b.get_attribute("data-operation"): b.get_attribute("aria-valuenow") for b in bars}
        steps = {"run-all": ["secure", "switch", "update", "restore"]}.get(action, [action])
        if expect_success and action in ("secure", "switch", "update", "restore", "run-all"):
            self.check(f"{label}: the progress bars of {steps} are at 100%",
                       all(widths.get(step) == "100" for step in steps), f"bars: {widths}")
        self.check(f"{label}: the status line is cleared at the end",
                   driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-status"]').text == "")
        self.screenshot(f"{label}-result")
        self.page_problems(label)
        # The page after a reload: the banner.
        self.open_page()
        state = self.banner()
        if expect_phase:
            self.check(f"{label}: the banner shows the state {expect_phase!r}", state.get("phase") == expect_phase,
                       f"phase {state.get('phase')!r}")
        if expect_served:
            self.check(f"{label}: the banner says the site serves {expect_served!r}",
                       state.get("served") == expect_served, f"served {state.get('served')!r}")
        self.screenshot(f"{label}-after")
        self.page_problems(f"{label} (reloaded)")
        return state

    @staticmethod
    def tick_security_copy(driver):
        """Fills Secure's options: the security copy ticked."""
        box = driver.find_element(By.ID, "tool_delivery-securitycopy")
        if not box.is_selected():
            box.click()

    def upgrade_ran(self, label):
        """The last job's log shows that Moodle's upgrade ran."""
        self.check(f"{label}: the log shows Moodle's upgrade ran", "upgrade.php --non-interactive" in self.last_log,
                   " | ".join(line for line in self.last_log.splitlines() if "upgrade" in line.lower())[:400])

    def refused(self):
        """A stale page: Cancel pressed while the state does not allow it; the helper refuses."""
        driver = self.driver
        self.open_page()
        phase = self.banner().get("phase")
        if "cancel" in self.enabled_buttons():
            self.check("refused: Cancel is disabled in this state (needed for this check)", False, f"phase {phase}")
            return
        driver.execute_script("document.querySelector('button[value=\"cancel\"]').disabled = false;")
        self.button("cancel").click()
        try:
            WebDriverWait(driver, 60).until(lambda d: d.find_element(
                By.CSS_SELECTOR, '[data-region="tool_delivery-result"]').is_displayed())
        except TimeoutException:
            self.check("refused: a result is shown", False)
            self.screenshot("refused-timeout")
            return
        result = driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-result"]')
        # A refusal changed nothing: the plugin shows it as a warning (a failure is shown as danger).
        self.check("refused: the refusal is shown as a refusal (warning)",
                   "alert-warning" in (result.get_attribute("class") or ""),
                   result.text.replace("\n", " | "))
        self.check("refused: it says the state does not allow the step", "does not allow" in result.text,
                   result.text.replace("\n", " | "))
        self.screenshot("refused")
        self.page_problems("refused")
        self.open_page()
        self.check("refused: the state is unchanged", self.banner().get("phase") == phase,
                   f"{phase} -> {self.banner().get('phase')}")

    def set_socket_setting(self, value):
        driver = self.driver
        driver.get(self.base + "/admin/settings.php?section=tool_delivery_settings")
        field = driver.find_element(By.ID, "id_s_tool_delivery_socketpath")
        previous = field.get_attribute("value")
        field.clear()
        field.send_keys(value)
        driver.find_element(By.CSS_SELECTOR, '#adminsettings button[type="submit"]').click()
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
        return previous

    def helper_down(self):
        """The helper unreachable (the plugin pointed at another socket): clear messages, then back."""
        driver = self.driver
        previous = self.set_socket_setting("/nonexistent/deliveryd.sock")
        try:
            driver.get(self.base + PAGE)
            down = driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-helperdown"]')
            self.check("helperdown: the page says the helper cannot be used", bool(down),
                       down[0].text.replace("\n", " | ") if down else "")
            self.check("helperdown: the page shows how to finish with deliveryctl",
                       "deliveryctl rollback" in driver.find_element(By.TAG_NAME, "body").text)
            self.screenshot("helperdown-page")
            self.page_problems("helperdown")
            driver.get(self.base + "/report/status/index.php")
            rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table tr") if "Delivery helper" in r.text]
            self.check("helperdown: System status shows the Delivery helper check as Critical",
                       any("Critical" in r for r in rows), " | ".join(rows))
            self.screenshot("helperdown-status")
        finally:
            self.set_socket_setting(previous)
        self.check("helperdown: the page works again once the setting is back", self.open_page() and bool(
            driver.find_elements(By.CSS_SELECTOR, '[data-region="tool_delivery-screen"]')))

    # ----- the scenario ----------------------------------------------------------------------

    def run(self, steps):
        self.login()
        initial_marker = self.current_marker()
        if "page" in steps:
            amd = self.open_page()
            self.check("page: the delivery page opens with the helper", bool(self.driver.find_elements(
                By.CSS_SELECTOR, '[data-region="tool_delivery-screen"]')), self.driver.title)
            self.check("page: the AMD module tool_delivery/progress is loaded", amd)
            headings = [h.text for h in self.driver.find_elements(By.CSS_SELECTOR, "#region-main h2")]
            self.check("page: the heading is the plugin's name", "Code delivery" in headings, str(headings))
            state = self.banner()
            self.check("page: the banner shows a state", bool(state.get("phase")), str(state.get("phase")))
            self.screenshot("page")
            self.page_problems("page")
            self.driver.get(self.base + "/admin/search.php?query=delivery")
            self.check("page: Site administration search finds the page", bool(self.driver.find_elements(
                By.CSS_SELECTOR, f'a[href$="{PAGE}"]')))
            self.driver.get(self.base + "/admin/settings.php?section=tool_delivery_settings")
            self.screenshot("settings")
            self.page_problems("settings")
            self.check("settings: socket and key fields are shown", bool(self.driver.find_elements(
                By.ID, "id_s_tool_delivery_socketpath")) and bool(self.driver.find_elements(
                By.ID, "id_s_tool_delivery_keyfile")))

        if "secure" in steps:
            self.run_button("secure", "secure", self.tick_security_copy, expect_phase="secured",
                            expect_served="Production")
            self.site_serves("secure", "production", initial_marker)

        if "switch" in steps:
            self.run_button("switch", "switch", expect_phase="delivering", expect_served="Backup copy")
            self.site_serves("switch", "backup", initial_marker)

        marker = initial_marker
        if "update" in steps:
            published = self.publish()
            comment = f"e2e update {datetime.datetime.utcnow():%H:%M:%S}"

            def fill(driver):
                driver.find_element(By.ID, "tool_delivery-comment").send_keys(comment)
            state = self.run_button("update", "update", fill, expect_phase="updated", expect_served="Backup copy")
            if state:
                self.check("update: the banner shows the comment", comment in state.get("text", ""))
            # The site still serves the backup copy: the old marker.
            self.site_serves("update", "backup", initial_marker)
            marker = published or marker

        if "restore" in steps:
            self.run_button("restore", "restore", expect_phase="idle", expect_served="Production")
            self.site_serves("restore", "production", marker)

        if "runall" in steps:
            published = self.publish()
            comment = f"e2e run all {datetime.datetime.utcnow():%H:%M:%S}"

            def fill(driver):
                driver.find_element(By.ID, "tool_delivery-comment").send_keys(comment)
            self.run_button("runall", "run-all", fill, expect_phase="idle", expect_served="Production")
            marker = published or marker
            self.site_serves("runall", "production", marker)

        if "cancel" in steps:
            self.open_page()
            before = self.banner().get("production")
            self.run_button("cancel-secure", "secure", expect_phase="secured", expect_served="Production")
            self.run_button("cancel-switch", "switch", expect_phase="delivering", expect_served="Backup copy")
            self.site_serves("cancel-switch", "backup", marker)
            state = self.run_button("cancel", "cancel", expect_phase="idle", expect_served="Production")
            if state:
                self.check("cancel: production is at its pre-delivery revision", state.get("production") == before,
                           f"{before!r} -> {state.get('production')!r}")
            self.site_serves("cancel", "production", marker)

        if "rollback" in steps:
            # The rollback serves the copy whose code matches the database (the security copy, else
            # the backup copy): either may be served, never production.
            state = self.run_button("rollback", "rollback", confirm=True, expect_phase="rolled_back")
            if state:
                self.check("rollback: a copy is served", state.get("served") in ("Security copy", "Backup copy"),
                           f"served {state.get('served')!r}")
            self.site_serves("rollback", None, None)

        if "finish" in steps:
            # After the rollback: serve production again with Restore production.
            self.run_button("finish-restore", "restore", expect_phase="idle", expect_served="Production")
            self.site_serves("finish-restore", "production", marker)

        if "refused" in steps:
            self.refused()

        if "helperdown" in steps:
            self.helper_down()

        if "upgrade" in steps and self.args.author:
            published = self.publish(bump=self.args.upgrade_plugin)
            comment = f"e2e upgrade {datetime.datetime.utcnow():%H:%M:%S}"

            def fill(driver):
                driver.find_element(By.ID, "tool_delivery-comment").send_keys(comment)
            self.run_button("upgrade", "run-all", fill, expect_phase="idle", expect_served="Production")
            self.upgrade_ran("upgrade")
            marker = published or marker
            self.site_serves("upgrade", "production", marker)

        if "cancelafterrollback" in steps and self.args.author:
            # Issue 13's sequence, through the page: once Restore production had run Moodle's
            # upgrade, a rollback of code and database, then Cancel, served production's newer code
            # on the restored (older) database.
            label = "cancelafterrollback"
            before = self.current_marker()
            published = self.publish(bump=self.args.upgrade_plugin)
            self.run_button(f"{label}-secure", "secure", self.tick_security_copy, expect_phase="secured",
                            expect_served="Production")
            self.run_button(f"{label}-switch", "switch", expect_phase="delivering", expect_served="Backup copy")
            self.run_button(f"{label}-update", "update", expect_phase="updated", expect_served="Backup copy")
            self.run_button(f"{label}-restore", "restore", expect_phase="idle", expect_served="Production")
            self.upgrade_ran(f"{label}-restore")
            self.site_serves(f"{label}-restore", "production", published)
            self.code_matches_database(f"{label}-restore")

            def confirm_database(driver):
                plan = driver.find_element(By.CSS_SELECTOR, '[data-region="tool_delivery-rollbackplan"]')
                self.check(f"{label}-rollback: the page offers the rollback of code and database",
                           plan.get_attribute("data-kind") == "code_and_database", plan.text.replace("\n", " | "))
                for box in driver.find_elements(By.ID, "tool_delivery-confirmdatabaserestore"):
                    if not box.is_selected():
                        box.click()
                # Outside the delivery window the helper asks for the administrator's second factor.
                for field in driver.find_elements(By.ID, "tool_delivery-secondfactorcode"):
                    self.check(f"{label}-rollback: a second factor code can be computed (--totp-secret)",
                               bool(self.args.totp_secret), "the page asks for a code; give --totp-secret")
                    if self.args.totp_secret:
                        field.clear()
                        field.send_keys(totp(self.args.totp_secret))
            state = self.run_button(f"{label}-rollback", "rollback", confirm_database, confirm=True,
                                    expect_phase="rolled_back")
            print(f"       {label}-rollback: the page said {self.last_result}", flush=True)
            if state:
                self.check(f"{label}-rollback: a copy is served",
                           state.get("served") in ("Security copy", "Backup copy"), f"served {state.get('served')!r}")
            self.site_serves(f"{label}-rollback", None, before)
            self.code_matches_database(f"{label}-rollback")

            # Cancel may serve production again (at the served copy's revision) or be refused.
            state = self.run_button(f"{label}-cancel", "cancel", expect_success=None) or {}
            outcome, message = self.last_result
            print(f"       {label}-cancel: the page said {self.last_result}", flush=True)
            if outcome == "success":
                self.check(f"{label}-cancel: the page says production serves", state.get("served") == "Production",
                           f"phase {state.get('phase')!r}, served {state.get('served')!r}")
                self.site_serves(f"{label}-cancel", "production", before)
                matches = self.code_matches_database(f"{label}-cancel")
                self.check(f"{label}-cancel: the message is true (no 'nothing else to do' while the code does not "
                           "match the database)", matches or "nothing else to do" not in message.lower(),
                           message.replace("\n", " | "))
            elif outcome == "refusal":
                reason = message.splitlines()[0] if message else ""
                self.check(f"{label}-cancel: the page shows the refusal's reason",
                           reason and not reason.startswith("Nothing was changed"), message.replace("\n", " | "))
                self.site_serves(f"{label}-cancel", None, before)
                self.check(f"{label}-cancel: a copy is still served", self.served_link() != "releases/production",
                           f"readlink: {self.served_link()}")
                self.code_matches_database(f"{label}-cancel")
            if state.get("phase") != "idle":
                # Serve production again, as the other steps' cleanup does.
                self.run_button(f"{label}-finish", "restore", expect_phase="idle", expect_served="Production")
            self.site_serves(f"{label}-end", "production", None)
            self.code_matches_database(f"{label}-end")

        if "status" in steps:
            self.driver.get(self.base + "/report/status/index.php?detail=tool_delivery_helper_reachable")
            self.driver.get(self.base + "/report/status/index.php")
            rows = [r.text for r in self.driver.find_elements(By.CSS_SELECTOR, "table tr")
                    if "Delivery helper" in r.text]
            self.check("status: Reports > System status has the Delivery helper check",
                       bool(rows), " | ".join(rows))
            self.check("status: the Delivery helper check is OK", any(re.search(r"\bOK\b", r) for r in rows),
                       " | ".join(rows))
            self.screenshot("system-status")
            self.page_problems("status")

        if "logs" in steps:
            self.driver.get(self.base + "/report/log/index.php?chooselog=1&showusers=0&showcourses=0&id=1"
                            "&user=0&date=0&modid=&modaction=&edulevel=-1&logreader=logstore_standard")
            text = self.driver.find_element(By.TAG_NAME, "body").text
            for event in ("Delivery step started", "Delivery step finished", "Emergency rollback requested"):
                self.check(f"logs: Site administration > Reports > Logs shows '{event}'", event in text)
            self.screenshot("logs")
            self.page_problems("logs")

        lines = self.new_log_lines()
        if self.args.watch_log:
            self.check("server logs: no PHP errors or tool_delivery lines during the run", not lines,
                       "\n  " + "\n  ".join(lines[:30]) if lines else "")

    def close(self):
        self.driver.quit()



def totp(secret):
    """The code an authenticator app shows now (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits)."""
    import base64
    import hashlib
    import hmac
    import struct
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the site's wwwroot, e.g. http://127.0.0.1:8080")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", default="/tmp/browser-check")
    parser.add_argument("--steps", default=",".join(ALL_STEPS))
    parser.add_argument("--site-root", default=None)
    parser.add_argument("--author", default=None)
    parser.add_argument("--code-owner", default="moodlecode")
    parser.add_argument("--marker", default="delivery-e2e-marker.txt")
    parser.add_argument("--watch-log", action="append", default=[])
    parser.add_argument("--upgrade-plugin", default="blocks/html")
    parser.add_argument("--totp-secret", default=None,
                        help="the base32 secret of the administrator's second factor (deliveryctl admin enrol-totp "
                             "prints it): a rollback of the database outside the delivery window asks for its code")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in ALL_STEPS]
    if unknown:
        parser.error(f"unknown steps {unknown}; known: {ALL_STEPS}")
    checker = Checker(args)
    try:
        checker.run(steps)
    except Exception as error:  # noqa: BLE001 - report, screenshot, then fail
        checker.check("the run went to its end", False, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        traceback.print_exc()
        try:
            checker.screenshot("crash")
        except Exception:  # noqa: BLE001
            pass
    finally:
        checker.close()
    failed = [r for r in checker.results if not r[1]]
    print(f"\nbrowser check: {len(checker.results) - len(failed)} passed, {len(failed)} failed "
          f"{len(checker.warnings)} warnings (screenshots in {args.out})")
    for name, _, detail in failed:
        print(f"  FAILED {name}" + (f": {detail}" if detail else ""))
    for name, detail in checker.warnings:
        print(f"  WARNING {name}" + (f": {detail[:300]}" if detail else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
