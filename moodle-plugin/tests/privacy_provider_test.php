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
use core_privacy\local\metadata\types\external_location;
use tool_delivery\privacy\provider;

/**
 * The privacy provider says what goes to the helper, and that Moodle's database holds nothing.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\privacy\provider
 */
final class privacy_provider_test extends \core_privacy\tests\provider_testcase {
    /**
     * The helper, outside Moodle, receives the user id, full name and the delivery comment.
     */
    public function test_metadata(): void {
        $items = provider::get_metadata(new collection('tool_delivery'))->get_collection();
        $this->assertCount(1, $items);
        $this->assertInstanceOf(external_location::class, $items[0]);
        $this->assertSame('deliveryd', $items[0]->get_name());
        $this->assertSame(['userid', 'fullname', 'comment'], array_keys($items[0]->get_privacy_fields()));
        foreach (array_merge([$items[0]->get_summary()], array_values($items[0]->get_privacy_fields())) as $key) {
            $this->assertTrue(get_string_manager()->string_exists($key, 'tool_delivery'), $key);
        }
    }
}
