#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The sentences the helper says, by code, with their English wording: the one catalogue.
/// `{key}` names a value of the notice (its ending says how it is shown, `NoticeValue`). The Moodle
/// plugin words each code in its own language strings with the same keys (`notice:<code>`, checked
/// by its tests against the generated list in `helper_rules.php`).
public enum NoticeCode: String, Sendable, CaseIterable {
    // Secure.
    case copyIdentical = "copy_identical"
    case copyRefreshed = "copy_refreshed"
    case copyMade = "copy_made"
    case copyFailed = "copy_failed"
    case nextSwitch = "next_switch"
    case refusedMixedRevisions = "refused_mixed_revisions"
    case refusedPartialCopy = "refused_partial_copy"
    case copyServed = "copy_served"
    // Switch and update.
    case switched = "switched"
    case productionUpdated = "production_updated"
    case productionUnchanged = "production_unchanged"
    case productionPathUpdated = "production_path_updated"
    case productionPathUnchanged = "production_path_unchanged"
    case nextRestore = "next_restore"
    case refusedProductionChanged = "refused_production_changed"
    case refusedLocalModifications = "refused_local_modifications"
    case refusedUpdateLocalModifications = "refused_update_local_modifications"
    case refusedUpstream = "refused_upstream"
    case stillServes = "still_serves"
    // Restore.
    case restored = "restored"
    case upgradeNotNeeded = "upgrade_not_needed"
    case upgradeRanInMaintenance = "upgrade_ran_in_maintenance"
    case upgradeRanOpen = "upgrade_ran_open"
    case cachesPurged = "caches_purged"
    case cachesKept = "caches_kept"
    case cachesKeptCode = "caches_kept_code"
    case cachesPurgedParts = "caches_purged_parts"
    case cachesPurgedByUpgrade = "caches_purged_by_upgrade"
    case maintenanceWindow = "maintenance_window"
    case maintenanceWindowParts = "maintenance_window_parts"
    case healthPassed = "health_passed"
    case deliveryComplete = "delivery_complete"
    case refusedNotMoodle = "refused_not_moodle"
    case refusedPreflight = "refused_preflight"
    case refusedSnapshot = "refused_snapshot"
    case upgradeFailed = "moodle_upgrade_failed"
    case healthFailed = "health_failed"
    case rolledBackAutomatically = "rolled_back_automatically"
    case automaticRollbackFailed = "automatic_rollback_failed"
    case maintenanceStaysCode = "maintenance_stays_code"
    case maintenanceStaysDatabase = "maintenance_stays_database"
    case noAutomaticRollback = "no_automatic_rollback"
    case farmServesBeforeUpgrade = "farm_serves_before_upgrade"
    case farmProductionReadied = "farm_production_readied"
    case farmUpgradeInLockStep = "farm_upgrade_in_lock_step"
    case farmCachesPurgedByCoordinator = "farm_caches_purged_by_coordinator"
    case farmBringsBack = "farm_brings_back"
    case farmDone = "farm_done"
    // Health check.
    case healthCodeMatches = "health_code_matches"
    case healthUpgradePending = "health_upgrade_pending"
    case healthUpgradeCheckFailed = "health_upgrade_check_failed"
    case healthChecksClean = "health_checks_clean"
    case healthChecksCleanKnown = "health_checks_clean_known"
    case healthChecksNew = "health_checks_new"
    case healthPageAnswered = "health_page_answered"
    case healthNoCurl = "health_no_curl"
    case healthCurlFailed = "health_curl_failed"
    case healthPageSilent = "health_page_silent"
    case healthPageStatus = "health_page_status"
    case healthPageNotLogin = "health_page_not_login"
    case healthTLSUntrusted = "health_tls_untrusted"
    case healthTLSPin = "health_tls_pin"
    case healthTLSCAFile = "health_tls_ca_file"
    case healthTLSHandshake = "health_tls_handshake"
    // Cancel.
    case cancelled = "cancelled"
    case cancelledProductionKept = "cancelled_production_kept"
    case refusedCancelDatabase = "refused_cancel_database"
    case refusedCancelNoMatch = "refused_cancel_no_match"
    case cancelStopped = "cancel_stopped"
    // Rollback.
    case rollbackServes = "rollback_serves"
    case rollbackMaintenanceOff = "rollback_maintenance_off"
    case rollbackMismatchMaintenanceStays = "rollback_mismatch_maintenance_stays"
    case rollbackMismatchMaintenanceOn = "rollback_mismatch_maintenance_on"
    case rollbackMismatchMaintenanceFailed = "rollback_mismatch_maintenance_failed"
    case rollbackThen = "rollback_then"
    case rollbackDatabaseRestored = "rollback_database_restored"
    case rollbackDatabaseKept = "rollback_database_kept"
    case rollbackDatabaseWaits = "rollback_database_waits"
    case rollbackDatabaseRestoreFailed = "rollback_database_restore_failed"
    case rollbackStillMismatch = "rollback_still_mismatch"
    case rollbackImpossible = "rollback_impossible"
    case rollbackNeedsConfirmation = "rollback_needs_confirmation"
    case rollbackHowToConfirm = "rollback_how_to_confirm"
    case rollbackWebServerLags = "rollback_web_server_lags"
    case preempted = "preempted_by_rollback"
    // The rollback plan.
    case planUnavailable = "plan_unavailable"
    case planCodeMatches = "plan_code_matches"
    case planCodeNoUpgrade = "plan_code_no_upgrade"
    case planCodeMismatch = "plan_code_mismatch"
    case planNoSnapshot = "plan_no_snapshot"
    case planDatabaseInWindow = "plan_database_in_window"
    case planDatabaseConfirm = "plan_database_confirm"
    case planDatabaseConfirmKept = "plan_database_confirm_kept"
    // Recover.
    case recovered = "recovered"
    case orphanUpgradeEnded = "orphan_upgrade_ended"
    case orphanUpgradeStopped = "orphan_upgrade_stopped"
    case maintenanceIsOn = "maintenance_is_on"
    case maintenanceIsOff = "maintenance_is_off"
    case runRollbackAgain = "run_rollback_again"
    case refusedNothingToRecover = "refused_nothing_to_recover"
    // Refusals of the site's limits.
    case refusedRateLimited = "refused_rate_limited"
    case refusedNoRoom = "refused_no_room"
    case secondFactorNeeded = "second_factor_needed"
    case secondFactorNoneEnrolled = "second_factor_none_enrolled"
    case secondFactorNotEnrolled = "second_factor_not_enrolled"
    case secondFactorMalformed = "second_factor_malformed"
    case secondFactorWrong = "second_factor_wrong"
    case secondFactorExpired = "second_factor_expired"
    case secondFactorReplayed = "second_factor_replayed"
    case secondFactorCodesLeft = "second_factor_codes_left"
    case secondFactorNowLocked = "second_factor_now_locked"
    case secondFactorLockedUntil = "second_factor_locked_until"
    case webServerLagging = "web_server_lagging"
    case webServerSwitchUndone = "web_server_switch_undone"
    // The preflight.
    case componentUnversionedChange = "component_unversioned_change"
    case componentVersionLost = "component_version_lost"
    case componentNeedsNewerCore = "component_needs_newer_core"
    case warningNextUpdateFails = "warning_next_update_fails"
    case warningUntracked = "warning_untracked"
    case warningUpgradeUnknown = "warning_upgrade_unknown"
    case warningSnapshotUnprepared = "warning_snapshot_unprepared"
    // What the state allows.
    case refusedServingCopy = "refused_serving_copy"
    case refusedDeliveryInProgress = "refused_delivery_in_progress"
    case refusedSecureFirst = "refused_secure_first"
    case refusedAlreadyDelivering = "refused_already_delivering"
    case refusedProductionServed = "refused_production_served"
    case refusedNothingToRestore = "refused_nothing_to_restore"
    case refusedNothingToCancel = "refused_nothing_to_cancel"
    case refusedState = "refused_state"
    // Upstream watch and deliver later.
    case deliveryStarted = "delivery_started"
    case upstreamWaiting = "upstream_waiting"
    case upstreamCurrent = "upstream_current"
    case scheduleSet = "schedule_set"
    case scheduleCancelled = "schedule_cancelled"
    case scheduledRunStarted = "scheduled_run_started"
    case scheduleSkippedBusy = "schedule_skipped_busy"
    case scheduleSkippedPreflight = "schedule_skipped_preflight"
    case scheduleSkippedLate = "schedule_skipped_late"
    case scheduleSkippedRevision = "schedule_skipped_revision"
    case newerUpstreamLeft = "newer_upstream_left"
    // Rehearsal.
    case rehearsalPassed = "rehearsal_passed"
    case rehearsalNoUpgrade = "rehearsal_no_upgrade"
    case rehearsalUpgradeFailed = "rehearsal_upgrade_failed"
    case rehearsalStillPending = "rehearsal_still_pending"
    case rehearsalNewChecks = "rehearsal_new_checks"
    case rehearsalNothing = "rehearsal_nothing"
    case rehearsalNotNeeded = "rehearsal_not_needed"
    case refusedRehearsalFailed = "refused_rehearsal_failed"
    case rehearsalOverridden = "rehearsal_overridden"
    case updateToRehearsed = "update_to_rehearsed"
    case upgradePredicted = "upgrade_predicted"

    /// The English sentence, `{key}` where a value goes.
    public var template: String {
        switch self {
        case .copyIdentical: "The {tree} copy was already identical to production (checked in {checkSeconds})."
        case .copyRefreshed:
            "Refreshed '{path}' of the {tree} copy ({files} files, {copied} copied) in {copySeconds}."
        case .copyMade:
            "The {tree} copy holds {files} files ({sizeBytes}; {copied} copied, {shared} shared, {removed} removed) in {copySeconds}."
        case .copyFailed: "The {tree} copy failed; the previous copy is unchanged."
        case .nextSwitch: "Next: switch to delivery."
        case .refusedMixedRevisions:
            "Secure refused: the {tree} copy holds {held} and production is at {revision}; refreshing only '{path}' would mix two revisions in one copy. Secure the whole site (without a path)."
        case .refusedPartialCopy:
            "Secure refused: the {tree} copy is not complete, and a component path refreshes only part of a complete copy. Secure the whole site first."
        case .copyServed: "The {tree} copy is being served; it is never written to."
        case .switched: "The site is in delivery mode: the backup copy serves, production can be updated."
        case .productionUpdated: "Production updated: {before} → {after}."
        case .productionUnchanged: "Production updated: revision unchanged ({revision})."
        case .productionPathUpdated: "Production updated at '{path}': {before} → {after}."
        case .productionPathUnchanged: "Production updated at '{path}': revision unchanged ({revision})."
        case .nextRestore: "Next: restore production."
        case .refusedLocalModifications:
            "{operation} refused: production has local modifications ({files}), so the update would refuse; commit or discard them first. Nothing was changed."
        case .refusedProductionChanged:
            "Switch refused: production changed since it was secured ({secured} → {revision}); secure again."
        case .refusedUpdateLocalModifications:
            "Update refused: production has local modifications ({files}); commit or discard them first."
        case .refusedUpstream:
            "{operation} refused: production cannot be updated from its upstream, so the update would fail. Nothing was changed."
        case .stillServes: "The site still serves the {tree} copy."
        case .restored: "Production is restored and serves {revision}."
        case .upgradeNotNeeded: "No upgrade was needed."
        case .upgradeRanInMaintenance: "Moodle's upgrade ran in maintenance mode."
        case .upgradeRanOpen: "Moodle's upgrade ran without maintenance mode."
        case .cachesPurged: "Caches purged."
        case .cachesKept: "Caches kept (the code did not change)."
        case .cachesKeptCode: "Caches kept: none of the changed files ({files}) feeds Moodle's caches."
        case .cachesPurgedParts: "Caches purged where the change needs it ({parts}); the others kept."
        case .cachesPurgedByUpgrade: "Caches purged by Moodle's upgrade."
        case .maintenanceWindow: "Maintenance window: {windowSeconds}."
        case .maintenanceWindowParts:
            "Maintenance window: {windowSeconds} (Moodle's upgrade {upgradeSeconds}, database snapshot {snapshotSeconds}, the rest {otherSeconds})."
        case .healthPassed: "The health check passed."
        case .deliveryComplete: "The delivery is complete."
        case .refusedNotMoodle:
            "Restore refused: the production tree has no version.php; it is not a complete Moodle tree."
        case .refusedPreflight:
            "Restore refused: the preflight found what would break the site. The site still serves the {tree} copy; fix production (update again) or cancel."
        case .refusedSnapshot:
            "Restore refused: the database snapshot failed, so Moodle's upgrade did not run. The site still serves the {tree} copy."
        case .upgradeFailed: "Moodle's upgrade failed."
        case .healthFailed: "The health check failed:"
        case .rolledBackAutomatically: "Rolled back automatically:"
        case .automaticRollbackFailed: "The automatic rollback failed too:"
        case .maintenanceStaysCode:
            "Maintenance mode stays on: restore again once production is fixed, or roll back (the older code)."
        case .maintenanceStaysDatabase:
            "Maintenance mode stays on: restore again once production is fixed, or roll back (the older code and the database snapshot)."
        case .noAutomaticRollback:
            "No automatic rollback: Moodle's upgrade changed the database and there is no snapshot, so the older code would not run; the site stays on production in maintenance mode."
        case .farmServesBeforeUpgrade:
            "Production ({revision}) serves on this node under the farm's maintenance mode: Moodle's upgrade runs once, on the farm's coordinator."
        case .farmProductionReadied:
            "Production ({revision}) is ready on this node: preflight passed, OPcache warmed; the copy serves until every node of the farm serves production at once."
        case .farmUpgradeInLockStep:
            "Production ({revision}) brings a Moodle upgrade: nothing readied on this node (preflight passed); the farm's lock-step restore runs the upgrade once, on the coordinator."
        case .farmCachesPurgedByCoordinator:
            "Moodle's caches, shared by the farm's nodes, are purged once, by the farm's coordinator."
        case .farmDone: "Done on every node of the web farm: {nodes}."
        case .farmBringsBack:
            "The farm's coordinator brings every node back to the code before the delivery (and the database to its snapshot when the upgrade ran)."
        case .healthCodeMatches: "upgrade.php --is-pending: the code matches the database."
        case .healthUpgradePending: "Moodle still reports a pending upgrade or a code older than the database."
        case .healthUpgradeCheckFailed: "Moodle's upgrade check did not run."
        case .healthChecksClean: "checks.php: no new critical result."
        case .healthChecksCleanKnown: "checks.php: no new critical result ({known} the site already had)."
        case .healthChecksNew: "Moodle's checks report new critical results: {references}."
        case .healthPageAnswered: "{url}: HTTP 200, Moodle's login form."
        case .healthNoCurl: "curl is not installed (Debian package curl): the site's page was not checked."
        case .healthCurlFailed: "curl could not be started: the site's page was not checked."
        case .healthPageSilent: "{url} did not answer (\"{output}\")."
        case .healthPageStatus: "{url} answered HTTP {status}, not the login page (\"{output}\")."
        case .healthPageNotLogin: "{url} answered HTTP 200 but not with Moodle's login form."
        case .healthTLSUntrusted:
            "{url}: the TLS certificate is not trusted ({output}); set healthCheck.caFile to the CA that signed it, or healthCheck.pinnedPublicKey to its key."
        case .healthTLSPin:
            "{url}: the server's public key is not the one pinned in healthCheck.pinnedPublicKey ({output})."
        case .healthTLSCAFile: "{url}: the CA file {file} cannot be read by the web user ({output})."
        case .healthTLSHandshake: "{url}: the TLS handshake failed ({output})."
        case .cancelled: "The delivery is cancelled: production serves again at {revision}."
        case .cancelledProductionKept:
            "The delivery is cancelled: production serves again as it is (its code matches the database)."
        case .refusedCancelDatabase:
            "Cancel refused: Moodle's upgrade changed the database in this delivery and the pre-delivery code does not match it any more (Moodle would refuse to run it). Finish with restore, or use rollback."
        case .refusedCancelNoMatch:
            "Cancel refused: neither production's code nor the {tree} copy's matches the database (an upgrade is pending, or the code is older than the database); nothing was changed. Restore production to run Moodle's upgrade."
        case .cancelStopped:
            "Cancel stopped before serving production: Moodle says production's code ({revision}) does not match the database; the site keeps serving the {tree} copy. Restore production to run Moodle's upgrade, or update production to the code that matches."
        case .rollbackServes: "The site serves the {tree} copy ({revision})."
        case .rollbackMaintenanceOff: "The older code matches the database: maintenance mode is off."
        case .rollbackMismatchMaintenanceStays:
            "Warning: Moodle's upgrade changed the database and the older code does not match it; maintenance mode stays on."
        case .rollbackMismatchMaintenanceOn:
            "Warning: Moodle's upgrade changed the database and the older code does not match it; maintenance mode is now on."
        case .rollbackMismatchMaintenanceFailed:
            "Warning: Moodle's upgrade changed the database and the older code does not match it, and maintenance mode could not be turned on."
        case .rollbackThen: "Then: fix production and restore, or cancel."
        case .rollbackDatabaseRestored:
            "The site serves the {tree} copy ({revision}) and the database is back as it was at {snapshotAt} (restored in {restoreSeconds}); caches purged, maintenance mode off."
        case .rollbackDatabaseKept:
            "The database as it was before the rollback is kept on the server as {database}, closed to connections; it is dropped once newer ones replace it (database.keep)."
        case .rollbackDatabaseWaits:
            "The site serves the {tree} copy ({revision}) in maintenance mode. The database snapshot is not restored yet because another operation is still running: run rollback again once it has stopped."
        case .rollbackDatabaseRestoreFailed:
            "The site serves the {tree} copy in maintenance mode; run rollback again."
        case .rollbackStillMismatch:
            "The snapshot is restored but Moodle says the {tree} copy's code still does not match the database; maintenance mode stays on."
        case .rollbackImpossible: "Rollback impossible: there is no complete security or backup copy."
        case .rollbackNeedsConfirmation: "Rollback not done: it must be confirmed."
        case .rollbackHowToConfirm:
            "Confirm with 'deliveryctl rollback --restore-database', or tick the confirmation on the delivery screen."
        case .rollbackWebServerLags: "But the web server did not follow the switch: reload it by hand."
        case .preempted:
            "An emergency rollback took over at {preemptedAt}; this operation stopped. The site serves the {tree} tree."
        case .planUnavailable: "There is no complete security or backup copy to roll back to."
        case .planCodeMatches:
            "Rollback serves the {tree} copy at once. Moodle said its code matches the database as it is, so the database stays as it is and nothing is lost."
        case .planCodeNoUpgrade:
            "Rollback serves the {tree} copy at once. No upgrade changed the database since it was made, so the database stays as it is and nothing is lost."
        case .planCodeMismatch:
            "Moodle said the code of the {trees} copy does not match the database (an earlier upgrade moved the database past it): Moodle would refuse to run it. Secure again so that the copies hold the code that runs on the database."
        case .planNoSnapshot:
            "Moodle's upgrade changed the database and there is no snapshot to restore: the {tree} copy would be served, but Moodle refuses to run older code on a newer database (the site stays in maintenance mode). Fixing production and restoring it is the way forward."
        case .planDatabaseInWindow:
            "Moodle's upgrade changed the database in this delivery. Rollback turns maintenance mode on, serves the {tree} copy and restores the database snapshot taken {ageSeconds} ago ({sizeBytes}), just before the upgrade. The site has stayed in maintenance since, so nothing users wrote is lost."
        case .planDatabaseConfirm:
            "Moodle's upgrade changed the database, and the site has been open to users since. Rollback turns maintenance mode on, serves the {tree} copy and restores the database snapshot taken {ageSeconds} ago ({sizeBytes}): everything users wrote since then is lost. It needs your explicit confirmation."
        case .planDatabaseConfirmKept:
            "Moodle's upgrade changed the database, and the site has been open to users since. Rollback turns maintenance mode on, serves the {tree} copy and puts back the database copy the database server took {ageSeconds} ago: everything users wrote since then leaves the site, kept in the replaced database (closed to connections) until newer ones replace it. It needs your explicit confirmation."
        case .recovered:
            "Recorded the interrupted '{operation}' (step '{stepOperation}', started by {actor} at {startedAt}). The site serves the {tree} tree; state '{phase}'."
        case .orphanUpgradeEnded:
            "Moodle's upgrade left running by it ended after {waitSeconds} more; run restore again to finish the delivery."
        case .orphanUpgradeStopped:
            "Moodle's upgrade left running by it was still running after its time limit ({waitSeconds}) and was stopped: the database may be half upgraded; check it before anything else."
        case .maintenanceIsOn: "Maintenance mode is on."
        case .maintenanceIsOff: "Maintenance mode is off."
        case .runRollbackAgain: "Run the emergency rollback again to finish it."
        case .refusedNothingToRecover: "Recover refused: there is no interrupted operation to recover from."
        case .refusedRateLimited:
            "Refused: {count} operations of the kind '{kind}' were started from Moodle in the last hour, and the site allows {limit} (operationLimits.{kind}PerHour in the site's configuration); the next is allowed at {nextAt}. deliveryctl on the server is not limited."
        case .refusedNoRoom:
            "Secure refused: not enough free space in {folder} ({availableBytes} free, {neededBytes} needed, of which {reservedBytes} must stay free); nothing was changed. Free some space on that file system first."
        case .secondFactorNeeded:
            "This operation needs the code of your authenticator app: asked from Moodle, a database restore outside the delivery window needs a proof the web server cannot make. Or run it with deliveryctl on the server."
        case .secondFactorNoneEnrolled:
            "This operation needs a second factor, and Moodle user {user} ({name}) has none: root enrols them with 'deliveryctl admin enrol-totp {user}'. Or run it with deliveryctl on the server."
        case .secondFactorNotEnrolled:
            "Second factor refused: Moodle user {user} ({name}) is not enrolled (root enrols them with 'deliveryctl admin enrol-totp {user}')."
        case .secondFactorMalformed: "Second factor refused: a code is six digits."
        case .secondFactorWrong: "Second factor refused: wrong code."
        case .secondFactorExpired:
            "Second factor refused: the code expired {ageSeconds} ago (a code lasts {lifeSeconds})."
        case .secondFactorReplayed: "Second factor refused: the code was already used (wait for the next one)."
        case .secondFactorCodesLeft: "Wrong codes left before the second factor locks: {count} (5 within 15 minutes)."
        case .secondFactorNowLocked:
            "The second factor is now locked until {untilAt} (15 minutes after the oldest of the last {limit} wrong codes)."
        case .secondFactorLockedUntil:
            "Second factor locked: {limit} wrong codes within 15 minutes; codes are refused until {untilAt}. Run the operation with deliveryctl on the server if it cannot wait."
        case .webServerLagging:
            "current points at the {tree} tree, but the web server serves the tree it served until it is reloaded by hand (README, \"Web servers\")."
        case .webServerSwitchUndone:
            "The web server did not follow the switch, so it was undone: the site serves the {tree} tree."
        case .componentUnversionedChange:
            "{file} changed but {versionFile} did not: Moodle applies it only with a new version (a partial update?)."
        case .componentVersionLost:
            "{file} declares no version any more: Moodle would stop the upgrade (\"defective or outdated\")."
        case .componentNeedsNewerCore:
            "It requires Moodle {required} but the tree's core is {core}: Moodle would refuse to upgrade."
        case .warningNextUpdateFails: "The next update would fail."
        case .warningUntracked:
            "{count} files are in production but not under version control (first: {first}): forgotten in a commit?"
        case .warningUpgradeUnknown: "Moodle could not say whether an upgrade is pending."
        case .warningSnapshotUnprepared: "The database snapshot could not be prepared."
        case .refusedServingCopy:
            "{operation} refused: the site is serving the {servedTree} tree; securing writes only copies that are not served, while production serves."
        case .refusedDeliveryInProgress:
            "{operation} refused: a delivery is in progress (state '{phase}'); finish it with restore, or cancel it."
        case .refusedSecureFirst:
            "{operation} refused: secure the site first; the backup copy must be fresh and complete."
        case .refusedAlreadyDelivering: "{operation} refused: the site is already in delivery mode (state '{phase}')."
        case .refusedProductionServed: "{operation} refused: production is being served; switch to delivery first."
        case .refusedNothingToRestore:
            "{operation} refused: there is nothing to restore (state '{phase}'); switch to delivery and update first."
        case .refusedNothingToCancel: "{operation} refused: there is no delivery to cancel."
        case .refusedState: "{operation} refused: the state '{phase}' does not allow it."
        case .deliveryStarted: "A delivery started ({operation})."
        case .upstreamWaiting:
            "The upstream has {revision}. Commits: {commitCount}; files: {fileCount}; version changes: {versionCount}."
        case .upstreamCurrent: "Production is at the upstream's revision, {revision}."
        case .scheduleSet: "A Run all of {revision} is scheduled for {scheduledAt}."
        case .scheduleCancelled: "The Run all of {revision} scheduled for {scheduledAt} was cancelled."
        case .scheduledRunStarted: "The Run all of {revision} scheduled for {scheduledAt} started."
        case .scheduleSkippedBusy:
            "The Run all scheduled for {scheduledAt} did not run: the site was not idle (state '{phase}'). Nothing was changed."
        case .scheduleSkippedPreflight:
            "The Run all scheduled for {scheduledAt} did not run: the preflight of {revision} blocks ({count} problems). Nothing was changed."
        case .scheduleSkippedLate:
            "The Run all scheduled for {scheduledAt} did not run: the helper was not running then, and it was {lateSeconds} late. Nothing was changed."
        case .scheduleSkippedRevision:
            "The Run all scheduled for {scheduledAt} did not run: {revision} can no longer be delivered as it was checked (the upstream changed). Nothing was changed."
        case .newerUpstreamLeft: "The upstream has a newer revision, {revision}; it was left for a later delivery."
        case .rehearsalPassed:
            "The rehearsal of {revision} passed: Moodle's upgrade took {upgradeSeconds} on a copy of the database ({copyBytes}, copied in {copySeconds}). Components upgraded: {componentCount}; tables added or dropped: {tableCount}; columns added, dropped or changed: {columnCount}."
        case .rehearsalNoUpgrade:
            "The rehearsal of {revision} passed: its code needs no upgrade of the database (a copy of {copyBytes} was checked)."
        case .rehearsalUpgradeFailed:
            "The rehearsal of {revision} failed: Moodle's upgrade stopped in {component}: {message}. Production and its database were not touched; restoring this revision is blocked until a rehearsal passes, or it is confirmed."
        case .rehearsalStillPending:
            "The rehearsal of {revision} failed: after its upgrade, Moodle still reports an upgrade pending on the copy. Restoring this revision is blocked until a rehearsal passes, or it is confirmed."
        case .rehearsalNewChecks:
            "The rehearsal of {revision} failed: after its upgrade, Moodle's checks report new critical results on the copy: {references}. Restoring this revision is blocked until a rehearsal passes, or it is confirmed."
        case .rehearsalNothing:
            "Rehearse refused: production is at the upstream's revision ({revision}); there is nothing to rehearse."
        case .rehearsalNotNeeded: "No rehearsal needed: {revision} changes no version, so Moodle has no upgrade to run."
        case .refusedRehearsalFailed:
            "{operation} refused: the rehearsal of {revision} failed; rehearse again once it is fixed, or confirm to deliver it anyway. Nothing was changed."
        case .rehearsalOverridden: "{revision} is delivered although its rehearsal failed: {actor} confirmed it."
        case .updateToRehearsed:
            "Updating to {revision}, the revision rehearsed at {rehearsedAt}; newer upstream revisions wait for a rehearsal of their own."
        case .upgradePredicted: "Moodle's upgrade took {upgradeSeconds}; the rehearsal predicted {predictedSeconds}."
        }
    }

    /// The keys the sentence names, in order of first use.
    public var keys: [String] {
        var keys: [String] = []
        var rest = template[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            let key = String(rest[rest.index(after: open)..<close])
            if !keys.contains(key) { keys.append(key) }
            rest = rest[rest.index(after: close)...]
        }
        return keys
    }

    /// The sentence in English with its values; a value missing is said as `?`.
    public func english(_ values: [String: NoticeValue]) -> String {
        var text = template
        for key in keys {
            let shown: String
            if let value = values[key] {
                shown = value.english(key: key)
            } else {
                shown = "?"
            }
            text = text.replacingOccurrences(of: "{\(key)}", with: shown)
        }
        // A sentence that starts with an operation's name starts with a capital.
        return template.hasPrefix("{operation}") ? text.prefix(1).uppercased() + text.dropFirst() : text
    }
}
