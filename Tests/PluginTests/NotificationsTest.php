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
 * Tests of the notifications: new code upstream once per revision, each delivery record once, to the people who deliver.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/moodle_messaging_stubs.php');

use tool_delivery\local\delivery_followup;
use tool_delivery\local\notified_records;
use tool_delivery\local\notifier;
use tool_delivery\local\record_notifications;
use tool_delivery\local\report_store;
use tool_delivery\local\upstream_summary;
use tool_delivery\local\upstream_watch;

/**
 * Tests of the notifications, with Moodle's messaging, users and database as stand-ins.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\upstream_watch
 * @covers     \tool_delivery\local\notifier
 * @covers     \tool_delivery\local\record_notifications
 * @covers     \tool_delivery\local\delivery_followup
 * @covers     \tool_delivery\local\notified_records
 */
final class NotificationsTest extends \PHPUnit\Framework\TestCase {
    /** @var string A scratch folder (Moodle's data folder). */
    private string $dataroot;

    /**
     * Two users with the capability, two administrators (one of them also has it), no message sent.
     */
    protected function setUp(): void {
        $this->dataroot = sys_get_temp_dir() . '/tool_delivery_notifications_' . getmypid() . '_' . mt_rand();
        mkdir($this->dataroot);
        $GLOBALS['tool_delivery_test_config'] = ['tool_delivery' => []];
        $GLOBALS['tool_delivery_test_capable'] = [2 => (object) ['id' => 2], 5 => (object) ['id' => 5]];
        $GLOBALS['tool_delivery_test_admins'] = [2 => (object) ['id' => 2], 3 => (object) ['id' => 3]];
        $GLOBALS['tool_delivery_test_messages'] = [];
        $GLOBALS['DB'] = new tool_delivery_test_database();
    }

    /**
     * Cleans up.
     */
    protected function tearDown(): void {
        foreach (glob($this->dataroot . '/*') as $file) {
            unlink($file);
        }
        rmdir($this->dataroot);
        unset($GLOBALS['tool_delivery_test_config'], $GLOBALS['tool_delivery_test_capable'],
            $GLOBALS['tool_delivery_test_admins'], $GLOBALS['tool_delivery_test_messages'], $GLOBALS['DB']);
    }

    /**
     * An UpstreamPreview as the helper answers it.
     *
     * @param string $id The upstream revision.
     * @param bool $waiting Whether it differs from production.
     * @return array The preview.
     */
    private static function preview(string $id, bool $waiting = true): array {
        return [
            'checkedAt' => '2026-12-07T10:00:00Z',
            'current' => ['id' => 'aaaa', 'label' => 'main @ aaaa'],
            'upstream' => ['id' => $id, 'label' => 'main @ ' . substr($id, 0, 10)],
            'waiting' => $waiting,
            'commits' => $waiting ? [['id' => $id, 'author' => 'Ada', 'subject' => 'Bump local_foo']] : [],
            'commitCount' => $waiting ? 1 : 0,
            'added' => $waiting ? ['local/foo/new.php'] : [], 'changed' => $waiting ? ['local/foo/version.php'] : [],
            'removed' => [], 'fileCount' => $waiting ? 2 : 0,
            'versionChanges' => $waiting ? [['component' => 'local/foo', 'before' => '2026010100', 'after' => '2026020100',
                'backwards' => false]] : [],
            'upgrade' => $waiting ? 'plugins' : 'none',
            'blocking' => false, 'blockers' => [],
        ];
    }

    /**
     * A revision waiting upstream is notified once: found again, nothing; a new revision, one
     * notification; production at the upstream, nothing.
     */
    public function test_upstream_notified_once_per_revision(): void {
        $previews = [self::preview('1a2b3c4d5e6f'), self::preview('1a2b3c4d5e6f'), self::preview('9f8e7d6c5b4a'),
            self::preview('9f8e7d6c5b4a'), self::preview('9f8e7d6c5b4a', false)];
        $notified = [];
        $watch = new upstream_watch(function () use (&$previews): array {
            return array_shift($previews);
        }, function (upstream_summary $summary) use (&$notified): void {
            $notified[] = $summary->revision_id();
        });
        for ($run = 0; $run < 5; $run++) {
            $watch->run();
        }
        $this->assertSame(['1a2b3c4d5e6f', '9f8e7d6c5b4a'], $notified);
        $this->assertFalse(upstream_watch::last()->waiting(), 'the last answer is kept for the Notifications page');
    }

    /**
     * With the setting on, a rehearsal starts once per new revision whose delivery would upgrade
     * Moodle; never when the setting is off, nothing waits, or nothing would upgrade.
     */
    public function test_rehearsal_after_the_upstream_check(): void {
        $noupgrade = ['upgrade' => 'none', 'versionChanges' => []] + self::preview('5555aaaa5555');
        $previews = [self::preview('1a2b3c4d5e6f'), self::preview('1a2b3c4d5e6f'), $noupgrade,
            self::preview('9f8e7d6c5b4a'), self::preview('9f8e7d6c5b4a', false)];
        $rehearsed = [];
        $current = null;
        $watch = new upstream_watch(function () use (&$previews, &$current): array {
            $current = array_shift($previews);
            return $current;
        }, fn() => null, function () use (&$rehearsed, &$current): void {
            $rehearsed[] = $current['upstream']['id'];
        });
        $watch->run();
        $this->assertSame([], $rehearsed, 'the setting is off by default');
        set_config('rehearseafterupstreamcheck', 1, 'tool_delivery');
        for ($run = 0; $run < 4; $run++) {
            $watch->run();
        }
        $this->assertSame(['1a2b3c4d5e6f', '9f8e7d6c5b4a'], $rehearsed);
    }

    /**
     * After a delivery the status's copy says nothing waits: kept again (by the sync task or the
     * delivery page), the Notifications page's notice goes away without a new upstream check.
     */
    public function test_kept_upstream_follows_the_status(): void {
        upstream_watch::keep(self::preview('1a2b3c4d5e6f'));
        $this->assertTrue(upstream_watch::last()->waiting());
        upstream_watch::keep(null);
        $this->assertTrue(upstream_watch::last()->waiting(), 'a status without an upstream check changes nothing kept');
        upstream_watch::keep(self::preview('1a2b3c4d5e6f', false));
        $this->assertFalse(upstream_watch::last()->waiting());
        $this->assertSame([], $GLOBALS['tool_delivery_test_messages'], 'keeping sends nothing');
    }

    /**
     * The notification of a waiting revision goes to each person who delivers once, through the
     * messaging API, and says what waits.
     */
    public function test_upstream_message(): void {
        (new upstream_watch(fn(): array => self::preview('1a2b3c4d5e6f')))->run();
        $messages = $GLOBALS['tool_delivery_test_messages'];
        $this->assertSame([2, 3, 5], array_map(fn($message) => $message->userto->id, $messages));
        $message = $messages[0];
        $this->assertSame(['tool_delivery', 'upstreamwaiting', 1, -10],
            [$message->component, $message->name, $message->notification, $message->userfrom->id]);
        $this->assertSame('New code waits upstream: main @ 1a2b3c4d5e', $message->subject);
        $this->assertStringContainsString('Commits: 1. Files: 1 added, 1 changed, 0 removed. Version changes: 1.',
            $message->fullmessage);
        $this->assertStringContainsString('- local/foo: 2026010100 → 2026020100', $message->fullmessage);
        $this->assertStringContainsString("Moodle's upgrade will run for plugins only (maintenance mode only if Moodle asks",
            $message->fullmessage);
        // With a snapshot first, the helper says maintenance mode will come: the words say so.
        $snapshotfirst = new upstream_summary(['maintenance' => true] + self::preview('1a2b3c4d5e6f'));
        $this->assertStringContainsString('maintenance mode while the database snapshot', $snapshotfirst->upgrade());
        $this->assertStringContainsString('Its preflight passes', $message->fullmessage);
        $this->assertSame('https://moodle.test/admin/tool/delivery/index.php', $message->contexturl);
        $this->assertStringContainsString('<p>- 1a2b3c4d5e Ada: Bump local_foo</p>', $message->fullmessagehtml);
        // The upstream's preflight would block: the message says why, as the Check button does.
        $blocked = self::preview('777777777777') + [];
        $blocked['blocking'] = true;
        $blocked['blockers'] = [['code' => 'lint', 'count' => 2]];
        $lines = (new upstream_summary($blocked))->lines();
        $this->assertContains('- PHP syntax errors: 2', $lines);
    }

    /**
     * The recipients: users with the capability and the site administrators, each once.
     */
    public function test_recipients(): void {
        $this->assertSame([2, 3, 5], array_keys(notifier::recipients()));
    }

    /**
     * An audit record as the helper writes it.
     *
     * @param string $id Its id.
     * @param string $operation The operation.
     * @param string $result The result.
     * @param array $extra More members.
     * @return array The record.
     */
    private static function record(string $id, string $operation, string $result, array $extra = []): array {
        return array_merge(['id' => $id, 'deliveryId' => '20261207T020000Z-0000aaaa', 'time' => '2026-12-07T02:00:00Z',
            'operation' => $operation, 'result' => $result, 'durationSeconds' => 3,
            'actor' => ['name' => 'Ada Admin', 'source' => 'moodle', 'moodleUserId' => 2]], $extra);
    }

    /**
     * The follow-up of the records, as the history synchronisation would call it.
     *
     * @param array $reports Delivery id => report the helper gives.
     * @param array $sent Receives kind => record id.
     * @return delivery_followup The follow-up.
     */
    private function followup(array $reports, array &$sent): delivery_followup {
        return new delivery_followup(
            fn(string $deliveryid): array => $reports[$deliveryid],
            new report_store(),
            new notified_records($this->dataroot . '/notified.json'),
            function (string $kind, array $record) use (&$sent): void {
                $sent[] = [$kind, $record['id']];
            }
        );
    }

    /**
     * Each delivery record is notified once, with its kind; a record synced again (after a
     * database restore took the sync's configuration back) is not notified again; the delivery's
     * report is kept and refreshed.
     */
    public function test_each_record_notified_once(): void {
        $deliveryid = '20261207T020000Z-0000aaaa';
        $report = ['deliveryId' => $deliveryid, 'startedAt' => '2026-12-07T02:00:00Z', 'outcome' => 'in_progress',
            'actor' => ['name' => 'Ada Admin', 'source' => 'moodle', 'moodleUserId' => 2]];
        $records = [
            // A secure that opens the delivery writes a `started` record of its own, then its own.
            self::record('20261207T015959Z-00000aaa', 'secure', 'started'),
            self::record('20261207T020000Z-0000aaaa', 'secure', 'succeeded'),
            self::record('20261207T020100Z-0000bbbb', 'secure', 'succeeded'),
            self::record('20261207T020200Z-0000cccc', 'switch', 'refused', ['errorCode' => 'wrong_state']),
            self::record('20261207T020300Z-0000dddd', 'restore', 'failed', ['errorCode' => 'health_check_failed']),
            self::record('20261207T020400Z-0000eeee', 'rollback', 'succeeded'),
            self::record('20261207T020500Z-0000ffff', 'run-all', 'scheduled', ['deliveryId' => null,
                'schedule' => ['at' => '2026-12-08T02:00:00Z', 'revision' => ['id' => 'bbbb', 'label' => 'main @ bbbb']]]),
            self::record('20261208T020000Z-00001111', 'run-all', 'refused', ['deliveryId' => null,
                'errorCode' => 'schedule_skipped', 'scheduled' => true]),
            self::record('20261208T030000Z-00002222', 'cancel', 'succeeded'),
            self::record('20261208T040000Z-00003333', 'run-all', 'unscheduled', ['deliveryId' => null]),
            // A rehearsal changes nothing of the site: what it found is said; its refusal is not.
            self::record('20261208T050000Z-00004441', 'rehearse', 'failed',
                ['deliveryId' => null, 'errorCode' => 'rehearsal_failed']),
            self::record('20261208T050100Z-00004442', 'rehearse', 'succeeded', ['deliveryId' => null]),
            self::record('20261208T050200Z-00004440', 'rehearse', 'refused',
                ['deliveryId' => null, 'errorCode' => 'cannot_rehearse']),
            // One that could not run (its copy failed) says nothing of the revision: a plain failure.
            self::record('20261208T050300Z-00004443', 'rehearse', 'failed',
                ['deliveryId' => null, 'errorCode' => 'cannot_rehearse']),
        ];
        $sent = [];
        $followup = $this->followup([$deliveryid => $report], $sent);
        foreach ($records as $record) {
            $followup->handle($record);
        }
        $this->assertSame([
            ['started', '20261207T015959Z-00000aaa'],
            ['healthcheckfailed', '20261207T020300Z-0000dddd'],
            ['rolledback', '20261207T020400Z-0000eeee'],
            ['scheduleset', '20261207T020500Z-0000ffff'],
            ['scheduleskipped', '20261208T020000Z-00001111'],
            ['cancelled', '20261208T030000Z-00002222'],
            ['schedulecancelled', '20261208T040000Z-00003333'],
            ['rehearsalfailed', '20261208T050000Z-00004441'],
            ['rehearsalpassed', '20261208T050100Z-00004442'],
            ['failed', '20261208T050300Z-00004443'],
        ], $sent);
        $this->assertSame($report, (new report_store())->get($deliveryid));

        // A rollback restored Moodle's database: the sync brings the records again. No message.
        $again = [];
        $followup = $this->followup([$deliveryid => ['outcome' => 'rolled_back'] + $report], $again);
        foreach (array_slice($records, 4) as $record) {
            $followup->handle($record);
        }
        $this->assertSame([], $again);
        $this->assertSame('rolled_back', (new report_store())->get($deliveryid)['outcome'], 'the report is refreshed');

        // A new delivery: a Run all says when it starts (its `started` record), and how it ended.
        $followup->handle(self::record('20261209T015959Z-00004443', 'run-all', 'started', ['deliveryId' => null]));
        $followup->handle(self::record('20261209T020000Z-00004444', 'run-all', 'succeeded', ['deliveryId' => null]));
        $this->assertSame([['started', '20261209T015959Z-00004443'], ['succeeded', '20261209T020000Z-00004444']], $again);
    }

    /**
     * The message of a record: who, what, when, what the helper said, and a link to the report.
     */
    public function test_record_message(): void {
        $record = self::record('20261207T020300Z-0000dddd', 'restore', 'failed', ['errorCode' => 'health_check_failed',
            'notices' => [['code' => 'health_failed', 'values' => []]], 'comment' => 'MDL-1 fix']);
        $this->assertSame(3, record_notifications::send('healthcheckfailed', $record));
        $message = $GLOBALS['tool_delivery_test_messages'][0];
        $this->assertSame('deliveryevent', $message->name);
        $this->assertSame('Delivery: the health check failed', $message->subject);
        $this->assertStringStartsWith("Restore production by Ada Admin (Moodle), started 07/12/26, 02:00.\nThe health check failed:"
            . "\nComment: MDL-1 fix", $message->fullmessage);
        $this->assertSame('https://moodle.test/admin/tool/delivery/report.php?id=20261207T020000Z-0000aaaa', $message->contexturl);
        $this->assertSame('Delivery report', $message->contexturlname);
        $rehearsal = self::record('20261208T050000Z-00004441', 'rehearse', 'failed', ['deliveryId' => null,
            'revisionAfter' => ['id' => 'bbbb', 'label' => 'main @ bbbb']]);
        $this->assertSame(
            'Rehearsal of the upgrade failed: main @ bbbb',
            record_notifications::message('rehearsalfailed', $rehearsal)['subject']
        );
        foreach (record_notifications::KINDS as $kind) {
            $this->assertNotSame('', record_notifications::message($kind, $record)['subject'], $kind);
        }
    }
}
