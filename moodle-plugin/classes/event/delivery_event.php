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
 * The delivery events' common base: system context, the delivery page, the helper job in `other`.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\event;

/**
 * What the delivery events share: system context, the delivery page, the helper job in `other`.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
abstract class delivery_event extends \core\event\base {
    /** @var string[] The members `other` must hold. */
    protected const REQUIRED_OTHER = ['operation', 'job'];

    /**
     * Sets the basic properties.
     */
    protected function init() {
        $this->data['crud'] = 'u';
        $this->data['edulevel'] = self::LEVEL_OTHER;
        $this->context = \context_system::instance();
    }

    /**
     * The delivery page.
     *
     * @return \moodle_url The URL.
     */
    public function get_url() {
        return new \moodle_url('/admin/tool/delivery/index.php');
    }

    /**
     * Checks the other data.
     *
     * @throws \coding_exception When a member is missing.
     */
    protected function validate_data() {
        parent::validate_data();
        foreach (static::REQUIRED_OTHER as $name) {
            if (!isset($this->other[$name])) {
                throw new \coding_exception("The '$name' value must be set in other.");
            }
        }
    }

    /**
     * The event's data for one record of the helper's audit log: the Moodle user who started the
     * operation when it came from Moodle (else none: deliveryctl or the emergency console), and
     * what the record says in `other`.
     *
     * @param array $record The helper's audit record.
     * @return array The data for create().
     */
    protected static function from_record(array $record): array {
        $actor = is_array($record['actor'] ?? null) ? $record['actor'] : [];
        $userid = isset($actor['moodleUserId']) ? (int) $actor['moodleUserId'] : 0;
        return [
            'userid' => $userid,
            'other' => [
                'operation' => (string) ($record['operation'] ?? ''),
                'job' => (string) ($record['id'] ?? ''),
                'result' => (string) ($record['result'] ?? ''),
                'actor' => (string) ($actor['name'] ?? ''),
                'source' => (string) ($actor['source'] ?? ''),
                'started' => (string) ($record['time'] ?? ''),
                'phase' => (string) ($record['phaseAfter'] ?? ''),
                'errorcode' => (string) ($record['errorCode'] ?? ''),
            ],
        ];
    }

    /**
     * No other member names a Moodle record.
     *
     * @return bool False.
     */
    public static function get_other_mapping() {
        return false;
    }
}
