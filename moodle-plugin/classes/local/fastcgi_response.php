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
 * A FastCGI responder's answer: the CGI status and headers, the body and what came on stderr.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * A FastCGI responder's answer: the CGI status and headers, the body and what came on stderr.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class fastcgi_response {
    /**
     * Makes a response.
     *
     * @param int $status The HTTP status from the `Status:` header (200 when absent).
     * @param array $headers The CGI headers, names in lower case => value.
     * @param string $body The bytes after the blank line.
     * @param string $stderr What the responder wrote on FCGI_STDERR.
     * @param int $appstatus The application status of FCGI_END_REQUEST.
     */
    public function __construct(
        /** @var int The HTTP status from the `Status:` header (200 when absent). */
        public readonly int $status,
        /** @var array The CGI headers, names in lower case => value. */
        public readonly array $headers,
        /** @var string The bytes after the blank line. */
        public readonly string $body,
        /** @var string What the responder wrote on FCGI_STDERR. */
        public readonly string $stderr = '',
        /** @var int The application status of FCGI_END_REQUEST. */
        public readonly int $appstatus = 0,
    ) {
    }

    /**
     * Splits a CGI answer (headers, blank line, body) as found on FCGI_STDOUT.
     *
     * @param string $stdout The whole FCGI_STDOUT stream.
     * @param string $stderr The whole FCGI_STDERR stream.
     * @param int $appstatus The application status of FCGI_END_REQUEST.
     * @return self The response.
     * @throws transport_exception With `helper_protocol` when the headers are malformed.
     */
    public static function parse(string $stdout, string $stderr = '', int $appstatus = 0): self {
        $end = strpos($stdout, "\r\n\r\n");
        $separator = 4;
        $lfend = strpos($stdout, "\n\n");
        if ($lfend !== false && ($end === false || $lfend < $end)) {
            $end = $lfend;
            $separator = 2;
        }
        if ($end === false) {
            throw new transport_exception(
                transport_exception::PROTOCOL,
                'the helper answered without CGI headers'
            );
        }
        $headers = [];
        foreach (preg_split('/\r?\n/', substr($stdout, 0, $end)) as $line) {
            $colon = strpos($line, ':');
            if ($colon === false || $colon === 0) {
                throw new transport_exception(
                    transport_exception::PROTOCOL,
                    'the helper answered a malformed CGI header'
                );
            }
            $headers[strtolower(trim(substr($line, 0, $colon)))] = trim(substr($line, $colon + 1));
        }
        $status = 200;
        if (isset($headers['status'])) {
            if (!preg_match('/^([1-5][0-9][0-9])(\s|$)/', $headers['status'], $matches)) {
                throw new transport_exception(
                    transport_exception::PROTOCOL,
                    'the helper answered a malformed Status header'
                );
            }
            $status = (int) $matches[1];
        }
        return new self($status, $headers, (string) substr($stdout, $end + $separator), $stderr, $appstatus);
    }

    /**
     * A header's value.
     *
     * @param string $name The header name, in any case.
     * @return string|null Its value, or null when absent.
     */
    public function header(string $name): ?string {
        return $this->headers[strtolower($name)] ?? null;
    }
}
