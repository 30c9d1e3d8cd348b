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
 * Stand-ins of Moodle's external API declarations (the structures only: what the plugin's
 * external functions declare, read by ExternalParametersTest).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace core_external;

// Every PARAM_ constant the plugin's external functions name (Moodle's values do not matter here).
foreach (glob(dirname(__DIR__, 2) . '/moodle-plugin/classes/external/*.php') as $file) {
    preg_match_all('/\bPARAM_[A-Z_]+\b/', file_get_contents($file), $found);
    foreach (array_unique($found[0]) as $name) {
        defined($name) || define($name, strtolower(substr($name, 6)));
    }
}
defined('VALUE_REQUIRED') || define('VALUE_REQUIRED', 1);
defined('VALUE_OPTIONAL') || define('VALUE_OPTIONAL', 2);
defined('VALUE_DEFAULT') || define('VALUE_DEFAULT', 0);

/**
 * Stand-in for Moodle's external_api (nothing is called in the test).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class external_api {
}

/**
 * Stand-in for Moodle's external_value.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class external_value {
    /**
     * Keeps nothing: the test reads the names only.
     *
     * @param mixed ...$arguments Moodle's arguments.
     */
    public function __construct(...$arguments) {
    }
}

/**
 * Stand-in for Moodle's external_single_structure: the members by name, in order.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class external_single_structure {
    /** @var array The members, in the order declared. */
    public array $keys;

    /**
     * Keeps the members.
     *
     * @param array $keys The members.
     * @param mixed ...$arguments Moodle's other arguments.
     */
    public function __construct(array $keys = [], ...$arguments) {
        $this->keys = $keys;
    }
}

/**
 * Stand-in for Moodle's external_function_parameters.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class external_function_parameters extends external_single_structure {
}

/**
 * Stand-in for Moodle's external_multiple_structure.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class external_multiple_structure {
    /**
     * Keeps nothing.
     *
     * @param mixed ...$arguments Moodle's arguments.
     */
    public function __construct(...$arguments) {
    }
}
