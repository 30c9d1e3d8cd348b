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
 * Tests of the delivery report's lines (the page and the download), and of the deliver-later section.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/moodle_messaging_stubs.php');
require_once(__DIR__ . '/check_templates.php');

use tool_delivery\local\report_rows;
use tool_delivery\local\schedule_time;
use tool_delivery\output\delivery_report;
use tool_delivery\output\history;
use tool_delivery\output\upstream_panel;

/**
 * Tests of the delivery report's lines, and of the deliver-later section, with Moodle stand-ins.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\report_rows
 * @covers     \tool_delivery\output\delivery_report
 * @covers     \tool_delivery\output\upstream_panel
 * @covers     \tool_delivery\output\history
 * @covers     \tool_delivery\local\schedule_time
 */
final class DeliveryReportTest extends \PHPUnit\Framework\TestCase {
    /**
     * Renders a template with a context; fails on a variable the context lacks.
     *
     * @param string $name The template.
     * @param array $context The context.
     * @return string The HTML.
     */
    private function render(string $name, array $context): string {
        $renderer = new mini_mustache(dirname(__DIR__, 2) . '/moodle-plugin/templates');
        $html = $renderer->render_name('tool_delivery/' . $name, [$context]);
        $this->assertSame([], array_values(array_unique($renderer->missing)), "{$name}: variables missing");
        return $html;
    }

    /**
     * The lines of a report, as section | item | value.
     *
     * @param array $report The report.
     * @return string[] The lines.
     */
    private static function lines(array $report): array {
        return array_map(fn(array $row) => implode(' | ', $row), report_rows::for_download($report));
    }

    /**
     * A delivery with Moodle's upgrade: plugins from → to, the maintenance window, the snapshot, the health check.
     */
    public function test_delivery_with_an_upgrade(): void {
        $report = [
            'deliveryId' => '20261207T020000Z-0000aaaa', 'startedAt' => '2026-12-07T02:00:00Z',
            'finishedAt' => '2026-12-07T02:04:10Z', 'scheduled' => true, 'comments' => ['MDL-1 fix'],
            'actor' => ['name' => 'Ada Admin', 'source' => 'moodle', 'moodleUserId' => 2], 'outcome' => 'delivered',
            'revisionFrom' => ['id' => 'aaaa', 'label' => 'main @ aaaa'],
            'revisionTo' => ['id' => 'bbbb', 'label' => 'main @ bbbb'],
            'commits' => [['id' => 'bbbbbbbbbbbbbbbb', 'author' => 'Ada', 'subject' => 'Bump local_foo']], 'commitCount' => 1,
            'added' => ['local/foo/new.php'], 'changed' => ['local/foo/version.php'], 'removed' => [], 'fileCount' => 2,
            'versionChanges' => [['component' => 'local/foo', 'before' => '2026010100', 'after' => '2026020100'],
                ['component' => '', 'before' => '2024100700', 'after' => '2024100701']],
            'steps' => [
                ['id' => 'x', 'operation' => 'secure', 'startedAt' => '2026-12-07T02:00:00Z', 'durationSeconds' => 2.4,
                    'result' => 'succeeded', 'notices' => [['code' => 'next_switch', 'values' => []]]],
                ['id' => 'x', 'operation' => 'restore', 'startedAt' => '2026-12-07T02:02:00Z', 'durationSeconds' => 125,
                    'result' => 'succeeded', 'notices' => [['code' => 'upgrade_ran_in_maintenance', 'values' => []]]],
            ],
            'maintenance' => ['onAt' => '2026-12-07T02:02:05Z', 'offAt' => '2026-12-07T02:03:17Z', 'seconds' => 72.6,
                'upgradeSeconds' => 59.1, 'snapshotSeconds' => 12.6, 'otherSeconds' => 0.9],
            'snapshot' => ['id' => 'x', 'sizeBytes' => 41100000, 'takenAt' => '2026-12-07T02:02:06Z', 'seconds' => 12.5],
            'healthCheck' => ['passed' => true, 'checkedAt' => '2026-12-07T02:03:20Z',
                'resultNotices' => [['code' => 'health_code_matches', 'values' => []]], 'failureNotices' => []],
            'rehearsal' => ['passed' => true, 'finishedAt' => '2026-12-06T18:00:00Z', 'upgradeSeconds' => 61.3,
                'notices' => [['code' => 'rehearsal_no_upgrade',
                    'values' => ['revision' => 'main @ bbbb', 'copyBytes' => 5000]]]],
        ];
        $this->assertSame([
            'Delivery | Delivery id | 20261207T020000Z-0000aaaa',
            'Delivery | Started by | Ada Admin (Moodle)',
            'Delivery | Started | 07/12/26, 02:00',
            'Delivery | Finished | 07/12/26, 02:04',
            'Delivery | Outcome | Delivered',
            'Delivery | Scheduled | Started by the helper at its scheduled time',
            'Delivery | Comment | MDL-1 fix',
            'Revisions | From → to | main @ aaaa → main @ bbbb',
            'Commits | bbbbbbbbbb | Ada: Bump local_foo',
            'Files | Added | local/foo/new.php',
            'Files | Changed | local/foo/version.php',
            'Plugins upgraded | local/foo | 2026010100 → 2026020100',
            'Plugins upgraded | Moodle core | 2024100700 → 2024100701',
            'Steps | Secure | started 07/12/26, 02:00, took 2.4 secs: Succeeded. Next: switch to delivery.',
            "Steps | Restore production | started 07/12/26, 02:02, took 125.0 secs: Succeeded. Moodle's upgrade ran in maintenance "
                . 'mode.',
            'Rehearsal of the upgrade | Result | Succeeded (06/12/26, 18:00)',
            'Rehearsal of the upgrade | Upgrade time predicted | 61.3 secs',
            'Rehearsal of the upgrade | Check | The rehearsal of main @ bbbb passed: its code needs no upgrade of the '
                . 'database (a copy of 5 kB was checked).',
            'Maintenance window | Maintenance mode | 72.6 secs, from 07/12/26, 02:02 to 07/12/26, 02:03',
            "Maintenance window | Of which | Moodle's upgrade 59.1 secs, database snapshot 12.6 secs, the rest (maintenance "
                . 'on and off, switch, checks) 0.9 secs',
            'Database snapshot | Snapshot | 41.1 MB, taken 07/12/26, 02:02, dumped in 12.5 secs',
            'Health check | Result | Succeeded (07/12/26, 02:03)',
            'Health check | Check | upgrade.php --is-pending: the code matches the database.',
        ], self::lines($report));
        $copied = $report;
        $copied['snapshot']['copyDatabase'] = 'moodle_36afd1_snapshot_20261207t020000z_0000aaaa';
        $this->assertContains('Database snapshot | Snapshot | 41.1 MB, taken 07/12/26, 02:02, copied by the database server in '
            . '12.5 secs (moodle_36afd1_snapshot_20261207t020000z_0000aaaa)', self::lines($copied));
        $this->assertSame(['section' => 'Section', 'item' => 'Item', 'value' => 'Value'], report_rows::columns());
        $context = (new delivery_report($report, ['csv' => 'CSV'], 'https://moodle.test/r.php', 'https://moodle.test/i.php'))
            ->export_for_template(new renderer_base());
        $this->assertSame(['delivery', 'revisions', 'commits', 'files', 'plugins', 'steps', 'rehearsal', 'maintenance',
            'snapshot', 'healthcheck'], array_column($context['sections'], 'name'));
        $html = $this->render('delivery_report', $context);
        $this->assertStringContainsString('<option value="csv">CSV</option>', $html);
        $this->assertStringContainsString('<th scope="row" class="w-25">local/foo</th><td>2026010100 → 2026020100</td>', $html);
    }

    /**
     * A delivery rolled back: the failed step, and what the rollback restored.
     */
    public function test_delivery_rolled_back(): void {
        $report = [
            'deliveryId' => '20261207T020000Z-0000aaaa', 'startedAt' => '2026-12-07T02:00:00Z',
            'finishedAt' => '2026-12-07T02:10:00Z', 'actor' => ['name' => 'root', 'source' => 'cli'],
            'outcome' => 'rolled_back', 'comments' => [],
            'steps' => [['id' => 'y', 'operation' => 'restore', 'startedAt' => '2026-12-07T02:02:00Z',
                'durationSeconds' => 30, 'result' => 'failed', 'errorCode' => 'upgrade_failed', 'notices' => []]],
            'rollback' => ['at' => '2026-12-07T02:09:00Z', 'served' => 'security', 'databaseRestored' => true,
                'revision' => ['id' => 'aaaa', 'label' => 'main @ aaaa']],
        ];
        $lines = self::lines($report);
        $this->assertContains('Delivery | Started by | root (command line)', $lines);
        $this->assertContains('Delivery | Outcome | Rolled back', $lines);
        $this->assertContains("Steps | Restore production | started 07/12/26, 02:02, took 30.0 secs: Failed. "
            . "Moodle's upgrade failed; read the log, fix the cause and retry Restore production, or roll back.", $lines);
        $this->assertSame([
            'Rollback | When | 07/12/26, 02:09',
            'Rollback | Served copy | Security copy main @ aaaa',
            'Rollback | Database | The database snapshot was restored.',
        ], array_slice($lines, -3));
    }

    /**
     * The upstream section: code waiting and nothing scheduled, the form to deliver later with the
     * revision shown and the next 02:00; scheduled, who and when with the Cancel button, no form.
     */
    public function test_deliver_later(): void {
        $site = ['upstream' => [
            'checkedAt' => '2026-12-07T10:00:00Z', 'upstream' => ['id' => '1a2b3c4d5e6f', 'label' => 'main @ 1a2b3c4d5e'],
            'waiting' => true, 'commits' => [['id' => '1a2b3c4d5e6f', 'author' => 'Ada', 'subject' => 'Bump']],
            'commitCount' => 1, 'added' => [], 'changed' => ['version.php'], 'removed' => [],
            'versionChanges' => [['component' => '', 'before' => '2024100700', 'after' => '2024100800']],
            'upgrade' => 'core', 'blocking' => true, 'blockers' => [['code' => 'php', 'current' => '8.1.2', 'required' => '8.2.0']],
        ]];
        $default = schedule_time::default_local(new DateTimeZone('Europe/Paris'), strtotime('2026-12-07T10:00:00Z'));
        $this->assertSame('2026-12-08T02:00', $default);
        $this->assertSame('2026-12-08T02:00:00+01:00', schedule_time::to_iso($default, new DateTimeZone('Europe/Paris')));
        $panel = new upstream_panel($site, 'https://moodle.test/schedule.php', 'key', $default);
        $context = $panel->export_for_template(new renderer_base());
        $this->assertSame('1a2b3c4d5e6f', $context['later']['revision']);
        $this->assertSame(["The new code needs PHP 8.2.0 or later; the site runs PHP 8.1.2."],
            array_column($context['waiting']['blockers'], 'text'));
        $this->assertStringContainsString('maintenance mode', $context['waiting']['upgrade']);
        $html = $this->render('upstream_panel', $context);
        $this->assertStringContainsString('name="revision" value="1a2b3c4d5e6f"', $html);
        $this->assertStringContainsString('value="2026-12-08T02:00" required', $html);
        $this->assertMatchesRegularExpression('/name="onlyifpreflightpasses"\s+value="1" checked>/', $html);
        $this->assertStringNotContainsString('name="action" value="cancel"', $html);

        $site['schedule'] = ['id' => 's1', 'at' => '2026-12-08T01:00:00Z', 'revision' => ['id' => '1a2b3c4d5e6f',
            'label' => 'main @ 1a2b3c4d5e'], 'actor' => ['name' => 'Ada Admin', 'source' => 'moodle', 'moodleUserId' => 2],
            'setAt' => '2026-12-07T10:05:00Z', 'onlyIfPreflightPasses' => true, 'securityCopy' => false, 'comment' => 'night'];
        $context = (new upstream_panel($site, 'https://moodle.test/schedule.php', 'key', $default))
            ->export_for_template(new renderer_base());
        $this->assertFalse($context['later']);
        $gated = 'It runs only if the preflight passes at that time.';
        $this->assertSame(['08/12/26, 01:00', 'Ada Admin', 'main @ 1a2b3c4d5e', $gated],
            [$context['schedule']['at'], $context['schedule']['who'], $context['schedule']['revision'],
            $context['schedule']['gated']]);
        $html = $this->render('upstream_panel', $context);
        $this->assertStringContainsString('name="action" value="cancel"', $html);
        $this->assertStringNotContainsString('name="action" value="schedule"', $html);

        $context = (new upstream_panel(['upstream' => ['waiting' => false, 'current' => ['label' => 'main @ ffff'],
            'upstream' => ['id' => 'ffff']]], 'u', 'k', $default))->export_for_template(new renderer_base());
        $this->assertSame("Production is at the upstream's revision, main @ ffff: nothing waits.", $context['current']);
        $this->assertFalse($context['later']);

        // The revision waiting failed its rehearsal: said in red, and no form to deliver it later.
        unset($site['schedule']);
        $site['upstream']['blocking'] = false;
        $site['upstream']['blockers'] = [];
        $site['rehearsalCurrent'] = true;
        $site['rehearsal'] = ['passed' => false, 'revision' => ['id' => '1a2b3c4d5e6f', 'label' => 'main @ 1a2b3c4d5e']];
        $context = (new upstream_panel($site, 'u', 'k', $default))->export_for_template(new renderer_base());
        $this->assertTrue($context['waiting']['rehearsalfailed']);
        $this->assertFalse($context['later']);
        $html = $this->render('upstream_panel', $context);
        $this->assertStringContainsString('upstream:rehearsalfailed', $html);
        $this->assertStringNotContainsString('upstream:ready', $html);
        $site['rehearsal']['passed'] = true;
        $context = (new upstream_panel($site, 'u', 'k', $default))->export_for_template(new renderer_base());
        $this->assertFalse($context['waiting']['rehearsalfailed']);
        $this->assertSame('1a2b3c4d5e6f', $context['later']['revision']);
    }

    /**
     * History rows of a schedule set and cancelled, and of a Run all the helper started at its time, link to their report.
     */
    public function test_history_of_schedules(): void {
        $schedule = ['at' => '2026-12-08T01:00:00Z', 'revision' => ['id' => 'b', 'label' => 'main @ bbbb']];
        $records = [
            ['id' => '20261208T010000Z-00000003', 'deliveryId' => '20261208T010000Z-00000003', 'operation' => 'run-all',
                'result' => 'succeeded', 'scheduled' => true, 'time' => '2026-12-08T01:00:00Z', 'actor' => ['name' => 'Ada']],
            ['id' => '20261207T110000Z-00000002', 'operation' => 'run-all', 'result' => 'unscheduled', 'schedule' => $schedule,
                'time' => '2026-12-07T11:00:00Z', 'actor' => ['name' => 'Ada']],
            ['id' => '20261207T100000Z-00000001', 'operation' => 'run-all', 'result' => 'scheduled', 'schedule' => $schedule,
                'time' => '2026-12-07T10:00:00Z', 'actor' => ['name' => 'Ada'],
                'notices' => [['code' => 'schedule_set', 'values' => ['revision' => 'main @ bbbb',
                    'scheduledAt' => '2026-12-08T01:00:00Z']]]],
        ];
        $rows = (new history($records))->export_for_template(new renderer_base())['rows'];
        $this->assertSame(['Succeeded', 'Schedule cancelled', 'Scheduled'], array_column($rows, 'result'));
        $this->assertSame([true, false, false], array_column($rows, 'scheduled'));
        $this->assertSame('main @ bbbb', $rows[2]['before']);
        $this->assertSame('A Run all of main @ bbbb is scheduled for 08/12/26, 01:00.', $rows[2]['message']);
        $this->assertSame('https://moodle.test/admin/tool/delivery/report.php?id=20261208T010000Z-00000003',
            $rows[0]['reporturl']);
        $this->assertSame('', $rows[1]['reporturl']);
        $html = $this->render('history', ['hasrows' => true, 'rows' => $rows]);
        $this->assertStringContainsString('>Report</a>', str_replace('[str: history:report, tool_delivery]', 'Report', $html));
    }
}
