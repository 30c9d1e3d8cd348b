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
 * Scheduled task: deletes the delivery reports older than the retention setting.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\task;

use tool_delivery\local\report_store;

/**
 * Scheduled task (daily): deletes the delivery reports of deliveries started more than
 * tool_delivery/reportretentiondays days ago (0 keeps them forever). The helper's audit log, on
 * the server, still holds the deliveries.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class cleanup_reports extends \core\task\scheduled_task {
    /**
     * The task's name.
     *
     * @return string The name.
     */
    public function get_name() {
        return get_string('task:cleanupreports', 'tool_delivery');
    }

    /**
     * Deletes the old reports.
     */
    public function execute() {
        $days = (int) get_config('tool_delivery', 'reportretentiondays');
        if ($days <= 0) {
            mtrace('tool_delivery: delivery reports are kept forever');
            return;
        }
        (new report_store())->delete_older_than(time() - $days * DAYSECS);
        mtrace("tool_delivery: delivery reports older than {$days} days deleted");
    }
}
