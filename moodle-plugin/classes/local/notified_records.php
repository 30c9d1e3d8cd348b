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
 * The audit records already notified, kept where a database restore does not take them back.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The ids of the audit records whose notification was sent, in a small file of Moodle's data folder.
 *
 * The history synchronisation brings each record once (its last logged id is in the plugin's
 * configuration), but a rollback that restores the database snapshot takes that configuration back
 * with Moodle's logs, and the records since are logged again on purpose (their events are missing
 * from the restored logs). The messages, though, were already delivered (an email is not taken
 * back), so the ids notified are kept in the data folder, which the snapshot does not hold: a
 * record synced again sends nothing. The newest {@see self::KEPT} ids are kept (far more than a
 * database restore can bring back).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class notified_records {
    /** @var int How many ids are kept. */
    public const KEPT = 2000;

    /** @var string The file. */
    private string $path;

    /** @var string[]|null The ids, oldest first, once read. */
    private ?array $ids = null;

    /**
     * Uses a file.
     *
     * @param string $path The file (created on the first write).
     */
    public function __construct(string $path) {
        $this->path = $path;
    }

    /**
     * The file in Moodle's data folder (`tool_delivery/notified.json`).
     *
     * @return self The list.
     */
    public static function in_dataroot(): self {
        return new self(make_upload_directory('tool_delivery') . '/notified.json');
    }

    /**
     * Whether a record's notification was sent.
     *
     * @param string $id The record's id.
     * @return bool True when it was.
     */
    public function contains(string $id): bool {
        return in_array($id, $this->ids(), true);
    }

    /**
     * Remembers that a record's notification was sent (or that it needed none).
     *
     * @param string $id The record's id.
     */
    public function add(string $id): void {
        $ids = $this->ids();
        $ids[] = $id;
        $this->ids = array_slice($ids, -self::KEPT);
        $temporary = $this->path . '.' . getmypid() . '.tmp';
        if (file_put_contents($temporary, json_encode($this->ids)) === false || !rename($temporary, $this->path)) {
            throw new \moodle_exception('error:notifiedfile', 'tool_delivery', '', $this->path);
        }
    }

    /**
     * The ids, read once.
     *
     * @return string[] The ids.
     */
    private function ids(): array {
        if ($this->ids === null) {
            $text = is_readable($this->path) ? file_get_contents($this->path) : false;
            $ids = $text === false ? null : json_decode($text, true);
            $this->ids = is_array($ids) ? array_values(array_map('strval', $ids)) : [];
        }
        return $this->ids;
    }
}
