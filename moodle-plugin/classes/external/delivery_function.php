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
 * The base of the plugin's external functions: the checks each makes, and the structures they share.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\external;

use core_external\external_api;
use core_external\external_multiple_structure;
use core_external\external_single_structure;
use core_external\external_value;
use tool_delivery\local\client_factory;
use tool_delivery\local\helper_client;

/**
 * The base of the plugin's external functions: each validates the system context and requires
 * tool/delivery:deliver before it asks the helper, and answers the helper's errors as data (code,
 * message in the user's language, whether the helper looks down), not as exceptions: an exception
 * means Moodle itself did not answer the page (a lost session, maintenance mode).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
abstract class delivery_function extends external_api {
    /**
     * Validates the context and requires the capability; then the helper client of the current user.
     *
     * @param float $timeout Seconds the helper may take to answer.
     * @return helper_client The client.
     */
    protected static function enter(float $timeout = 20.0): helper_client {
        global $USER;
        $context = \context_system::instance();
        self::validate_context($context);
        require_capability('tool/delivery:deliver', $context);
        return client_factory::for_user($USER, $timeout);
    }

    /**
     * The structure of a helper error.
     *
     * @return external_single_structure The structure (optional in every answer).
     */
    protected static function error_structure(): external_single_structure {
        return new external_single_structure([
            'code' => new external_value(PARAM_ALPHANUMEXT, "The helper's or the plugin's stable error code"),
            'message' => new external_value(PARAM_TEXT, "The error in the user's language"),
            'down' => new external_value(PARAM_BOOL, 'Whether the helper looks down (asking again may succeed)'),
        ], 'The error, when the helper refused or could not be reached', VALUE_OPTIONAL);
    }

    /**
     * The structure of the site's state as the screen redraws it ({@see \tool_delivery\local\job_view::site()}).
     *
     * @return external_single_structure The structure (optional: absent when the helper did not answer).
     */
    protected static function site_structure(): external_single_structure {
        return new external_single_structure([
            'phase' => new external_value(PARAM_ALPHAEXT, "The site's phase"),
            'allowed' => new external_multiple_structure(
                new external_value(PARAM_ALPHAEXT, 'An operation'),
                'The operations whose buttons are enabled'
            ),
            'rollback' => new external_value(PARAM_BOOL, 'Whether a copy exists to roll back to'),
            'bannercontext' => new external_value(PARAM_RAW, 'The context of tool_delivery/banner, JSON'),
            'rollbackplancontext' => new external_value(PARAM_RAW, 'The context of tool_delivery/rollback_plan, JSON'),
        ], "The site's state now", VALUE_OPTIONAL);
    }
}
