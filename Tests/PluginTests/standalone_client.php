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
 * Loads the plugin's Moodle-free classes (the FastCGI client, the signer, the helper client, the
 * preflight verdict, the units of sizes and durations), for code that talks to deliveryd as the
 * plugin does, outside Moodle: the PHPUnit suite, the end-to-end driver and the demo.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

foreach (['helper_rules', 'helper_exception', 'transport_exception', 'fastcgi_response', 'fastcgi_client',
        'request_signer', 'helper_client', 'preflight_verdict', 'human_units', 'notices'] as $classname) {
    require_once(dirname(__DIR__, 2) . '/moodle-plugin/classes/local/' . $classname . '.php');
}
