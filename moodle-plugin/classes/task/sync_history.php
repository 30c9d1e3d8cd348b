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
 * Scheduled task: the helper's audit log into Moodle's logs.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\task;

use tool_delivery\local\client_factory;
use tool_delivery\local\helper_exception;
use tool_delivery\local\history_sync;
use tool_delivery\local\upstream_watch;

/**
 * Scheduled task (every minute): each operation the helper ran, from Moodle or not, becomes its
 * events in Moodle's logs, once (history_sync).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class sync_history extends \core\task\scheduled_task {
    /**
     * The task's name.
     *
     * @return string The name.
     */
    public function get_name() {
        return get_string('task:synchistory', 'tool_delivery');
    }

    /**
     * Logs the operations the helper ran since the last run. A helper that is down is said in the
     * task's output; the next run catches up.
     */
    public function execute() {
        try {
            $client = client_factory::for_user(get_admin());
            $logged = (new history_sync($client))->run_locked();
            mtrace("tool_delivery: {$logged} operation(s) of the helper logged");
            if ($logged > 0) {
                // A delivery, a cancel or a rollback changes what waits: the Notifications page follows.
                upstream_watch::keep($client->status()['site']['upstream'] ?? null);
            }
        } catch (helper_exception $error) {
            mtrace('tool_delivery: the helper did not answer (' . $error->getMessage() . '); the next run catches up');
        }
    }
}
