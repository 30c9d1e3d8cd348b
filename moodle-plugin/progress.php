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
 * Answers a job's progress to the AMD module: steps, new log lines, result and what to do next, and
 * the site's banner and rollback plan as they are now.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

define('AJAX_SCRIPT', true);

require(__DIR__ . '/../../../config.php');

use tool_delivery\local\client_factory;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\transport_exception;

require_login(null, false);
require_capability('tool/delivery:deliver', context_system::instance());
require_sesskey();
$PAGE->set_context(context_system::instance());
$PAGE->set_url(new moodle_url('/admin/tool/delivery/progress.php'));

$jobid = required_param('job', PARAM_ALPHANUMEXT);
$offset = optional_param('offset', 0, PARAM_INT);
if (!helper_client::is_job_id($jobid)) {
    throw new invalid_parameter_exception('not a job id');
}

header('Cache-Control: no-store');
try {
    $client = client_factory::for_user($USER, 10.0);
    $job = $client->job($jobid, max(0, $offset));
    if (($job['state'] ?? 'running') !== 'running') {
        // The operation is in the helper's audit log now: into Moodle's logs with it, once.
        delivery_actions::log_history($client);
    }
    $steps = [];
    foreach ($job['steps'] ?? [] as $step) {
        $fraction = isset($step['fraction']) ? (float) $step['fraction'] : null;
        if (($step['state'] ?? '') === 'succeeded') {
            $fraction = 1.0;
        }
        $steps[] = [
            'operation' => (string) ($step['operation'] ?? ''),
            'name' => get_string(delivery_actions::operation_key((string) ($step['operation'] ?? '')), 'tool_delivery'),
            'state' => (string) ($step['state'] ?? 'running'),
            'statename' => get_string('result:' . ($step['state'] ?? 'running'), 'tool_delivery'),
            'percent' => $fraction === null ? null : (int) round(max(0.0, min(1.0, $fraction)) * 100),
            'message' => (string) ($step['message'] ?? ''),
        ];
    }
    $answer = [
        'id' => $job['id'],
        'operation' => $job['operation'],
        'state' => $job['state'],
        'steps' => $steps,
        'lines' => delivery_actions::log_lines($job['lines'] ?? []),
        'nextoffset' => (int) ($job['nextOffset'] ?? $offset),
        'totallines' => (int) ($job['totalLines'] ?? 0),
        'truncated' => !empty($job['truncated']),
        'statusline' => get_string(
            'progress:running',
            'tool_delivery',
            get_string(delivery_actions::operation_key((string) $job['operation']), 'tool_delivery')
        ),
    ];
    // The site's state as it is now: the banner is drawn again, and the buttons follow it once
    // the job has ended.
    $site = null;
    try {
        $status = $client->status();
        $site = $status['site'];
        $banner = new \tool_delivery\output\banner($site, $status['job'] ?? null);
        $output = $PAGE->get_renderer('tool_delivery');
        $answer['banner'] = $output->render_from_template('tool_delivery/banner', $banner->export_for_template($output));
        $answer['rollbackplan'] = $output->render(new \tool_delivery\output\rollback_plan($site));
        $answer['allowed'] = \tool_delivery\output\screen::enabled_operations($status);
        $answer['rollback'] = !empty($site['rollbackTarget']);
    } catch (helper_exception $error) {
        // The progress stands without the state.
        $site = null;
    }
    if ($job['state'] !== 'running') {
        $answer['result'] = delivery_actions::job_result($job, $site);
    }
    // The session is not needed past this point (rendering the banner may still use its caches).
    \core\session\manager::write_close();
    echo json_encode($answer);
} catch (helper_exception $error) {
    http_response_code($error instanceof transport_exception ? 502 : ($error->status ?: 500));
    echo json_encode(['error' => [
        'code' => $error->errorcode,
        'message' => delivery_actions::error_message($error),
        'down' => $error instanceof transport_exception && $error->is_down(),
    ]]);
}
