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
 * The helper's rules, as the plugin applies them before it asks.
 *
 * Generated from the helper's library (DeliveryCore) by
 * Tests/DeliveryCoreTests/PluginRulesTests.swift: do not edit by hand; after a change of the
 * rules there, run `UPDATE_PLUGIN_RULES=1 swift test --filter PluginRules`.
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

namespace tool_delivery\local;

/**
 * The helper's rules, as the plugin applies them before it asks (generated, see above).
 *
 * @package    tool_delivery
 * @copyright  2026 moodle-delivery contributors
 * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
final class helper_rules {
    /** @var array Operation => the options it takes (Operation.requestMembers). */
    public const OPERATIONS = [
        'secure' => ['securityCopy', 'securePath'],
        'switch' => [],
        'update' => ['updatePath', 'comment'],
        'restore' => ['confirmFailedRehearsal'],
        'run-all' => ['securityCopy', 'securePath', 'updatePath', 'comment', 'confirmFailedRehearsal'],
        'cancel' => [],
        'rollback' => ['confirmDatabaseRestore', 'secondFactorCode'],
        'recover' => [],
        'rehearse' => [],
    ];

    /** @var string[] The four steps of a delivery, in order (Operation.steps). */
    public const STEPS = ['secure', 'switch', 'update', 'restore'];

    /** @var int The longest comment the helper takes, in characters (OperationRequest.commentLimit). */
    public const COMMENT_MAX_CHARACTERS = 2000;

    /**
     * @var string[] The error codes of a refusal: the operation stopped before it changed anything
     *      (DeliveryError.Code.isRefusal; docs/protocol.md, *Errors*).
     */
    public const REFUSALS = [
        'wrong_state',
        'lock_held',
        'stale_lock',
        'bad_path',
        'copy_missing',
        'not_moodle',
        'bad_request',
        'preflight_failed',
        'confirmation_required',
        'not_updatable',
        'second_factor_required',
        'second_factor_refused',
        'second_factor_locked',
        'rate_limited',
        'no_room',
        'schedule_exists',
        'schedule_stale',
        'schedule_skipped',
        'not_found',
        'cannot_rehearse',
        'blocked_by_rehearsal',
        'farm_unreachable',
    ];

    /** @var string[] Every error code of the helper (DeliveryError.Code; docs/protocol.md, *Errors*). */
    public const ERROR_CODES = [
        'wrong_state',
        'lock_held',
        'stale_lock',
        'bad_path',
        'copy_missing',
        'vcs_failed',
        'upgrade_failed',
        'configuration',
        'not_moodle',
        'privileges',
        'io',
        'preempted',
        'bad_request',
        'preflight_failed',
        'snapshot_failed',
        'database_restore_failed',
        'health_check_failed',
        'confirmation_required',
        'not_updatable',
        'second_factor_required',
        'second_factor_refused',
        'second_factor_locked',
        'rate_limited',
        'web_server_stale',
        'no_room',
        'schedule_exists',
        'schedule_stale',
        'schedule_skipped',
        'not_found',
        'rehearsal_failed',
        'cannot_rehearse',
        'blocked_by_rehearsal',
        'farm_unreachable',
        'farm_step_failed',
    ];

    /**
     * @var array Notice code => the keys of the values its sentence names (NoticeCode; the
     *      plugin's string `notice:<code>` names the same keys; docs/protocol.md, *Notices*).
     */
    public const NOTICES = [
        'copy_identical' => ['tree', 'checkSeconds'],
        'copy_refreshed' => ['path', 'tree', 'files', 'copied', 'copySeconds'],
        'copy_made' => ['tree', 'files', 'sizeBytes', 'copied', 'shared', 'removed', 'copySeconds'],
        'copy_failed' => ['tree'],
        'next_switch' => [],
        'refused_mixed_revisions' => ['tree', 'held', 'revision', 'path'],
        'refused_partial_copy' => ['tree'],
        'copy_served' => ['tree'],
        'switched' => [],
        'production_updated' => ['before', 'after'],
        'production_unchanged' => ['revision'],
        'production_path_updated' => ['path', 'before', 'after'],
        'production_path_unchanged' => ['path', 'revision'],
        'next_restore' => [],
        'refused_production_changed' => ['secured', 'revision'],
        'refused_local_modifications' => ['operation', 'files'],
        'refused_update_local_modifications' => ['files'],
        'refused_upstream' => ['operation'],
        'still_serves' => ['tree'],
        'restored' => ['revision'],
        'upgrade_not_needed' => [],
        'upgrade_ran_in_maintenance' => [],
        'upgrade_ran_open' => [],
        'caches_purged' => [],
        'caches_kept' => [],
        'caches_kept_code' => ['files'],
        'caches_purged_parts' => ['parts'],
        'caches_purged_by_upgrade' => [],
        'maintenance_window' => ['windowSeconds'],
        'maintenance_window_parts' => ['windowSeconds', 'upgradeSeconds', 'snapshotSeconds', 'otherSeconds'],
        'health_passed' => [],
        'delivery_complete' => [],
        'refused_not_moodle' => [],
        'refused_preflight' => ['tree'],
        'refused_snapshot' => ['tree'],
        'moodle_upgrade_failed' => [],
        'health_failed' => [],
        'rolled_back_automatically' => [],
        'automatic_rollback_failed' => [],
        'maintenance_stays_code' => [],
        'maintenance_stays_database' => [],
        'no_automatic_rollback' => [],
        'farm_serves_before_upgrade' => ['revision'],
        'farm_production_readied' => ['revision'],
        'farm_upgrade_in_lock_step' => ['revision'],
        'farm_caches_purged_by_coordinator' => [],
        'farm_brings_back' => [],
        'farm_done' => ['nodes'],
        'health_code_matches' => [],
        'health_upgrade_pending' => [],
        'health_upgrade_check_failed' => [],
        'health_checks_clean' => [],
        'health_checks_clean_known' => ['known'],
        'health_checks_new' => ['references'],
        'health_page_answered' => ['url'],
        'health_no_curl' => [],
        'health_curl_failed' => [],
        'health_page_silent' => ['url', 'output'],
        'health_page_status' => ['url', 'status', 'output'],
        'health_page_not_login' => ['url'],
        'health_tls_untrusted' => ['url', 'output'],
        'health_tls_pin' => ['url', 'output'],
        'health_tls_ca_file' => ['url', 'file', 'output'],
        'health_tls_handshake' => ['url', 'output'],
        'cancelled' => ['revision'],
        'cancelled_production_kept' => [],
        'refused_cancel_database' => [],
        'refused_cancel_no_match' => ['tree'],
        'cancel_stopped' => ['revision', 'tree'],
        'rollback_serves' => ['tree', 'revision'],
        'rollback_maintenance_off' => [],
        'rollback_mismatch_maintenance_stays' => [],
        'rollback_mismatch_maintenance_on' => [],
        'rollback_mismatch_maintenance_failed' => [],
        'rollback_then' => [],
        'rollback_database_restored' => ['tree', 'revision', 'snapshotAt', 'restoreSeconds'],
        'rollback_database_kept' => ['database'],
        'rollback_database_waits' => ['tree', 'revision'],
        'rollback_database_restore_failed' => ['tree'],
        'rollback_still_mismatch' => ['tree'],
        'rollback_impossible' => [],
        'rollback_needs_confirmation' => [],
        'rollback_how_to_confirm' => [],
        'rollback_web_server_lags' => [],
        'preempted_by_rollback' => ['preemptedAt', 'tree'],
        'plan_unavailable' => [],
        'plan_code_matches' => ['tree'],
        'plan_code_no_upgrade' => ['tree'],
        'plan_code_mismatch' => ['trees'],
        'plan_no_snapshot' => ['tree'],
        'plan_database_in_window' => ['tree', 'ageSeconds', 'sizeBytes'],
        'plan_database_confirm' => ['tree', 'ageSeconds', 'sizeBytes'],
        'plan_database_confirm_kept' => ['tree', 'ageSeconds'],
        'recovered' => ['operation', 'stepOperation', 'actor', 'startedAt', 'tree', 'phase'],
        'orphan_upgrade_ended' => ['waitSeconds'],
        'orphan_upgrade_stopped' => ['waitSeconds'],
        'maintenance_is_on' => [],
        'maintenance_is_off' => [],
        'run_rollback_again' => [],
        'refused_nothing_to_recover' => [],
        'refused_rate_limited' => ['count', 'kind', 'limit', 'nextAt'],
        'refused_no_room' => ['folder', 'availableBytes', 'neededBytes', 'reservedBytes'],
        'second_factor_needed' => [],
        'second_factor_none_enrolled' => ['user', 'name'],
        'second_factor_not_enrolled' => ['user', 'name'],
        'second_factor_malformed' => [],
        'second_factor_wrong' => [],
        'second_factor_expired' => ['ageSeconds', 'lifeSeconds'],
        'second_factor_replayed' => [],
        'second_factor_codes_left' => ['count'],
        'second_factor_now_locked' => ['untilAt', 'limit'],
        'second_factor_locked_until' => ['limit', 'untilAt'],
        'web_server_lagging' => ['tree'],
        'web_server_switch_undone' => ['tree'],
        'component_unversioned_change' => ['file', 'versionFile'],
        'component_version_lost' => ['file'],
        'component_needs_newer_core' => ['required', 'core'],
        'warning_next_update_fails' => [],
        'warning_untracked' => ['count', 'first'],
        'warning_upgrade_unknown' => [],
        'warning_snapshot_unprepared' => [],
        'refused_serving_copy' => ['operation', 'servedTree'],
        'refused_delivery_in_progress' => ['operation', 'phase'],
        'refused_secure_first' => ['operation'],
        'refused_already_delivering' => ['operation', 'phase'],
        'refused_production_served' => ['operation'],
        'refused_nothing_to_restore' => ['operation', 'phase'],
        'refused_nothing_to_cancel' => ['operation'],
        'refused_state' => ['operation', 'phase'],
        'delivery_started' => ['operation'],
        'upstream_waiting' => ['revision', 'commitCount', 'fileCount', 'versionCount'],
        'upstream_current' => ['revision'],
        'schedule_set' => ['revision', 'scheduledAt'],
        'schedule_cancelled' => ['revision', 'scheduledAt'],
        'scheduled_run_started' => ['revision', 'scheduledAt'],
        'schedule_skipped_busy' => ['scheduledAt', 'phase'],
        'schedule_skipped_preflight' => ['scheduledAt', 'revision', 'count'],
        'schedule_skipped_late' => ['scheduledAt', 'lateSeconds'],
        'schedule_skipped_revision' => ['scheduledAt', 'revision'],
        'newer_upstream_left' => ['revision'],
        'rehearsal_passed' => [
            'revision', 'upgradeSeconds', 'copyBytes', 'copySeconds', 'componentCount', 'tableCount', 'columnCount',
        ],
        'rehearsal_no_upgrade' => ['revision', 'copyBytes'],
        'rehearsal_upgrade_failed' => ['revision', 'component', 'message'],
        'rehearsal_still_pending' => ['revision'],
        'rehearsal_new_checks' => ['revision', 'references'],
        'rehearsal_nothing' => ['revision'],
        'rehearsal_not_needed' => ['revision'],
        'refused_rehearsal_failed' => ['operation', 'revision'],
        'rehearsal_overridden' => ['revision', 'actor'],
        'update_to_rehearsed' => ['revision', 'rehearsedAt'],
        'upgrade_predicted' => ['upgradeSeconds', 'predictedSeconds'],
    ];

    /** @var int The longest component path, in bytes (ComponentPath.maxBytes). */
    public const PATH_MAX_BYTES = 255;

    /** @var string One part of a component path, as a PCRE (ComponentPath). */
    public const PATH_PART_REGEX = '/^(?!-)(?!(?:\.|\.\.|\.git|\.svn|CVS)$)[\-.0-9A-Z_a-z]+$/D';

    /** @var string The pattern of a path field in a form: a hint, the checks above decide. */
    public const PATH_HTML_PATTERN = '[\-.0-9A-Z_a-z]+(/[\-.0-9A-Z_a-z]+)*/*';

    /**
     * Whether a text is a component path the helper takes (`mod`, `local/foo`): the same rule
     * as ComponentPath, which the helper applies again.
     *
     * @param string $path The text, as typed (trailing slashes are dropped).
     * @return bool True when the helper would take it.
     */
    public static function is_component_path(string $path): bool {
        $path = strlen($path) > 1 ? rtrim($path, '/') : $path;
        if ($path === '' || strlen($path) > self::PATH_MAX_BYTES) {
            return false;
        }
        foreach (explode('/', $path) as $part) {
            if (!preg_match(self::PATH_PART_REGEX, $part)) {
                return false;
            }
        }
        return true;
    }
}
