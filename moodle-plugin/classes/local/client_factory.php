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
 * Makes the helper client for a Moodle user from the plugin's settings.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * Makes the helper client for a Moodle user from the plugin's settings.
 *
 * Moodle-level tests replace the helper with a test client ({@see self::set_test_client()}), as
 * tool_objectfs does for its stores; the real helper is tested in the plain PHPUnit suite.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class client_factory {
    /** @var string The helper socket when none is set. */
    public const DEFAULT_SOCKET = '/run/deliveryd/deliveryd.sock';

    /** @var string The key file when none is set. */
    public const DEFAULT_KEY_FILE = '/etc/moodle-delivery/deliveryd.key';

    /** @var helper_client|null The client tests put in place of the helper. */
    private static ?helper_client $testclient = null;

    /**
     * The configured socket path.
     *
     * @return string The path.
     */
    public static function socket_path(): string {
        $path = trim((string) get_config('tool_delivery', 'socketpath'));
        return $path === '' ? self::DEFAULT_SOCKET : $path;
    }

    /**
     * What names this site on `deliveryctl`'s command line in the hints the pages print: ` --site NAME`
     * when the server has several sites (`scripts/install` sets the name), else nothing.
     *
     * @return string Such as ' --site school', or ''.
     */
    public static function cli_site_option(): string {
        $name = trim((string) get_config('tool_delivery', 'sitename'));
        return preg_match('/^[a-z0-9_][a-z0-9._-]{0,63}$/', $name) ? ' --site ' . $name : '';
    }

    /**
     * The configured key file.
     *
     * @return string The path.
     */
    public static function key_file(): string {
        $path = trim((string) get_config('tool_delivery', 'keyfile'));
        return $path === '' ? self::DEFAULT_KEY_FILE : $path;
    }

    /**
     * A client signing for a user.
     *
     * @param \stdClass $user The Moodle user (usually $USER).
     * @param float $timeout Seconds allowed for one exchange with the helper.
     * @return helper_client The client.
     * @throws helper_exception With `key_unreadable` or `key_short` when the key cannot be used.
     */
    public static function for_user(\stdClass $user, float $timeout = 20.0): helper_client {
        if (self::$testclient !== null) {
            return self::$testclient;
        }
        return new helper_client(
            new fastcgi_client(self::socket_path(), 3.0, $timeout),
            request_signer::from_key_file(self::key_file()),
            (int) $user->id,
            fullname($user)
        );
    }

    /**
     * Puts a client in place of the helper, in tests only.
     *
     * @param helper_client|null $client The client, or null to use the helper again.
     */
    public static function set_test_client(?helper_client $client): void {
        if (!defined('PHPUNIT_TEST') && !defined('BEHAT_SITE_RUNNING')) {
            throw new \coding_exception('set_test_client() is for tests only');
        }
        self::$testclient = $client;
    }
}
