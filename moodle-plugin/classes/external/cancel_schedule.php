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
 * External function tool_delivery_cancel_schedule: cancels the scheduled Run all.
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
 * External function tool_delivery_cancel_schedule: cancels the scheduled Run all, whoever set it.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class cancel_schedule extends delivery_function {
    /**
     * The parameters: none.
     *
     * @return external_function_parameters The parameters.
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([]);
    }

    /**
     * Cancels it.
     *
     * @return array cancelled, or error (`not_found` when none is set).
     */
    public static function execute(): array {
        $client = self::enter();
        try {
            schedule_actions::cancel($client);
            return ['cancelled' => true];
        } catch (helper_exception $error) {
            return ['cancelled' => false, 'error' => job_view::error($error)];
        }
    }

    /**
     * The answer.
     *
     * @return external_single_structure The answer.
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'cancelled' => new external_value(PARAM_BOOL, 'Whether the helper cancelled it'),
            'error' => self::error_structure(),
        ]);
    }
}
