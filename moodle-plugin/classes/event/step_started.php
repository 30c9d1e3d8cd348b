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
 * Event step_started: an admin started a delivery step (or run all, or cancel) with the helper.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\event;

/**
 * Event step_started: an admin started a delivery step (or run all, or cancel) with the helper.
 *
 * @property-read array $other {
 *      Extra information about the event.
 *      - string operation: the operation (secure, switch, update, restore, run-all, cancel).
 *      - string job: the helper's job id.
 *      - string comment: the delivery comment, possibly empty.
 * }
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class step_started extends delivery_event {
    /**
     * Makes the event for a helper job.
     *
     * @param string $operation The operation (`secure`, `switch`, `update`, `restore`, `run-all`, `cancel`).
     * @param string $jobid The helper's job id.
     * @param string $comment The delivery comment, if any.
     * @return self The event, to trigger.
     */
    public static function create_from_job(string $operation, string $jobid, string $comment = ''): self {
        // The context is the system's, set in init(): passing it again makes Moodle complain.
        return self::create([
            'other' => ['operation' => $operation, 'job' => $jobid, 'comment' => $comment],
        ]);
    }

    /**
     * The event's name.
     *
     * @return string The name.
     */
    public static function get_name() {
        return get_string('event:stepstarted', 'tool_delivery');
    }

    /**
     * What happened, in English for the logs.
     *
     * @return string The description.
     */
    public function get_description() {
        return "The user with id '{$this->userid}' started the delivery operation '{$this->other['operation']}' "
            . "(helper job '{$this->other['job']}').";
    }
}
