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
 * Sends the plugin's notifications through Moodle's messaging API to the people who deliver.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * Sends the plugin's notifications (db/messages.php: `upstreamwaiting`, `deliveryevent`) through
 * Moodle's messaging API, so that each user's preferences (popup, email…) apply. The recipients
 * are the users with tool/delivery:deliver in the system context and the site administrators (the
 * capability has no archetype), each once; the sender is the no-reply user.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class notifier {
    /** @var string[] The plugin's message providers. */
    public const PROVIDERS = ['upstreamwaiting', 'deliveryevent'];

    /**
     * The people who deliver: users with the capability, and the site administrators, each once.
     *
     * @return \stdClass[] User id => user.
     */
    public static function recipients(): array {
        $users = get_users_by_capability(\context_system::instance(), 'tool/delivery:deliver');
        foreach (get_admins() as $admin) {
            $users[$admin->id] = $admin;
        }
        $recipients = [];
        foreach ($users as $user) {
            $recipients[(int) $user->id] = $user;
        }
        ksort($recipients);
        return $recipients;
    }

    /**
     * Sends one notification to every recipient.
     *
     * @param string $provider One of {@see self::PROVIDERS}.
     * @param string $subject The subject (plain text).
     * @param string[] $lines The message, one paragraph or list entry a line (plain text).
     * @param \moodle_url $url Where it leads: the delivery screen or a report.
     * @param string $urlname The link's name.
     * @return int How many were sent.
     */
    public static function send(string $provider, string $subject, array $lines, \moodle_url $url, string $urlname): int {
        if (!in_array($provider, self::PROVIDERS, true)) {
            throw new \coding_exception("unknown message provider '{$provider}'");
        }
        $text = implode("\n", $lines);
        $html = '';
        foreach ($lines as $line) {
            $html .= '<p>' . s($line) . '</p>';
        }
        $html .= '<p><a href="' . s($url->out(false)) . '">' . s($urlname) . '</a></p>';
        $sent = 0;
        foreach (self::recipients() as $user) {
            $message = new \core\message\message();
            $message->component = 'tool_delivery';
            $message->name = $provider;
            $message->userfrom = \core_user::get_noreply_user();
            $message->userto = $user;
            $message->notification = 1;
            $message->subject = $subject;
            $message->fullmessage = $text . "\n\n" . $urlname . ': ' . $url->out(false);
            $message->fullmessageformat = FORMAT_PLAIN;
            $message->fullmessagehtml = $html;
            $message->smallmessage = $subject;
            $message->contexturl = $url->out(false);
            $message->contexturlname = $urlname;
            if (message_send($message)) {
                $sent++;
            }
        }
        return $sent;
    }
}
