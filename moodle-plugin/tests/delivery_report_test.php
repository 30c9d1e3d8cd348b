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
 * Tests of the delivery reports in Moodle: kept as records arrive, deleted after the retention.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery;

use tool_delivery\local\report_store;

/**
 * Tests of the delivery reports in Moodle: kept and refreshed, deleted after the retention.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\report_store
 * @covers     \tool_delivery\task\cleanup_reports
 */
final class delivery_report_test extends \advanced_testcase {
    /**
     * A report is kept once per delivery and refreshed; the task deletes those older than the retention, none with 0.
     */
    public function test_kept_and_cleaned_up(): void {
        global $DB;
        $this->resetAfterTest();
        $store = new report_store();
        $old = ['deliveryId' => '20240101T000000Z-00000001', 'startedAt' => '2024-01-01T00:00:00Z', 'outcome' => 'in_progress',
            'actor' => ['name' => 'Ada', 'source' => 'moodle', 'moodleUserId' => 2]];
        $store->save($old);
        $store->save(['outcome' => 'delivered'] + $old);
        $this->assertSame(1, $DB->count_records(report_store::TABLE));
        $this->assertSame('delivered', $store->get($old['deliveryId'])['outcome']);
        $new = ['deliveryId' => gmdate('Ymd\THis\Z') . '-00000002', 'startedAt' => gmdate('c'), 'outcome' => 'delivered'];
        $store->save($new);
        set_config('reportretentiondays', 0, 'tool_delivery');
        $this->expectOutputRegex('/kept forever.*older than 365 days deleted/s');
        (new task\cleanup_reports())->execute();
        $this->assertSame(2, $DB->count_records(report_store::TABLE));
        set_config('reportretentiondays', 365, 'tool_delivery');
        (new task\cleanup_reports())->execute();
        $this->assertFalse($store->exists($old['deliveryId']));
        $this->assertTrue($store->exists($new['deliveryId']));
        $this->assertSame(0, (int) $DB->get_field(report_store::TABLE, 'userid', ['deliveryid' => $new['deliveryId']]));
    }
}
