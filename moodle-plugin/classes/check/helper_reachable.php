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
 * Check: the delivery helper answers on its socket and accepts our key.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\check;

use core\check\check;
use core\check\result;
use tool_delivery\local\client_factory;
use tool_delivery\local\helper_exception;
use tool_delivery\local\request_signer;
use tool_delivery\local\transport_exception;

/**
 * Check: the delivery helper answers on its socket and accepts our key.
 *
 * It signs a status request as the current user (the admin looking at the report, else the
 * admin account): OK with the site's phase, CRITICAL when the helper is down or refuses the key,
 * ERROR for anything else.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class helper_reachable extends check {
    /**
     * The check's id.
     *
     * @return string The id.
     */
    public function get_id(): string {
        return 'helper_reachable';
    }

    /**
     * The check's name.
     *
     * @return string The name.
     */
    public function get_name(): string {
        return get_string('check:helperreachable', 'tool_delivery');
    }

    /**
     * A link to the plugin's settings.
     *
     * @return \action_link|null The link.
     */
    public function get_action_link(): ?\action_link {
        return new \action_link(
            new \moodle_url('/admin/settings.php', ['section' => 'tool_delivery_settings']),
            get_string('settings:title', 'tool_delivery')
        );
    }

    /**
     * Asks the helper for the status.
     *
     * @return result The result.
     */
    public function get_result(): result {
        global $USER;
        $user = isloggedin() && !isguestuser() ? $USER : get_admin();
        $socket = client_factory::socket_path();
        try {
            $site = client_factory::for_user($user, 10.0)->status()['site'];
            $phase = get_string('phase:' . str_replace('_', '', (string) ($site['phase'] ?? '')), 'tool_delivery');
            return new result(result::OK, get_string('check:ok', 'tool_delivery', $phase));
        } catch (transport_exception $error) {
            $status = $error->is_down() ? result::CRITICAL : result::ERROR;
            return new result(
                $status,
                get_string('check:down', 'tool_delivery', s($socket)),
                s($error->getMessage()) . '<br>' . get_string(
                    'helperdown:finish',
                    'tool_delivery',
                    \tool_delivery\local\client_factory::cli_site_option()
                )
            );
        } catch (helper_exception $error) {
            $keyerrors = [request_signer::KEY_UNREADABLE, request_signer::KEY_SHORT, 'bad_signature', 'unauthenticated'];
            if ($error->errorcode === 'peer_refused') {
                return new result(result::CRITICAL, get_string('check:peerrefused', 'tool_delivery'), s($error->getMessage()));
            }
            if (in_array($error->errorcode, $keyerrors, true)) {
                return new result(result::CRITICAL, get_string(
                    'check:wrongkey',
                    'tool_delivery',
                    s(client_factory::key_file())
                ), s($error->getMessage()));
            }
            return new result(
                result::ERROR,
                get_string('check:error', 'tool_delivery', s($error->errorcode)),
                s($error->getMessage())
            );
        }
    }
}
