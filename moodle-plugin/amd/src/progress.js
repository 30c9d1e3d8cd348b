// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * Live progress of the delivery page: starts actions without leaving the page, then polls
 * progress.php (which asks the helper) and draws a bar per step, the streamed log, and the result
 * with what to do next. When Moodle stops answering (maintenance mode during step 4), it keeps
 * asking and says how to finish from deliveryctl. When Moodle has logged the administrator out (a
 * rollback that restores the database snapshot takes Moodle's sessions back with it), it stops and
 * asks to log in again.
 *
 * @module     tool_delivery/progress
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

import {saveCancelPromise} from 'core/notification';
import {getString} from 'core/str';

/** Milliseconds between polls while all is well. */
const POLL_INTERVAL = 1000;

/** The longest wait between polls while Moodle does not answer. */
const MAX_INTERVAL = 5000;

/** Failed polls in a row before the page says Moodle does not answer. */
const FAILURES_BEFORE_NOTICE = 3;

/**
 * Moodle's error codes for a request without a valid session: not logged in (require_login of an
 * AJAX script), session timed out, a web service that needs a login, and a session key that is not
 * the session's (a new session).
 */
const LOGIN_ERRORS = ['requireloginerror', 'sessionerroruser', 'servicerequireslogin', 'invalidsesskey'];

/**
 * Whether Moodle answered that the session is gone: its error answer (`errorcode`, or a web
 * service's `exception.errorcode`) names a login error, or the request was redirected to the
 * login page. Then no later request can succeed until the administrator logs in again.
 *
 * @param {object|null} response The fetch response (`redirected`, `url`), or null when none came.
 * @param {*} answer Its body parsed as JSON, or null.
 * @returns {boolean} True when the session is gone.
 */
export const sessionLost = (response, answer) => {
    const codes = [];
    if (answer !== null && typeof answer === 'object') {
        codes.push(answer.errorcode);
        (Array.isArray(answer) ? answer : [answer]).forEach((item) => {
            if (item !== null && typeof item === 'object' && item.exception && typeof item.exception === 'object') {
                codes.push(item.exception.errorcode);
            }
        });
    }
    if (codes.some((code) => typeof code === 'string' && LOGIN_ERRORS.includes(code))) {
        return true;
    }
    if (response && response.redirected && typeof response.url === 'string') {
        try {
            return /\/login\/(index\.php)?$/.test(new URL(response.url).pathname);
        } catch (error) {
            return false;
        }
    }
    return false;
};

/**
 * Finds one element of a region inside the screen.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} region The data-region.
 * @returns {HTMLElement|null} The element.
 */
const region = (root, region) => root.querySelector(`[data-region="${region}"]`);

/**
 * Enables or disables every action button while an operation runs (rollback stays usable).
 *
 * @param {HTMLElement} root The screen.
 * @param {boolean} busy Whether an operation runs.
 */
const setBusy = (root, busy) => {
    root.querySelectorAll('[data-action="tool_delivery-start"]').forEach((button) => {
        if (button.value === 'rollback') {
            return;
        }
        if (busy) {
            // Called again while busy (start, then follow): keep the state from before the first call.
            if (button.dataset.wasDisabled === undefined) {
                button.dataset.wasDisabled = button.disabled ? '1' : '0';
            }
            button.disabled = true;
        } else if (button.dataset.wasDisabled !== undefined) {
            button.disabled = button.dataset.wasDisabled === '1';
            delete button.dataset.wasDisabled;
        }
    });
};

/**
 * Enables the buttons the site's state allows now (after a job: the state has changed).
 *
 * @param {HTMLElement} root The screen.
 * @param {string[]} allowed The operations allowed now.
 * @param {boolean} rollback Whether a copy exists to roll back to.
 */
const setAllowed = (root, allowed, rollback) => {
    root.querySelectorAll('[data-action="tool_delivery-start"]').forEach((button) => {
        delete button.dataset.wasDisabled;
        button.disabled = button.value === 'rollback' ? !rollback : !allowed.includes(button.value);
    });
};

/**
 * Draws the banner again from the state the helper reports now.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} html The banner, rendered by progress.php.
 */
const drawBanner = (root, html) => {
    const banner = region(root, 'tool_delivery-banner');
    if (!banner || !html) {
        return;
    }
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (fresh) {
        banner.replaceWith(fresh);
    }
};

/**
 * Draws the rollback plan again when the helper's plan changed (code only, or code and database,
 * and whether it needs the confirmation). A ticked confirmation stays ticked while it is about the
 * same snapshot.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} html The plan, rendered by progress.php.
 */
const drawRollbackPlan = (root, html) => {
    const plan = region(root, 'tool_delivery-rollbackplan');
    if (!plan || !html || plan.dataset.html === html) {
        return;
    }
    const template = document.createElement('template');
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (!fresh) {
        return;
    }
    const ticked = plan.querySelector('input[name="confirmdatabaserestore"]');
    const box = fresh.querySelector('input[name="confirmdatabaserestore"]');
    if (ticked && box && ticked.checked && ticked.dataset.snapshot === box.dataset.snapshot) {
        box.checked = true;
    }
    // The code being typed survives a redraw of the same plan.
    const typed = plan.querySelector('input[name="secondfactorcode"]');
    const field = fresh.querySelector('input[name="secondfactorcode"]');
    if (typed && field && box && ticked && ticked.dataset.snapshot === box.dataset.snapshot) {
        field.value = typed.value;
    }
    fresh.dataset.html = html;
    plan.replaceWith(fresh);
};

/**
 * Draws the steps of a job: bar width, colour and message.
 *
 * @param {HTMLElement} root The screen.
 * @param {Array} steps The steps from progress.php.
 */
const drawSteps = (root, steps) => {
    steps.forEach((step) => {
        const bar = root.querySelector(`[data-region="tool_delivery-bar"][data-operation="${step.operation}"]`);
        const message = root.querySelector(`[data-region="tool_delivery-stepmessage"][data-operation="${step.operation}"]`);
        if (bar) {
            const percent = step.percent === null ? (step.state === 'running' ? 100 : 0) : step.percent;
            bar.style.width = `${percent}%`;
            bar.setAttribute('aria-valuenow', String(percent));
            bar.textContent = step.percent === null ? '' : `${percent}%`;
            bar.classList.toggle('progress-bar-striped', step.state === 'running');
            bar.classList.toggle('progress-bar-animated', step.state === 'running');
            bar.classList.toggle('bg-success', step.state === 'succeeded');
            bar.classList.toggle('bg-danger', step.state === 'failed');
        }
        if (message) {
            message.textContent = step.message ? `${step.statename}: ${step.message}` : step.statename;
        }
    });
};

/**
 * Appends log lines and keeps the end in view.
 *
 * @param {HTMLElement} log The log element.
 * @param {string[]} lines The new lines.
 */
const appendLines = (log, lines) => {
    if (!lines.length) {
        return;
    }
    const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    // The lines come plain: progress.php drops terminal escapes (delivery_actions::log_lines).
    log.append(document.createTextNode(lines.join('\n') + '\n'));
    if (atEnd) {
        log.scrollTop = log.scrollHeight;
    }
};

/**
 * Shows the final result with what to do next, and a button to reload the page. A refusal (nothing
 * was changed) is a warning, not a failure.
 *
 * @param {HTMLElement} root The screen.
 * @param {object} result The result from progress.php.
 */
const showResult = (root, result) => {
    const box = region(root, 'tool_delivery-result');
    box.hidden = false;
    box.classList.remove('alert-success', 'alert-danger', 'alert-warning');
    box.classList.add(result.succeeded ? 'alert-success' : (result.refused ? 'alert-warning' : 'alert-danger'));
    box.replaceChildren();
    [result.message, result.detail, result.served, result.next].filter((text) => text).forEach((text) => {
        const paragraph = document.createElement('p');
        paragraph.textContent = text;
        box.append(paragraph);
    });
    const reload = document.createElement('a');
    reload.className = 'btn btn-secondary';
    reload.href = root.dataset.indexUrl;
    reload.textContent = result.reload;
    box.append(reload);
};

/**
 * Shows an error answered by action.php or progress.php.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} message The message.
 */
const showError = (root, message) => {
    region(root, 'tool_delivery-progress').hidden = false;
    const box = region(root, 'tool_delivery-result');
    box.hidden = false;
    box.classList.remove('alert-success', 'alert-warning');
    box.classList.add('alert-danger');
    box.textContent = message;
};

/**
 * Says that Moodle has logged the administrator out, with the link to log in again and come back
 * to the job's result; the page stops asking.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} jobId The job followed.
 * @param {boolean} databaseRollback Whether the job is a rollback that restores the database snapshot.
 */
const showSessionLost = (root, jobId, databaseRollback) => {
    region(root, 'tool_delivery-progress').hidden = false;
    region(root, 'tool_delivery-unreachable').hidden = true;
    region(root, 'tool_delivery-status').textContent = '';
    const notice = region(root, 'tool_delivery-sessionlost');
    notice.querySelectorAll('[data-cause]').forEach((paragraph) => {
        paragraph.hidden = (paragraph.dataset.cause === 'rollback') !== databaseRollback;
    });
    const login = region(root, 'tool_delivery-login');
    const url = new URL(root.dataset.indexUrl);
    url.searchParams.set('job', jobId);
    login.href = url.toString();
    notice.hidden = false;
};

/**
 * Follows a job until it ends and every log line is read, or until Moodle has logged the
 * administrator out.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} jobId The helper's job id.
 * @param {boolean} databaseRollback Whether the job is a rollback that restores the database snapshot.
 */
const follow = (root, jobId, databaseRollback = false) => {
    const log = region(root, 'tool_delivery-log');
    const status = region(root, 'tool_delivery-status');
    const unreachable = region(root, 'tool_delivery-unreachable');
    region(root, 'tool_delivery-progress').hidden = false;
    region(root, 'tool_delivery-result').hidden = true;
    region(root, 'tool_delivery-sessionlost').hidden = true;
    log.textContent = '';
    setBusy(root, true);
    let offset = 0;
    let failures = 0;

    const poll = async() => {
        const url = new URL(root.dataset.progressUrl);
        url.searchParams.set('sesskey', root.dataset.sesskey);
        url.searchParams.set('job', jobId);
        url.searchParams.set('offset', String(offset));
        let response = null;
        let answer = null;
        try {
            response = await fetch(url.toString(), {credentials: 'same-origin', cache: 'no-store'});
            answer = await response.json();
        } catch (error) {
            // Moodle in maintenance mode answers HTML, or nothing: keep asking.
            answer = null;
        }
        if (sessionLost(response, answer)) {
            // No later request can pass: say so, and stop asking.
            showSessionLost(root, jobId, databaseRollback);
            return;
        }
        // Moodle's other error answers (an upgrade pending or running, maintenance) carry `error`
        // as a string; ours carry an object with a `code`. While Moodle does not serve this page,
        // the job goes on in the helper: keep asking.
        const moodleError = answer !== null && answer.error !== undefined && typeof answer.error !== 'object';
        if (answer === null || moodleError || (answer.error && answer.error.down)) {
            failures += 1;
            unreachable.hidden = failures < FAILURES_BEFORE_NOTICE;
            window.setTimeout(poll, Math.min(MAX_INTERVAL, POLL_INTERVAL * (1 + failures)));
            return;
        }
        failures = 0;
        unreachable.hidden = true;
        if (answer.error) {
            showError(root, answer.error.message);
            setBusy(root, false);
            return;
        }
        drawSteps(root, answer.steps);
        drawBanner(root, answer.banner);
        drawRollbackPlan(root, answer.rollbackplan);
        appendLines(log, answer.lines);
        offset = answer.nextoffset;
        status.textContent = answer.statusline;
        if (answer.state === 'running' || offset < answer.totallines) {
            window.setTimeout(poll, answer.state === 'running' ? POLL_INTERVAL : 0);
            return;
        }
        status.textContent = '';
        showResult(root, answer.result);
        if (Array.isArray(answer.allowed)) {
            setAllowed(root, answer.allowed, !!answer.rollback);
        } else {
            setBusy(root, false);
        }
    };
    poll();
};

/**
 * Starts an action through action.php and follows its job.
 *
 * @param {HTMLElement} root The screen.
 * @param {HTMLFormElement} form The form.
 * @param {HTMLButtonElement} button The button pressed.
 */
const start = async(root, form, button) => {
    const data = new FormData(form);
    // A second factor code is sent once, and not kept in the page.
    form.querySelectorAll('input[name="secondfactorcode"]').forEach((field) => {
        field.value = '';
    });
    // A rollback whose plan restores the database snapshot (which logs everybody out).
    const plan = form.querySelector('[data-region="tool_delivery-rollbackplan"]');
    const databaseRollback = button.value === 'rollback' && !!plan && plan.dataset.kind === 'code_and_database';
    data.set('action', button.value);
    data.set('ajax', '1');
    setBusy(root, true);
    let answer = null;
    try {
        const response = await fetch(root.dataset.actionUrl, {method: 'POST', body: data, credentials: 'same-origin'});
        answer = await response.json();
    } catch (error) {
        answer = null;
    }
    if (answer === null) {
        // Not an answer of action.php (an error page, a lost connection): the action may have
        // started, so never post it again. The page, reloaded, shows the state and follows a
        // running job.
        window.location.assign(root.dataset.indexUrl);
        return;
    }
    if (answer.error) {
        setBusy(root, false);
        showError(root, answer.error.message);
        return;
    }
    follow(root, answer.job, databaseRollback);
};

/**
 * The question asked before an action starts: the rollback plan's (it says whether the database is
 * restored), else the form's; '' for none.
 *
 * @param {HTMLFormElement} form The form.
 * @returns {string} The question.
 */
const question = (form) => {
    const holder = form.dataset.confirm !== undefined ? form : form.querySelector('[data-confirm]');
    return holder ? holder.dataset.confirm : '';
};

/**
 * While Check runs (the helper lints what the update brought, which takes a while): say so, and
 * keep the button from being pressed again.
 *
 * @param {HTMLElement} root The screen.
 */
const watchCheck = (root) => {
    const form = region(root, 'tool_delivery-checkform');
    if (!form) {
        return;
    }
    form.addEventListener('submit', () => {
        const checking = region(root, 'tool_delivery-checking');
        if (checking) {
            checking.hidden = false;
        }
        // After the submission has taken the form's data.
        window.setTimeout(() => {
            form.querySelectorAll('[data-action="tool_delivery-check"]').forEach((button) => {
                button.disabled = true;
            });
        }, 0);
    });
};

/**
 * Sets up the page.
 *
 * @param {string} selector The screen's selector.
 */
export const init = (selector) => {
    const root = document.querySelector(selector);
    if (!root) {
        return;
    }
    root.querySelectorAll('form').forEach((form) => {
        form.addEventListener('submit', (event) => {
            const button = event.submitter;
            if (!button || button.dataset.action !== 'tool_delivery-start') {
                return;
            }
            event.preventDefault();
            const ask = question(form);
            if (!ask) {
                start(root, form, button);
                return;
            }
            // Moodle's own confirmation dialogue: Cancel (or Escape) starts nothing.
            saveCancelPromise(getString('rollback:confirmtitle', 'tool_delivery'), ask,
                getString('rollback:confirmgo', 'tool_delivery'), {triggerElement: button})
                .then(() => start(root, form, button))
                .catch(() => null);
        });
    });
    watchCheck(root);
    if (root.dataset.followJob) {
        follow(root, root.dataset.followJob);
    }
};
