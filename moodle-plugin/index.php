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
 * The delivery page: Site administration > Server > Code delivery (with the report of Check, posted here).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require(__DIR__ . '/../../../config.php');
require_once($CFG->libdir . '/adminlib.php');

use tool_delivery\local\client_factory;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;

admin_externalpage_setup('tool_delivery');

$jobid = optional_param('job', '', PARAM_ALPHANUMEXT);
if (!helper_client::is_job_id($jobid)) {
    $jobid = '';
}
// The Check button posts here with the session key: the preflight changes nothing, but lints every
// PHP file the update brought, which takes a while.
$check = optional_param('check', false, PARAM_BOOL);
if ($check) {
    require_sesskey();
}

$output = $PAGE->get_renderer('tool_delivery');
try {
    $client = client_factory::for_user($USER);
    $status = $client->status();
    \tool_delivery\local\upstream_watch::keep($status['site']['upstream'] ?? null);
    \tool_delivery\local\delivery_actions::log_history($client);
    try {
        $records = $client->history(25);
    } catch (helper_exception $error) {
        $records = [];
    }
    // The job the page was sent to (after an action posted without JavaScript): its log and result.
    $job = null;
    if ($jobid !== '') {
        try {
            $job = \tool_delivery\local\job_view::progress($client->job($jobid), $status['site'], 0);
        } catch (helper_exception $error) {
            $job = null;
        }
    }
    $preflight = null;
    if ($check) {
        core_php_time_limit::raise(300);
        // What the site's state allows: without Restore production, there is nothing to restore now.
        $allowed = $status['site']['allowed'] ?? null;
        try {
            $report = client_factory::for_user($USER, 240.0)->preflight();
            $preflight = new \tool_delivery\output\preflight($report, null, null, is_array($allowed) ? $allowed : null);
        } catch (helper_exception $error) {
            $preflight = new \tool_delivery\output\preflight(null, $error);
        }
    }
    // On a web farm, every node as its helper answers over SSH (asked once per page, not polled).
    $farm = null;
    if (\tool_delivery\output\farm_panel::is_farm($status['site'])) {
        try {
            $farm = new \tool_delivery\output\farm_panel($status['site'], client_factory::for_user($USER, 60.0)->farm());
        } catch (helper_exception $error) {
            $farm = new \tool_delivery\output\farm_panel($status['site'], null, $error->getMessage());
        }
    }
    $page = new \tool_delivery\output\screen($status, $records, $jobid, $job, $preflight, $farm);
    $PAGE->requires->js_call_amd('tool_delivery/progress', 'init', ['[data-region="tool_delivery-screen"]']);
} catch (helper_exception $error) {
    $page = new \tool_delivery\output\helper_down($error);
}

echo $output->header();
echo $output->heading(get_string('pluginname', 'tool_delivery'));
echo $output->render($page);
echo $output->footer();
