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
 * External function tool_delivery_start_operation: starts one of the screen's actions with the helper.
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
 * External function tool_delivery_start_operation: starts one of the screen's actions (a step, Run
 * all, Cancel, the emergency rollback) with the helper, which checks the options again and decides
 * whether the site's state allows it. The page then follows the job with tool_delivery_get_job.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class start_operation extends delivery_function {
    /**
     * The parameters.
     *
     * @return external_function_parameters The parameters.
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([
            'action' => new external_value(
                PARAM_ALPHAEXT,
                'The operation: secure, switch, update, restore, run-all, cancel, rollback, rehearse'
            ),
            'securitycopy' => new external_value(PARAM_BOOL, 'Secure: also the security copy', VALUE_DEFAULT, false),
            // As typed: a path the helper would not take is refused with what was typed, never rewritten.
            'securepath' => new external_value(PARAM_RAW_TRIMMED, 'Secure: a component path only', VALUE_DEFAULT, ''),
            'updatepath' => new external_value(PARAM_RAW_TRIMMED, 'Update: a component path only', VALUE_DEFAULT, ''),
            'comment' => new external_value(PARAM_TEXT, "Update: the delivery's comment", VALUE_DEFAULT, ''),
            'confirmdatabaserestore' => new external_value(
                PARAM_BOOL,
                'Rollback: the confirmation that the database snapshot may be restored',
                VALUE_DEFAULT,
                false
            ),
            // Passed on once to the helper and kept nowhere (not in the session, the log or the event).
            'secondfactorcode' => new external_value(
                PARAM_ALPHANUM,
                "Rollback with a database restore: the code of the administrator's authenticator",
                VALUE_DEFAULT,
                ''
            ),
            'confirmfailedrehearsal' => new external_value(
                PARAM_BOOL,
                'Restore or Run all: deliver although the rehearsal of that revision failed',
                VALUE_DEFAULT,
                false
            ),
        ]);
    }

    /**
     * Starts the action.
     *
     * @param string $action The operation.
     * @param bool $securitycopy Secure: also the security copy.
     * @param string $securepath Secure: a component path.
     * @param string $updatepath Update: a component path.
     * @param string $comment Update: the comment.
     * @param bool $confirmdatabaserestore Rollback: the confirmation of a database restore.
     * @param string $secondfactorcode Rollback: the authenticator's code.
     * @param bool $confirmfailedrehearsal Restore or Run all: deliver although the rehearsal failed.
     * @return array job and operation, or error.
     */
    public static function execute(
        string $action,
        bool $securitycopy = false,
        string $securepath = '',
        string $updatepath = '',
        string $comment = '',
        bool $confirmdatabaserestore = false,
        string $secondfactorcode = '',
        bool $confirmfailedrehearsal = false
    ): array {
        $params = self::validate_parameters(self::execute_parameters(), [
            'action' => $action,
            'securitycopy' => $securitycopy,
            'securepath' => $securepath,
            'updatepath' => $updatepath,
            'comment' => $comment,
            'confirmdatabaserestore' => $confirmdatabaserestore,
            'secondfactorcode' => $secondfactorcode,
            'confirmfailedrehearsal' => $confirmfailedrehearsal,
        ]);
        $client = self::enter();
        try {
            $jobid = delivery_actions::start($client, $params['action'], [
                'securityCopy' => $params['securitycopy'],
                'securePath' => $params['securepath'],
                'updatePath' => $params['updatepath'],
                'comment' => $params['comment'],
                'confirmDatabaseRestore' => $params['confirmdatabaserestore'],
                'secondFactorCode' => $params['secondfactorcode'],
                'confirmFailedRehearsal' => $params['confirmfailedrehearsal'],
            ]);
            return ['job' => $jobid, 'operation' => $params['action']];
        } catch (helper_exception $error) {
            return ['job' => '', 'operation' => $params['action'], 'error' => job_view::error($error)];
        }
    }

    /**
     * The answer.
     *
     * @return external_single_structure The answer.
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'job' => new external_value(PARAM_ALPHANUMEXT, "The helper's job id ('' when refused)"),
            'operation' => new external_value(PARAM_ALPHAEXT, 'The operation'),
            'error' => self::error_structure(),
        ]);
    }
}
