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
 * The helper could not be reached, or did not answer in time or in FastCGI.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The helper could not be reached, or did not answer in time or in FastCGI.
 *
 * Codes: `helper_missing` (no socket at the path), `helper_refused` (nobody listens on it),
 * `helper_denied` (the web user may not open it), `helper_timeout` (no whole answer in time),
 * `helper_protocol` (the answer is not FastCGI or not the protocol's JSON).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class transport_exception extends helper_exception {
    /** @var string No socket file at the configured path. */
    public const MISSING = 'helper_missing';

    /** @var string The socket exists but nobody accepts connections on it. */
    public const REFUSED = 'helper_refused';

    /** @var string The web user may not open the socket. */
    public const DENIED = 'helper_denied';

    /** @var string The helper did not send a whole answer in time. */
    public const TIMEOUT = 'helper_timeout';

    /** @var string The answer is not FastCGI, or not the JSON the protocol describes. */
    public const PROTOCOL = 'helper_protocol';

    /**
     * Makes a transport error.
     *
     * @param string $errorcode One of the constants of this class.
     * @param string $message A sentence for the log.
     * @param \Throwable|null $previous The cause.
     */
    public function __construct(string $errorcode, string $message, ?\Throwable $previous = null) {
        parent::__construct($errorcode, $message, 0, [], $previous);
    }

    /**
     * Whether the helper looks down (as opposed to slow or speaking something else).
     *
     * @return bool True for a missing socket, a refused connection or a denied socket.
     */
    public function is_down(): bool {
        return in_array($this->errorcode, [self::MISSING, self::REFUSED, self::DENIED], true);
    }
}
