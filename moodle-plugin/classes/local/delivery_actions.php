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
 * The actions the delivery page offers, checked and sent to the helper, with their events.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

use tool_delivery\event\rollback_requested;
use tool_delivery\event\step_started;

/**
 * The actions the delivery page offers, checked and sent to the helper, with their events.
 *
 * Each action takes only its own options; the helper checks them again and decides whether the
 * site's state allows the action. The jobs started in a session are remembered there so that
 * the end of each is logged once (step finished or failed) when the page sees it.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class delivery_actions {
    /**
     * @var string[] The helper's operations this page does not offer: recover is for the server's
     *      administrator after a crash (deliveryctl recover), the console says so.
     */
    private const NOT_OFFERED = ['recover'];

    /**
     * @var string[] Refusals whose string says all there is to say: the helper's own message (in
     *      English, with a hint for deliveryctl) is not shown under it.
     */
    private const SELF_EXPLAINED = ['confirmation_required', 'second_factor_required'];

    /**
     * Whether the page offers an action: one of the helper's operations (helper_rules::OPERATIONS) but
     * those the server's administrator runs.
     *
     * @param string $action The action.
     * @return bool True when offered.
     */
    public static function offers(string $action): bool {
        return array_key_exists($action, helper_rules::OPERATIONS) && !in_array($action, self::NOT_OFFERED, true);
    }

    /**
     * The language string key of an operation's name (`run-all` => `operation:runall`).
     *
     * @param string $operation The operation.
     * @return string The key.
     */
    public static function operation_key(string $operation): string {
        return 'operation:' . str_replace('-', '', $operation);
    }

    /**
     * Starts an action with the helper and logs it.
     *
     * @param helper_client $client The client for the current user.
     * @param string $action One the page offers ({@see self::offers()}).
     * @param array $options Option => value; those the action does not take are dropped.
     * @return string The job id.
     * @throws \invalid_parameter_exception For an action or a path that is not allowed.
     * @throws helper_exception When the helper refuses or cannot be reached.
     */
    public static function start(helper_client $client, string $action, array $options): string {
        if (!self::offers($action)) {
            throw new \invalid_parameter_exception('unknown action');
        }
        $request = [];
        foreach (helper_rules::OPERATIONS[$action] as $name) {
            $value = $options[$name] ?? null;
            if ($value === null || $value === '' || $value === false) {
                continue;
            }
            if (($name === 'securePath' || $name === 'updatePath') && !helper_rules::is_component_path($value)) {
                throw new helper_exception('bad_path', 'not a component path', 0, ['typed' => (string) $value]);
            }
            if ($name === 'comment') {
                $value = \core_text::substr($value, 0, helper_rules::COMMENT_MAX_CHARACTERS);
            }
            $request[$name] = $value;
        }
        $answer = $client->start_operation($action, $request);
        $jobid = $answer['job'];
        if ($action === 'rollback') {
            rollback_requested::create_from_job($jobid, !empty($request['confirmDatabaseRestore']))->trigger();
        } else {
            step_started::create_from_job($action, $jobid, $request['comment'] ?? '')->trigger();
        }
        return $jobid;
    }

    /**
     * Whether a finished job was refused: it failed with a refusal's code before any of its steps
     * succeeded, so nothing was changed.
     *
     * @param array $job The helper's job.
     * @return bool True for a refusal.
     */
    public static function is_refusal(array $job): bool {
        if (
            ($job['state'] ?? 'running') !== 'failed'
                || !in_array((string) ($job['error']['code'] ?? ''), helper_rules::REFUSALS, true)
        ) {
            return false;
        }
        foreach ($job['steps'] ?? [] as $step) {
            if (($step['state'] ?? '') === 'succeeded') {
                return false;
            }
        }
        return true;
    }

    /**
     * The result of a finished job for the page: what happened, in the user's language, and what to
     * do next. A refusal says only why and that nothing was changed.
     *
     * @param array $job The helper's finished job.
     * @param array|null $site The helper's `site` status now, when it answered.
     * @return array succeeded, refused, message, detail, served, next, reload (plain text; '' when absent).
     */
    public static function job_result(array $job, ?array $site): array {
        $reload = get_string('progress:reload', 'tool_delivery');
        $succeeded = ($job['state'] ?? '') === 'succeeded';
        $code = (string) ($job['error']['code'] ?? 'internal');
        // What the helper says, in the user's language: its notices, never its English message.
        $detail = notices::say($job['error']['notices'] ?? null);
        $message = $succeeded ? notices::say($job['result']['notices'] ?? null)
            : self::error_message(new helper_exception($code, (string) ($job['error']['message'] ?? '')));
        if (self::is_refusal($job)) {
            return [
                'succeeded' => false,
                'refused' => true,
                'message' => $message,
                'detail' => in_array($code, self::SELF_EXPLAINED, true) ? '' : $detail,
                'served' => '',
                'next' => get_string('progress:nothingchanged', 'tool_delivery'),
                'reload' => $reload,
            ];
        }
        $phase = (string) ($job['result']['phase'] ?? '');
        $served = (string) ($job['result']['served'] ?? '');
        if ($site !== null) {
            $phase = $phase === '' ? (string) ($site['phase'] ?? '') : $phase;
            $served = $served === '' ? (string) ($site['served'] ?? '') : $served;
        }
        return [
            'succeeded' => $succeeded,
            'refused' => false,
            'message' => $message,
            'detail' => $succeeded ? '' : $detail,
            'served' => $served === '' ? '' : get_string(
                'progress:served',
                'tool_delivery',
                get_string('copy:' . $served, 'tool_delivery')
            ),
            'next' => ($job['operation'] ?? '') === 'rehearse' && $succeeded ? get_string('next:rehearsed', 'tool_delivery')
                : ($phase === '' ? '' : get_string('next:' . str_replace('_', '', $phase), 'tool_delivery')),
            'reload' => $reload,
        ];
    }

    /**
     * Log lines as the page shows them: terminal escape sequences (colours of Moodle's CLI scripts,
     * `ESC[0;30m`) are removed, should the helper pass any on.
     *
     * @param array $lines The helper's lines.
     * @return string[] The lines, plain.
     */
    public static function log_lines(array $lines): array {
        return array_map(fn($line) => preg_replace('/\x1B\[[0-?]*[ -\/]*[@-~]/', '', (string) $line), array_values($lines));
    }

    /**
     * Brings the helper's audit log into Moodle's logs (history_sync): each operation, from Moodle
     * or not, once. Best effort: a helper that does not answer leaves it to the next view or the
     * scheduled task.
     *
     * @param helper_client $client The helper.
     */
    public static function log_history(helper_client $client): void {
        try {
            (new history_sync($client))->run_locked();
        } catch (helper_exception $error) {
            debugging('tool_delivery: the helper history was not logged: ' . $error->getMessage(), DEBUG_DEVELOPER);
        }
    }

    /**
     * A sentence for a person about an error: the string of its code, else the generic one (plain text).
     *
     * @param helper_exception $error The error.
     * @return string The sentence.
     */
    public static function error_message(helper_exception $error): string {
        $manager = get_string_manager();
        $key = $error->get_string_key();
        if ($key === 'error:lockheld' && ($holder = $error->get_holder()) !== null) {
            return get_string('error:lockheldby', 'tool_delivery', (object) [
                'name' => (string) ($holder['name'] ?? '?'),
                'operation' => (string) ($holder['operation'] ?? '?'),
                'since' => self::format_date($holder['since'] ?? null),
            ]);
        }
        if ($key === 'error:badpath' && isset($error->details['typed'])) {
            return get_string('error:badpathtyped', 'tool_delivery', $error->details['typed']);
        }
        if ($key === 'error:stalelock') {
            return get_string($key, 'tool_delivery', client_factory::cli_site_option());
        }
        if ($manager->string_exists($key, 'tool_delivery')) {
            return get_string($key, 'tool_delivery', $error->errorcode);
        }
        return get_string('error:unknown', 'tool_delivery', $error->errorcode);
    }

    /**
     * A size for people in the user's language, in the helper's decimal units ("41.1 MB", "41,1 Mo").
     *
     * @param int|float $bytes The size in bytes.
     * @return string The size.
     */
    public static function format_size(int|float $bytes): string {
        $size = human_units::size($bytes);
        return get_string('size:' . $size['unit'], 'tool_delivery', format_float($size['value'], $size['decimals']));
    }

    /**
     * A duration for people in the user's language, as the helper words them ("2 h 5 min").
     *
     * @param int|float $seconds The duration.
     * @return string The duration.
     */
    public static function format_duration(int|float $seconds): string {
        $duration = human_units::duration($seconds);
        $unit = $duration['unit'];
        unset($duration['unit']);
        return get_string('duration:' . $unit, 'tool_delivery', (object) $duration);
    }

    /**
     * A helper date (ISO 8601) in the user's time zone and language.
     *
     * @param string|null $iso The date.
     * @return string The date for people, or '' when absent.
     */
    public static function format_date(?string $iso): string {
        if ($iso === null || $iso === '') {
            return '';
        }
        $time = strtotime($iso);
        return $time === false ? $iso : userdate($time, get_string('strftimedatetimeshort', 'langconfig'));
    }
}
