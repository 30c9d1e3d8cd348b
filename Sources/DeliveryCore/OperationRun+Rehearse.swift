#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// Rehearse: Moodle's upgrade of the next revision, tried on a private copy of the database
// while production keeps serving. Nothing of the site is written: its code, database, dataroot,
// caches and sessions are left alone; what the rehearsal makes (a tree, a scratch dataroot, its
// settings, a database) is removed at its end, or by the next rehearsal or `recover`.
extension OperationRun {
    /// The folder of a rehearsal's files, beside `releases/` (never served).
    var rehearsalFolder: String { "\(layout.root)/rehearsal" }

    /// Everything a rehearsal works with, found before it makes anything.
    private struct RehearsalPlan {
        var base: Revision
        var revision: Revision
        /// nil when production already holds the code (state `updated`).
        var changes: UpstreamChanges?
        var tool: DatabaseTool
        var copyName: String
        var siteConfig: String
        var webUser: UserIdentity
    }

    /// - Parameter automatic: a Run all's rehearsal, which is skipped when the upstream changes
    ///   no version (Moodle then has nothing to upgrade).
    func rehearse(automatic: Bool = false) throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        if !automatic { try requireAllowed(.rehearse, state) }
        let plan = try planRehearsal(state)
        (revisionBefore, revisionAfter) = (plan.base, plan.revision)
        if automatic, let changes = plan.changes, !changes.versionChanges.contains(where: { !$0.backwards }) {
            return [Notice(.rehearsalNotNeeded, ["revision": .revision(plan.revision)])]
        }
        try removeRehearsalLeftovers(plan.tool)
        try checkRehearsalRoom(plan)
        let leftovers = RehearsalLeftovers(id: id, database: plan.copyName, folder: rehearsalFolder)
        try writeLeftovers(leftovers)
        // From here on the rehearsal has made something: a failure is a failure, not a refusal.
        mutated = true
        let started = (Date(), System.monotonicSeconds())
        var result = Rehearsal(
            id: id, startedAt: started.0, finishedAt: started.0, revision: plan.revision, base: plan.base,
            updatedProduction: plan.changes == nil, passed: false, upgradeSeconds: nil, totalSeconds: 0,
            databaseCopyBytes: 0, databaseCopySeconds: 0)
        var failure: DeliveryError?
        do {
            try runRehearsal(plan, into: &result)
        } catch {
            failure = error
        }
        for problem in cleanUpRehearsal(leftovers, tool: plan.tool) { result.remarks.append(problem) }
        result.finishedAt = Date()
        result.totalSeconds = System.monotonicSeconds() - started.1
        if let failure, result.failure == nil {
            // The rehearsal itself could not run (a copy, the database): nothing is concluded of
            // the revision, and nothing is recorded against it. Said with its reason (an `io`
            // error's own words are kept from the page; these name the site's folders only).
            throw failure.code == .cannotRehearse || failure.code == .preempted
                ? failure : DeliveryError(.cannotRehearse, "the rehearsal could not run: \(failure.message)")
        }
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in state.rehearsal = result }
        rehearsalRecord = result
        note("Rehearsal finished in \(NoticeValue.seconds(result.totalSeconds)): \(result.notices.english)")
        if !result.passed {
            throw DeliveryError(.rehearsalFailed, message: result.notices.english, notices: result.notices)
        }
        return result.notices
    }

    /// What to rehearse and with what: refused (nothing made) when it cannot run.
    private func planRehearsal(_ state: DeliveryState) throws(DeliveryError) -> RehearsalPlan {
        let configuration = engine.configuration
        let production = layout.path(of: .production)
        let vcs = try engine.versionControl(recorder)
        let webUser = try UserIdentity.lookup(configuration.webUser)
        _ = try UserIdentity.lookup(configuration.codeOwner)  // refused here, before anything is made
        let connection: DatabaseConnection
        do {
            connection = try DatabaseConnection.read(
                php: configuration.php, codeRoot: layout.codeRoot(of: .production), webUser: webUser)
        } catch {
            throw DeliveryError(.cannotRehearse, "the rehearsal needs the database: \(error.message)")
        }
        let siteConfig = try readSiteConfig(webUser)
        guard RehearsalPHP.loadsSetupRelatively(siteConfig) else {
            throw DeliveryError(
                .cannotRehearse,
                "config.php does not load lib/setup.php relatively to itself (require_once(__DIR__ . '/lib/setup.php'), as Moodle writes it), so a rehearsal cannot point its settings at a copy of the database"
            )
        }
        let tool = DatabaseTool(
            connection: connection, webUser: webUser, recorder: recorder,
            timeout: configuration.snapshotSettings.timeoutSeconds)
        if connection.family == .postgres,
            (try? tool.query("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"))?.first == "f"
        {
            throw DeliveryError(.cannotRehearse, "\(connection.user) may not create databases: \(tool.grantAdvice)")
        }
        var plan: (base: Revision, revision: Revision, changes: UpstreamChanges?)
        if state.phase == .updated {
            let now = try vcs.revision(of: production, recorder: recorder)
            plan = (state.revisionBeforeDelivery ?? now, now, nil)
            note("Rehearsing production's updated code, \(now.label), on a copy of the database…")
        } else {
            let base = try vcs.revision(of: production, recorder: recorder)
            try requireUpdatable()
            let changes = try engine.upstreamWatch(recorder).changes(target: nil)
            // The whole lists (the watch keeps the first ones): every file is brought.
            let full = try vcs.upstreamChanges(
                of: production, target: engine.configuration.upstream.kind == .cvs ? nil : changes.revision.id,
                recorder: recorder)
            guard full.commitCount > 0 || !(full.added + full.changed + full.removed).isEmpty else {
                throw DeliveryError(.cannotRehearse, [Notice(.rehearsalNothing, ["revision": .revision(base)])])
            }
            var complete = full
            complete.versionChanges = changes.versionChanges
            plan = (base, full.revision, complete)
            note(
                "Rehearsing \(full.revision.label) (\(full.commitCount) commits, \(full.added.count + full.changed.count + full.removed.count) files) on copies of production and of the database; production keeps serving…"
            )
        }
        return RehearsalPlan(
            base: plan.base, revision: plan.revision, changes: plan.changes, tool: tool,
            copyName: Rehearsal.databaseName(site: connection.name, id: id), siteConfig: siteConfig,
            webUser: webUser)
    }

    /// The site's `config.php`, read by PHP as the web user (it is the web server's to read).
    private func readSiteConfig(_ webUser: UserIdentity) throws(DeliveryError) -> String {
        let file = "\(layout.path(of: .production))/config.php"
        let result = try ChildProcess.run(
            Command(
                engine.configuration.php, ["-n", "-r", "readfile($argv[1]);", file], user: webUser,
                workingDirectory: "/", timeoutSeconds: 60, outputLimit: 1 << 20))
        guard result.succeeded, result.standardOutput.hasPrefix("<?php") else {
            throw DeliveryError(.cannotRehearse, "cannot read \(file) as \(webUser.name)")
        }
        return result.standardOutput
    }

    /// Room for the dump (in the state directory), the tree (beside `releases/`) and, when the
    /// database server says where its data is, the database copy; each with `reservedBytes` left.
    private func checkRehearsalRoom(_ plan: RehearsalPlan) throws(DeliveryError) {
        let database = try plan.tool.estimatedSize()
        let tree = Self.measure(layout.path(of: .production)).bytes
        let reserve = Self.reservedBytes
        var needs: [(folder: String, bytes: Int64)] = [
            (engine.configuration.stateDirectory, database), (layout.root, tree),
        ]
        if let free = plan.tool.serverFreeBytes(), free < database + reserve {
            throw DeliveryError(
                .cannotRehearse,
                "the database server has \(formatBytes(free)) free; a copy of Moodle's tables needs \(formatBytes(database + reserve))"
            )
        }
        if needs[0].folder == needs[1].folder || (try? System.realPath(needs[0].folder)) == nil {
            needs = [(layout.root, database + tree)]
        }
        for need in needs {
            guard let free = try? System.availableBytes(need.folder) else { continue }
            guard free >= need.bytes + reserve else {
                throw DeliveryError(
                    .noRoom,
                    "not enough room for the rehearsal in \(need.folder): \(formatBytes(free)) free, \(formatBytes(need.bytes + reserve)) needed"
                )
            }
        }
    }

    /// The rehearsal itself, once its leftovers are recorded: the tree, the settings, the copy
    /// of the database, the upgrade, Moodle's checks, the comparison.
    private func runRehearsal(_ plan: RehearsalPlan, into result: inout Rehearsal) throws(DeliveryError) {
        let configuration = engine.configuration
        let folder = rehearsalFolder
        let tree = "\(folder)/tree"
        let dataroot = "\(folder)/dataroot"
        let settings = "\(folder)/settings"
        do {
            // Root's, writable by nobody else; readable, for the copy worker (the code owner) opens
            // its tree there, and the web user reaches its dataroot and settings through it.
            try System.makeDirectory(folder, 0o755)
        } catch {
            throw DeliveryError.io("cannot make \(folder)", error)
        }
        note("Rehearsal: copying production's code…")
        _ = try copy(CopyJob(source: layout.path(of: .production), target: tree, preserving: ["config.php"]))
        if let changes = plan.changes {
            note("Rehearsal: bringing the copy to \(plan.revision.label)…")
            try engine.versionControl(recorder).applyUpstream(
                changes, from: layout.path(of: .production), onto: tree, recorder: recorder)
        }
        try writeRehearsalSettings(plan, tree: tree, dataroot: dataroot, settings: settings)

        note("Rehearsal: copying Moodle's tables into \(plan.copyName)…")
        let copyStarted = System.monotonicSeconds()
        let dump = "\(configuration.stateDirectory)/rehearsal-\(id).dump"
        defer {
            try? System.unlink(dump)
            try? System.unlink("\(dump).tables")
        }
        do {
            try plan.tool.dump(into: dump, tables: try plan.tool.tables(), lowPriority: true)
        } catch {
            throw DeliveryError(.cannotRehearse, "the rehearsal's dump failed: \(error.message)")
        }
        try plan.tool.createDatabase(plan.copyName)
        let copy = plan.tool.on(plan.copyName)
        try copy.load(dump)
        result.databaseCopySeconds = System.monotonicSeconds() - copyStarted
        result.databaseCopyBytes = (try? copy.estimatedSize()) ?? 0
        note(
            "Rehearsal: the copy holds \(formatBytes(result.databaseCopyBytes)) (made in \(NoticeValue.seconds(result.databaseCopySeconds)))."
        )
        let schemaBefore = try copy.columns()
        let versionsBefore = try copy.componentVersions()
        let php = RehearsalPHPRunner(
            moodle: try engine.moodle(recorder), tree: layout.publicLayout ? "\(tree)/public" : tree)
        let pending: Bool
        do {
            pending = try php.upgradePending()
        } catch {
            // The new code cannot even say whether it needs an upgrade: a failure of the revision.
            result.failure = RehearsalFailure(message: error.message)
            result.notices = [
                Notice(
                    .rehearsalUpgradeFailed,
                    ["revision": .revision(plan.revision), "component": "core", "message": .text(error.message)])
            ]
            return
        }
        let checksBefore = php.criticalChecks()
        var failures: [Notice] = []
        if pending {
            note("Rehearsal: running Moodle's upgrade on the copy…")
            let upgradeStarted = System.monotonicSeconds()
            let upgrade = try php.upgrade { group in
                try? self.writeLeftovers(
                    RehearsalLeftovers(
                        id: self.id, database: plan.copyName, folder: folder, upgradeProcessGroup: group))
            }
            result.upgradeSeconds = System.monotonicSeconds() - upgradeStarted
            var versionsAfter = versionsBefore
            do {
                versionsAfter = try copy.componentVersions()
                result.upgraded = DatabaseTool.upgrades(from: versionsBefore, to: versionsAfter)
                result.schema = SchemaDiff.between(schemaBefore, try copy.columns())
            } catch {
                result.remarks.append("The copy could not be read after the upgrade: \(error.message)")
            }
            if !upgrade.succeeded {
                var failure = RehearsalFailure.parse(
                    upgrade.combinedOutput, exitDescription: MoodleCLI.lastLines(upgrade))
                if let component = failure.component { failure.reachedVersion = versionsAfter[component] }
                result.failure = failure
                failures.append(
                    Notice(
                        .rehearsalUpgradeFailed,
                        [
                            "revision": .revision(plan.revision), "component": .text(failure.component ?? "unknown"),
                            "message": .text(failure.message),
                        ]))
            }
        }
        if failures.isEmpty {
            if try php.upgradePending() {
                result.failure = RehearsalFailure(message: "an upgrade is still pending after the upgrade")
                failures.append(Notice(.rehearsalStillPending, ["revision": .revision(plan.revision)]))
            } else if let after = php.criticalChecks() {
                let new = after.subtracting(checksBefore ?? [])
                result.knownCriticalChecks = after.intersection(checksBefore ?? []).sorted()
                if checksBefore != nil && !new.isEmpty {
                    result.newCriticalChecks = new.sorted()
                    result.failure = RehearsalFailure(
                        message: "new critical results: \(new.sorted().joined(separator: ", "))")
                    failures.append(
                        Notice(
                            .rehearsalNewChecks,
                            ["revision": .revision(plan.revision), "references": .list(new.sorted())]))
                } else if checksBefore == nil && !after.isEmpty {
                    result.remarks.append(
                        "Moodle's checks could not run before the upgrade; after it they report: \(after.sorted().joined(separator: ", "))"
                    )
                }
            }
        }
        result.passed = failures.isEmpty
        if !failures.isEmpty {
            result.notices = failures
        } else if pending {
            result.notices = [
                Notice(
                    .rehearsalPassed,
                    [
                        "revision": .revision(plan.revision), "upgradeSeconds": .duration(result.upgradeSeconds ?? 0),
                        "copyBytes": .number(result.databaseCopyBytes),
                        "copySeconds": .duration(result.databaseCopySeconds),
                        "componentCount": .count(result.upgraded.count),
                        "tableCount": .count(result.schema.addedTables.count + result.schema.droppedTables.count),
                        "columnCount": .count(
                            result.schema.addedColumns.count + result.schema.droppedColumns.count
                                + result.schema.changedColumns.count),
                    ])
            ]
        } else {
            result.notices = [
                Notice(
                    .rehearsalNoUpgrade,
                    ["revision": .revision(plan.revision), "copyBytes": .number(result.databaseCopyBytes)])
            ]
        }
    }

    /// The tree's `config.php` and the private folder it loads the site's settings from (root's,
    /// readable by the web server's group), and the scratch dataroot (the web user's).
    private func writeRehearsalSettings(
        _ plan: RehearsalPlan, tree: String, dataroot: String, settings: String
    ) throws(DeliveryError) {
        let group = plan.webUser.gid
        do throws(SystemCallError) {
            try System.makeDirectory(dataroot, 0o700)
            let datarootFolder = try System.openDirectory(at: AT_FDCWD, dataroot)
            try System.fileChangeOwner(datarootFolder, uid: plan.webUser.uid, gid: plan.webUser.gid)
            System.close(datarootFolder)
            for path in [settings, "\(settings)/lib", "\(settings)/public", "\(settings)/public/lib"] {
                try System.makeDirectory(path, 0o750)
                let made = try System.openDirectory(at: AT_FDCWD, path)
                try System.fileChangeOwner(made, uid: 0, gid: group)
                System.close(made)
            }
            let root = try System.openDirectory(at: AT_FDCWD, settings)
            defer { System.close(root) }
            try System.writeFileAtomically(
                at: root, "config.php", Array(plan.siteConfig.utf8), mode: 0o640, owner: (0, group))
            for (below, code) in [("lib", tree), ("public/lib", "\(tree)/public")] {
                let folder = try System.openDirectory(at: root, below)
                defer { System.close(folder) }
                let stub = RehearsalPHP.setupStub(
                    database: plan.copyName, dataroot: dataroot, treeSetup: "\(code)/lib/setup.php")
                try System.writeFileAtomically(
                    at: folder, "setup.php", Array(stub.utf8), mode: 0o640, owner: (0, group))
            }
            // Into the copy's tree (the code owner's) through descriptors: no link followed.
            let treeFolder = try System.openDirectory(at: AT_FDCWD, tree)
            defer { System.close(treeFolder) }
            try System.writeFileAtomically(
                at: treeFolder, "config.php", Array(RehearsalPHP.treeConfig(settingsFolder: settings).utf8),
                mode: 0o640, owner: (0, group))
        } catch {
            throw DeliveryError.io("cannot write the rehearsal's settings", error)
        }
    }
}
