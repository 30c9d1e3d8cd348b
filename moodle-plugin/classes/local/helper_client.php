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
 * The delivery helper's API: status, preflight, operations, jobs, history, upstream, reports, schedule.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The delivery helper's API: status, preflight, operations, jobs, history, the upstream watch,
 * delivery reports and the deliver-later schedule (docs/protocol.md).
 *
 * Every request is signed for one Moodle user, who becomes the operation's actor in the helper's
 * audit log. Answers are decoded JSON arrays; errors are {@see helper_exception} with the helper's
 * stable code, or {@see transport_exception} when the helper could not answer. It has no Moodle
 * dependency.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class helper_client {
    /** @var string[] The options sent as JSON booleans. */
    private const BOOLEAN_OPTIONS = ['securityCopy', 'confirmDatabaseRestore'];

    /** @var string[] The list members of a preflight report (an absent one is an empty list). */
    private const PREFLIGHT_LISTS = ['added', 'changed', 'removed', 'lintErrors', 'versionChanges', 'localModifications',
        'untrackedFiles', 'missingFiles', 'inconsistentComponents', 'warnings'];

    /** @var fastcgi_client The transport. */
    private fastcgi_client $transport;

    /** @var request_signer The signer. */
    private request_signer $signer;

    /** @var int The Moodle user id requests are signed for. */
    private int $userid;

    /** @var string The Moodle user's full name. */
    private string $fullname;

    /**
     * Makes a client acting for one Moodle user.
     *
     * @param fastcgi_client $transport The transport to the helper's socket.
     * @param request_signer $signer The signer with the shared key.
     * @param int $userid The Moodle user id.
     * @param string $fullname The user's full name.
     */
    public function __construct(fastcgi_client $transport, request_signer $signer, int $userid, string $fullname) {
        $this->transport = $transport;
        $this->signer = $signer;
        $this->userid = $userid;
        $this->fullname = $fullname;
    }

    /**
     * The site's status: `site` (phase, served copy, copies, lock holder, allowed operations…) and
     * `job` (the helper's running job, when there is one).
     *
     * @return array The decoded status.
     * @throws helper_exception On any error.
     */
    public function status(): array {
        $status = $this->call('GET', '/status', [], '', 200);
        if (!isset($status['site']) || !is_array($status['site'])) {
            throw new transport_exception(transport_exception::PROTOCOL, 'the helper status has no site');
        }
        return $status;
    }

    /**
     * The preflight of production against the backup copy (the pre-delivery code), as Restore
     * production would run it, without changing anything: what the update added, changed and
     * removed, PHP syntax errors, conflict markers, version changes, local modifications, untracked
     * and missing files, inconsistent components, the upgrade forecast, maintenance mode, room for
     * the database snapshot, the PHP version and warnings. See {@see preflight_verdict} for what blocks.
     *
     * The helper lints every PHP file the update brought: allow the transport a long timeout.
     *
     * @return array The decoded report; its list members are always present, `conflictMarkers` is
     *         always a path => line array.
     * @throws helper_exception With `copy_missing` when nothing is secured yet, or on any error.
     */
    public function preflight(): array {
        $report = $this->call('GET', '/preflight', [], '', 200);
        foreach (self::PREFLIGHT_LISTS as $name) {
            if (!isset($report[$name])) {
                $report[$name] = [];
            } else if (!is_array($report[$name]) || !array_is_list($report[$name])) {
                throw new transport_exception(transport_exception::PROTOCOL, "the preflight report's {$name} is not a list");
            }
        }
        $markers = $report['conflictMarkers'] ?? [];
        if (!is_array($markers)) {
            throw new transport_exception(transport_exception::PROTOCOL, "the preflight report's conflictMarkers is not an object");
        }
        $report['conflictMarkers'] = $markers;
        return $report;
    }

    /**
     * Starts an operation as a job.
     *
     * @param string $operation One of {@see helper_rules::OPERATIONS}.
     * @param array $options `securePath`, `updatePath` (strings), `securityCopy` (bool), `comment`
     *        (string), `confirmDatabaseRestore` (bool, rollback: restore the database snapshot even
     *        though users wrote since), `secondFactorCode` (string, the code of the administrator's
     *        authenticator that such a restore needs); empty strings and nulls are left out.
     * @return array `job` (the job id) and `operation`.
     * @throws helper_exception With `lock_held` (and the holder), `bad_path`, `bad_request`… .
     */
    public function start_operation(string $operation, array $options = []): array {
        if (!array_key_exists($operation, helper_rules::OPERATIONS)) {
            throw new helper_exception('bad_request', "unknown operation '{$operation}'");
        }
        $request = ['operation' => $operation];
        foreach ($options as $name => $value) {
            if ($value === null || $value === '') {
                continue;
            }
            if (!in_array($name, helper_rules::OPERATIONS[$operation], true)) {
                throw new helper_exception('bad_request', "'{$operation}' takes no option '{$name}'");
            }
            $request[$name] = in_array($name, self::BOOLEAN_OPTIONS, true) ? (bool) $value : (string) $value;
        }
        $body = json_encode($request, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
        $answer = $this->call('POST', '/operations', [], $body, 202);
        if (!isset($answer['job']) || !is_string($answer['job'])) {
            throw new transport_exception(transport_exception::PROTOCOL, 'the helper did not name the job');
        }
        return $answer;
    }

    /**
     * A job: its state, steps with their fractions, log lines from an offset, result or error.
     *
     * @param string $id The job id.
     * @param int $offset The first log line wanted (the previous answer's `nextOffset`).
     * @return array The decoded job.
     * @throws helper_exception With `not_found` when the helper does not know (or forgot) the job.
     */
    public function job(string $id, int $offset = 0): array {
        if (!self::is_job_id($id)) {
            throw new helper_exception('not_found', 'not a job id');
        }
        $job = $this->call('GET', '/jobs/' . $id, ['offset' => max(0, $offset)], '', 200);
        if (!isset($job['state'])) {
            throw new transport_exception(transport_exception::PROTOCOL, 'the helper job has no state');
        }
        return $job;
    }

    /**
     * A short-lived token for the helper's emergency console, issued to this administrator.
     *
     * The console (`<wwwroot>/delivery-console/#token=…`, served by the helper through the web
     * server) follows the delivery and offers the emergency rollback while Moodle cannot serve pages.
     *
     * @param int $lifetime Seconds the token lives (60 to 14400).
     * @return array `token`, `expiresAt` (ISO 8601) and `path`.
     * @throws helper_exception On any error.
     */
    public function console_token(int $lifetime = 7200): array {
        $body = json_encode(['lifetimeSeconds' => max(60, min(14400, $lifetime))], JSON_THROW_ON_ERROR);
        $answer = $this->call('POST', '/console-tokens', [], $body, 201);
        if (!is_string($answer['token'] ?? null) || !preg_match('/^[0-9a-f]{64}$/', $answer['token'])) {
            throw new transport_exception(transport_exception::PROTOCOL, 'the helper gave no console token');
        }
        return $answer;
    }

    /**
     * The other nodes of the site's web farm, each as its helper answered over SSH (state, served
     * copy, production's revision, last result) or why it could not be asked; none without a farm.
     *
     * Slower than {@see self::status()} (the helper asks every node): asked once per page, never polled.
     *
     * @return array The nodes (`node`, `address`, `phase`, `served`, `revision`, `running`,
     *     `lastOperation`, `lastSucceeded`, `lastFinishedAt`, `problem`).
     * @throws helper_exception On any error.
     */
    public function farm(): array {
        $answer = $this->call('GET', '/farm', [], '', 200);
        return is_array($answer['nodes'] ?? null) ? array_values(array_filter($answer['nodes'], 'is_array')) : [];
    }

    /**
     * The audit log, newest first.
     *
     * @param int $limit How many records (1 to 1000).
     * @param int $offset How many of the newest to skip.
     * @return array The records.
     * @throws helper_exception On any error.
     */
    public function history(int $limit = 50, int $offset = 0): array {
        $limit = max(1, min(1000, $limit));
        $answer = $this->call('GET', '/history', ['limit' => $limit, 'offset' => max(0, $offset)], '', 200);
        return is_array($answer['records'] ?? null) ? $answer['records'] : [];
    }

    /**
     * Looks at the upstream now (the upstream watch): what a delivery would bring, and whether its
     * preflight would block. The helper keeps the answer as `site.upstream` of the status.
     *
     * @return array The UpstreamPreview (`upstream`, `waiting`, `commits`, counts, `versionChanges`, `upgrade`, `blockers`…).
     * @throws helper_exception With `lock_held` while an operation runs, or on any error.
     */
    public function check_upstream(): array {
        $preview = $this->call('POST', '/upstream-checks', [], '{}', 200);
        if (!isset($preview['waiting'])) {
            throw new transport_exception(transport_exception::PROTOCOL, 'the upstream preview has no waiting');
        }
        return $preview;
    }

    /**
     * The report of one delivery, put together by the helper from its audit records.
     *
     * @param string $deliveryid The delivery id (the id of its first operation).
     * @return array The DeliveryReport.
     * @throws helper_exception With `not_found` when no record carries the id, or on any error.
     */
    public function report(string $deliveryid): array {
        if (!self::is_job_id($deliveryid)) {
            throw new helper_exception('not_found', 'not a delivery id');
        }
        $report = $this->call('GET', '/reports/' . $deliveryid, [], '', 200);
        if (!isset($report['deliveryId'])) {
            throw new transport_exception(transport_exception::PROTOCOL, 'the delivery report has no id');
        }
        return $report;
    }

    /**
     * Schedules a Run all of the waiting upstream revision (deliver later). The helper keeps the timer.
     *
     * @param string $at When, ISO 8601 with a zone.
     * @param string $revision The `upstream.id` the administrator saw.
     * @param bool $onlyifpreflightpasses Skip the run when the preflight blocks at that time.
     * @param bool $securitycopy Also refresh the security copy.
     * @param string|null $comment The delivery's comment (null or '' for none).
     * @return array The DeliverySchedule.
     * @throws helper_exception With `schedule_exists`, `schedule_stale`, `bad_request`… .
     */
    public function schedule(
        string $at,
        string $revision,
        bool $onlyifpreflightpasses,
        bool $securitycopy,
        ?string $comment
    ): array {
        $request = [
            'at' => $at,
            'revision' => $revision,
            'onlyIfPreflightPasses' => $onlyifpreflightpasses,
            'securityCopy' => $securitycopy,
        ];
        if ($comment !== null && $comment !== '') {
            $request['comment'] = $comment;
        }
        $body = json_encode($request, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
        return $this->call('PUT', '/schedule', [], $body, 201);
    }

    /**
     * Cancels the scheduled Run all.
     *
     * @return array The DeliverySchedule cancelled.
     * @throws helper_exception With `not_found` when none is set, or on any error.
     */
    public function cancel_schedule(): array {
        return $this->call('DELETE', '/schedule', [], '', 200);
    }

    /**
     * Whether a text can be a job id (letters, digits and dashes, as the helper makes them).
     *
     * @param string $id The text.
     * @return bool True when it can.
     */
    public static function is_job_id(string $id): bool {
        return (bool) preg_match('/^[A-Za-z0-9-]{1,64}$/', $id);
    }

    /**
     * Sends a signed request and decodes its JSON answer.
     *
     * @param string $method `GET`, `POST`, `PUT` or `DELETE`.
     * @param string $route The route.
     * @param array $query Name => decimal value.
     * @param string $body The body.
     * @param int $expected The status of a success.
     * @return array The decoded answer.
     * @throws helper_exception On an error answer or a transport failure.
     */
    protected function call(string $method, string $route, array $query, string $body, int $expected): array {
        $querystring = http_build_query($query, '', '&', PHP_QUERY_RFC3986);
        $params = [
            'GATEWAY_INTERFACE' => 'CGI/1.1',
            'SERVER_PROTOCOL' => 'HTTP/1.1',
            'REQUEST_METHOD' => $method,
            'SCRIPT_NAME' => $route,
            'PATH_INFO' => '',
            'QUERY_STRING' => $querystring,
            'CONTENT_LENGTH' => (string) strlen($body),
            'CONTENT_TYPE' => $body === '' ? '' : 'application/json',
        ];
        $params += $this->signer->parameters($method, $route, $querystring, $body, $this->userid, $this->fullname);
        $response = $this->transport->request($params, $body);
        $decoded = json_decode($response->body, true, 64);
        if (!is_array($decoded)) {
            throw new transport_exception(
                transport_exception::PROTOCOL,
                "the helper answered {$response->status} without a JSON object"
            );
        }
        if ($response->status === $expected) {
            return $decoded;
        }
        $error = is_array($decoded['error'] ?? null) ? $decoded['error'] : [];
        $code = is_string($error['code'] ?? null) ? $error['code'] : 'internal';
        $message = is_string($error['message'] ?? null) ? $error['message'] : "the helper answered {$response->status}";
        unset($error['code'], $error['message']);
        throw new helper_exception($code, $message, $response->status, $error);
    }
}
