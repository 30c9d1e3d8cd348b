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

namespace tool_delivery;

use core_privacy\local\metadata\collection;
use core_privacy\local\metadata\types\database_table;
use core_privacy\local\metadata\types\external_location;
use core_privacy\local\request\approved_contextlist;
use core_privacy\local\request\approved_userlist;
use core_privacy\local\request\userlist;
use core_privacy\local\request\writer;
use tool_delivery\local\report_store;
use tool_delivery\privacy\provider;

/**
 * The privacy provider: the delivery reports kept in Moodle, and what goes to the helper.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\privacy\provider
 */
final class privacy_provider_test extends \core_privacy\tests\provider_testcase {
    /**
     * The reports table, and the helper outside Moodle (user id, full name, delivery comment).
     */
    public function test_metadata(): void {
        $items = provider::get_metadata(new collection('tool_delivery'))->get_collection();
        $this->assertCount(2, $items);
        $this->assertInstanceOf(database_table::class, $items[0]);
        $this->assertSame('tool_delivery_report', $items[0]->get_name());
        $this->assertSame(['userid', 'timestarted', 'report'], array_keys($items[0]->get_privacy_fields()));
        $this->assertInstanceOf(external_location::class, $items[1]);
        $this->assertSame('deliveryd', $items[1]->get_name());
        $this->assertSame(['userid', 'fullname', 'comment'], array_keys($items[1]->get_privacy_fields()));
        foreach ($items as $item) {
            foreach (array_merge([$item->get_summary()], array_values($item->get_privacy_fields())) as $key) {
                $this->assertTrue(get_string_manager()->string_exists($key, 'tool_delivery'), $key);
            }
        }
    }

    /**
     * Keeps a report of a delivery a user started.
     *
     * @param int $userid The user.
     * @param string $deliveryid The delivery.
     */
    private static function report(int $userid, string $deliveryid): void {
        (new report_store())->save(['deliveryId' => $deliveryid, 'startedAt' => '2026-12-07T02:00:00Z',
            'outcome' => 'delivered', 'actor' => ['name' => 'x', 'source' => 'moodle', 'moodleUserId' => $userid]]);
    }

    /**
     * The reports of the deliveries a user started are found, exported and deleted; others stay.
     */
    public function test_export_and_delete(): void {
        global $DB;
        $this->resetAfterTest();
        $ada = $this->getDataGenerator()->create_user();
        $bob = $this->getDataGenerator()->create_user();
        self::report($ada->id, '20261207T020000Z-0000aaaa');
        self::report($bob->id, '20261207T030000Z-0000bbbb');
        $system = \context_system::instance();
        $this->assertSame([$system->id], provider::get_contexts_for_userid($ada->id)->get_contextids());
        $userlist = new userlist($system, 'tool_delivery');
        provider::get_users_in_context($userlist);
        $this->assertEqualsCanonicalizing([$ada->id, $bob->id], $userlist->get_userids());

        $this->export_context_data_for_user($ada->id, $system, 'tool_delivery');
        $data = writer::with_context($system)->get_data([get_string('privacy:reports', 'tool_delivery')]);
        $this->assertSame('20261207T020000Z-0000aaaa', $data->reports[0]->deliveryid);

        provider::delete_data_for_user(new approved_contextlist($ada, 'tool_delivery', [$system->id]));
        $this->assertSame(['20261207T030000Z-0000bbbb'], $DB->get_fieldset_select('tool_delivery_report', 'deliveryid', '1 = 1'));
        provider::delete_data_for_users(new approved_userlist($system, 'tool_delivery', [$bob->id]));
        $this->assertSame(0, $DB->count_records('tool_delivery_report'));
        self::report($ada->id, '20261207T040000Z-0000cccc');
        provider::delete_data_for_all_users_in_context($system);
        $this->assertSame(0, $DB->count_records('tool_delivery_report'));
    }
}
