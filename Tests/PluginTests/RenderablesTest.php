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
 * Tests of the renderables of the check and of the rollback plan, with small Moodle stand-ins.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/moodle_stubs.php');
require_once(__DIR__ . '/check_templates.php');
foreach (['local/client_factory', 'local/delivery_actions', 'local/notices', 'output/banner', 'output/preflight',
        'output/rehearsal_panel', 'output/rollback_plan', 'output/farm_panel'] as $classname) {
    require_once(dirname(__DIR__, 2) . '/moodle-plugin/classes/' . $classname . '.php');
}

use tool_delivery\local\helper_exception;
use tool_delivery\output\banner;
use tool_delivery\output\farm_panel;
use tool_delivery\output\preflight;
use tool_delivery\output\rehearsal_panel;
use tool_delivery\output\rollback_plan;

/**
 * Tests of the renderables of the check and of the rollback plan, with small Moodle stand-ins.
 *
 * Each context is also rendered with its template (the renderer of check_templates.php), every
 * variable the template uses being found.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\output\preflight
 * @covers     \tool_delivery\output\rollback_plan
 * @covers     \tool_delivery\output\banner
 * @covers     \tool_delivery\output\farm_panel
 */
final class RenderablesTest extends \PHPUnit\Framework\TestCase {
    /**
     * Renders a template with a context; fails on a variable the context lacks.
     *
     * @param string $name The template (`preflight`).
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
     * A report that blocks for every reason: the verdict lists them, long lists are cut at 20.
     */
    public function test_blocked_report(): void {
        $added = array_map(fn($number) => "local/foo/file{$number}.php", range(1, 25));
        $report = [
            'added' => $added, 'changed' => ['version.php'], 'removed' => ['mod/forum/version.php'],
            'lintErrors' => [['file' => 'local/foo/file1.php', 'line' => 2, 'message' => 'Parse error: syntax error']],
            'conflictMarkers' => ['local/foo/file2.php' => 7],
            'versionChanges' => [
                ['component' => '', 'before' => '2024100700', 'after' => '2024100600', 'backwards' => true],
                ['component' => 'local/foo', 'after' => '2026112500', 'backwards' => false],
                ['component' => 'mod/forum', 'before' => '2024100700', 'backwards' => false],
            ],
            'localModifications' => [' M version.php'], 'untrackedFiles' => $added,
            'missingFiles' => ['mod/forum/version.php'],
            'inconsistentComponents' => [['component' => 'local/foo', 'reason' => 'English of the helper', 'blocking' => true,
                'notice' => ['code' => 'component_needs_newer_core', 'values' => ['required' => '5.1', 'core' => '4.5']]]],
            'upgrade' => ['pending' => true, 'maintenanceRequired' => true, 'snapshot' => false],
            'maintenanceModeOn' => true,
            'snapshotSpace' => ['directory' => '/var/lib/deliveryd/snapshots', 'availableBytes' => 20000000,
                'databaseBytes' => 41100000, 'enough' => false],
            'phpVersion' => ['current' => '8.0.30', 'required' => '8.1.0', 'satisfied' => false],
            'warnings' => ['25 files are not under version control'],
            'blocking' => true,
            'blockers' => [['code' => 'lint', 'count' => 1], ['code' => 'conflicts', 'count' => 1],
                ['code' => 'backwards', 'component' => '', 'before' => '2024100700', 'after' => '2024100600'],
                ['code' => 'missing', 'count' => 1],
                ['code' => 'inconsistent', 'component' => 'local/foo', 'detail' => 'English of the helper',
                    'notice' => ['code' => 'component_needs_newer_core', 'values' => ['required' => '5.1', 'core' => '4.5']]],
                ['code' => 'php', 'current' => '8.0.30', 'required' => '8.1.0'],
                ['code' => 'space', 'directory' => '/var/lib/deliveryd/snapshots', 'availableBytes' => 20000000,
                    'databaseBytes' => 41100000]],
        ];
        $context = (new preflight($report, null, 1764094000))->export_for_template(new renderer_base());
        $this->assertFalse($context['failed']);
        $view = $context['report'];
        $this->assertFalse($view['ready']);
        $this->assertSame([
            'PHP syntax errors: 1',
            'files with conflict markers: 1',
            'The version of Moodle core goes backwards (2024100700 → 2024100600): Moodle refuses to run older code.',
            'tracked files missing from production: 1',
            "local/foo is inconsistent: It requires Moodle 5.1 but the tree's core is 4.5: Moodle would refuse to upgrade.",
            'The new code needs PHP 8.1.0 or later; the site runs PHP 8.0.30.',
            'Not enough free space for the database snapshot in /var/lib/deliveryd/snapshots: 20.0 MB free, the database '
                . 'takes 41.1 MB.',
        ], array_column($view['reasons'], 'text'));
        $this->assertStringContainsString('25 files added, 1 changed, 1 removed', $view['counts']);
        $sections = array_column($view['sections'], null, 'name');
        $this->assertSame(['lint', 'conflicts', 'versions', 'missing', 'inconsistent', 'localmodifications', 'untracked',
            'added', 'changed', 'removed'], array_keys($sections));
        $this->assertSame('local/foo/file1.php:2', $sections['lint']['items'][0]['code']);
        $this->assertSame('line 7', $sections['conflicts']['items'][0]['text']);
        $this->assertSame(['Moodle core', 'local/foo', 'mod/forum'], array_column($sections['versions']['items'], 'code'));
        $this->assertSame(['2024100700 → 2024100600', 'new → 2026112500', '2024100700 → removed'],
            array_column($sections['versions']['items'], 'text'));
        $this->assertSame(['goes backwards', '', ''], array_column($sections['versions']['items'], 'flag'));
        $this->assertSame('blocking', $sections['inconsistent']['items'][0]['flag']);
        $this->assertSame('M version.php', $sections['localmodifications']['items'][0]['code']);
        $this->assertSame(25, $sections['added']['count']);
        $this->assertCount(preflight::LIST_LIMIT, $sections['added']['items']);
        $this->assertSame('and 5 more', $sections['added']['more']);
        $this->assertTrue($sections['added']['collapsed']);
        $this->assertFalse($sections['lint']['collapsed']);
        $facts = array_column($view['facts'], 'text');
        // The report blocks: nothing runs until the problems are fixed.
        $this->assertStringStartsWith("Restore production is blocked, so nothing runs now; once the problems above are "
            . "fixed, Moodle's upgrade will run. It needs maintenance mode", $facts[0]);
        $this->assertStringContainsString('No database snapshot will be taken', $facts[0]);
        $this->assertSame("Moodle's maintenance mode is on now.", $facts[1]);
        $this->assertSame(['warning', 'warning', 'danger', 'danger'], array_column($view['facts'], 'colour'));
        $this->assertSame('25/11/25, 18:06', $view['checkedat']);

        $html = $this->render('preflight', $context);
        $this->assertStringContainsString('data-verdict="blocked"', $html);
        $this->assertStringContainsString('local/foo/file20.php', $html);
        $this->assertStringNotContainsString('local/foo/file21.php', $html);
    }

    /**
     * A clean report is ready; the facts say what Restore production will do.
     */
    public function test_ready_report(): void {
        $report = ['added' => [], 'changed' => ['mod/forum/lib.php'], 'removed' => [], 'lintErrors' => [],
            'conflictMarkers' => [], 'versionChanges' => [], 'localModifications' => [], 'untrackedFiles' => [],
            'missingFiles' => [], 'inconsistentComponents' => [], 'warnings' => [],
            'upgrade' => ['pending' => false, 'maintenanceRequired' => false, 'snapshot' => false],
            'snapshotSpace' => ['directory' => '/srv/snapshots', 'availableBytes' => 5000000000, 'databaseBytes' => 512345,
                'enough' => true],
            'phpVersion' => ['current' => '8.2.26', 'satisfied' => true]];
        $context = (new preflight($report))->export_for_template(new renderer_base());
        $this->assertTrue($context['report']['ready']);
        $this->assertSame([], $context['report']['reasons']);
        $this->assertFalse($context['report']['haswarnings']);
        $this->assertSame(['changed'], array_column($context['report']['sections'], 'name'));
        $this->assertSame([
            'No upgrade is pending: Restore production serves the new code and purges the caches.',
            'Room for the database snapshot in /srv/snapshots: 5.0 GB free, the database takes 512 kB.',
            'The site runs PHP 8.2.26; the new code states no minimum.',
        ], array_column($context['report']['facts'], 'text'));
        $this->assertStringContainsString('data-verdict="ready"', $this->render('preflight', $context));

        unset($report['upgrade']);
        $context = (new preflight($report))->export_for_template(new renderer_base());
        $this->assertStringStartsWith('Moodle could not say', $context['report']['facts'][0]['text']);

        // The snapshot as the server's own copy: said instead of the dump's room.
        $report['snapshotSpace']['serverCopyOf'] = 'moodle';
        $context = (new preflight($report))->export_for_template(new renderer_base());
        $this->assertSame("The database snapshot will be the server's own copy of moodle (Moodle's tables take 512 kB): "
            . 'made in seconds, and a rollback swaps it in by renaming.', $context['report']['facts'][1]['text']);
        $this->assertSame('success', $context['report']['facts'][1]['colour']);
    }

    /**
     * When the site's state does not allow Restore production (idle), the verdict says there is
     * nothing to restore now, not "Ready"; what would block it is still listed.
     */
    public function test_nothing_to_restore(): void {
        $report = ['added' => ['a.php'], 'changed' => [], 'removed' => [], 'warnings' => [],
            'upgrade' => ['pending' => false, 'maintenanceRequired' => false, 'snapshot' => false]];
        $context = (new preflight($report, null, null, ['secure']))->export_for_template(new renderer_base());
        $view = $context['report'];
        $this->assertFalse($view['ready']);
        $this->assertFalse($view['blocked']);
        $this->assertTrue($view['norestore']);
        $this->assertFalse($view['hasreasons']);
        $html = $this->render('preflight', $context);
        $this->assertStringContainsString('data-verdict="norestore"', $html);
        $this->assertStringContainsString('[str: preflight:norestore, tool_delivery]', $html);
        $this->assertStringContainsString('[str: preflight:norestorecompare, tool_delivery]', $html);
        $this->assertStringNotContainsString('preflight:ready', $html);
        $this->assertStringNotContainsString('data-verdict="ready"', $html);

        $report['lintErrors'] = [['file' => 'a.php', 'line' => 1, 'message' => 'Parse error']];
        $report['blocking'] = true;
        $report['blockers'] = [['code' => 'lint', 'count' => 1]];
        $context = (new preflight($report, null, null, []))->export_for_template(new renderer_base());
        $this->assertTrue($context['report']['norestore']);
        $this->assertFalse($context['report']['blocked']);
        $html = $this->render('preflight', $context);
        $this->assertStringContainsString('[str: preflight:norestorereasons, tool_delivery]', $html);
        $this->assertStringContainsString('<li>PHP syntax errors: 1</li>', $html);
        $this->assertStringNotContainsString('data-verdict="blocked"', $html);

        // Allowed, or unknown (a helper that does not say): the verdict as before.
        foreach ([['restore', 'rollback'], null] as $allowed) {
            $context = (new preflight($report, null, null, $allowed))->export_for_template(new renderer_base());
            $this->assertTrue($context['report']['blocked']);
            $this->assertFalse($context['report']['norestore']);
            $this->assertStringContainsString('data-verdict="blocked"', $this->render('preflight', $context));
        }
        unset($report['lintErrors']);
        $report['blocking'] = false;
        $report['blockers'] = [];
        $context = (new preflight($report, null, null, ['restore']))->export_for_template(new renderer_base());
        $this->assertTrue($context['report']['ready']);
        $this->assertStringContainsString('data-verdict="ready"', $this->render('preflight', $context));
    }

    /**
     * The forecast of a pending upgrade: with a snapshot, maintenance mode is on for the snapshot
     * and the upgrade whatever Moodle requires; without one, Moodle's requirement is said.
     */
    public function test_upgrade_forecast(): void {
        $forecast = function (bool $maintenance, bool $snapshot): array {
            $report = ['upgrade' => ['pending' => true, 'maintenanceRequired' => $maintenance, 'snapshot' => $snapshot]];
            return (new preflight($report))->export_for_template(new renderer_base())['report']['facts'][0];
        };
        $withsnapshot = "Moodle's upgrade will run. A database snapshot is taken first, so that a rollback can restore the "
            . 'database. Maintenance mode is on for the snapshot and the upgrade, even when Moodle does not require it: users '
            . 'are held out for that time.';
        foreach ([false, true] as $maintenance) {
            $fact = $forecast($maintenance, true);
            $this->assertSame($withsnapshot, $fact['text']);
            $this->assertSame('info', $fact['colour']);
            $this->assertStringNotContainsString('does not need maintenance mode', $fact['text']);
        }
        $fact = $forecast(false, false);
        $this->assertStringStartsWith("Moodle's upgrade will run. It does not need maintenance mode. No database snapshot",
            $fact['text']);
        $this->assertSame('warning', $fact['colour']);
        $fact = $forecast(true, false);
        $this->assertStringStartsWith("Moodle's upgrade will run. It needs maintenance mode: the site is closed to users",
            $fact['text']);
    }

    /**
     * A check the helper refused says why, in the words of its error code.
     */
    public function test_failed_check(): void {
        $error = new helper_exception('copy_missing', 'there is no complete backup copy', 409);
        $context = (new preflight(null, $error))->export_for_template(new renderer_base());
        $this->assertFalse($context['report']);
        $this->assertStringStartsWith('There is no complete copy', $context['failed']['message']);
        // The helper's English is for its log: the page words the code (and the notices, when sent).
        $this->assertSame('', $context['failed']['detail']);
        $this->assertStringContainsString('There is no complete copy', $this->render('preflight', $context));
    }

    /**
     * The web farm section: this node from its own status, each other node as its helper answered
     * over SSH, a node that did not answer named with the reason, and the nodes not asked at all.
     */
    public function test_farm_panel(): void {
        $site = ['phase' => 'updated', 'served' => 'backup', 'wwwroot' => 'https://moodle.example.org',
            'productionRevision' => ['id' => 'abc', 'label' => 'main @ 1a2b3c4d5e'], 'farmNodes' => ['web2', 'web3'],
            'lastResults' => [
                'secure' => ['succeeded' => true, 'finishedAt' => '2026-12-04T22:00:00Z'],
                'update' => ['succeeded' => true, 'finishedAt' => '2026-12-04T22:01:00Z'],
            ]];
        $this->assertTrue(farm_panel::is_farm($site));
        $this->assertFalse(farm_panel::is_farm(['farmNodes' => []]));
        $this->assertFalse(farm_panel::is_farm([]));
        $nodes = [
            ['node' => 'web2', 'address' => '10.0.0.12', 'phase' => 'restoring', 'served' => 'production',
                'revision' => 'main @ 1a2b3c4d5e', 'running' => 'restore', 'lastOperation' => 'switch',
                'lastSucceeded' => false, 'lastFinishedAt' => '2026-12-04T22:00:30Z'],
            ['node' => 'web3', 'address' => '10.0.0.13', 'problem' => 'ssh: connect to host 10.0.0.13 port 22: No route to host'],
        ];
        $context = (new farm_panel($site, $nodes))->export_for_template(new renderer_base());
        $this->assertSame(3, $context['count']);
        $this->assertSame(1, $context['unanswered']);
        [$own, $web2, $web3] = $context['rows'];
        $this->assertTrue($own['thisnode']);
        $this->assertSame('moodle.example.org', $own['address']);
        $this->assertSame('Updated', $own['phase']);
        $this->assertSame('backup', $own['served']);
        $this->assertSame('Update source files', $own['last']['operation']);
        $this->assertSame('Restoring', $web2['phase']);
        $this->assertSame('Restore production', $web2['running']);
        $this->assertSame('Switch to delivery', $web2['last']['operation']);
        $this->assertFalse($web2['last']['succeeded']);
        $this->assertFalse($web3['answered']);
        $html = $this->render('farm_panel', $context);
        $this->assertStringContainsString('data-node="web3"', $html);
        $this->assertStringContainsString('No route to host', $html);
        $this->assertStringContainsString('<code>main @ 1a2b3c4d5e</code>', $html);

        $context = (new farm_panel($site, null, 'the helper answered 500'))->export_for_template(new renderer_base());
        $this->assertFalse($context['asked']);
        $this->assertCount(1, $context['rows']);
        $this->assertStringContainsString('the helper answered 500', $this->render('farm_panel', $context));
    }

    /**
     * The rollback plan of each kind, and the confirmation when the site was open since the snapshot.
     */
    public function test_rollback_plans(): void {
        global $USER;
        $USER = (object) ['id' => 7];
        $snapshot = ['id' => 'd1', 'file' => '/x.sql', 'databaseType' => 'pgsql', 'database' => 'moodle', 'tableCount' => 412,
            'takenAt' => '2026-11-25T15:56:50.000Z', 'sizeBytes' => 41100000, 'seconds' => 12.5];
        $site = ['rollbackTarget' => 'security', 'rollback' => ['kind' => 'code_and_database', 'target' => 'backup',
            'snapshot' => $snapshot, 'snapshotAgeSeconds' => 7500.4, 'needsConfirmation' => true,
            'explanation' => 'Everything users wrote since then is lost.']];
        $context = (new rollback_plan($site))->export_for_template(new renderer_base());
        $this->assertSame('Rollback of the code and the database (snapshot taken 2 h 5 min ago, 41.1 MB)', $context['summary']);
        $this->assertTrue($context['needsconfirmation']);
        $this->assertSame('d1', $context['snapshotid']);
        $this->assertStringContainsString('(25/11/26, 15:56)', $context['confirmlabel']);
        // The plan's target, not the status' fallback: the copy whose code the snapshot's data belongs to.
        $this->assertSame('Serve the backup copy and restore the database snapshot now, whatever is running?',
            $context['confirmquestion']);
        $html = $this->render('rollback_plan', $context);
        $this->assertMatchesRegularExpression('/name="confirmdatabaserestore" value="1" required/', $html);
        // Asked with the plugin's key, the restore needs the administrator's second factor.
        $this->assertStringContainsString('name="secondfactorcode"', $html);
        $this->assertStringContainsString('[str: rollback:secondfactornotenrolled, tool_delivery]', $html);
        $this->assertStringContainsString('<code>deliveryctl admin enrol-totp 7</code>', $html);
        $site['secondFactorEnrolled'] = [3, 7];
        $html = $this->render('rollback_plan', (new rollback_plan($site))->export_for_template(new renderer_base()));
        $this->assertMatchesRegularExpression('/autocomplete="one-time-code"\s+aria-describedby="[^"]+" required>/', $html);
        $this->assertStringNotContainsString('enrol-totp', $html);
        unset($site['secondFactorEnrolled']);

        $site['rollback']['needsConfirmation'] = false;
        $context = (new rollback_plan($site))->export_for_template(new renderer_base());
        $this->assertFalse($context['needsconfirmation']);
        $this->assertStringNotContainsString('confirmdatabaserestore', $this->render('rollback_plan', $context));

        $code = ['rollbackTarget' => 'security', 'rollback' => ['kind' => 'code', 'target' => 'security',
            'needsConfirmation' => false, 'explanation' => 'Nothing is lost.']];
        $context = (new rollback_plan($code))->export_for_template(new renderer_base());
        $this->assertSame('Rollback of the code only: the database stays as it is.', $context['summary']);
        $this->assertSame('Serve the security copy now, whatever is running?', $context['confirmquestion']);

        $none = ['rollback' => ['kind' => 'unavailable', 'needsConfirmation' => false, 'explanation' => 'No copy.']];
        $context = (new rollback_plan($none))->export_for_template(new renderer_base());
        $this->assertSame('unavailable', $context['kind']);
        $this->assertSame('', $context['confirmquestion']);
        $this->assertSame('', rollback_plan::target_name($none));
    }

    /**
     * Before the first Secure the helper's status has no production revision (status runs no program): the banner
     * says when it is read and which working copy it is, in English and French, never "not read yet" with an empty code.
     */
    public function test_banner_before_the_first_secure(): void {
        $site = ['phase' => 'idle', 'served' => 'production', 'vcs' => 'git', 'wwwroot' => 'https://moodle.example.org'];
        $context = (new banner($site))->export_for_template(new renderer_base());
        $this->assertSame('', $context['production']);
        $this->assertSame('Read by the first Secure (a git working copy)', $context['productionunread']);
        $html = $this->render('banner', $context);
        $this->assertStringContainsString('Read by the first Secure (a git working copy)', $html);
        $this->assertStringNotContainsString('<code></code>', $html);
        $string = [];
        include(dirname(__DIR__, 2) . '/moodle-plugin/lang/fr/tool_delivery.php');
        $french = $string['banner:unknown'];
        $this->assertSame('Lue par la première sécurisation (copie de travail git)', str_replace('{$a}', 'git', $french));
        $site['productionRevision'] = ['id' => '1a2b3c4d5e', 'label' => 'main @ 1a2b3c4d5e'];
        $context = (new banner($site))->export_for_template(new renderer_base());
        $this->assertSame('', $context['productionunread']);
        $this->assertStringContainsString('<code>main @ 1a2b3c4d5e</code>', $this->render('banner', $context));
    }

    /**
     * The last rehearsal: a failed one says where the upgrade stopped and that it blocks the restore
     * (the confirmation is offered); a passed one its time, copy, components and schema changes; one
     * whose revision is no longer the upstream's says to rehearse again and blocks nothing.
     */
    public function test_rehearsal_panel(): void {
        $failed = [
            'phase' => 'idle',
            'rehearsalCurrent' => true,
            'rehearsal' => [
                'passed' => false, 'revision' => ['id' => 'b', 'label' => 'main @ bbbb'],
                'finishedAt' => '2026-12-04T10:15:00Z',
                'upgradeSeconds' => 9.44, 'databaseCopyBytes' => 52000000, 'databaseCopySeconds' => 3.2,
                'totalSeconds' => 21,
                'upgraded' => [['component' => 'local_foo', 'from' => '2026010100', 'to' => '2026010150']],
                'schema' => ['addedTables' => [], 'droppedTables' => [], 'addedColumns' => ['mdl_foo.step1 integer'],
                    'droppedColumns' => [], 'changedColumns' => []],
                'failure' => ['component' => 'local_foo', 'reachedVersion' => '2026010150', 'message' => 'step 2 fails'],
                'notices' => [['code' => 'rehearsal_upgrade_failed', 'values' => ['revision' => 'main @ bbbb',
                    'component' => 'local_foo', 'message' => 'step 2 fails']]],
            ],
        ];
        $context = (new rehearsal_panel($failed))->export_for_template(new renderer_base());
        $this->assertTrue($context['has']);
        $this->assertFalse($context['passed']);
        $this->assertTrue($context['blocks']);
        $this->assertTrue(rehearsal_panel::blocks($failed));
        $this->assertSame(
            'Stopped in local_foo, which had reached version 2026010150 on the copy: step 2 fails',
            $context['failure']
        );
        $this->assertStringContainsString('Moodle\'s upgrade stopped in local_foo: step 2 fails.', $context['said']);
        $this->assertSame("Moodle's upgrade ran 9.4 s on the copy before it stopped.", $context['facts'][0]['text']);
        $this->assertSame('Database copy: 52.0 MB, made in 3.2 s; the whole rehearsal took 21.0 s.', $context['facts'][1]['text']);
        $this->assertSame(['Components upgraded (1)', 'Columns added (1)'], array_column($context['sections'], 'title'));
        $html = $this->render('rehearsal_panel', $context);
        $this->assertStringContainsString('alert-danger', $html);
        $this->assertStringContainsString('<code>local_foo: 2026010100 → 2026010150</code>', $html);
        $this->assertStringContainsString('restoring this revision is blocked', $html);

        $stale = ['rehearsalCurrent' => false] + $failed;
        $context = (new rehearsal_panel($stale))->export_for_template(new renderer_base());
        $this->assertFalse($context['blocks'], 'a rehearsal of another revision blocks nothing');
        $this->assertStringStartsWith('The upstream has a newer revision than the one rehearsed', $context['stale']);

        $delivered = ['rehearsalCurrent' => null] + $failed;
        $this->assertSame('', (new rehearsal_panel($delivered))->export_for_template(new renderer_base())['stale'],
            'delivered, or nothing waits: no note of a newer revision');

        $passed = $failed;
        $passed['rehearsal']['passed'] = true;
        unset($passed['rehearsal']['failure'], $passed['rehearsal']['upgradeSeconds']);
        $context = (new rehearsal_panel($passed))->export_for_template(new renderer_base());
        $this->assertFalse($context['blocks']);
        $this->assertFalse($context['failure']);
        $this->assertSame('The code needs no upgrade of the database.', $context['facts'][0]['text']);
        $this->assertStringContainsString('alert-success', $this->render('rehearsal_panel', $context));

        // Production left the revision the rehearsal started from (another delivery since): the helper
        // says null, and the panel says it no longer applies (it said Update brings the rehearsed one).
        $passed['rehearsal']['base'] = ['id' => 'a', 'label' => 'main @ aaaa'];
        $moved = ['rehearsalCurrent' => null, 'productionRevision' => ['id' => 'z', 'label' => 'main @ zzzz']] + $passed;
        $this->assertSame(
            'Production has moved on since this rehearsal (it started from main @ aaaa): it no longer applies, '
                . 'and Update brings the upstream\'s newest revision, not rehearsed.',
            (new rehearsal_panel($moved))->export_for_template(new renderer_base())['stale']
        );
        $atbase = ['productionRevision' => ['id' => 'a', 'label' => 'main @ aaaa']] + $moved;
        $this->assertSame('', (new rehearsal_panel($atbase))->export_for_template(new renderer_base())['stale']);
        $updated = ['phase' => 'updated'] + $moved;
        $this->assertSame('', (new rehearsal_panel($updated))->export_for_template(new renderer_base())['stale']);

        $this->assertSame(['has' => false], (new rehearsal_panel(['phase' => 'idle']))->export_for_template(new renderer_base()));
        $never = $this->render('rehearsal_panel', ['has' => false]);
        $this->assertStringContainsString('[str: rehearsal:never, tool_delivery]', $never);
    }

    /**
     * On a server with several sites, every command the pages suggest names this one (--site).
     */
    public function test_commands_name_the_site(): void {
        $GLOBALS['tool_delivery_test_config']['tool_delivery']['sitename'] = 'school';
        $this->assertSame(' --site school', \tool_delivery\local\client_factory::cli_site_option());
        $context = (new banner(['phase' => 'idle', 'interrupted' => ['name' => 'admin', 'operation' => 'switch',
            'since' => '2026-11-25T15:56:50.000Z']]))->export_for_template(new renderer_base());
        $this->assertSame(' --site school', $context['siteoption']);
        $text = get_string('banner:interrupted', 'tool_delivery', ['name' => 'admin', 'operation' => 'switch',
            'since' => 'now', 'site' => $context['siteoption']]);
        $this->assertStringContainsString('"deliveryctl recover --site school"', $text);
        $this->assertStringContainsString('deliveryctl --site school:', get_string('helperdown:finish', 'tool_delivery',
            $context['siteoption']));
        $GLOBALS['tool_delivery_test_config']['tool_delivery']['sitename'] = 'Bad name; rm';
        $this->assertSame('', \tool_delivery\local\client_factory::cli_site_option());
        unset($GLOBALS['tool_delivery_test_config']);
        $this->assertSame('', \tool_delivery\local\client_factory::cli_site_option());
    }

    /**
     * The banner shows the snapshot, the last health check and the open delivery window, from the real helper's status.
     */
    public function test_banner_from_the_helper(): void {
        if (deliveryd_server::binary() === null) {
            $this->markTestSkipped('deliveryd is not built');
        }
        $server = new deliveryd_server();
        $server->start();
        $client = $server->client();
        foreach (['secure', 'switch'] as $operation) {
            $job = $client->start_operation($operation, $operation === 'secure' ? ['securityCopy' => true] : []);
            $deadline = microtime(true) + 30;
            while ($client->job($job['job'])['state'] === 'running' && microtime(true) < $deadline) {
                usleep(50000);
            }
        }
        $site = $client->status()['site'];
        $context = (new banner($site))->export_for_template(new renderer_base());
        $this->assertFalse($context['snapshot']);
        $this->assertFalse($context['healthcheck']);
        $this->assertFalse($context['windowopen']);

        file_put_contents($server->directory . '/snapshot.sql', "-- a dump\n");
        $server->change_state(function(stdClass $state) use ($server): void {
            $state->databaseAhead = true;
            $state->deliveryWindowOpen = true;
            $state->snapshot = (object) ['id' => $state->deliveryId, 'file' => $server->directory . '/snapshot.sql',
                'databaseType' => 'mariadb', 'database' => 'moodle', 'tableCount' => 398,
                'takenAt' => '2026-11-25T15:56:50.000Z', 'sizeBytes' => 2500000, 'seconds' => 75,
                'codeRevision' => $state->copies->backup->revision];
            $state->lastHealthCheck = (object) ['passed' => true, 'checkedAt' => '2026-11-25T16:02:00.000Z',
                'results' => ['upgrade.php --is-pending: the code matches the database.', 'English of the helper'],
                'failures' => [],
                'resultNotices' => [(object) ['code' => 'health_code_matches', 'values' => new stdClass()],
                    (object) ['code' => 'health_page_answered', 'values' => (object) ['url' => 'https://m.test/login/index.php']]],
                'failureNotices' => []];
        });
        $site = $client->status()['site'];
        $context = (new banner($site))->export_for_template(new renderer_base());
        $this->assertSame('moodle (mariadb): 398 tables, 2.5 MB', $context['snapshot']['detail']);
        $this->assertSame('Taken 25/11/26, 15:56, dumped in 1 min', $context['snapshot']['taken']);
        // The server's own copy, then that copy put back by a rollback.
        $copied = $site;
        $copied['snapshot']['copyDatabase'] = 'moodle_36afd1_snapshot_20261125t155650z_0000aaaa';
        $context = (new banner($copied))->export_for_template(new renderer_base());
        $this->assertSame('Taken 25/11/26, 15:56, copied by the database server in 1 min (database '
            . 'moodle_36afd1_snapshot_20261125t155650z_0000aaaa, closed to connections)', $context['snapshot']['taken']);
        $copied['snapshot']['replacedDatabase'] = 'moodle_36afd1_replaced_20261125t155650z_0000aaaa';
        $context = (new banner($copied))->export_for_template(new renderer_base());
        $this->assertSame('Taken 25/11/26, 15:56, copied by the database server in 1 min; a rollback put it back in place, '
            . 'and the database it replaced is kept as moodle_36afd1_replaced_20261125t155650z_0000aaaa',
            $context['snapshot']['taken']);
        $context = (new banner($site))->export_for_template(new renderer_base());
        $this->assertSame($site['snapshot']['codeRevision']['label'], $context['snapshot']['code']);
        $this->assertTrue($context['healthcheck']['passed']);
        $this->assertSame('Succeeded', $context['healthcheck']['result']);
        // Worded from the notices in the user's language, never the helper's English.
        $this->assertSame(['upgrade.php --is-pending: the code matches the database.',
            "https://m.test/login/index.php: HTTP 200, Moodle's login form."], array_column($context['healthcheck']['results'],
            'text'));
        $this->assertTrue($context['windowopen']);
        $html = $this->render('banner', $context);
        $this->assertStringContainsString('data-region="tool_delivery-window"', $html);
        $this->assertStringContainsString('[str: banner:snapshotcode, tool_delivery, ' . $context['snapshot']['code'] . ']',
            $html);
        $this->assertSame('Snapshot of the database used by main @ 1a2b3c4d5e (the code before the delivery)',
            get_string('banner:snapshotcode', 'tool_delivery', 'main @ 1a2b3c4d5e'));
        $this->assertStringContainsString('login/index.php: HTTP 200, Moodle&#039;s login form.', $html);

        // Inside the window the plan restores the database without asking.
        $plan = (new rollback_plan($site))->export_for_template(new renderer_base());
        $this->assertSame('code_and_database', $plan['kind']);
        $this->assertFalse($plan['needsconfirmation']);
        $this->assertStringStartsWith('Rollback of the code and the database (snapshot taken ', $plan['summary']);
        $this->assertStringEndsWith(', 2.5 MB)', $plan['summary']);
    }
}
