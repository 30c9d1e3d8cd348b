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
 * Tests of the external functions' declarations (plain PHPUnit, no Moodle).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require_once(__DIR__ . '/moodle_external_stubs.php');

/**
 * Moodle's web service layer calls `execute()` with the values of `execute_parameters()` in the
 * order they are declared, not by name: a parameter declared out of its place in `execute()`
 * takes another one's value. (The rollback's authenticator code once reached the helper as the
 * failed-rehearsal confirmation, and the helper asked for the code it had been given.)
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 * @coversNothing
 */
final class ExternalParametersTest extends \PHPUnit\Framework\TestCase {
    /**
     * Every external function takes its parameters in the order it declares them, by the same names.
     */
    public function test_execute_takes_the_declared_parameters_in_order(): void {
        $folder = dirname(__DIR__, 2) . '/moodle-plugin/classes/external';
        require_once("$folder/delivery_function.php");
        foreach (glob("$folder/*.php") as $file) {
            require_once($file);
        }
        $checked = 0;
        foreach (glob("$folder/*.php") as $file) {
            $class = 'tool_delivery\\external\\' . basename($file, '.php');
            $reflection = new \ReflectionClass($class);
            if ($reflection->isAbstract()) {
                continue;
            }
            $declared = array_keys($class::execute_parameters()->keys);
            $taken = array_map(fn(\ReflectionParameter $p) => $p->getName(), $reflection->getMethod('execute')->getParameters());
            $this->assertSame($declared, $taken, "$class: execute() must take the parameters in the declared order");
            $checked++;
        }
        $this->assertGreaterThanOrEqual(7, $checked);
    }
}
