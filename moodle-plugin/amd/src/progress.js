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
 * Live progress of the delivery page: starts actions without leaving the page
 * (tool_delivery_start_operation, after Moodle's confirmation dialogue where the action asks one),
 * then follows the job (tool_delivery_get_job) and draws a bar per step, the streamed log, and the
 * result with what to do next, with the page's own templates (core/templates). When Moodle stops
 * answering (maintenance mode during step 4), it keeps asking, offers the emergency console (its
 * link asked for while Moodle still answered) and says how to finish from deliveryctl. When Moodle
 * has logged the administrator out (a rollback that restores the database snapshot takes Moodle's
 * sessions back with it), it stops and asks to log in again. Check runs the preflight
 * (tool_delivery_run_preflight) without leaving the page. Without JavaScript the forms post.
 *
 * @module     tool_delivery/progress
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

import Ajax from 'core/ajax';
import {saveCancelPromise} from 'core/notification';
import {getString} from 'core/str';
import Templates from 'core/templates';

/** Milliseconds between polls while all is well. */
const POLL_INTERVAL = 1000;

/** The longest wait between polls while Moodle does not answer. */
const MAX_INTERVAL = 5000;

/** Failed polls in a row before the page says Moodle does not answer. */
const FAILURES_BEFORE_NOTICE = 3;

/**
 * Moodle's error codes for a request without a valid session: not logged in, session timed out, a
 * web service that needs a login, and a session key that is not the session's (a new session).
 */
const LOGIN_ERRORS = ['requireloginerror', 'sessionerroruser', 'servicerequireslogin', 'invalidsesskey'];

/**
 * Moodle's error codes that asking again cannot change: the capability was taken away, or the
 * page and the server disagree on a function's parameters (a plugin upgraded under the page).
 */
const FINAL_ERRORS = ['nopermissions', 'invalidparameter', 'invalidresponse', 'servicenotavailable'];

/** The operations that can take Moodle down while they run: the console's link is asked for first. */
const MAY_TAKE_MOODLE_DOWN = ['restore', 'run-all', 'rollback'];

/**
 * The error codes a failed core/ajax call carries: its exception's (a function's error), or the
 * whole request's (a bad session key).
 *
 * @param {*} reason What the call was rejected with.
 * @returns {string[]} The codes.
 */
const errorCodes = (reason) => {
    const codes = [];
    if (reason !== null && typeof reason === 'object') {
        codes.push(reason.errorcode);
        (Array.isArray(reason) ? reason : [reason]).forEach((item) => {
            if (item !== null && typeof item === 'object' && item.exception && typeof item.exception === 'object') {
                codes.push(item.exception.errorcode);
            }
        });
    }
    return codes.filter((code) => typeof code === 'string');
};

/**
 * Whether Moodle answered that the session is gone: then no later call can succeed until the
 * administrator logs in again.
 *
 * @param {*} reason What a core/ajax call was rejected with.
 * @returns {boolean} True when the session is gone.
 */
export const sessionLost = (reason) => errorCodes(reason).some((code) => LOGIN_ERRORS.includes(code));

/**
 * Whether Moodle answered an error that asking again cannot change (as opposed to maintenance mode,
 * an upgrade running, or no answer at all, which pass).
 *
 * @param {*} reason What a core/ajax call was rejected with.
 * @returns {boolean} True when final.
 */
export const finalError = (reason) => errorCodes(reason).some((code) => FINAL_ERRORS.includes(code));

/** Milliseconds a call may take before it counts as unanswered (a request stuck behind a database restore). */
const CALL_TIMEOUT = 30000;

/** Milliseconds the preflight may take (the helper lints every PHP file the update brought). */
const PREFLIGHT_TIMEOUT = 300000;

/**
 * Calls one of the plugin's external functions. The session is not extended by the calls, and a
 * lost session is left to the page to say (core/ajax would otherwise go to the login page). A call
 * without an answer in time is rejected, so that following a job never stalls on one request.
 *
 * @param {string} methodname The function.
 * @param {object} args Its arguments.
 * @param {number} timeout Milliseconds before the call counts as unanswered.
 * @returns {Promise} Its answer.
 */
const call = (methodname, args = {}, timeout = CALL_TIMEOUT) => Ajax.call([{methodname, args}], true, true, true, timeout)[0];

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
 * Draws the site's state again: the banner, the rollback plan, and (once no job runs) the buttons
 * the state allows. The templates are the page's own, rendered with core/templates from the
 * contexts the server made; each is drawn again only when its context changed.
 *
 * @param {HTMLElement} root The screen.
 * @param {object} site The site's state (tool_delivery_get_job or tool_delivery_get_status).
 * @param {boolean} buttons Whether to set the buttons from it.
 * @returns {Promise} Resolved once drawn.
 */
const drawSite = (root, site, buttons) => {
    if (buttons) {
        root.querySelectorAll('[data-action="tool_delivery-start"]').forEach((button) => {
            delete button.dataset.wasDisabled;
            button.disabled = button.value === 'rollback' ? !site.rollback : !site.allowed.includes(button.value);
        });
    }
    return Promise.all([drawBanner(root, site.bannercontext), drawRollbackPlan(root, site.rollbackplancontext)]);
};

/**
 * Draws the banner again from the state the helper reports now.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} context The context of tool_delivery/banner (JSON).
 * @returns {Promise} Resolved once drawn.
 */
const drawBanner = async(root, context) => {
    const banner = region(root, 'tool_delivery-banner');
    if (!banner || !context || root.dataset.bannerContext === context) {
        return;
    }
    const {html, js} = await Templates.renderForPromise('tool_delivery/banner', JSON.parse(context));
    Templates.replaceNode(banner, html, js);
    root.dataset.bannerContext = context;
};

/**
 * Draws the rollback plan again when the helper's plan changed (code only, or code and database,
 * and whether it needs the confirmation). A ticked confirmation, and the code being typed, stay
 * while they are about the same snapshot.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} context The context of tool_delivery/rollback_plan (JSON).
 * @returns {Promise} Resolved once drawn.
 */
const drawRollbackPlan = async(root, context) => {
    const plan = region(root, 'tool_delivery-rollbackplan');
    if (!plan || !context || root.dataset.planContext === context) {
        return;
    }
    const {html, js} = await Templates.renderForPromise('tool_delivery/rollback_plan', JSON.parse(context));
    const ticked = plan.querySelector('input[name="confirmdatabaserestore"]');
    const typed = plan.querySelector('input[name="secondfactorcode"]');
    const [fresh] = Templates.replaceNode(plan, html, js);
    root.dataset.planContext = context;
    const box = fresh && fresh.querySelector ? fresh.querySelector('input[name="confirmdatabaserestore"]') : null;
    if (ticked && box && ticked.checked && ticked.dataset.snapshot === box.dataset.snapshot) {
        box.checked = true;
        const field = fresh.querySelector('input[name="secondfactorcode"]');
        if (typed && field) {
            field.value = typed.value;
        }
    }
};

/**
 * Draws the steps of a job: bar width, colour and message.
 *
 * @param {HTMLElement} root The screen.
 * @param {Array} steps The steps (tool_delivery_get_job).
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
    // The lines come plain (delivery_actions::log_lines drops terminal escapes), and stay text.
    log.append(document.createTextNode(lines.join('\n') + '\n'));
    if (atEnd) {
        log.scrollTop = log.scrollHeight;
    }
};

/**
 * Shows the final result with what to do next and a button to reload the page
 * (tool_delivery/job_result).
 *
 * @param {HTMLElement} root The screen.
 * @param {object} result The result: succeeded, refused, message, detail, served, next, reload.
 * @returns {Promise} Resolved once shown.
 */
const showResult = async(root, result) => {
    region(root, 'tool_delivery-progress').hidden = false;
    const box = region(root, 'tool_delivery-result');
    const context = Object.assign({detail: '', served: '', next: ''}, result, {indexurl: root.dataset.indexUrl});
    const {html, js} = await Templates.renderForPromise('tool_delivery/job_result', context);
    Templates.replaceNodeContents(box, html, js);
    box.hidden = false;
};

/**
 * Shows an error: the helper's refusal of an action, or a call Moodle refused for good.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} message The message.
 * @returns {Promise} Resolved once shown.
 */
const showError = async(root, message) => showResult(root, {
    succeeded: false,
    refused: false,
    message,
    reload: await getString('progress:reload', 'tool_delivery'),
});

/**
 * Says that Moodle has logged the administrator out, with the link to log in again and come back
 * to the job's result; the page stops asking.
 *
 * @param {HTMLElement} root The screen.
 * @param {string} jobId The job followed ('' when none started).
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
    const url = new URL(root.dataset.indexUrl);
    if (jobId) {
        url.searchParams.set('job', jobId);
    }
    region(root, 'tool_delivery-login').href = url.toString();
    notice.hidden = false;
};

/**
 * Asks, while Moodle still answers, for a link to the emergency console, shown if Moodle stops
 * answering during the job. A helper that refuses leaves the notice without it.
 *
 * @param {HTMLElement} root The screen.
 */
const prepareConsoleLink = async(root) => {
    const holder = region(root, 'tool_delivery-consolelink');
    if (!holder || holder.dataset.asked) {
        return;
    }
    holder.dataset.asked = '1';
    try {
        const answer = await call('tool_delivery_get_console_link');
        if (answer.error || !answer.url) {
            return;
        }
        holder.querySelector('a').href = answer.url;
        holder.querySelector('span').textContent = await getString('console:help', 'tool_delivery', answer.expires);
        holder.hidden = false;
    } catch (error) {
        // Without the link, the notice still says how to finish from deliveryctl.
        return;
    }
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
        let answer = null;
        try {
            answer = await call('tool_delivery_get_job', {jobid: jobId, offset});
        } catch (reason) {
            if (sessionLost(reason)) {
                // No later call can pass: say so, and stop asking.
                showSessionLost(root, jobId, databaseRollback);
                return;
            }
            if (finalError(reason)) {
                setBusy(root, false);
                await showError(root, reason.message || String(reason.errorcode));
                return;
            }
            // Moodle in maintenance mode, an upgrade running, no answer: the job goes on in the
            // helper, keep asking.
            answer = null;
        }
        if (answer === null || (answer.error && answer.error.down)) {
            failures += 1;
            unreachable.hidden = failures < FAILURES_BEFORE_NOTICE;
            window.setTimeout(poll, Math.min(MAX_INTERVAL, POLL_INTERVAL * (1 + failures)));
            return;
        }
        failures = 0;
        unreachable.hidden = true;
        if (answer.error) {
            setBusy(root, false);
            await showError(root, answer.error.message);
            return;
        }
        if (answer.state === 'running' && MAY_TAKE_MOODLE_DOWN.includes(answer.operation)) {
            prepareConsoleLink(root);
        }
        drawSteps(root, answer.steps);
        appendLines(log, answer.lines);
        offset = answer.nextoffset;
        status.textContent = answer.statusline;
        const ended = answer.state !== 'running' && offset >= answer.totallines;
        try {
            // The templates and strings come from Moodle too: one that stopped answering since
            // (maintenance mode turned on meanwhile) leaves the drawing to the next answer.
            if (answer.site) {
                await drawSite(root, answer.site, ended);
            }
            if (ended) {
                await showResult(root, answer.result);
            }
        } catch (reason) {
            if (sessionLost(reason)) {
                showSessionLost(root, jobId, databaseRollback);
                return;
            }
            failures += 1;
            window.setTimeout(poll, Math.min(MAX_INTERVAL, POLL_INTERVAL * (1 + failures)));
            return;
        }
        if (!ended) {
            window.setTimeout(poll, answer.state === 'running' ? POLL_INTERVAL : 0);
            return;
        }
        status.textContent = '';
        if (!answer.site) {
            setBusy(root, false);
        }
    };
    poll();
};

/**
 * The arguments of tool_delivery_start_operation from the form the action was pressed in.
 *
 * @param {HTMLFormElement} form The form.
 * @param {string} action The action.
 * @returns {object} The arguments.
 */
const startArguments = (form, action) => {
    const data = new FormData(form);
    const args = {action};
    ['securepath', 'updatepath', 'comment', 'secondfactorcode'].forEach((name) => {
        if (data.has(name)) {
            args[name] = String(data.get(name));
        }
    });
    ['securitycopy', 'confirmdatabaserestore', 'confirmfailedrehearsal'].forEach((name) => {
        if (data.has(name)) {
            args[name] = data.get(name) === '1';
        }
    });
    return args;
};

/**
 * Starts an action through tool_delivery_start_operation and follows its job.
 *
 * @param {HTMLElement} root The screen.
 * @param {HTMLFormElement} form The form.
 * @param {HTMLButtonElement} button The button pressed.
 */
const start = async(root, form, button) => {
    const args = startArguments(form, button.value);
    // A second factor code is sent once, and not kept in the page.
    form.querySelectorAll('input[name="secondfactorcode"]').forEach((field) => {
        field.value = '';
    });
    // A rollback whose plan restores the database snapshot (which logs everybody out).
    const plan = form.querySelector('[data-region="tool_delivery-rollbackplan"]');
    const databaseRollback = button.value === 'rollback' && !!plan && plan.dataset.kind === 'code_and_database';
    setBusy(root, true);
    let answer = null;
    try {
        answer = await call('tool_delivery_start_operation', args);
    } catch (reason) {
        if (sessionLost(reason)) {
            setBusy(root, false);
            showSessionLost(root, '', false);
            return;
        }
        if (finalError(reason)) {
            setBusy(root, false);
            await showError(root, reason.message || String(reason.errorcode));
            return;
        }
        // No answer (an error page, a lost connection): the action may have started, so never
        // send it again. The page, reloaded, shows the state and follows a running job.
        window.location.assign(root.dataset.indexUrl);
        return;
    }
    if (answer.error) {
        setBusy(root, false);
        await showError(root, answer.error.message);
        // The page may have been behind the site (another administrator, the command line).
        try {
            const status = await call('tool_delivery_get_status');
            if (status.site) {
                await drawSite(root, status.site, true);
            }
        } catch (reason) {
            // The error stands; the reload button is there.
        }
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
 * Check runs the preflight with tool_delivery_run_preflight and draws its report in place (the
 * helper lints what the update brought, which takes a while: the page says so meanwhile). When
 * Moodle does not answer the call, the form is posted as without JavaScript.
 *
 * @param {HTMLElement} root The screen.
 */
const watchCheck = (root) => {
    const form = region(root, 'tool_delivery-checkform');
    if (!form) {
        return;
    }
    const buttons = () => form.querySelectorAll('[data-action="tool_delivery-check"]');
    form.addEventListener('submit', async(event) => {
        if (form.dataset.posting) {
            return;
        }
        event.preventDefault();
        const checking = region(root, 'tool_delivery-checking');
        if (checking) {
            checking.hidden = false;
        }
        buttons().forEach((button) => {
            button.disabled = true;
        });
        try {
            const answer = await call('tool_delivery_run_preflight', {}, PREFLIGHT_TIMEOUT);
            const {html, js} = await Templates.renderForPromise('tool_delivery/preflight', JSON.parse(answer.reportcontext));
            const report = region(root, 'tool_delivery-preflight');
            if (report) {
                Templates.replaceNode(report, html, js);
            } else {
                Templates.appendNodeContents(region(root, 'tool_delivery-check').querySelector('.card-body'), html, js);
            }
        } catch (reason) {
            if (sessionLost(reason)) {
                showSessionLost(root, '', false);
            } else {
                form.dataset.posting = '1';
                form.submit();
                return;
            }
        }
        if (checking) {
            checking.hidden = true;
        }
        buttons().forEach((button) => {
            button.disabled = false;
        });
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
