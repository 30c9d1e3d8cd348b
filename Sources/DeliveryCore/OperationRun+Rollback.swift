#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// Cancel, the emergency rollback and the recovery of an interrupted operation.
extension OperationRun {
    // MARK: Cancel

    func cancel() throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        try requireAllowed(.cancel, state)
        if state.upgradeRan, !(try preDeliveryCodeMatchesDatabase(state)) {
            throw DeliveryError(.wrongState, .refusedCancelDatabase)
        }
        let production = layout.path(of: .production)
        let vcs = try engine.versionControl(recorder)
        // What production holds that differs from the pre-delivery code: PHP-FPM may have cached it.
        var touched: [String] = []
        if let preflight = try? engine.preflighter(recorder) {
            let report = preflight.differences()
            touched = report.added + report.changed + report.removed
        }
        // Where production goes back to: its revision before the delivery. After a rollback that
        // outlived its delivery (the restore had finished), production stays as it is when its code
        // runs on the database as it is now; else (the rollback restored the database) it goes to
        // the served copy's revision, the code that runs on the database.
        let served = layout.servedTree() ?? .production
        let moodle = try engine.moodle(recorder)
        var target = state.revisionBeforeDelivery
        if target == nil, served != .production, try moodle.databaseMatch(in: .production) != true {
            guard try moodle.databaseMatch(in: served) == true, let revision = state.copies[served]?.revision else {
                throw DeliveryError(.wrongState, .refusedCancelNoMatch, ["tree": .tree(served)])
            }
            target = revision
        }
        if let before = target {
            revisionBefore = try vcs.revision(of: production, recorder: recorder)
            if revisionBefore?.id != before.id || !state.updatedPaths.isEmpty {
                note("Putting production back at \(before.label)…")
                try vcs.reset(tree: production, to: before, recorder: recorder)
            }
            revisionAfter = try vcs.revision(of: production, recorder: recorder)
        }
        if lacksComponentCache(production) || revisionAfter != revisionBefore {
            try buildComponentCache(at: production)
        }
        // Production is served only when its code runs on the database as it is now: never code
        // ahead of the database (Moodle would ask for an upgrade on every page).
        if served != .production, try moodle.databaseMatch(in: .production) != true {
            throw DeliveryError(
                .wrongState, .cancelStopped, ["revision": .revision(revisionAfter), "tree": .tree(served)])
        }
        if state.maintenanceEnabled {
            try engine.moodle(recorder).setMaintenance(false, in: .production)
        }
        try dropFromOPcache(Array(Set(touched + (state.servedProductionChanges ?? []))))
        warmByRequest(.production)
        try switchServed(to: .production)
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = .idle
            state.deliveryId = nil
            state.deliveryStartedAt = nil
            state.productionRevision = revisionAfter ?? state.productionRevision
            state.revisionBeforeDelivery = nil
            state.updatedPaths = []
            state.comments = []
            state.maintenanceEnabled = false
            state.servedProductionChanges = nil
            state.readiedRestore = nil
            // The delivery's steps were undone: their results are in the audit log, not on the screen
            // (an update shown as succeeded would say production holds code it no longer holds).
            for step in [Operation.switchToDelivery, .update, .restore] { state.lastResults[step] = nil }
        }
        guard let revisionAfter else { return [Notice(.cancelledProductionKept)] }
        return [Notice(.cancelled, ["revision": .revision(revisionAfter)])]
    }

    /// After an upgrade attempt, asks the backup copy (the pre-delivery code) whether it still
    /// matches the database; only then can cancel serve that code again.
    func preDeliveryCodeMatchesDatabase(_ state: DeliveryState) throws(DeliveryError) -> Bool {
        guard state.copies[.backup]?.complete == true,
            state.copies[.backup]?.revision?.id == state.revisionBeforeDelivery?.id
        else { return false }
        return try engine.moodle(recorder).codeMatchesDatabase(in: .backup)
    }

    // MARK: Emergency rollback

    /// Serves the security copy, else the backup copy, at once, from any state, even while another
    /// operation holds the lock (that operation then stops at its next check).
    func emergencyRollback() throws(DeliveryError) -> OperationOutcome {
        let holder = RunningOperation(
            id: id, operation: .rollback, step: .rollback, actor: request.actor, pid: System.processIdentifier,
            host: System.hostName, startedAt: startedAt)
        var lock: DeliveryLock?
        var preempting = false
        do {
            lock = try DeliveryLock.acquire(in: engine.configuration.stateDirectory, holder: holder)
        } catch {
            guard error.code == .lockHeld else {
                auditRefusal(error)
                throw error
            }
            preempting = true
        }
        defer { lock?.release() }
        // Holding the lock, it is the state file's running operation like any other, so that a rollback
        // killed part-way (after its switch, before the database is back) is seen as interrupted by
        // `status` and `recover`. Preempting, the state file names the operation it takes over from.
        var recordedAsRunning = false
        if lock != nil {
            try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
                if state.running == nil { state.running = holder }
            }
            recordedAsRunning = (try? store.read().running?.id) == id
        }
        progress(.stepStarted(.rollback))
        var failure: DeliveryError?
        var notices: [Notice] = []
        do throws(DeliveryError) {
            let state = try store.read()
            try engine.admitRollback(
                request, plan: DeliveryEngine.rollbackPlan(state, copies: engine.copyStatuses(state)),
                secondFactorChecked: secondFactorChecked)
            if preempting, let running = DeliveryLock.currentHolder(in: engine.configuration.stateDirectory) ?? nil {
                note(
                    "Taking over from '\(running.operation.rawValue)' run by \(running.actor.name); it will stop at its next step."
                )
            }
            notices = try rollBack(preempting: preempting)
            if let lag = webServerLag {
                note("The web server did not follow the switch: \(lag.message).")
                throw DeliveryError(.webServerStale, notices + [Notice(.rollbackWebServerLags)])
            }
            progress(.fraction(.rollback, 1))
        } catch {
            failure = error
        }
        progress(.stepFinished(.rollback, succeeded: failure == nil, notices: failure?.said ?? notices))
        let refused = failure.map(isRefusal) ?? false
        if !refused && !preempting { refreshCopiesMatchingDatabase() }
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
            if recordedAsRunning && state.running?.id == id { state.running = nil }
            if !refused {
                state.lastResults[.rollback] = StepResult(
                    succeeded: failure == nil, finishedAt: Date(), message: failure?.message ?? notices.english,
                    errorCode: failure?.code, notices: failure?.said ?? notices)
            }
        }
        let phase = (try? store.read().phase) ?? .rolledBack
        let served = layout.servedTree()
        writeAudit(
            result: failure == nil ? "succeeded" : (refused ? "refused" : "failed"), error: failure,
            notices: failure?.said ?? notices, phase: phase, served: served)
        if let failure { throw failure }
        return OperationOutcome(
            id: id, operation: .rollback, message: notices.english, notices: notices, phase: phase, served: served)
    }

    /// Serves the rollback target and, when Moodle's upgrade moved the database past its code,
    /// restores the database snapshot under maintenance mode. Shared by the emergency rollback and
    /// the automatic rollback after a failed upgrade or health check.
    /// - Parameter preempting: another operation still runs (the database is then left for a
    ///   second rollback once it has stopped: two processes must never write it at once).
    /// - Returns: what was done, for the administrator.
    func rollBack(preempting: Bool) throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        let plan = DeliveryEngine.rollbackPlan(state, copies: engine.copyStatuses(state))
        guard let target = plan.target else {
            throw DeliveryError(.copyMissing, .rollbackImpossible)
        }
        let emergency = request.operation == .rollback
        revisionAfter = state.copies[target]?.revision
        let moodle = try engine.moodle(recorder)
        let servedNow = layout.servedTree() ?? .production
        if plan.kind == .codeAndDatabase, let snapshot = plan.snapshot {
            if !state.maintenanceEnabled {
                note("Maintenance mode on while the database goes back to the snapshot…")
                try change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = true }
                try moodle.setMaintenance(true, in: servedNow)
            }
            try switchServed(to: target, preempting: emergency)
            try change { (state: inout DeliveryState) throws(DeliveryError) in state.phase = .rolledBack }
            if preempting {
                return [Notice(.rollbackDatabaseWaits, ["tree": .tree(target), "revision": .revision(revisionAfter)])]
            }
            stopOrphanedUpgrade(state)
            note(
                "Restoring the database snapshot taken at \(formatMoment(snapshot.takenAt)) (\(formatBytes(snapshot.sizeBytes)))…"
            )
            let started = System.monotonicSeconds()
            let webUser = try UserIdentity.lookup(engine.configuration.webUser)
            var replacedDatabase: String?
            do {
                let connection = try DatabaseConnection.read(
                    php: engine.configuration.php, codeRoot: layout.codeRoot(of: target), webUser: webUser)
                let tool = DatabaseTool(
                    connection: connection, webUser: webUser, recorder: recorder,
                    timeout: engine.configuration.snapshotSettings.timeoutSeconds)
                if let copy = snapshot.copyDatabase {
                    replacedDatabase = try swapInCopy(copy, tool: tool)
                } else {
                    try tool.restore(snapshot)
                }
            } catch {
                note("The database restore failed: \(error.message)")
                throw DeliveryError(
                    .databaseRestoreFailed, message: "\(error.message). Run rollback again",
                    notices: error.notices + [Notice(.rollbackDatabaseRestoreFailed, ["tree": .tree(target)])])
            }
            let seconds = System.monotonicSeconds() - started
            databaseRestored = true
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.databaseAhead = false
                state.upgradeRan = false
                state.copiesMatchingDatabase = [target: true]
                state.copiesMatchingDatabaseFarmDelivery = nil
                if let replacedDatabase { state.snapshot?.replacedDatabase = replacedDatabase }
            }
            note("Database restored in \(format1(seconds)) s.")
            guard try moodle.codeMatchesDatabase(in: target) else {
                throw DeliveryError(.databaseRestoreFailed, .rollbackStillMismatch, ["tree": .tree(target)])
            }
            try moodle.purgeCaches(in: target)
            try moodle.setMaintenance(false, in: target)
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.maintenanceEnabled = false
                state.deliveryWindowOpen = false
            }
            return [
                Notice(
                    .rollbackDatabaseRestored,
                    [
                        "tree": .tree(target), "revision": .revision(revisionAfter),
                        "snapshotAt": .moment(snapshot.takenAt),
                        "restoreSeconds": .duration(seconds),
                    ])
            ] + (replacedDatabase.map { [Notice(.rollbackDatabaseKept, ["database": .text($0)])] } ?? [])
                + [Notice(.rollbackThen)]
        }
        if !emergency && state.databaseAhead == true {
            throw DeliveryError(.upgradeFailed, .noAutomaticRollback)
        }
        if !emergency { warmByRequest(target) }
        try switchServed(to: target, preempting: emergency)
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.phase = .rolledBack }
        var notices = [Notice(.rollbackServes, ["tree": .tree(target), "revision": .revision(revisionAfter)])]
        // The site already serves the copy; now ask its code whether it runs on the database as
        // it is (an upgrade, even of an earlier delivery, may have moved the database on).
        let databaseMatches = (try? moodle.codeMatchesDatabase(in: target)) ?? false
        if state.maintenanceEnabled && databaseMatches {
            try moodle.setMaintenance(false, in: target)
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.maintenanceEnabled = false
                state.deliveryWindowOpen = false
            }
            notices.append(Notice(.rollbackMaintenanceOff))
        } else if !databaseMatches && request.actor.isFromFarmCoordinator {
            // A farm's node: the coordinator holds the maintenance mode and restores the database
            // once every other node serves its copy (`FarmDelivery.rollBackFarm`).
            note(
                "The database is ahead of this copy's code: the farm's coordinator restores it, under its maintenance mode."
            )
        } else if !databaseMatches {
            if state.maintenanceEnabled {
                notices.append(Notice(.rollbackMismatchMaintenanceStays))
            } else if try maintenanceForRefusedCode(target, moodle: moodle) {
                notices.append(Notice(.rollbackMismatchMaintenanceOn))
            } else {
                notices.append(Notice(.rollbackMismatchMaintenanceFailed))
            }
        }
        return notices + [Notice(.rollbackThen)]
    }

    /// Puts the server's snapshot copy in the site database's place (two renames, the database
    /// it replaces kept); run again after an interruption, it finishes the second rename.
    /// - Returns: the name of the database kept.
    func swapInCopy(_ copy: String, tool: DatabaseTool) throws(DeliveryError) -> String {
        guard let outside = tool.maintenanceTool() else {
            throw DeliveryError(
                .databaseRestoreFailed,
                "the role \(tool.connection.user) may not connect to the maintenance database (postgres or template1) to swap in \(copy)"
            )
        }
        let replaced = try outside.swapIn(copy, for: tool.connection.name) {
            note(
                "Database: \(tool.connection.name) renamed aside; renaming the snapshot \(copy) to \(tool.connection.name)…"
            )
        }
        note(
            "Database: the snapshot \(copy) is now \(tool.connection.name); the database it replaced is kept as \(replaced)."
        )
        return replaced
    }

    /// Turns maintenance mode on for a served copy whose code Moodle refuses on the database as
    /// it is (an upgrade moved it on, no snapshot was restored): its users see the maintenance
    /// page rather than errors, as the rollback plan says. The one place of that rule, for the
    /// rollback and for the recovery of an interrupted one. False when Moodle could not do it.
    func maintenanceForRefusedCode(_ tree: TreeName, moodle: MoodleCLI) throws(DeliveryError) -> Bool {
        guard (try? moodle.setMaintenance(true, in: tree)) != nil else { return false }
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = true }
        return true
    }

    /// Waits, before recover does anything else, for Moodle's upgrade when it still runs after the
    /// helper that started it died (kill -9): stopping it midway would leave the database half
    /// upgraded, and a new one would fail on Moodle's upgrade lock. It is stopped only past the
    /// upgrade's time limit. A sentence for the result, or nil when there was none.
    func waitForOrphanedUpgrade(_ state: DeliveryState) -> Notice? {
        defer { forgetUpgradeProcessGroup(state) }
        guard let group = orphanedUpgrade(state) else { return nil }
        note(
            "Moodle's upgrade from the interrupted operation still runs (process group \(group)): waiting for it to end…"
        )
        let started = System.monotonicSeconds()
        let deadline = started + engine.configuration.timeouts.upgrade
        while System.processIsRunning(group) && System.monotonicSeconds() < deadline { usleep(200_000) }
        let seconds = NoticeValue.duration(System.monotonicSeconds() - started)
        guard System.processIsRunning(group) else {
            return Notice(.orphanUpgradeEnded, ["waitSeconds": seconds])
        }
        stop(processGroup: group)
        return Notice(.orphanUpgradeStopped, ["waitSeconds": seconds])
    }

    /// Stops Moodle's upgrade when it still runs after the helper that started it died (kill -9):
    /// the database must not change under the snapshot being restored.
    func stopOrphanedUpgrade(_ state: DeliveryState) {
        defer { forgetUpgradeProcessGroup(state) }
        guard let group = orphanedUpgrade(state) else { return }
        note("Moodle's upgrade (process group \(group)) still runs from the interrupted operation: stopping it…")
        stop(processGroup: group)
    }

    /// The process group of Moodle's upgrade that an interrupted operation left running, or nil.
    func orphanedUpgrade(_ state: DeliveryState) -> Int32? {
        guard let group = state.upgradeProcessGroup else { return nil }
        guard System.processIsRunning(group), let commandLine = System.commandLine(of: group),
            commandLine.contains("upgrade.php")
        else { return nil }
        return group
    }

    /// The state file forgets the upgrade's process group once it is dealt with.
    func forgetUpgradeProcessGroup(_ state: DeliveryState) {
        guard state.upgradeProcessGroup != nil else { return }
        try? change { (state: inout DeliveryState) throws(DeliveryError) in state.upgradeProcessGroup = nil }
    }

    /// SIGTERM, 10 s to end, then SIGKILL.
    func stop(processGroup group: Int32) {
        System.signal(processGroup: group, SIGTERM)
        let deadline = System.monotonicSeconds() + 10
        while System.processIsRunning(group) && System.monotonicSeconds() < deadline { usleep(100_000) }
        if System.processIsRunning(group) { System.signal(processGroup: group, SIGKILL) }
    }

    /// Asks Moodle, in every complete copy, whether its code matches the database as it is now
    /// (`upgrade.php --is-pending`), for the rollback plan. An answer that cannot be had is left out.
    /// Each question is a bootstrap of PHP: a copy whose code fingerprint was already asked about
    /// with the database's versions as they are now takes that answer (`databaseAnswers`). The
    /// versions are read before and after asking; an answer is kept only when they did not move.
    func refreshCopiesMatchingDatabase() {
        guard let state = try? store.read(), let moodle = try? engine.moodle(recorder) else { return }
        let copies = engine.copyStatuses(state)
        let fingerprinted = [TreeName.security, .backup].contains {
            copies[$0]?.complete == true && state.copies[$0]?.fingerprint != nil
        }
        let database = fingerprinted ? databaseVersionsReader() : nil
        let versions = database.flatMap { try? $0.versionsKey() }
        var known = state.databaseAnswers ?? [:]
        var learned: [String: Bool] = [:]
        var answers: [TreeName: Bool] = [:]
        var used: Set<String> = []
        func key(_ tree: TreeName) -> String? {
            versions.flatMap { versions in state.copies[tree]?.fingerprint.map { "\($0) \(versions)" } }
        }
        // What this operation showed holds for every copy of the same fingerprint (the security
        // copy made beside the backup copy): taken first.
        for (tree, answer) in copiesKnownToMatch where copies[tree]?.complete == true {
            answers[tree] = answer
            if let key = key(tree) { learned[key] = answer }
        }
        for tree in [TreeName.security, .backup] where copies[tree]?.complete == true {
            let key = key(tree)
            if let key { used.insert(key) }
            if answers[tree] != nil { continue }
            if let key, let answer = known[key] ?? learned[key] {
                answers[tree] = answer
                continue
            }
            if let answer = (try? moodle.databaseMatch(in: tree, echo: false)) ?? nil {
                answers[tree] = answer
                if let key { learned[key] = answer }
            }
        }
        if !learned.isEmpty, let database, (try? database.versionsKey()) == versions {
            known.merge(learned) { $1 }
        }
        if known.count > 16 { known = known.filter { used.contains($0.key) } }
        let kept = known
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
            state.copiesMatchingDatabase = answers
            state.copiesMatchingDatabaseFarmDelivery = request.actor.farmDelivery
            state.databaseAnswers = kept.isEmpty ? nil : kept
        }
    }

    /// True when this operation keeps Moodle's answers of the last one instead of asking again
    /// (`refreshCopiesMatchingDatabase`, a bootstrap of PHP and a query of the database): a step of
    /// a farm delivery that changes no copy (the switch, the update, the restore without an
    /// upgrade: alone or its `ready` stage) when an operation of the same farm delivery asked,
    /// moments before under the farm's lock (its secure), and nothing changed the database since:
    /// Moodle's upgrade and a database restore here forget who asked, so the restore that ran one
    /// asks, and so do a node's stages of the coordinator's upgrade (`serve`, `finish`).
    /// Everywhere else each operation asks.
    func keepsCopiesMatchingDatabase(_ state: DeliveryState?) -> Bool {
        guard let farmDelivery = request.actor.farmDelivery, let state, state.copiesMatchingDatabase != nil,
            state.copiesMatchingDatabaseFarmDelivery == farmDelivery
        else { return false }
        switch request.operation {
        case .switchToDelivery, .update: return true
        case .restore: return request.farmStage == nil || request.farmStage == .ready
        default: return false
        }
    }

    /// Reads the database's versions for `refreshCopiesMatchingDatabase`, with the site's own
    /// settings and client (as the web user); nil when the site has no database the helper can
    /// read (then every copy is asked).
    func databaseVersionsReader() -> DatabaseTool? {
        guard let webUser = try? UserIdentity.lookup(engine.configuration.webUser),
            let connection = try? DatabaseConnection.read(
                php: engine.configuration.php, codeRoot: layout.codeRoot(of: .production), webUser: webUser)
        else { return nil }
        return DatabaseTool(connection: connection, webUser: webUser, recorder: recorder, timeout: 60)
    }

    // MARK: Recover

    func recover() throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        guard let dead = state.running, dead.id != id else {
            throw DeliveryError(.wrongState, .refusedNothingToRecover)
        }
        if let swap = state.pendingSwap {
            let current = try? System.status(layout.path(of: swap.tree))
            if current?.inode == swap.stagingInode {
                note("The interrupted copy of \(swap.tree.rawValue) had been swapped in: recording it.")
                try change { (state: inout DeliveryState) throws(DeliveryError) in state.copies[swap.tree] = swap.record
                }
            }
        }
        let orphan = waitForOrphanedUpgrade(state)
        try removeLeftoverStaging()
        if recoverRehearsal() { note("The interrupted rehearsal's database copy and folder are removed.") }
        let served = layout.servedTree()
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.interrupted = dead
            state.running = nil
            state.pendingSwap = nil
            if state.phase == .secured && served == .backup { state.phase = .delivering }
            if [.delivering, .updated].contains(state.phase) && served == .production { state.phase = .restoring }
            // An emergency rollback that had switched: the site is rolled back, its database
            // perhaps not yet (the rollback plan says what running it again does).
            if dead.operation == .rollback, let served, served != .production { state.phase = .rolledBack }
        }
        if dead.operation == .rollback, let served, served != .production, try !store.read().maintenanceEnabled {
            // Killed before it could say so: Moodle refuses a copy's code on a database an upgrade
            // moved on; its users get the maintenance page until the rollback is run again.
            let moodle = try engine.moodle(recorder)
            if (try? moodle.codeMatchesDatabase(in: served)) == false,
                try maintenanceForRefusedCode(served, moodle: moodle)
            {
                note("The \(served.rawValue) copy's code does not match the database: maintenance mode is on.")
            }
        }
        let after = try store.read()
        var notices = [
            Notice(
                .recovered,
                [
                    "operation": .text(dead.operation.rawValue), "stepOperation": .text(dead.step.rawValue),
                    "actor": .text(dead.actor.name), "startedAt": .moment(dead.startedAt), "tree": .tree(served),
                    "phase": .text(after.phase.rawValue),
                ])
        ]
        if let orphan { notices += [orphan, Notice(after.maintenanceEnabled ? .maintenanceIsOn : .maintenanceIsOff)] }
        if dead.operation == .rollback { notices.append(Notice(.runRollbackAgain)) }
        return notices
    }
}
