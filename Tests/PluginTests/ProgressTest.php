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
 * Tests of what progress.php answers about a job: its result, refusals, and the log lines.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/moodle_stubs.php');
require_once(dirname(__DIR__, 2) . '/moodle-plugin/classes/local/helper_rules.php');
require_once(dirname(__DIR__, 2) . '/moodle-plugin/classes/local/delivery_actions.php');

use tool_delivery\local\delivery_actions;

/**
 * Tests of what progress.php answers about a job: its result, refusals, and the log lines.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\delivery_actions
 */
final class ProgressTest extends \PHPUnit\Framework\TestCase {
    /** @var string The helper's message of a refused rollback (English, with a hint for deliveryctl). */
    private const CONFIRMATION_MESSAGE = "rollback not done: it must be confirmed. Moodle's upgrade changed the database. "
        . "Confirm with 'deliveryctl rollback --restore-database', or tick the confirmation on the delivery screen.";

    /**
     * A component path the helper would not take is refused before anything is sent, and the
     * message shows it as typed (never rewritten: "/etc" is not sent as "etc").
     */
    public function test_a_path_is_refused_as_typed(): void {
        foreach (['/etc', 'mod/.git', '../x', 'mod//forum', '-rf'] as $typed) {
            try {
                delivery_actions::start(new \tool_delivery\local\helper_client(
                    new \tool_delivery\local\fastcgi_client('/nonexistent.sock', 1.0, 1.0),
                    new \tool_delivery\local\request_signer(str_repeat('k', 32)), 2, 'Ada'), 'secure', ['securePath' => $typed]);
                $this->fail("'{$typed}' was taken");
            } catch (\tool_delivery\local\helper_exception $error) {
                $this->assertSame('bad_path', $error->errorcode);
                $this->assertStringContainsString("\"{$typed}\" was refused", delivery_actions::error_message($error));
            }
        }
        $this->assertTrue(\tool_delivery\local\helper_rules::is_component_path('mod/forum'));
        // The page offers the helper's operations but recover, which is the server's.
        $this->assertTrue(delivery_actions::offers('run-all'));
        $this->assertFalse(delivery_actions::offers('recover'));
        $this->assertFalse(delivery_actions::offers('format-disk'));
    }

    /**
     * A rollback refused for want of the confirmation says only the refusal and that nothing was
     * changed: no helper text with its command line, no served copy, no next step.
     */
    public function test_refused_rollback_says_nothing_changed(): void {
        $job = ['id' => 'j1', 'operation' => 'rollback', 'state' => 'failed',
            'steps' => [['operation' => 'rollback', 'state' => 'failed', 'fraction' => 0]],
            'error' => ['code' => 'confirmation_required', 'message' => self::CONFIRMATION_MESSAGE]];
        $this->assertTrue(delivery_actions::is_refusal($job));
        $result = delivery_actions::job_result($job, ['phase' => 'idle', 'served' => 'production']);
        $this->assertFalse($result['succeeded']);
        $this->assertTrue($result['refused']);
        $this->assertStringStartsWith('The rollback was not done: it would restore the database snapshot', $result['message']);
        $this->assertSame('', $result['detail']);
        $this->assertSame('', $result['served']);
        $this->assertSame('Nothing was changed: the site is as it was.', $result['next']);
        $this->assertSame('Reload the page', $result['reload']);
        $this->assertStringNotContainsString('Nothing else to do', implode(' ', $result));
    }

    /**
     * A refusal of the real helper (Restore production while idle): the helper's reason stays,
     * with the sentence that nothing was changed.
     */
    public function test_refusal_of_the_helper(): void {
        if (deliveryd_server::binary() === null) {
            $this->markTestSkipped('deliveryd is not built');
        }
        $server = new deliveryd_server();
        $server->start();
        $client = $server->client();
        $started = $client->start_operation('restore');
        $deadline = microtime(true) + 30;
        while (($job = $client->job($started['job']))['state'] === 'running' && microtime(true) < $deadline) {
            usleep(50000);
        }
        $this->assertSame('wrong_state', $job['error']['code'] ?? '', json_encode($job));
        $this->assertTrue(delivery_actions::is_refusal($job));
        $result = delivery_actions::job_result($job, $client->status()['site']);
        $this->assertTrue($result['refused']);
        $this->assertSame("The site's state does not allow this step now.", $result['message']);
        // The helper's notices in the page's words (its English message is never shown).
        $this->assertSame('refused_nothing_to_restore', $job['error']['notices'][0]['code'] ?? '', json_encode($job));
        $this->assertSame(
            "Restore production refused: there is nothing to restore (state 'Production'); switch to delivery and update first.",
            $result['detail']
        );
        $this->assertSame('', $result['served']);
        $this->assertSame('Nothing was changed: the site is as it was.', $result['next']);
    }

    /**
     * A refusal's code after a step of the job succeeded (run all stopped at Restore production)
     * is no refusal: something was changed, and the page says where the site stands.
     */
    public function test_refusal_after_a_step_is_a_failure(): void {
        $job = ['id' => 'j2', 'operation' => 'run-all', 'state' => 'failed',
            'steps' => [['operation' => 'secure', 'state' => 'succeeded'], ['operation' => 'switch', 'state' => 'succeeded'],
                ['operation' => 'update', 'state' => 'succeeded'], ['operation' => 'restore', 'state' => 'failed']],
            'error' => ['code' => 'preflight_failed', 'message' => 'lint errors in local/foo/lib.php',
                'notices' => [['code' => 'refused_preflight', 'values' => ['tree' => 'backup']]]]];
        $this->assertFalse(delivery_actions::is_refusal($job));
        $result = delivery_actions::job_result($job, ['phase' => 'updated', 'served' => 'backup']);
        $this->assertFalse($result['refused']);
        $this->assertSame(
            'Restore refused: the preflight found what would break the site. The site still serves the backup copy; '
                . 'fix production (update again) or cancel.',
            $result['detail']
        );
        $this->assertSame('The site serves: Backup copy.', $result['served']);
        $this->assertSame('Production is updated. Next: Restore production (or update more paths).', $result['next']);

        // A failure that is no refusal at all, without the site's state.
        $job = ['id' => 'j3', 'operation' => 'restore', 'state' => 'failed', 'steps' => [],
            'error' => ['code' => 'upgrade_failed', 'message' => 'upgrade.php exited with 1']];
        $this->assertFalse(delivery_actions::is_refusal($job));
        $result = delivery_actions::job_result($job, null);
        $this->assertStringStartsWith("Moodle's upgrade failed", $result['message']);
        // No notices: the code says it, and the helper's English (raw detail for the log) is not shown.
        $this->assertSame('', $result['detail']);
        $this->assertSame('', $result['served']);
        $this->assertSame('', $result['next']);
    }

    /**
     * A succeeded job: the helper's message, the copy served and the next step from its result.
     */
    public function test_succeeded_job(): void {
        $job = ['id' => 'j4', 'operation' => 'rollback', 'state' => 'succeeded',
            'steps' => [['operation' => 'rollback', 'state' => 'succeeded']],
            'result' => ['message' => 'English of the helper', 'phase' => 'rolled_back', 'served' => 'security',
                'notices' => [['code' => 'rollback_serves', 'values' => ['tree' => 'security', 'revision' => 'main @ 1a2b3c']]]]];
        $this->assertFalse(delivery_actions::is_refusal($job));
        $result = delivery_actions::job_result($job, ['phase' => 'idle', 'served' => 'production']);
        $this->assertTrue($result['succeeded']);
        $this->assertFalse($result['refused']);
        $this->assertSame('The site serves the security copy (main @ 1a2b3c).', $result['message']);
        $this->assertSame('', $result['detail']);
        $this->assertSame('The site serves: Security copy.', $result['served']);
        $this->assertStringStartsWith('The site is served from a copy.', $result['next']);
        $this->assertFalse(delivery_actions::is_refusal(['state' => 'running', 'error' => ['code' => 'wrong_state']]));
    }

    /**
     * Log lines lose the terminal colours of Moodle's CLI scripts; the rest is kept as it is.
     */
    public function test_log_lines_without_colours(): void {
        $lines = [3 => "\e[0;30m\e[43m WARNING \e[0;0m cron has not run for 2 days",
            4 => "\e[1;31mERROR\e[0m: login page HTTP 500", 5 => 'tabs\tand [brackets] stay', 6 => 42];
        $this->assertSame([' WARNING  cron has not run for 2 days', 'ERROR: login page HTTP 500', 'tabs\tand [brackets] stay',
            '42'], delivery_actions::log_lines($lines));
        $this->assertSame([], delivery_actions::log_lines([]));
    }
}
