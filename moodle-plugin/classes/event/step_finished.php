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
 * Event step_finished: a delivery operation succeeded, whoever started it.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\event;

/**
 * Event step_finished: a delivery operation succeeded, whoever started it (history_sync).
 *
 * @property-read array $other {
 *      Extra information about the event (delivery_event::from_record).
 *      - string operation: the operation.
 *      - string job: the helper's job id.
 *      - string result: succeeded.
 *      - string actor: who started it, as the helper names them.
 *      - string source: where it was started (moodle, cli, console).
 *      - string started: when it started (ISO 8601).
 *      - string phase: the site's phase afterwards.
 *      - string errorcode: ''.
 * }
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class step_finished extends delivery_event {
    /**
     * Makes the event for one record of the helper's audit log.
     *
     * @param array $record The record.
     * @return self The event, to trigger.
     */
    public static function create_from_record(array $record): self {
        return self::create(self::from_record($record));
    }

    /**
     * The event's name.
     *
     * @return string The name.
     */
    public static function get_name() {
        return get_string('event:stepfinished', 'tool_delivery');
    }

    /**
     * What happened, in English for the logs.
     *
     * @return string The description.
     */
    public function get_description() {
        return "The delivery operation '{$this->other['operation']}' started by '{$this->other['actor']}' "
            . "({$this->other['source']}) succeeded (helper job '{$this->other['job']}'; the site is now "
            . "'{$this->other['phase']}').";
    }
}
