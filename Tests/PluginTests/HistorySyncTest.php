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
 * Tests of the history synchronisation (helper audit log → Moodle's logs) against the real deliveryd.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(dirname(__DIR__, 2) . '/moodle-plugin/classes/local/history_sync.php');

use tool_delivery\local\helper_client;
use tool_delivery\local\history_sync;

if (!function_exists('set_config')) {
    /**
     * Moodle's set_config, into the values get_config reads in the plain suite.
     *
     * @param string $name The setting.
     * @param mixed $value The value.
     * @param string $plugin The component.
     */
    function set_config(string $name, $value, string $plugin): void {
        $GLOBALS['tool_delivery_test_config'][$plugin][$name] = (string) $value;
    }
}

/**
 * Tests of the history synchronisation against the real deliveryd.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\local\history_sync
 */
final class HistorySyncTest extends \PHPUnit\Framework\TestCase {
    /** @var deliveryd_server|null The helper of the current test. */
    private ?deliveryd_server $server = null;

    /** @var array[] The records the synchroniser emitted, in order. */
    private array $emitted = [];

    /**
     * Starts a helper on a fresh site, with nothing logged yet.
     */
    protected function setUp(): void {
        if (deliveryd_server::binary() === null) {
            $this->markTestSkipped('deliveryd is not built');
        }
        $this->server = new deliveryd_server();
        $this->server->start();
        $GLOBALS['tool_delivery_test_config']['tool_delivery'] = ['historysince' => (string) (time() - 60)];
        $this->emitted = [];
    }

    /**
     * Stops it.
     */
    protected function tearDown(): void {
        $this->server = null;
        unset($GLOBALS['tool_delivery_test_config']['tool_delivery']);
    }

    /**
     * One synchronisation run that collects what it would log.
     *
     * @return int The records logged.
     */
    private function sync(): int {
        $sync = new history_sync($this->server->client(5, 'Zélie Admin'), function (array $record): void {
            $this->emitted[] = $record;
        });
        return $sync->run();
    }

    /**
     * Runs an operation from Moodle (the plugin's client) and waits for its end.
     *
     * @param helper_client $client The client.
     * @param string $operation The operation.
     * @return string The job id.
     */
    private static function run_operation(helper_client $client, string $operation): string {
        $id = $client->start_operation($operation)['job'];
        $deadline = microtime(true) + 60;
        while (microtime(true) < $deadline) {
            if ($client->job($id)['state'] !== 'running') {
                return $id;
            }
            usleep(100000);
        }
        throw new RuntimeException("job {$id} did not finish");
    }

    /**
     * Each operation is logged once, oldest first, whether it came from Moodle or from deliveryctl on
     * the server; a run with nothing new logs nothing.
     */
    public function test_each_operation_once_whoever_started_it(): void {
        $client = $this->server->client(5, 'Zélie Admin');
        $this->assertSame(0, $this->sync(), 'nothing ran yet');

        // From the server's shell: no Moodle user, and still logged.
        $deliveryctl = dirname(deliveryd_server::binary()) . '/deliveryctl';
        exec(escapeshellarg($deliveryctl) . ' secure --config ' . escapeshellarg($this->server->directory . '/site.json')
            . ' 2>&1', $output, $status);
        $this->assertSame(0, $status, implode("\n", $output));
        // A secure from idle opens a delivery: a `started` record, then its own.
        $this->assertSame(2, $this->sync());
        $this->assertSame(['secure', 'started'], [$this->emitted[0]['operation'], $this->emitted[0]['result']]);
        $this->assertSame($this->emitted[1]['deliveryId'], $this->emitted[0]['deliveryId']);
        $secure = $this->emitted[1];
        $this->assertSame(['secure', 'succeeded', 'cli'], [$secure['operation'], $secure['result'], $secure['actor']['source']]);
        $this->assertArrayNotHasKey('moodleUserId', $secure['actor']);
        $this->assertSame(0, $this->sync(), 'a second run logs nothing again');

        // From Moodle: the user who asked.
        $switch = self::run_operation($client, 'switch');
        $this->assertSame(1, $this->sync());
        $this->assertSame($switch, $this->emitted[2]['id']);
        $this->assertSame(['moodle', 5], [$this->emitted[2]['actor']['source'], $this->emitted[2]['actor']['moodleUserId']]);

        // A refusal is an operation too (it changed nothing, and says why).
        try {
            self::run_operation($client, 'switch');
        } catch (\tool_delivery\local\helper_exception $error) {
            $this->assertSame('wrong_state', $error->errorcode);
        }
        $this->assertSame(1, $this->sync());
        $this->assertSame(['switch', 'refused'], [$this->emitted[3]['operation'], $this->emitted[3]['result']]);
        $this->assertSame(0, $this->sync());
        $this->assertCount(4, $this->emitted);
    }

    /**
     * Operations that started before the plugin began logging are not logged; after the first run,
     * the last logged record is where the next run stops.
     */
    public function test_only_from_the_start_of_logging(): void {
        $client = $this->server->client(5, 'Zélie Admin');
        self::run_operation($client, 'secure');
        $GLOBALS['tool_delivery_test_config']['tool_delivery']['historysince'] = (string) (time() + 5);
        $this->assertSame(0, $this->sync());
        $this->assertSame([], $this->emitted);
    }

    /**
     * The helper writes a record when an operation ends: an emergency rollback that took over from
     * a restore is written before it. The order is the helper's, never the start times'.
     */
    public function test_order_is_the_helpers(): void {
        $records = [
            ['id' => 'c', 'time' => '2026-12-03T10:00:00Z'],
            ['id' => 'b', 'time' => '2026-12-03T10:05:00Z'],
            ['id' => 'a', 'time' => '2026-12-03T09:00:00Z'],
        ];
        $since = strtotime('2026-12-01T00:00:00Z');
        $this->assertSame([[$records[0], $records[1]], true], history_sync::newer($records, 'a', $since));
        $this->assertSame([[$records[0]], true], history_sync::newer($records, 'b', $since));
        $this->assertSame([$records, false], history_sync::newer($records, '', $since));
        $this->assertSame([[$records[0], $records[1]], false],
            history_sync::newer($records, '', strtotime('2026-12-03T09:30:00Z')));
    }
}
