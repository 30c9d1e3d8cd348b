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
 * Which notification an audit record of the helper calls for, and its words.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * Which notification (`deliveryevent`) an audit record calls for, and its words: a delivery
 * started, succeeded, failed, was cancelled or rolled back, its health check failed, a scheduled
 * Run all was skipped, a schedule was set or cancelled. One message per record: an operation that
 * opens a delivery (a secure from idle, a Run all) writes a `started` record of its own when it is
 * allowed, and its own record when it ends.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class record_notifications {
    /** @var string[] The kinds of notification, each with its subject `message:subject:<kind>`. */
    public const KINDS = ['started', 'succeeded', 'failed', 'cancelled', 'rolledback', 'healthcheckfailed', 'scheduleskipped',
        'scheduleset', 'schedulecancelled', 'rehearsalpassed', 'rehearsalfailed'];

    /**
     * The notification a record calls for.
     *
     * @param array $record The helper's audit record.
     * @return string|null One of {@see self::KINDS}, or null for none (a refusal changed nothing).
     */
    public static function kind(array $record): ?string {
        $operation = (string) ($record['operation'] ?? '');
        $result = (string) ($record['result'] ?? '');
        $error = (string) ($record['errorCode'] ?? '');
        if ($result === 'scheduled') {
            return 'scheduleset';
        } else if ($result === 'unscheduled') {
            return 'schedulecancelled';
        } else if ($error === 'schedule_skipped') {
            return 'scheduleskipped';
        } else if ($error === 'health_check_failed') {
            return 'healthcheckfailed';
        } else if ($operation === 'rehearse') {
            // A rehearsal changes nothing of the site: what it found of the revision is the news. One
            // that could not run (no room, a copy that failed) says nothing of the revision.
            if ($result === 'succeeded') {
                return 'rehearsalpassed';
            }
            return $result === 'failed' ? ($error === 'rehearsal_failed' ? 'rehearsalfailed' : 'failed') : null;
        } else if ($result === 'failed') {
            return 'failed';
        } else if ($result === 'succeeded' && $operation === 'rollback') {
            return 'rolledback';
        } else if ($result === 'succeeded' && $operation === 'cancel') {
            return 'cancelled';
        } else if ($result === 'succeeded' && in_array($operation, ['restore', 'run-all'], true)) {
            return 'succeeded';
        } else if ($result === 'started') {
            return 'started';
        }
        return null;
    }

    /**
     * The message of a record: subject and lines (plain text).
     *
     * @param string $kind Its kind.
     * @param array $record The helper's audit record.
     * @return array subject, lines.
     */
    public static function message(string $kind, array $record): array {
        $actor = is_array($record['actor'] ?? null) ? $record['actor'] : [];
        $schedule = is_array($record['schedule'] ?? null) ? $record['schedule'] : [];
        $revision = $record['revisionAfter']['label'] ?? $schedule['revision']['label'] ?? $record['revisionBefore']['label'] ?? '';
        $operation = (string) ($record['operation'] ?? '');
        $a = (object) [
            'who' => (string) ($actor['name'] ?? '?'),
            'source' => get_string(($actor['source'] ?? '') === 'moodle' ? 'history:moodle' : 'history:cli', 'tool_delivery'),
            'operation' => get_string_manager()->string_exists(delivery_actions::operation_key($operation), 'tool_delivery')
                ? get_string(delivery_actions::operation_key($operation), 'tool_delivery') : $operation,
            'when' => delivery_actions::format_date($record['time'] ?? null),
            'revision' => $revision === '' ? get_string('revision:unknown', 'tool_delivery') : (string) $revision,
            'at' => delivery_actions::format_date($schedule['at'] ?? null),
        ];
        // A schedule's records say when it is for and who set it; the others who started what, when.
        $body = in_array($kind, ['scheduleset', 'schedulecancelled', 'scheduleskipped'], true)
            ? 'message:body:' . $kind : 'message:body';
        $lines = [get_string($body, 'tool_delivery', $a)];
        $said = notices::say($record['notices'] ?? null);
        if ($said !== '') {
            $lines[] = $said;
        }
        $comment = trim((string) ($record['comment'] ?? $schedule['comment'] ?? ''));
        if ($comment !== '') {
            $lines[] = get_string('message:comment', 'tool_delivery', $comment);
        }
        return ['subject' => get_string('message:subject:' . $kind, 'tool_delivery', $a), 'lines' => $lines];
    }

    /**
     * Sends the notification of a record, linking to its delivery's report (or the delivery screen).
     *
     * @param string $kind Its kind.
     * @param array $record The helper's audit record.
     * @return int How many messages were sent.
     */
    public static function send(string $kind, array $record): int {
        $message = self::message($kind, $record);
        $deliveryid = (string) ($record['deliveryId'] ?? '');
        $url = $deliveryid === '' ? new \moodle_url('/admin/tool/delivery/index.php')
            : new \moodle_url('/admin/tool/delivery/report.php', ['id' => $deliveryid]);
        $urlname = get_string($deliveryid === '' ? 'pluginname' : 'report:title', 'tool_delivery');
        return notifier::send('deliveryevent', $message['subject'], $message['lines'], $url, $urlname);
    }
}
