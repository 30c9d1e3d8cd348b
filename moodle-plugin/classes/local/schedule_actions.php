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
 * Deliver later: schedule a Run all of the waiting upstream revision with the helper, or cancel it.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * Deliver later: schedules a Run all of the waiting upstream revision with the helper (which keeps
 * the timer), or cancels it. The helper audits both; the history synchronisation that follows
 * turns the audit record into the event schedule_set or schedule_cancelled, as it does for a
 * schedule set or cancelled on the server.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class schedule_actions {
    /**
     * Schedules a Run all.
     *
     * @param helper_client $client The client for the current user.
     * @param string $local When, as the form gives it (`YYYY-MM-DDTHH:MM`), in the user's time zone.
     * @param \DateTimeZone $zone The user's time zone.
     * @param string $revision The upstream revision shown (`site.upstream.upstream.id`).
     * @param bool $onlyifpreflightpasses Skip it when the preflight blocks at that time.
     * @param bool $securitycopy Also refresh the security copy.
     * @param string $comment The delivery's comment.
     * @return array The helper's DeliverySchedule.
     * @throws helper_exception With `schedule_exists`, `schedule_stale`, `bad_request`… .
     */
    public static function schedule(
        helper_client $client,
        string $local,
        \DateTimeZone $zone,
        string $revision,
        bool $onlyifpreflightpasses,
        bool $securitycopy,
        string $comment
    ): array {
        if (!preg_match('/^[0-9a-zA-Z._:-]{1,128}$/', $revision)) {
            throw new helper_exception('schedule_stale', 'not a revision');
        }
        $comment = \core_text::substr(trim($comment), 0, helper_rules::COMMENT_MAX_CHARACTERS);
        $schedule = $client->schedule(
            schedule_time::to_iso($local, $zone),
            $revision,
            $onlyifpreflightpasses,
            $securitycopy,
            $comment
        );
        delivery_actions::log_history($client);
        return $schedule;
    }

    /**
     * Cancels the scheduled Run all.
     *
     * @param helper_client $client The client for the current user.
     * @return array The helper's DeliverySchedule cancelled.
     * @throws helper_exception With `not_found` when none is set.
     */
    public static function cancel(helper_client $client): array {
        $schedule = $client->cancel_schedule();
        delivery_actions::log_history($client);
        return $schedule;
    }
}
