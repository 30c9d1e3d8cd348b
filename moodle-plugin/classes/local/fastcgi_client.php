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
 * A minimal FastCGI 1.0 client for one responder request per connection over a unix socket.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * A minimal FastCGI 1.0 client for one responder request per connection over a unix socket.
 *
 * It sends FCGI_BEGIN_REQUEST (role RESPONDER, no FCGI_KEEP_CONN), the FCGI_PARAMS stream, the
 * FCGI_STDIN stream, then reads FCGI_STDOUT and FCGI_STDERR until FCGI_END_REQUEST, and closes.
 * Everything is bounded: the time to connect, the time for the whole exchange, and the size of
 * the answer. It has no Moodle dependency.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class fastcgi_client {
    /** @var int The protocol version. */
    private const VERSION = 1;

    /** @var int Record type FCGI_BEGIN_REQUEST. */
    private const BEGIN_REQUEST = 1;

    /** @var int Record type FCGI_ABORT_REQUEST. */
    private const ABORT_REQUEST = 2;

    /** @var int Record type FCGI_END_REQUEST. */
    private const END_REQUEST = 3;

    /** @var int Record type FCGI_PARAMS. */
    private const PARAMS = 4;

    /** @var int Record type FCGI_STDIN. */
    private const STDIN = 5;

    /** @var int Record type FCGI_STDOUT. */
    private const STDOUT = 6;

    /** @var int Record type FCGI_STDERR. */
    private const STDERR = 7;

    /** @var int Role FCGI_RESPONDER. */
    private const RESPONDER = 1;

    /** @var int The request id used on each connection. */
    private const REQUEST_ID = 1;

    /** @var int The largest content of one record. */
    private const MAX_CONTENT = 65535;

    /** @var array The protocol statuses of FCGI_END_REQUEST, other than FCGI_REQUEST_COMPLETE. */
    private const PROTOCOL_STATUSES = [1 => 'cannot multiplex', 2 => 'overloaded', 3 => 'unknown role'];

    /** @var string The socket path. */
    private string $socketpath;

    /** @var float Seconds allowed to connect. */
    private float $connecttimeout;

    /** @var float Seconds allowed for the whole exchange, connection included. */
    private float $timeout;

    /** @var int The most bytes accepted on FCGI_STDOUT and FCGI_STDERR together. */
    private int $maxresponsebytes;

    /**
     * Makes a client for one socket.
     *
     * @param string $socketpath The unix socket path (absolute).
     * @param float $connecttimeout Seconds allowed to connect.
     * @param float $timeout Seconds allowed for the whole exchange.
     * @param int $maxresponsebytes The most bytes accepted in the answer.
     */
    public function __construct(
        string $socketpath,
        float $connecttimeout = 3.0,
        float $timeout = 20.0,
        int $maxresponsebytes = 8388608
    ) {
        $this->socketpath = $socketpath;
        $this->connecttimeout = $connecttimeout;
        $this->timeout = $timeout;
        $this->maxresponsebytes = $maxresponsebytes;
    }

    /**
     * The socket path this client talks to.
     *
     * @return string The path.
     */
    public function get_socket_path(): string {
        return $this->socketpath;
    }

    /**
     * Sends one request and reads its whole answer.
     *
     * @param array $params The FastCGI parameters, name => value (strings).
     * @param string $body The request body, sent on FCGI_STDIN.
     * @return fastcgi_response The answer.
     * @throws transport_exception When the socket is missing, refused or denied, on a timeout, or on
     *         anything that is not a FastCGI answer.
     */
    public function request(array $params, string $body = ''): fastcgi_response {
        $deadline = microtime(true) + $this->timeout;
        $socket = $this->connect();
        try {
            $this->send($socket, $this->encode_request($params, $body), $deadline);
            return $this->receive($socket, $deadline);
        } finally {
            fclose($socket);
        }
    }

    /**
     * Opens the socket.
     *
     * @return resource The connected stream.
     * @throws transport_exception When it cannot be opened.
     */
    private function connect() {
        $path = $this->socketpath;
        if ($path === '' || $path[0] !== '/' || strlen($path) > 107 || str_contains($path, "\0")) {
            throw new transport_exception(
                transport_exception::MISSING,
                "the helper socket path '{$path}' is not an absolute path of at most 107 bytes"
            );
        }
        clearstatcache(true, $path);
        if (!file_exists($path)) {
            $folder = dirname($path);
            if (is_dir($folder) && !is_executable($folder)) {
                throw new transport_exception(
                    transport_exception::DENIED,
                    "the web server user may not enter {$folder}, where the helper socket is"
                );
            }
            throw new transport_exception(transport_exception::MISSING, "there is no helper socket at {$path}");
        }
        if (filetype($path) !== 'socket') {
            throw new transport_exception(transport_exception::MISSING, "{$path} is not a socket");
        }
        $errno = 0;
        $errstr = '';
        $socket = @stream_socket_client(
            'unix://' . $path,
            $errno,
            $errstr,
            $this->connecttimeout,
            STREAM_CLIENT_CONNECT
        );
        if ($socket === false) {
            $lower = strtolower($errstr);
            if ($errno === 13 || str_contains($lower, 'permission denied')) {
                throw new transport_exception(
                    transport_exception::DENIED,
                    "the web server user may not open the helper socket {$path} ({$errstr})"
                );
            }
            if ($errno === 110 || str_contains($lower, 'timed out')) {
                throw new transport_exception(
                    transport_exception::TIMEOUT,
                    "the helper socket {$path} did not accept the connection in time"
                );
            }
            if ($errno === 2 || str_contains($lower, 'no such file')) {
                throw new transport_exception(transport_exception::MISSING, "there is no helper socket at {$path}");
            }
            throw new transport_exception(
                transport_exception::REFUSED,
                "the helper does not answer on {$path} ({$errstr})"
            );
        }
        stream_set_blocking($socket, true);
        return $socket;
    }

    /**
     * The bytes of a whole request: begin, parameters, body.
     *
     * @param array $params The parameters.
     * @param string $body The body.
     * @return string The records.
     */
    private function encode_request(array $params, string $body): string {
        // Role RESPONDER, flags 0 (the helper closes the connection after each answer).
        $records = self::record(self::BEGIN_REQUEST, pack('nCx5', self::RESPONDER, 0));
        $pairs = '';
        foreach ($params as $name => $value) {
            $pairs .= self::encode_pair((string) $name, (string) $value);
        }
        $records .= self::stream(self::PARAMS, $pairs);
        $records .= self::stream(self::STDIN, $body);
        return $records;
    }

    /**
     * A stream: its content in records of at most 65535 bytes, then an empty record.
     *
     * @param int $type The record type.
     * @param string $content The content.
     * @return string The records.
     */
    private static function stream(int $type, string $content): string {
        $records = '';
        $length = strlen($content);
        for ($start = 0; $start < $length; $start += self::MAX_CONTENT) {
            $records .= self::record($type, substr($content, $start, self::MAX_CONTENT));
        }
        return $records . self::record($type, '');
    }

    /**
     * One record, padded to a multiple of 8 bytes.
     *
     * @param int $type The record type.
     * @param string $content At most 65535 bytes.
     * @return string The record.
     */
    private static function record(int $type, string $content): string {
        $length = strlen($content);
        $padding = (8 - ($length % 8)) % 8;
        return pack('CCnnCx', self::VERSION, $type, self::REQUEST_ID, $length, $padding) . $content
            . str_repeat("\0", $padding);
    }

    /**
     * A name-value pair: each length on one byte below 128, else on four with the high bit set.
     *
     * @param string $name The name.
     * @param string $value The value.
     * @return string The pair.
     */
    private static function encode_pair(string $name, string $value): string {
        return self::encode_length(strlen($name)) . self::encode_length(strlen($value)) . $name . $value;
    }

    /**
     * A length as FastCGI name-value pairs write it.
     *
     * @param int $length The length.
     * @return string One or four bytes.
     */
    private static function encode_length(int $length): string {
        return $length < 128 ? chr($length) : pack('N', $length | 0x80000000);
    }

    /**
     * Writes all the bytes, or as many as the peer takes before it closes.
     *
     * A peer that refuses us (for example `peer_refused`) may answer and close before reading the
     * whole request: writing then fails, and the answer is still read.
     *
     * @param resource $socket The stream.
     * @param string $bytes The bytes.
     * @param float $deadline The time by which the exchange must be over.
     * @throws transport_exception On a timeout.
     */
    private function send($socket, string $bytes, float $deadline): void {
        $length = strlen($bytes);
        $written = 0;
        while ($written < $length) {
            $this->arm_timeout($socket, $deadline);
            $count = @fwrite($socket, substr($bytes, $written, 65536));
            if ($count === false || $count === 0) {
                if (stream_get_meta_data($socket)['timed_out']) {
                    throw new transport_exception(
                        transport_exception::TIMEOUT,
                        'the helper did not take the request in time'
                    );
                }
                return;
            }
            $written += $count;
        }
    }

    /**
     * Reads records until FCGI_END_REQUEST.
     *
     * @param resource $socket The stream.
     * @param float $deadline The time by which the exchange must be over.
     * @return fastcgi_response The answer.
     * @throws transport_exception On a timeout, an early close, or a malformed or too large answer.
     */
    private function receive($socket, float $deadline): fastcgi_response {
        $stdout = '';
        $stderr = '';
        while (true) {
            $header = unpack('Cversion/Ctype/nid/nlength/Cpadding', $this->read_exact($socket, 8, $deadline));
            if ($header['version'] !== self::VERSION) {
                throw new transport_exception(
                    transport_exception::PROTOCOL,
                    'the helper socket does not speak FastCGI'
                );
            }
            $content = $this->read_exact($socket, $header['length'] + $header['padding'], $deadline);
            $content = substr($content, 0, $header['length']);
            if ($header['id'] !== self::REQUEST_ID) {
                // Management records (id 0) and other ids are not ours.
                continue;
            }
            switch ($header['type']) {
                case self::STDOUT:
                    $stdout .= $content;
                    break;
                case self::STDERR:
                    $stderr .= $content;
                    break;
                case self::END_REQUEST:
                    if (strlen($content) < 5) {
                        throw new transport_exception(
                            transport_exception::PROTOCOL,
                            'the helper sent a short FCGI_END_REQUEST'
                        );
                    }
                    $end = unpack('Nappstatus/Cprotocolstatus', $content);
                    if ($end['protocolstatus'] !== 0) {
                        $reason = self::PROTOCOL_STATUSES[$end['protocolstatus']] ?? 'unknown status';
                        throw new transport_exception(
                            transport_exception::PROTOCOL,
                            "the helper refused the FastCGI request ({$reason})"
                        );
                    }
                    return fastcgi_response::parse($stdout, $stderr, $end['appstatus']);
                case self::ABORT_REQUEST:
                    throw new transport_exception(transport_exception::PROTOCOL, 'the helper aborted the request');
                default:
                    // FCGI_UNKNOWN_TYPE and others: nothing for us.
                    break;
            }
            if (strlen($stdout) + strlen($stderr) > $this->maxresponsebytes) {
                throw new transport_exception(
                    transport_exception::PROTOCOL,
                    "the helper's answer is larger than {$this->maxresponsebytes} bytes"
                );
            }
        }
    }

    /**
     * Reads exactly some bytes.
     *
     * @param resource $socket The stream.
     * @param int $length How many bytes.
     * @param float $deadline The time by which the exchange must be over.
     * @return string The bytes.
     * @throws transport_exception On a timeout or an early close.
     */
    private function read_exact($socket, int $length, float $deadline): string {
        $bytes = '';
        while (strlen($bytes) < $length) {
            $this->arm_timeout($socket, $deadline);
            $chunk = @fread($socket, $length - strlen($bytes));
            if ($chunk === false || $chunk === '') {
                if (stream_get_meta_data($socket)['timed_out']) {
                    throw new transport_exception(
                        transport_exception::TIMEOUT,
                        "the helper did not answer within {$this->timeout} seconds"
                    );
                }
                if (feof($socket) || $chunk === false) {
                    throw new transport_exception(
                        transport_exception::PROTOCOL,
                        'the helper closed the connection before the end of its answer'
                    );
                }
                continue;
            }
            $bytes .= $chunk;
        }
        return $bytes;
    }

    /**
     * Sets the stream timeout to what is left before the deadline.
     *
     * @param resource $socket The stream.
     * @param float $deadline The deadline.
     * @throws transport_exception When it has passed.
     */
    private function arm_timeout($socket, float $deadline): void {
        $left = $deadline - microtime(true);
        if ($left <= 0) {
            throw new transport_exception(
                transport_exception::TIMEOUT,
                "the helper did not answer within {$this->timeout} seconds"
            );
        }
        $seconds = (int) floor($left);
        stream_set_timeout($socket, $seconds, (int) (($left - $seconds) * 1000000));
    }
}
