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
 * External function tool_delivery_get_console_link: the emergency console's link, issued when it is needed.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\external;

use core_external\external_function_parameters;
use core_external\external_single_structure;
use core_external\external_value;
use tool_delivery\local\delivery_actions;
use tool_delivery\local\helper_exception;
use tool_delivery\local\job_view;

/**
 * External function tool_delivery_get_console_link: a short-lived link to the helper's emergency
 * console for this administrator. The page asks for one when it follows an operation that can take
 * Moodle down (Restore production, Run all, the emergency rollback), while Moodle still answers;
 * the console follows the delivery and offers the rollback while Moodle cannot serve pages.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class get_console_link extends delivery_function {
    /**
     * The parameters: none.
     *
     * @return external_function_parameters The parameters.
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([]);
    }

    /**
     * A new link.
     *
     * @return array url, expires, or error.
     */
    public static function execute(): array {
        $client = self::enter(10.0);
        try {
            return self::link($client->console_token());
        } catch (helper_exception $error) {
            return ['url' => '', 'expires' => '', 'error' => job_view::error($error)];
        }
    }

    /**
     * The console's link for a token the helper issued.
     *
     * @param array $token The helper's answer (`token`, `expiresAt`).
     * @return array url, expires (in the user's language).
     */
    public static function link(array $token): array {
        global $CFG;
        return [
            'url' => $CFG->wwwroot . '/delivery-console/#token=' . $token['token'],
            'expires' => delivery_actions::format_date($token['expiresAt'] ?? null),
        ];
    }

    /**
     * The answer.
     *
     * @return external_single_structure The answer.
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'url' => new external_value(PARAM_URL, "The console's link, with the token ('' when refused)"),
            'expires' => new external_value(PARAM_TEXT, 'When the token expires, in words'),
            'error' => self::error_structure(),
        ]);
    }
}
