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
 * Tests of the upstream watch in Moodle: one message per waiting revision, through Moodle's messaging.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery;

use tool_delivery\local\upstream_watch;

/**
 * Tests of the upstream watch in Moodle: one message per waiting revision, through Moodle's messaging.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\upstream_watch
 * @covers     \tool_delivery\local\notifier
 * @covers     \tool_delivery\task\check_upstream
 */
final class upstream_watch_test extends \advanced_testcase {
    /**
     * A preview as the helper answers it.
     *
     * @param string $id The upstream revision.
     * @return array The preview.
     */
    private static function preview(string $id): array {
        return ['checkedAt' => '2026-12-07T10:00:00Z', 'upstream' => ['id' => $id, 'label' => "main @ {$id}"],
            'waiting' => true, 'commits' => [], 'commitCount' => 2, 'added' => ['a.php'], 'changed' => [], 'removed' => [],
            'versionChanges' => [], 'upgrade' => 'none', 'blocking' => false, 'blockers' => []];
    }

    /**
     * Each waiting revision is one message to each administrator and holder of the capability; the same revision none.
     */
    public function test_one_message_per_revision(): void {
        $this->resetAfterTest();
        $this->preventResetByRollback();
        $deliverer = $this->getDataGenerator()->create_user();
        $role = $this->getDataGenerator()->create_role();
        assign_capability('tool/delivery:deliver', CAP_ALLOW, $role, \context_system::instance());
        role_assign($role, $deliverer->id, \context_system::instance());
        $sink = $this->redirectMessages();
        (new upstream_watch(fn(): array => self::preview('aaaa')))->run();
        (new upstream_watch(fn(): array => self::preview('aaaa')))->run();
        $this->assertSame(2, $sink->count(), 'the admin and the user with the capability, once');
        $messages = $sink->get_messages();
        $this->assertEqualsCanonicalizing(
            [(int) get_admin()->id, (int) $deliverer->id],
            array_map(fn($message) => (int) $message->useridto, $messages)
        );
        $this->assertSame('upstreamwaiting', $messages[0]->eventtype);
        $sink->clear();
        (new upstream_watch(fn(): array => self::preview('bbbb')))->run();
        $this->assertSame(2, $sink->count());
        $this->assertSame('bbbb', upstream_watch::last()->revision_id());
        $sink->close();
    }

    /**
     * The task says so when the helper does not answer.
     */
    public function test_task_with_the_helper_down(): void {
        $this->resetAfterTest();
        set_config('socketpath', make_request_directory() . '/none.sock', 'tool_delivery');
        $keyfile = make_request_directory() . '/key';
        file_put_contents($keyfile, str_repeat('k', 48));
        set_config('keyfile', $keyfile, 'tool_delivery');
        $this->expectOutputRegex('/the upstream was not checked/');
        (new task\check_upstream())->execute();
    }
}
