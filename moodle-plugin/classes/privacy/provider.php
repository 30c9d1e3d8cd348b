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
 * Privacy provider of tool_delivery.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\privacy;

use core_privacy\local\metadata\collection;

/**
 * Privacy provider of tool_delivery.
 *
 * The plugin stores nothing in Moodle's database: it has no tables and no user preferences, and
 * the events it triggers are stored and handled by the log stores. Each request to the delivery
 * helper carries the admin's user id and full name, and an update or run all carries the
 * delivery comment; the helper keeps them in its audit log on the server, outside Moodle, where
 * the server's operator manages them (`deliveryctl log`).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class provider implements \core_privacy\local\metadata\provider {
    /**
     * Describes the data sent to the delivery helper.
     *
     * @param collection $collection The collection to add to.
     * @return collection The collection.
     */
    public static function get_metadata(collection $collection): collection {
        $collection->add_external_location_link('deliveryd', [
            'userid' => 'privacy:metadata:deliveryd:userid',
            'fullname' => 'privacy:metadata:deliveryd:fullname',
            'comment' => 'privacy:metadata:deliveryd:comment',
        ], 'privacy:metadata:deliveryd');
        return $collection;
    }
}
