<?php
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
 * The upstream section's actions (POST only): check the upstream now, schedule a Run all of the waiting
 * upstream revision (deliver later), or cancel it; then back to the delivery page. Scheduling and
 * cancelling are also the external functions tool_delivery_schedule_delivery and tool_delivery_cancel_schedule.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require(__DIR__ . '/../../../config.php');
require_once($CFG->libdir . '/adminlib.php');

use tool_delivery\local\client_factory;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\helper_exception;
use tool_delivery\local\schedule_actions;
use tool_delivery\local\upstream_watch;

admin_externalpage_setup('tool_delivery');

$returnurl = new moodle_url('/admin/tool/delivery/index.php', [], 'tool_delivery-later');
if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
    redirect($returnurl);
}
require_sesskey();

$action = required_param('action', PARAM_ALPHA);
if (!in_array($action, ['check', 'schedule', 'cancel'], true)) {
    throw new invalid_parameter_exception('unknown action');
}

try {
    $client = client_factory::for_user($USER);
    if ($action === 'check') {
        // The hourly task's look, now: kept for the screen, and notified once per new revision.
        $summary = (new upstream_watch($client))->run();
        $done = get_string($summary->waiting() ? 'upstream:checkedwaiting' : 'upstream:checkednothing', 'tool_delivery');
    } else if ($action === 'schedule') {
        schedule_actions::schedule(
            $client,
            required_param('at', PARAM_RAW_TRIMMED),
            core_date::get_user_timezone_object(),
            required_param('revision', PARAM_RAW_TRIMMED),
            optional_param('onlyifpreflightpasses', false, PARAM_BOOL),
            optional_param('securitycopy', false, PARAM_BOOL),
            optional_param('comment', '', PARAM_TEXT)
        );
        $done = get_string('later:scheduled', 'tool_delivery');
    } else {
        schedule_actions::cancel($client);
        $done = get_string('later:cancelled', 'tool_delivery');
    }
    redirect($returnurl, $done, null, \core\output\notification::NOTIFY_SUCCESS);
} catch (helper_exception $error) {
    redirect($returnurl, s(delivery_actions::error_message($error)), null, \core\output\notification::NOTIFY_ERROR);
}
