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

use core\check\result;
use tool_delivery\check\helper_reachable;

/**
 * The System status check of the helper.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\check\helper_reachable
 */
final class helper_reachable_test extends \advanced_testcase {
    /**
     * A helper that does not listen is CRITICAL, naming the socket; an unreadable key is said too.
     */
    public function test_helper_down_and_key_missing(): void {
        $this->resetAfterTest();
        $this->setAdminUser();
        $folder = make_request_directory();
        set_config('socketpath', $folder . '/deliveryd.sock', 'tool_delivery');
        set_config('keyfile', $folder . '/missing.key', 'tool_delivery');
        $result = (new helper_reachable())->get_result();
        $this->assertNotEquals(result::OK, $result->get_status());
        $this->assertNotSame('', $result->get_summary());

        file_put_contents($folder . '/deliveryd.key', base64_encode(random_bytes(48)));
        set_config('keyfile', $folder . '/deliveryd.key', 'tool_delivery');
        $result = (new helper_reachable())->get_result();
        $this->assertSame(result::CRITICAL, $result->get_status());
        $this->assertStringContainsString($folder . '/deliveryd.sock', $result->get_summary() . $result->get_details());
    }

    /**
     * The check is the plugin's, listed in System status.
     */
    public function test_listed(): void {
        $ids = array_map(fn($check) => $check->get_id(), \core\check\manager::get_checks('status'));
        $this->assertContains('helper_reachable', $ids);
    }
}
