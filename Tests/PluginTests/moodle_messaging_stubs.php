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
 * Stand-ins for the Moodle APIs the notifications and the delivery reports use: users and the
 * capability, messaging (message_send records what it is given), URLs, configuration and a small
 * database of rows in memory. Tests read and set $GLOBALS['tool_delivery_test_*'].
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace core\message {
    /**
     * Stand-in for Moodle's message: its members as set.
     *
     * @package    tool_delivery
     * @copyright  2026 moodle-delivery contributors
     * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
     */
    #[\AllowDynamicProperties]
    class message {
    }
}

namespace {
    require_once(__DIR__ . '/moodle_stubs.php');
    foreach (['upstream_summary', 'upstream_watch', 'notifier', 'notified_records', 'record_notifications', 'report_store',
            'delivery_followup', 'report_rows', 'schedule_time', 'delivery_actions', 'client_factory'] as $classname) {
        require_once(dirname(__DIR__, 2) . '/moodle-plugin/classes/local/' . $classname . '.php');
    }
    foreach (['preflight', 'rehearsal_panel', 'upstream_panel', 'history', 'delivery_report'] as $classname) {
        require_once(dirname(__DIR__, 2) . '/moodle-plugin/classes/output/' . $classname . '.php');
    }

    if (!defined('FORMAT_PLAIN')) {
        define('FORMAT_PLAIN', '2');
    }

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
     * Stand-in for Moodle's moodle_url.
     *
     * @package    tool_delivery
     * @copyright  2026 moodle-delivery contributors
     * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
     */
    class moodle_url {
        /** @var string The URL. */
        private string $url;

        /**
         * Makes a URL on https://moodle.test.
         *
         * @param string $path The path.
         * @param array $params The query.
         */
        public function __construct(string $path, array $params = []) {
            $this->url = 'https://moodle.test' . $path . ($params ? '?' . http_build_query($params) : '');
        }

        /**
         * The URL.
         *
         * @param bool $escaped Ignored.
         * @return string The URL.
         */
        public function out(bool $escaped = true): string {
            return $this->url;
        }
    }

    /**
     * Stand-in for Moodle's context_system.
     *
     * @package    tool_delivery
     * @copyright  2026 moodle-delivery contributors
     * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
     */
    class context_system {
        /**
         * The system context.
         *
         * @return self The context.
         */
        public static function instance(): self {
            return new self();
        }
    }

    /**
     * Stand-in for Moodle's core_user.
     *
     * @package    tool_delivery
     * @copyright  2026 moodle-delivery contributors
     * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
     */
    class core_user {
        /**
         * The no-reply user.
         *
         * @return stdClass The user (id -10).
         */
        public static function get_noreply_user(): stdClass {
            return (object) ['id' => -10, 'username' => 'noreply'];
        }
    }

    /**
     * Moodle's get_users_by_capability: the users a test puts in $GLOBALS['tool_delivery_test_capable'].
     *
     * @param context_system $context The context.
     * @param string $capability The capability.
     * @return array Id => user.
     */
    function get_users_by_capability($context, string $capability): array {
        return $capability === 'tool/delivery:deliver' ? ($GLOBALS['tool_delivery_test_capable'] ?? []) : [];
    }

    /**
     * Moodle's get_admins: the users a test puts in $GLOBALS['tool_delivery_test_admins'].
     *
     * @return array Id => user.
     */
    function get_admins(): array {
        return $GLOBALS['tool_delivery_test_admins'] ?? [];
    }

    /**
     * Moodle's message_send: records the message in $GLOBALS['tool_delivery_test_messages'].
     *
     * @param \core\message\message $message The message.
     * @return int A message id.
     */
    function message_send(\core\message\message $message): int {
        $GLOBALS['tool_delivery_test_messages'][] = $message;
        return count($GLOBALS['tool_delivery_test_messages']);
    }

    /**
     * Moodle's s(): HTML-escaped text.
     *
     * @param mixed $text The text.
     * @return string The escaped text.
     */
    function s($text): string {
        return htmlspecialchars((string) $text, ENT_QUOTES, 'UTF-8');
    }

    /**
     * Stand-in for the few methods of Moodle's $DB the report store uses, over rows in memory.
     *
     * @package    tool_delivery
     * @copyright  2026 moodle-delivery contributors
     * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
     */
    class tool_delivery_test_database {
        /** @var array Table => id => row. */
        public array $tables = [];

        /**
         * Whether a row matches.
         *
         * @param string $table The table.
         * @param array $conditions Field => value.
         * @return bool True when one does.
         */
        public function record_exists(string $table, array $conditions): bool {
            return $this->get_record($table, $conditions) !== false;
        }

        /**
         * The first row that matches.
         *
         * @param string $table The table.
         * @param array $conditions Field => value.
         * @param string $fields Ignored.
         * @return stdClass|false The row.
         */
        public function get_record(string $table, array $conditions, string $fields = '*') {
            foreach ($this->tables[$table] ?? [] as $row) {
                if (array_intersect_assoc($conditions, (array) $row) == $conditions) {
                    return clone $row;
                }
            }
            return false;
        }

        /**
         * Adds a row.
         *
         * @param string $table The table.
         * @param stdClass $row The row.
         * @return int Its id.
         */
        public function insert_record(string $table, stdClass $row): int {
            $row = clone $row;
            $row->id = count($this->tables[$table] ?? []) + 1;
            $this->tables[$table][$row->id] = $row;
            return $row->id;
        }

        /**
         * Replaces a row.
         *
         * @param string $table The table.
         * @param stdClass $row The row, with its id.
         */
        public function update_record(string $table, stdClass $row): void {
            $this->tables[$table][$row->id] = clone $row;
        }

        /**
         * Deletes the rows started before a time (the one select the store makes).
         *
         * @param string $table The table.
         * @param string $select The condition.
         * @param array $params before.
         */
        public function delete_records_select(string $table, string $select, array $params): void {
            $this->tables[$table] = array_filter($this->tables[$table] ?? [],
                fn($row) => $row->timestarted >= $params['before']);
        }
    }
}
