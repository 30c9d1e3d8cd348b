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
 * Event schedule_set: a Run all of the waiting upstream revision was scheduled (deliver later).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\event;

/**
 * Event schedule_set: a Run all of the waiting upstream revision was scheduled (deliver later), whoever
 * did it (history_sync, from the helper's audit record).
 *
 * @property-read array $other {
 *      Extra information about the event (delivery_event::from_record, and:)
 *      - string revision: the upstream revision scheduled.
 *      - string at: when the Run all is (was) to start (ISO 8601).
 * }
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class schedule_set extends delivery_event {
    /** @var string[] The members `other` must hold. */
    protected const REQUIRED_OTHER = ['operation', 'job', 'revision', 'at'];

    /**
     * Makes the event for one record of the helper's audit log.
     *
     * @param array $record The record (result `scheduled` or `unscheduled`, with `schedule`).
     * @return self The event, to trigger.
     */
    public static function create_from_record(array $record): self {
        $data = self::from_record($record);
        $schedule = is_array($record['schedule'] ?? null) ? $record['schedule'] : [];
        $data['other']['revision'] = (string) ($schedule['revision']['label'] ?? $schedule['revision']['id'] ?? '');
        $data['other']['at'] = (string) ($schedule['at'] ?? '');
        return self::create($data);
    }

    /**
     * The event's name.
     *
     * @return string The name.
     */
    public static function get_name() {
        return get_string('event:scheduleset', 'tool_delivery');
    }

    /**
     * What happened, in English for the logs.
     *
     * @return string The description.
     */
    public function get_description() {
        return "'{$this->other['actor']}' ({$this->other['source']}) scheduled a Run all of '{$this->other['revision']}' "
            . "at '{$this->other['at']}' (helper record '{$this->other['job']}').";
    }
}
