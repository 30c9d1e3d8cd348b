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
 * An error answered by the delivery helper, or met on the way to it.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * An error answered by the delivery helper, or met on the way to it.
 *
 * The error code is the helper's stable code (`lock_held`, `bad_signature`, `wrong_state`… see
 * docs/protocol.md) or one of the plugin's own codes for what happened before the helper could
 * answer (see {@see transport_exception} and the `key_*` codes of {@see request_signer}). The
 * message is for the log only: it is never parsed, and the screen shows the language string of the
 * code ({@see self::get_string_key()}).
 *
 * This class has no Moodle dependency, so that it can be used and tested outside Moodle.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class helper_exception extends \RuntimeException {
    /** @var string The stable error code, such as `lock_held`. */
    public readonly string $errorcode;

    /** @var int The HTTP status the helper answered, or 0 when it did not answer. */
    public readonly int $status;

    /** @var array The other members of the helper's error object (for example `holder` with `lock_held`). */
    public readonly array $details;

    /**
     * Makes an error.
     *
     * @param string $errorcode The stable error code.
     * @param string $message A sentence for the log (never parsed).
     * @param int $status The HTTP status, 0 when the helper did not answer.
     * @param array $details Further members of the helper's error object.
     * @param \Throwable|null $previous The cause.
     */
    public function __construct(
        string $errorcode,
        string $message,
        int $status = 0,
        array $details = [],
        ?\Throwable $previous = null
    ) {
        parent::__construct($message, 0, $previous);
        $this->errorcode = $errorcode;
        $this->status = $status;
        $this->details = $details;
    }

    /**
     * The language string key for this error in `tool_delivery`: `error:` and the code without underscores.
     *
     * @return string Such as `error:lockheld`.
     */
    public function get_string_key(): string {
        return 'error:' . preg_replace('/[^a-z0-9]/', '', strtolower($this->errorcode));
    }

    /**
     * The lock holder the helper sent with a `lock_held` refusal.
     *
     * @return array|null `name`, `moodleUserId`, `operation`, `job`, `since`, or null.
     */
    public function get_holder(): ?array {
        $holder = $this->details['holder'] ?? null;
        return is_array($holder) ? $holder : null;
    }
}
