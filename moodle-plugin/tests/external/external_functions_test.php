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

namespace tool_delivery\external;

use core_external\external_api;

/**
 * The plugin's external functions: the capability, bad parameters, and a helper that is down.
 *
 * @package    tool_delivery
 * @category   test
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @covers     \tool_delivery\external\start_operation
 * @covers     \tool_delivery\external\get_job
 * @covers     \tool_delivery\external\get_status
 * @covers     \tool_delivery\external\get_console_link
 * @covers     \tool_delivery\external\run_preflight
 */
final class external_functions_test extends \advanced_testcase {
    /**
     * Points the plugin at a helper socket where nobody listens, with a key it can read.
     *
     * @return string The socket's path.
     */
    private function helper_down(): string {
        $folder = make_request_directory();
        file_put_contents($folder . '/deliveryd.key', base64_encode(random_bytes(48)));
        set_config('socketpath', $folder . '/deliveryd.sock', 'tool_delivery');
        set_config('keyfile', $folder . '/deliveryd.key', 'tool_delivery');
        return $folder . '/deliveryd.sock';
    }

    /**
     * Every function refuses a user without tool/delivery:deliver, before the helper is asked.
     */
    public function test_capability_is_required(): void {
        $this->resetAfterTest();
        $this->helper_down();
        $this->setUser($this->getDataGenerator()->create_user());
        $calls = [
            fn() => start_operation::execute('secure'),
            fn() => get_job::execute('20261203T171343Z-df6910b2'),
            fn() => get_status::execute(),
            fn() => get_console_link::execute(),
            fn() => run_preflight::execute(),
        ];
        foreach ($calls as $index => $call) {
            try {
                $call();
                $this->fail("call {$index} was not refused");
            } catch (\required_capability_exception $error) {
                $this->assertSame('nopermissions', $error->errorcode);
            }
        }
    }

    /**
     * An action the page does not offer, and a job id that cannot be one, are bad parameters.
     */
    public function test_bad_parameters(): void {
        $this->resetAfterTest();
        $this->helper_down();
        $this->setAdminUser();
        foreach (['recover', 'format-disk'] as $action) {
            try {
                start_operation::execute($action);
                $this->fail("'{$action}' was taken");
            } catch (\invalid_parameter_exception $error) {
                $this->assertSame('invalidparameter', $error->errorcode);
            }
        }
        $this->expectException(\invalid_parameter_exception::class);
        get_job::execute('../../etc/passwd');
    }

    /**
     * A path the helper would not take is refused as typed, before anything is sent: an error in
     * the answer (the page shows it), not an exception.
     */
    public function test_bad_path_is_an_answer(): void {
        $this->resetAfterTest();
        $this->helper_down();
        $this->setAdminUser();
        $answer = external_api::clean_returnvalue(
            start_operation::execute_returns(),
            start_operation::execute('secure', false, 'mod/.git')
        );
        $this->assertSame('', $answer['job']);
        $this->assertSame('bad_path', $answer['error']['code']);
        $this->assertStringContainsString('"mod/.git"', $answer['error']['message']);
        $this->assertFalse($answer['error']['down']);
    }

    /**
     * A helper that is down is said in every answer (code, sentence, down), and nothing is logged
     * as started.
     */
    public function test_helper_down(): void {
        $this->resetAfterTest();
        $this->helper_down();
        $this->setAdminUser();
        $sink = $this->redirectEvents();
        $answer = external_api::clean_returnvalue(start_operation::execute_returns(), start_operation::execute('run-all'));
        $this->assertSame('', $answer['job']);
        $this->assertSame('helper_missing', $answer['error']['code']);
        $this->assertTrue($answer['error']['down']);
        $this->assertNotSame('', $answer['error']['message']);
        $this->assertCount(0, $sink->get_events());

        $job = external_api::clean_returnvalue(get_job::execute_returns(), get_job::execute('20261203T171343Z-df6910b2', 0));
        $this->assertSame('unknown', $job['state']);
        $this->assertTrue($job['error']['down']);

        $status = external_api::clean_returnvalue(get_status::execute_returns(), get_status::execute());
        $this->assertArrayNotHasKey('site', $status);
        $this->assertSame('helper_missing', $status['error']['code']);

        $link = external_api::clean_returnvalue(get_console_link::execute_returns(), get_console_link::execute());
        $this->assertSame('', $link['url']);
        $this->assertTrue($link['error']['down']);

        $preflight = external_api::clean_returnvalue(run_preflight::execute_returns(), run_preflight::execute());
        $this->assertFalse($preflight['blocking']);
        $context = json_decode($preflight['reportcontext'], true);
        $this->assertNotEmpty($context['failed']['message']);
    }
}
