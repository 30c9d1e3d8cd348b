#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// Step 4, restore production: preflight, snapshot, upgrade, warm-up, switch back, health check.
extension OperationRun {
    // MARK: Step 4: restore production

    func restore() throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        try requireAllowed(.restore, state)
        let versionFile = "\(layout.codeRoot(of: .production))/version.php"
        guard (try? System.lstatus(versionFile))?.kind == .regular else {
            throw DeliveryError(.notMoodle, .refusedNotMoodle)
        }
        revisionBefore = state.revisionBeforeDelivery
        revisionAfter = state.productionRevision
        try requireRehearsalNotFailed(state, revision: state.productionRevision)
        var changedScripts: [String] = []
        var differences: PreflightReport?
        var forecast: UpgradeForecast?
        let moodle = try engine.moodle(recorder)
        let checker = healthChecker(moodle)
        // The site's critical checks as they are now, from the copy that serves: at every restore
        // from a copy (a retry after an automatic rollback compares with the site as it is then).
        let baselineTree = checker == nil ? nil : layout.servedTree().flatMap { $0 == .production ? nil : $0 }
        var baseline: Set<String>?? = .none
        // A farm's `ready` stage did the preflight, the baseline and OPcache for this restore.
        let readied = state.readiedRestore.flatMap {
            $0.readies(request, state: state, served: layout.servedTree()) ? $0 : nil
        }
        if let readied {
            note("Production was readied for farm delivery \(readied.farmDelivery) (preflight passed): serving it now…")
            changedScripts = readied.changedScripts
            differences = readied.differences
            forecast = readied.differences?.upgrade
        } else if state.phase != .restoring {
            note("Preflight: checking what the update brought before production is served…")
            // Moodle's checks of the copy that serves are asked at the same time: both only read
            // (the checks are what Moodle's own Checks page shows), and each is a bootstrap of PHP.
            let (preflighted, checked) = concurrently(
                { Result { () throws(DeliveryError) in try self.engine.preflight(self.recorder) } },
                { baselineTree.flatMap { checker?.criticalChecks(in: $0) } })
            baseline = .some(checked)
            let report = try preflighted.get()
            changedScripts = report.added + report.changed + report.removed
            differences = report
            forecast = report.upgrade
            for warning in report.warnings { note("Preflight warning: \(warning)") }
            note(
                "Preflight: \(report.added.count) added, \(report.changed.count) changed, \(report.removed.count) removed; \(report.lintErrors.count) syntax errors, \(report.conflictMarkers.count) files with conflict markers."
            )
            for change in report.versionChanges {
                note(
                    "Version of \(change.component.isEmpty ? "core" : change.component): \(change.before ?? "none") → \(change.after ?? "none")"
                )
            }
            if report.blocking {
                note("Preflight: \(report.blockingSummary).")
                // The notice for each client; the blockers' details for the log and the CLI.
                let refused = [Notice(.refusedPreflight, ["tree": .tree(layout.servedTree() ?? .backup)])]
                throw DeliveryError(
                    .preflightFailed, message: "\(refused.english) \(report.blockingSummary).", notices: refused)
            }
        }
        if readied == nil, state.phase == .restoring, let preflight = try? engine.preflighter(recorder) {
            let report = preflight.differences()
            changedScripts = report.added + report.changed + report.removed
        }
        let configuration = engine.configuration
        // Asked of the new code while the backup copy still serves: nothing has changed yet.
        let need: MoodleCLI.UpgradeNeed
        if readied != nil {
            need = .none  // a `ready` stage is refused when an upgrade is pending (below)
        } else if let forecast {
            need = forecast.pending ? (forecast.maintenanceRequired ? .withMaintenance : .withoutMaintenance) : .none
        } else {
            need = try moodle.upgradeNeed(in: .production)
        }
        // In a farm delivery, Moodle's upgrade of the shared database runs once, on the coordinator,
        // in lock-step (`FarmRestoreHooks`, `FarmStage`): a node's whole restore never runs it, and
        // its `ready` stage readies nothing, saying so (the coordinator then takes the lock-step).
        if request.farmStage == .ready && need != .none {
            note(
                "Moodle's upgrade is pending: nothing readied on this node; the farm's lock-step restore runs it, once, on the coordinator."
            )
            return [Notice(.farmUpgradeInLockStep, ["revision": .revision(revisionAfter)])]
        }
        if request.actor.farmDelivery != nil && need != .none && farmHooks == nil && request.farmStage != .serve {
            throw DeliveryError(
                .preflightFailed,
                request.farmStage == .finish
                    ? "Moodle still reports an upgrade pending: the farm's coordinator has not run it (farm \(request.actor.farmDelivery ?? "")); this node keeps serving production under the farm's maintenance mode"
                    : "this revision brings a Moodle upgrade, which a farm's node runs only in the farm's lock-step restore (farm \(request.actor.farmDelivery ?? "")): nothing was changed; the copy still serves"
            )
        }
        if readied == nil, let checker, let baselineTree {
            let critical = Array((baseline ?? checker.criticalChecks(in: baselineTree)) ?? []).sorted()
            try change { (state: inout DeliveryState) throws(DeliveryError) in state.criticalChecksBefore = critical }
        }
        // A farm's other node holds neither the snapshot nor the maintenance mode: the coordinator
        // does, once for the shared database and dataroot. The coordinator always keeps users out
        // while the nodes switch to code the database is not upgraded for.
        let following = request.farmStage != nil
        let snapshotting = !following && need != .none && configuration.snapshotSettings.enabled && !state.upgradeRan
        let wantsMaintenance =
            !following
            && (need == .withMaintenance
                || (need != .none && (configuration.snapshotSettings.enabled || farmHooks != nil)))
        let previouslyServed = state.servedProductionChanges ?? []
        let changedOrServed = Array(Set(previouslyServed + changedScripts))
        // Whatever can be done before the maintenance window is: production's changed scripts
        // dropped from PHP-FPM's OPcache, then OPcache warmed with production's code while the site
        // still answers (in maintenance mode Moodle answers with the maintenance page and compiles
        // nothing; with an upgrade pending, Moodle's bootstrap runs and sends to the upgrade page:
        // the bulk is compiled).
        let readiedBeforeWindow = wantsMaintenance && !state.maintenanceEnabled
        if readiedBeforeWindow {
            try dropFromOPcache(changedOrServed)
            try readyProductionForServing(warm: true)
        }
        var snapshotPlan: SnapshotPlan?
        if snapshotting {
            do {
                snapshotPlan = try planSnapshot()
            } catch {
                // Nothing changed: the backup copy still serves, maintenance mode was not touched.
                throw snapshotRefusal(error)
            }
        }
        if wantsMaintenance && !state.maintenanceEnabled {
            note(
                need == .withMaintenance
                    ? "Moodle's upgrade needs maintenance mode: turning it on…"
                    : "Maintenance mode on for the database snapshot and the upgrade (no user may write between them)…")
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.maintenanceEnabled = true
                state.deliveryWindowOpen = true
            }
            try moodle.setMaintenance(true, in: layout.servedTree() ?? .backup)
        }
        if let snapshotPlan {
            do {
                try takeSnapshot(snapshotPlan)
            } catch {
                // Nothing changed: the backup copy still serves. Lift the maintenance mode this
                // step turned on, and say why the upgrade did not run.
                if !state.maintenanceEnabled {
                    try? moodle.setMaintenance(false, in: layout.servedTree() ?? .backup)
                    try? change { (state: inout DeliveryState) throws(DeliveryError) in
                        state.maintenanceEnabled = false
                        state.deliveryWindowOpen = false
                    }
                }
                throw snapshotRefusal(error)
            }
        }
        if request.farmStage == .ready {
            return try finishReadying(
                state, changedScripts: changedScripts, changedOrServed: changedOrServed, differences: differences)
        }
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = .restoring
            state.servedProductionChanges = changedOrServed.sorted()
            state.readiedRestore = nil
        }
        if !readiedBeforeWindow && readied == nil {
            try dropFromOPcache(changedOrServed)
            try readyProductionForServing(
                warm: !(try store.read()).maintenanceEnabled && !(request.farmStage == .serve && need != .none))
        }
        try switchServed(to: .production)
        progress(.fraction(.restore, 0.3))
        if request.farmStage == .serve {
            note(
                "Production serves on this node, under the farm's maintenance mode; Moodle's upgrade runs once, on the coordinator."
            )
            return [Notice(.farmServesBeforeUpgrade, ["revision": .revision(revisionAfter)])]
        }
        if let farmHooks, need != .none {
            note("Every other node of the farm switches to production, under this node's maintenance mode…")
            do {
                try farmHooks.serveEverywhere()
            } catch {
                throw try afterFailure(error, what: [])
            }
        }
        var upgradeText = Notice(.upgradeNotNeeded)
        var predictionText: Notice?
        var cachesText = Notice(.cachesPurged)
        if need == .none {
            note("Moodle reports no pending upgrade.")
        } else {
            note("Running Moodle's upgrade…")
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.upgradeRan = true
                state.databaseAhead = true
                state.copiesMatchingDatabase = [:]
                state.copiesMatchingDatabaseFarmDelivery = nil
            }
            let upgradeStarted = System.monotonicSeconds()
            do {
                try moodle.upgrade(in: .production) { group in
                    try? self.store.update { (state: inout DeliveryState) throws(DeliveryError) in
                        state.upgradeProcessGroup = group
                    }
                }
                try change { (state: inout DeliveryState) throws(DeliveryError) in state.upgradeProcessGroup = nil }
            } catch {
                try? change { (state: inout DeliveryState) throws(DeliveryError) in state.upgradeProcessGroup = nil }
                throw try afterFailure(error, what: [Notice(.upgradeFailed)])
            }
            upgradeSeconds = System.monotonicSeconds() - upgradeStarted
            upgradeText = Notice((try store.read()).maintenanceEnabled ? .upgradeRanInMaintenance : .upgradeRanOpen)
            if let rehearsal = state.rehearsal, rehearsal.passed, rehearsal.revision.id == state.productionRevision?.id,
                let predicted = rehearsal.upgradeSeconds
            {
                predictionText = Notice(
                    .upgradePredicted,
                    [
                        "upgradeSeconds": .duration(System.monotonicSeconds() - upgradeStarted),
                        "predictedSeconds": .duration(predicted),
                    ])
                note(predictionText!.english)
            }
        }
        progress(.fraction(.restore, 0.7))
        if request.farmStage == .finish {
            // The coordinator's upgrade purged the shared caches, for every node.
            note("The farm's upgrade, on the coordinator, purged the caches.")
            cachesText = Notice(.cachesPurgedByUpgrade)
        } else if need == .none && changedScripts.isEmpty && previouslyServed.isEmpty
            && (state.phase != .restoring) && forecast != nil
        {
            // The code served now is the code the caches were built from: a purge would only make
            // every request rebuild them (and Moodle's rebuild races under load).
            note("Production holds the code that was served: no upgrade, caches kept.")
            cachesText = Notice(.cachesKept)
        } else if need != .none {
            // Moodle's upgrade ends by purging every cache (upgrade_noncore, run in maintenance
            // mode as the helper runs it): a second purge would only lengthen the window.
            note("Moodle's upgrade purged the caches.")
            cachesText = Notice(.cachesPurgedByUpgrade)
        } else if readied != nil && request.actor.isFromFarmCoordinator {
            // The farm's nodes share Moodle's caches (one database, one dataroot): the coordinator's
            // restore, which switches at the same time, purges them once for every node (two purges
            // of the same caches at once would race).
            note("Moodle's caches are shared by the farm's nodes: the coordinator purges them, once.")
            cachesText = Notice(.farmCachesPurgedByCoordinator)
        } else {
            cachesText = try purgeAfterCodeChange(moodle, differences: differences, previouslyServed: previouslyServed)
        }
        var healthText: [Notice] = []
        // Moodle's own checks run while maintenance mode still holds users out; only the page
        // itself needs the site open, and it is asked for at once.
        var health = HealthReport(checkedAt: Date(), results: [], failures: [])
        if let checker {
            let holding = (try store.read()).maintenanceEnabled ? ", still in maintenance mode" : ""
            note("Health check: pending upgrade and Moodle's checks\(holding)…")
            health = checker.runCommandLineChecks(
                tree: .production, baseline: Set((try store.read()).criticalChecksBefore ?? []))
            if !health.passed { throw try healthFailure(health) }
            if (health.resultNotices ?? []).contains(where: { $0.code == NoticeCode.healthCodeMatches.rawValue }),
                let differences, CodeFingerprint.sameAnswers(differences)
            {
                // Production matches the database, and the backup copy differs from it only in
                // contents that Moodle's answer does not depend on (`CodeFingerprint`): it matches too.
                copiesKnownToMatch[.backup] = true
            }
        }
        var windowText: [Notice] = []
        if (try store.read()).maintenanceEnabled {
            try moodle.liftMaintenance(in: .production, dataroot: engine.configuration.moodle.dataroot)
            try change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = false }
            if let window = maintenanceWindow, let notice = window.notice {
                note(notice.english)
                windowText = [notice]
            }
        }
        if let checker {
            note("Health check: \(checker.url)…")
            health = checker.addPageCheck(to: health)
            if !health.passed { throw try healthFailure(health) }
            for line in health.results { note("Health check: \(line)") }
            healthReport = health
            try change { (state: inout DeliveryState) throws(DeliveryError) in state.lastHealthCheck = health }
            healthText = [Notice(.healthPassed)]
        }
        if let farmHooks, need != .none {
            note("Every other node of the farm: its health check…")
            do {
                try farmHooks.finishEverywhere()
            } catch {
                throw try afterFailure(error, what: [Notice(.healthFailed)])
            }
        }
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = .idle
            state.deliveryId = nil
            state.deliveryStartedAt = nil
            state.revisionBeforeDelivery = nil
            state.updatedPaths = []
            state.comments = []
            state.upgradeRan = false
            state.servedProductionChanges = nil
            state.deliveryWindowOpen = false
            state.criticalChecksBefore = nil
            state.readiedRestore = nil
        }
        pruneSnapshotCopies(snapshotPlan)
        return [Notice(.restored, ["revision": .revision(revisionAfter)]), upgradeText]
            + (predictionText.map { [$0] } ?? []) + [cachesText] + windowText + healthText
            + [Notice(.deliveryComplete)]
    }

    /// Why the upgrade did not run: the snapshot could not be planned or taken.
    func snapshotRefusal(_ error: DeliveryError) -> DeliveryError {
        note("The database snapshot failed: \(error.message)")
        return DeliveryError(
            .snapshotFailed, message: "restore refused: \(error.message)",
            notices: [Notice(.refusedSnapshot, ["tree": .tree(layout.servedTree() ?? .backup)])] + error.notices)
    }

    /// Records a failed health check and ends the step the way the site asks (automatic rollback,
    /// or maintenance mode and the administrator's decision).
    func healthFailure(_ report: HealthReport) throws(DeliveryError) -> DeliveryError {
        for line in report.results { note("Health check: \(line)") }
        healthReport = report
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.lastHealthCheck = report }
        return try afterFailure(
            DeliveryError(.healthCheckFailed, report.failureNotices ?? []), what: [Notice(.healthFailed)])
    }

    /// Makes production ready to be served: its component cache built if missing, and, when
    /// `warm`, PHP-FPM's OPcache warmed with one request (useless in maintenance mode, where Moodle
    /// compiles nothing).
    func readyProductionForServing(warm: Bool) throws(DeliveryError) {
        let productionRoot = (try? System.realPath(layout.path(of: .production))) ?? layout.path(of: .production)
        if lacksComponentCache(productionRoot) { try buildComponentCache(at: productionRoot) }
        if warm { warmByRequest(.production) }
    }

    /// The health checker, unless the site turned it off.
    func healthChecker(_ moodle: MoodleCLI) -> HealthChecker? {
        let settings = engine.configuration.healthCheckSettings
        guard settings.mode != .off, let webUser = try? UserIdentity.lookup(engine.configuration.webUser) else {
            return nil
        }
        return HealthChecker(
            settings: settings, wwwroot: engine.configuration.moodle.wwwroot, moodle: moodle, webUser: webUser,
            recorder: recorder)
    }

    /// What a failed upgrade or health check leads to inside the delivery window: an automatic
    /// rollback (the older code, and the database snapshot when the upgrade changed it), or, when
    /// the site asks for it, maintenance mode and the administrator's decision.
    /// - Returns: the error to end the step with.
    func afterFailure(_ error: DeliveryError, what: [Notice]) throws(DeliveryError) -> DeliveryError {
        if error.code == .preempted { return error }
        let mode = engine.configuration.healthCheckSettings.mode
        let reason = error.within(what)
        note(reason.message)
        if request.actor.farmDelivery != nil {
            // No node of a farm acts alone: the coordinator brings every node back, the other
            // nodes first (`FarmDelivery.rollBackFarm`). It keeps users out meanwhile.
            if farmHooks != nil, !(try store.read()).maintenanceEnabled {
                try? engine.moodle(recorder).setMaintenance(true, in: layout.servedTree() ?? .production)
                try? change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = true }
            }
            return reason.within([], after: [Notice(.farmBringsBack)])
        }
        if mode == .automatic {
            note("Rolling back automatically (healthCheck.mode = automatic)…")
            do {
                let done = try rollBack(preempting: false)
                return reason.within([], after: [Notice(.rolledBackAutomatically)] + done)
            } catch {
                return reason.within([], after: [Notice(.automaticRollbackFailed)] + error.said)
            }
        }
        let moodle = try engine.moodle(recorder)
        if !(try store.read()).maintenanceEnabled {
            try? moodle.setMaintenance(true, in: layout.servedTree() ?? .production)
            try? change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = true }
        }
        let plan = DeliveryEngine.rollbackPlan(try store.read(), copies: engine.copyStatuses(try store.read()))
        return reason.within(
            [], after: [Notice(plan.kind == .codeAndDatabase ? .maintenanceStaysDatabase : .maintenanceStaysCode)])
    }

    /// The files each tree makes for itself, left alone by copies (the component cache).
    var preservedFiles: Set<String> {
        engine.configuration.componentCacheFile.map { [$0] } ?? []
    }

    /// Builds the prebuilt component cache of a tree (by its real path) when the site uses one.
    /// What the state said of the folder's cache is forgotten first: only
    /// `buildComponentCacheUnlessCurrent` records the code a cache was built for.
    func buildComponentCache(at treeRoot: String) throws(DeliveryError) {
        guard let file = engine.configuration.componentCacheFile else { return }
        let name = lastComponent(of: treeRoot)
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.componentCacheFingerprints?[name] = nil
        }
        note("Building the component cache of \(name) for its code…")
        try engine.moodle(recorder).buildComponentCache(
            treeRoot: treeRoot, file: file, owner: try UserIdentity.lookup(engine.configuration.codeOwner))
    }

    /// True when the site uses a component cache and the tree lacks it.
    func lacksComponentCache(_ treeRoot: String) -> Bool {
        guard let file = engine.configuration.componentCacheFile else { return false }
        return (try? System.lstatus("\(treeRoot)/\(file)"))?.kind != .regular
    }

    /// Warms PHP-FPM's OPcache for a tree about to be served: one real request for its login page,
    /// straight to the pool (see `OPcacheInvalidator.warmByRequest`). Skipped by the emergency
    /// rollback, which must not wait on the pool.
    func warmByRequest(_ tree: TreeName) {
        guard !(engine.configuration.phpFpmSockets ?? []).isEmpty,
            let root = try? System.realPath(layout.path(of: tree)), layout.servedTree() != tree
        else { return }
        let codeRoot = layout.publicLayout ? "\(root)/public" : root
        for line in engine.opcache(recorder).warmByRequest(
            codeRoot: codeRoot, wwwroot: engine.configuration.moodle.wwwroot)
        {
            note(line)
        }
    }

    /// Drops production's changed PHP scripts from PHP-FPM's OPcache, before production is served:
    /// it was changed in place, under the paths the pool may still hold compiled.
    func dropFromOPcache(_ relativePaths: [String], under root: String? = nil) throws(DeliveryError) {
        let base = root ?? (try? System.realPath(layout.path(of: .production))) ?? layout.path(of: .production)
        // The tree's component cache is rewritten in place whenever its code changes, and the
        // preflight leaves it out of the differences: it is always dropped too.
        let cache = engine.configuration.componentCacheFile.map { [$0] } ?? []
        let changed = relativePaths.filter { $0.hasSuffix(".php") }
        let scripts = (changed.isEmpty ? [] : Array(Set(changed + cache)).sorted()).map { "\(base)/\($0)" }
        guard !scripts.isEmpty else { return }
        if (engine.configuration.phpFpmSockets ?? []).isEmpty {
            if engine.configuration.webServerSettings.kind == .apache {
                // PHP runs in Apache (mod_php): the graceful reload of the switch starts its
                // OPcache afresh (Tests/Apache shows it with validate_timestamps=0).
                return
            }
            note(
                "Warning: no PHP-FPM socket is configured (phpFpmSockets): \(scripts.count) changed scripts stay in PHP-FPM's OPcache until it revalidates them (never with opcache.validate_timestamps=0)."
            )
            return
        }
        for line in try engine.opcache(recorder).invalidate(scripts) { note(line) }
    }
}
