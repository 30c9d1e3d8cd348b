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
 * The time of a deliver-later schedule: typed in the admin's time zone, sent in ISO 8601.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The time of a deliver-later schedule: the form's date and time (`YYYY-MM-DDTHH:MM`, a
 * datetime-local field) is read in the admin's time zone and sent to the helper in ISO 8601 with
 * its offset; the default is the next 02:00 there.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class schedule_time {
    /** @var string The form's format. */
    public const LOCAL_FORMAT = 'Y-m-d\TH:i';

    /**
     * The next 02:00 in a time zone after a moment, as the form shows it.
     *
     * @param \DateTimeZone $zone The admin's time zone.
     * @param int $now The moment (Unix time).
     * @return string Such as `2026-12-08T02:00`.
     */
    public static function default_local(\DateTimeZone $zone, int $now): string {
        $next = (new \DateTimeImmutable('@' . $now))->setTimezone($zone)->setTime(2, 0);
        if ($next->getTimestamp() <= $now) {
            $next = $next->modify('+1 day')->setTime(2, 0);
        }
        return $next->format(self::LOCAL_FORMAT);
    }

    /**
     * The form's date and time, read in a time zone, in ISO 8601 with its offset.
     *
     * @param string $local The form's value (`YYYY-MM-DDTHH:MM`).
     * @param \DateTimeZone $zone The admin's time zone.
     * @return string Such as `2026-12-08T02:00:00+01:00`.
     * @throws helper_exception With `bad_request` when it is not a date and time.
     */
    public static function to_iso(string $local, \DateTimeZone $zone): string {
        $time = \DateTimeImmutable::createFromFormat('!' . self::LOCAL_FORMAT, trim($local), $zone);
        if ($time === false || $time->format(self::LOCAL_FORMAT) !== trim($local)) {
            throw new helper_exception('bad_request', 'not a date and time');
        }
        return $time->format(\DateTimeInterface::ATOM);
    }
}
