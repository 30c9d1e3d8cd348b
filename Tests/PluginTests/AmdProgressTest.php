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
 * Tests of the AMD module's logic that needs no page (node runs amd/src/progress.js as an ES module).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

/**
 * Tests of the AMD module's logic that needs no page: the lost session, and log lines without colours.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @coversNothing
 */
final class AmdProgressTest extends \PHPUnit\Framework\TestCase {
    /**
     * Calls exported functions of amd/src/progress.js with node.
     *
     * @param array $calls Each [function name, arguments].
     * @return array What each call returned.
     */
    private function call(array $calls): array {
        $node = trim((string) shell_exec('command -v node 2>/dev/null'));
        if ($node === '') {
            $this->markTestSkipped('node is not installed');
        }
        $directory = sys_get_temp_dir() . '/tool_delivery_amd_' . getmypid();
        @mkdir($directory);
        // Moodle's core modules are not here: each import of one reads a stand-in beside the copy.
        $source = file_get_contents(dirname(__DIR__, 2) . '/moodle-plugin/amd/src/progress.js');
        file_put_contents($directory . '/progress.mjs', preg_replace("~from 'core/(\\w+)';~", "from './core_$1.mjs';", $source));
        file_put_contents($directory . '/core_notification.mjs',
            "export const saveCancelPromise = () => Promise.resolve();\n");
        file_put_contents($directory . '/core_str.mjs', "export const getString = (key) => Promise.resolve(key);\n");
        file_put_contents($directory . '/core_ajax.mjs',
            "export default {call: () => [Promise.reject(new Error('no Moodle'))]};\n");
        file_put_contents($directory . '/core_templates.mjs', "export default {};\n");
        file_put_contents($directory . '/run.mjs', "import * as module from './progress.mjs';\n"
            . "import {readFileSync} from 'fs';\n"
            . "const calls = JSON.parse(readFileSync(0, 'utf8'));\n"
            . "process.stdout.write(JSON.stringify(calls.map(([name, args]) => module[name](...args))));\n");
        $process = proc_open([$node, $directory . '/run.mjs'], [['pipe', 'r'], ['pipe', 'w'], ['pipe', 'w']], $pipes);
        fwrite($pipes[0], json_encode($calls));
        fclose($pipes[0]);
        $output = stream_get_contents($pipes[1]);
        $errors = stream_get_contents($pipes[2]);
        $status = proc_close($process);
        array_map('unlink', glob($directory . '/*'));
        rmdir($directory);
        $this->assertSame(0, $status, $errors);
        $results = json_decode($output, true);
        $this->assertIsArray($results, $output);
        return $results;
    }

    /**
     * What core/ajax rejects a call with once the session is gone (after a rollback restored the
     * sessions table) stops the polling; maintenance, a broken site and errors that asking again
     * cannot change are told apart.
     */
    public function test_session_lost_and_final_errors(): void {
        $exception = fn(string $code) => ['message' => 'Error', 'errorcode' => $code, 'link' => '', 'moreinfourl' => ''];
        $request = fn(string $code) => ['error' => 'Error', 'errorcode' => $code, 'stacktrace' => null, 'debuginfo' => null,
            'reproductionlink' => null];
        $lost = [
            $exception('requireloginerror'),
            $exception('sessionerroruser'),
            $exception('servicerequireslogin'),
            $request('invalidsesskey'),
            [['error' => true, 'exception' => ['message' => 'Login', 'errorcode' => 'servicerequireslogin']]],
        ];
        $final = [$exception('nopermissions'), $exception('invalidparameter'), $exception('invalidresponse')];
        $passing = [
            null,
            'Service Unavailable',
            'parsererror',
            $exception('upgraderunning'),
            $request('upgraderequired'),
            ['error' => ['code' => 'requireloginerror', 'message' => 'a helper code in an answer is never Moodle\'s']],
            ['id' => 'j1', 'state' => 'running', 'steps' => [], 'lines' => []],
        ];
        $cases = array_merge($lost, $final, $passing);
        $results = $this->call(array_merge(
            array_map(fn($reason) => ['sessionLost', [$reason]], $cases),
            array_map(fn($reason) => ['finalError', [$reason]], $cases)
        ));
        $expected = array_merge(
            array_fill(0, count($lost), true),
            array_fill(0, count($final) + count($passing), false),
            array_fill(0, count($lost), false),
            array_fill(0, count($final), true),
            array_fill(0, count($passing), false)
        );
        $this->assertSame($expected, $results);
    }
}
