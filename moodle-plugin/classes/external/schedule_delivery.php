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
 * External function tool_delivery_schedule_delivery: deliver later, a Run all of the waiting upstream revision.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\external;

use core_external\external_function_parameters;
use core_external\external_single_structure;
use core_external\external_value;
use tool_delivery\local\helper_exception;
use tool_delivery\local\job_view;
use tool_delivery\local\schedule_actions;

/**
 * External function tool_delivery_schedule_delivery: schedules a Run all of the upstream revision
 * the screen showed, at a time typed in the user's time zone; the helper keeps the timer and
 * refuses another revision (`schedule_stale`) or a second schedule (`schedule_exists`).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class schedule_delivery extends delivery_function {
    /**
     * The parameters.
     *
     * @return external_function_parameters The parameters.
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([
            'at' => new external_value(PARAM_RAW_TRIMMED, "When: YYYY-MM-DDTHH:MM in the user's time zone"),
            'revision' => new external_value(PARAM_RAW_TRIMMED, 'The upstream revision shown (site.upstream.upstream.id)'),
            'onlyifpreflightpasses' => new external_value(
                PARAM_BOOL,
                'Skip the run when the preflight blocks at that time',
                VALUE_DEFAULT,
                true
            ),
            'securitycopy' => new external_value(PARAM_BOOL, 'Also refresh the security copy', VALUE_DEFAULT, false),
            'comment' => new external_value(PARAM_TEXT, "The delivery's comment", VALUE_DEFAULT, ''),
        ]);
    }

    /**
     * Schedules the Run all.
     *
     * @param string $at When.
     * @param string $revision The upstream revision.
     * @param bool $onlyifpreflightpasses Skip when the preflight blocks.
     * @param bool $securitycopy Also the security copy.
     * @param string $comment The comment.
     * @return array scheduled, at (ISO 8601), or error.
     */
    public static function execute(
        string $at,
        string $revision,
        bool $onlyifpreflightpasses = true,
        bool $securitycopy = false,
        string $comment = ''
    ): array {
        $params = self::validate_parameters(self::execute_parameters(), [
            'at' => $at,
            'revision' => $revision,
            'onlyifpreflightpasses' => $onlyifpreflightpasses,
            'securitycopy' => $securitycopy,
            'comment' => $comment,
        ]);
        $client = self::enter();
        try {
            $schedule = schedule_actions::schedule(
                $client,
                $params['at'],
                \core_date::get_user_timezone_object(),
                $params['revision'],
                $params['onlyifpreflightpasses'],
                $params['securitycopy'],
                $params['comment']
            );
            return ['scheduled' => true, 'at' => (string) ($schedule['at'] ?? '')];
        } catch (helper_exception $error) {
            return ['scheduled' => false, 'at' => '', 'error' => job_view::error($error)];
        }
    }

    /**
     * The answer.
     *
     * @return external_single_structure The answer.
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'scheduled' => new external_value(PARAM_BOOL, 'Whether the helper scheduled it'),
            'at' => new external_value(PARAM_RAW, "When it runs, ISO 8601 ('' when refused)"),
            'error' => self::error_structure(),
        ]);
    }
}
