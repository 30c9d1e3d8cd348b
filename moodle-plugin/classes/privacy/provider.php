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
use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\contextlist;
use core_privacy\local\request\transform;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;

/**
 * Privacy provider of tool_delivery.
 *
 * Moodle's database holds the report of each delivery (table tool_delivery_report), with the id of
 * the Moodle user who started it, in the system context; the events the plugin triggers are stored
 * and handled by the log stores, the notifications by the messaging system. Each request to the
 * delivery helper carries the admin's user id and full name, and an update, run all or schedule
 * carries the delivery comment; the helper keeps them in its audit log on the server, outside
 * Moodle, where the server's operator manages them (`deliveryctl log`).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class provider implements
    \core_privacy\local\metadata\provider,
    \core_privacy\local\request\core_userlist_provider,
    \core_privacy\local\request\plugin\provider {
    /**
     * Describes the reports kept and the data sent to the delivery helper.
     *
     * @param collection $collection The collection to add to.
     * @return collection The collection.
     */
    public static function get_metadata(collection $collection): collection {
        $collection->add_database_table('tool_delivery_report', [
            'userid' => 'privacy:metadata:report:userid',
            'timestarted' => 'privacy:metadata:report:timestarted',
            'report' => 'privacy:metadata:report:report',
        ], 'privacy:metadata:report');
        $collection->add_external_location_link('deliveryd', [
            'userid' => 'privacy:metadata:deliveryd:userid',
            'fullname' => 'privacy:metadata:deliveryd:fullname',
            'comment' => 'privacy:metadata:deliveryd:comment',
        ], 'privacy:metadata:deliveryd');
        return $collection;
    }

    /**
     * The system context, when the user started a delivery whose report is kept.
     *
     * @param int $userid The user.
     * @return contextlist The contexts.
     */
    public static function get_contexts_for_userid(int $userid): contextlist {
        global $DB;
        $contextlist = new contextlist();
        if ($DB->record_exists('tool_delivery_report', ['userid' => $userid])) {
            $contextlist->add_system_context();
        }
        return $contextlist;
    }

    /**
     * The users who started a delivery whose report is kept.
     *
     * @param userlist $userlist The list to fill (system context only).
     */
    public static function get_users_in_context(userlist $userlist): void {
        if (!$userlist->get_context() instanceof \context_system) {
            return;
        }
        $userlist->add_from_sql('userid', 'SELECT userid FROM {tool_delivery_report} WHERE userid > 0', []);
    }

    /**
     * Exports the reports of the deliveries the user started.
     *
     * @param approved_contextlist $contextlist The approved contexts.
     */
    public static function export_user_data(approved_contextlist $contextlist): void {
        global $DB;
        $context = \context_system::instance();
        if (!in_array($context->id, $contextlist->get_contextids())) {
            return;
        }
        $userid = $contextlist->get_user()->id;
        $reports = [];
        foreach ($DB->get_records('tool_delivery_report', ['userid' => $userid], 'timestarted') as $row) {
            $reports[] = (object) [
                'deliveryid' => $row->deliveryid,
                'outcome' => $row->outcome,
                'timestarted' => transform::datetime($row->timestarted),
                'report' => json_decode($row->report),
            ];
        }
        if ($reports) {
            writer::with_context($context)->export_data(
                [get_string('privacy:reports', 'tool_delivery')],
                (object) ['reports' => $reports]
            );
        }
    }

    /**
     * Deletes every report kept, when the system context's data is deleted.
     *
     * @param \context $context The context.
     */
    public static function delete_data_for_all_users_in_context(\context $context): void {
        global $DB;
        if ($context instanceof \context_system) {
            $DB->delete_records('tool_delivery_report');
        }
    }

    /**
     * Deletes the reports of the deliveries the user started.
     *
     * @param approved_contextlist $contextlist The approved contexts.
     */
    public static function delete_data_for_user(approved_contextlist $contextlist): void {
        global $DB;
        if (in_array(\context_system::instance()->id, $contextlist->get_contextids())) {
            $DB->delete_records('tool_delivery_report', ['userid' => $contextlist->get_user()->id]);
        }
    }

    /**
     * Deletes the reports of the deliveries some users started.
     *
     * @param approved_userlist $userlist The approved users.
     */
    public static function delete_data_for_users(approved_userlist $userlist): void {
        global $DB;
        if (!$userlist->get_context() instanceof \context_system || !$userlist->get_userids()) {
            return;
        }
        [$insql, $params] = $DB->get_in_or_equal($userlist->get_userids(), SQL_PARAMS_NAMED);
        $DB->delete_records_select('tool_delivery_report', "userid {$insql}", $params);
    }
}
