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
 * External function tool_delivery_get_job: a job's progress, followed by the delivery screen.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\external;

use core_external\external_function_parameters;
use core_external\external_multiple_structure;
use core_external\external_single_structure;
use core_external\external_value;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\helper_client;
use tool_delivery\local\helper_exception;
use tool_delivery\local\job_view;

/**
 * External function tool_delivery_get_job: a job's steps, its log lines from an offset, and once it
 * has ended its result with what to do next; with the site's state as it is now. A job that has
 * ended is brought into Moodle's logs (with every other operation not logged yet).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class get_job extends delivery_function {
    /**
     * The parameters.
     *
     * @return external_function_parameters The parameters.
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([
            'jobid' => new external_value(PARAM_ALPHANUMEXT, "The helper's job id"),
            'offset' => new external_value(PARAM_INT, 'The first log line wanted', VALUE_DEFAULT, 0),
        ]);
    }

    /**
     * The job's progress.
     *
     * @param string $jobid The job id.
     * @param int $offset The first log line wanted (the previous answer's nextoffset).
     * @return array The progress ({@see job_view::progress()}), site, or error.
     */
    public static function execute(string $jobid, int $offset = 0): array {
        global $PAGE;
        $params = self::validate_parameters(self::execute_parameters(), ['jobid' => $jobid, 'offset' => $offset]);
        if (!helper_client::is_job_id($params['jobid'])) {
            throw new \invalid_parameter_exception('not a job id');
        }
        $client = self::enter(10.0);
        $offset = max(0, $params['offset']);
        try {
            $job = $client->job($params['jobid'], $offset);
        } catch (helper_exception $error) {
            return ['id' => $params['jobid'], 'state' => 'unknown', 'error' => job_view::error($error)];
        }
        $running = ($job['state'] ?? 'running') === 'running';
        if (!$running) {
            // The operation is in the helper's audit log now: into Moodle's logs with it, once.
            delivery_actions::log_history($client);
        }
        $answer = null;
        try {
            $status = $client->status();
            $answer = ['site' => job_view::site($status, $PAGE->get_renderer('tool_delivery'))];
            $site = $status['site'];
        } catch (helper_exception $error) {
            // The progress stands without the state.
            $answer = [];
            $site = null;
        }
        $progress = job_view::progress($job, $site, $offset);
        if ($progress['result'] === false) {
            unset($progress['result']);
        }
        return $progress + $answer;
    }

    /**
     * The answer.
     *
     * @return external_single_structure The answer.
     */
    public static function execute_returns(): external_single_structure {
        $text = fn(string $description) => new external_value(PARAM_TEXT, $description);
        return new external_single_structure([
            'id' => new external_value(PARAM_ALPHANUMEXT, 'The job id'),
            'operation' => new external_value(PARAM_ALPHAEXT, 'The operation', VALUE_OPTIONAL),
            'state' => new external_value(PARAM_ALPHA, 'running, succeeded or failed (unknown with an error)'),
            'steps' => new external_multiple_structure(new external_single_structure([
                'operation' => new external_value(PARAM_ALPHAEXT, "The step's operation"),
                'name' => $text("The step's name"),
                'state' => new external_value(PARAM_ALPHA, 'running, succeeded or failed'),
                'statename' => $text('The state in words'),
                'percent' => new external_value(
                    PARAM_INT,
                    'How far it is, when the helper can tell',
                    VALUE_REQUIRED,
                    null,
                    NULL_ALLOWED
                ),
                'message' => $text("The step's outcome"),
            ]), 'The steps', VALUE_OPTIONAL),
            'lines' => new external_multiple_structure(
                new external_value(PARAM_RAW, 'A log line, plain text (the page shows it as text)'),
                'The new log lines',
                VALUE_OPTIONAL
            ),
            'nextoffset' => new external_value(PARAM_INT, 'The offset to ask from next', VALUE_OPTIONAL),
            'totallines' => new external_value(PARAM_INT, 'How many lines the log has', VALUE_OPTIONAL),
            'truncated' => new external_value(PARAM_BOOL, 'Whether the oldest lines were dropped', VALUE_OPTIONAL),
            'statusline' => new external_value(PARAM_TEXT, 'What runs, in words', VALUE_OPTIONAL),
            'result' => new external_single_structure([
                'succeeded' => new external_value(PARAM_BOOL, 'Whether it succeeded'),
                'refused' => new external_value(PARAM_BOOL, 'Whether it was refused (nothing changed)'),
                'message' => $text('What happened'),
                'detail' => $text("The helper's detail of a failure"),
                'served' => $text('Which copy serves the site now'),
                'next' => $text('What to do next'),
                'reload' => $text("The reload button's label"),
            ], 'The result, once the job has ended (see tool_delivery/job_result)', VALUE_OPTIONAL),
            'site' => self::site_structure(),
            'error' => self::error_structure(),
        ]);
    }
}
