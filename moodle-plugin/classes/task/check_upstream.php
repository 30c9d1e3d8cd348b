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
 * Scheduled task: the upstream watch.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\task;

use tool_delivery\local\client_factory;
use tool_delivery\local\helper_exception;
use tool_delivery\local\upstream_watch;

/**
 * Scheduled task (hourly): asks the helper what a delivery would bring now, and tells the people who
 * deliver once per new upstream revision (upstream_watch).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class check_upstream extends \core\task\scheduled_task {
    /**
     * The task's name.
     *
     * @return string The name.
     */
    public function get_name() {
        return get_string('task:checkupstream', 'tool_delivery');
    }

    /**
     * Looks at the upstream. A helper that is down or busy (an operation runs) is said in the
     * task's output; the next run looks again.
     */
    public function execute() {
        try {
            $summary = (new upstream_watch(client_factory::for_user(get_admin(), 120.0)))->run();
            mtrace('tool_delivery: upstream ' . ($summary->waiting() ? 'has ' . $summary->revision_label() : 'is current'));
        } catch (helper_exception $error) {
            mtrace('tool_delivery: the upstream was not checked (' . $error->getMessage() . '); the next run looks again');
        }
    }
}
