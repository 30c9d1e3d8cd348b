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
 * External function tool_delivery_run_preflight: the Check button's report.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\external;

use core_external\external_function_parameters;
use core_external\external_single_structure;
use core_external\external_value;
use tool_delivery\local\client_factory;
use tool_delivery\local\helper_exception;
use tool_delivery\output\preflight;

/**
 * External function tool_delivery_run_preflight: the preflight of production against the backup
 * copy, as Restore production would run it, without changing anything (the Check button). The
 * helper lints every PHP file the update brought, which takes a while.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class run_preflight extends delivery_function {
    /**
     * The parameters: none.
     *
     * @return external_function_parameters The parameters.
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([]);
    }

    /**
     * The report, as the context of tool_delivery/preflight.
     *
     * @return array blocking, reportcontext.
     */
    public static function execute(): array {
        global $PAGE, $USER;
        $client = self::enter();
        \core_php_time_limit::raise(300);
        $output = $PAGE->get_renderer('tool_delivery');
        $report = null;
        try {
            // What the site's state allows: without Restore production, there is nothing to restore now.
            $allowed = $client->status()['site']['allowed'] ?? null;
            $report = client_factory::for_user($USER, 240.0)->preflight();
            $view = new preflight($report, null, null, is_array($allowed) ? $allowed : null);
        } catch (helper_exception $error) {
            $view = new preflight(null, $error);
        }
        $context = $view->export_for_template($output);
        return [
            'blocking' => !empty($report['blocking']),
            'reportcontext' => json_encode($context, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR),
        ];
    }

    /**
     * The answer.
     *
     * @return external_single_structure The answer.
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'blocking' => new external_value(PARAM_BOOL, 'Whether the preflight blocks Restore production'),
            'reportcontext' => new external_value(PARAM_RAW, 'The context of tool_delivery/preflight, JSON'),
        ]);
    }
}
