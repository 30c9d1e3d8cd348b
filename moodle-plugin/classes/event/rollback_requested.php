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
 * Event rollback_requested: an admin asked the helper for an emergency rollback.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\event;

/**
 * Event rollback_requested: an admin asked the helper for an emergency rollback.
 *
 * @property-read array $other {
 *      Extra information about the event.
 *      - string job: the helper's job id.
 *      - bool confirmdatabaserestore: whether the administrator confirmed that the database snapshot
 *        may be restored, losing what users wrote since it was taken.
 * }
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class rollback_requested extends delivery_event {
    /** @var string[] The members `other` must hold. */
    protected const REQUIRED_OTHER = ['job'];
    /**
     * Makes the event for a helper job.
     *
     * @param string $jobid The helper's job id.
     * @param bool $confirmdatabaserestore Whether the administrator confirmed the loss of what users
     *        wrote since the database snapshot (ticked on the screen and sent to the helper).
     * @return self The event, to trigger.
     */
    public static function create_from_job(string $jobid, bool $confirmdatabaserestore = false): self {
        // The context is the system's, set in init(): passing it again makes Moodle complain.
        return self::create([
            'other' => ['operation' => 'rollback', 'job' => $jobid, 'confirmdatabaserestore' => $confirmdatabaserestore],
        ]);
    }

    /**
     * The event's name.
     *
     * @return string The name.
     */
    public static function get_name() {
        return get_string('event:rollbackrequested', 'tool_delivery');
    }

    /**
     * What happened, in English for the logs.
     *
     * @return string The description.
     */
    public function get_description() {
        $confirmation = empty($this->other['confirmdatabaserestore']) ? ''
            : ', confirming that the database snapshot may be restored and what users wrote since it was taken lost';
        return "The user with id '{$this->userid}' asked for an emergency rollback{$confirmation} "
            . "(helper job '{$this->other['job']}').";
    }
}
