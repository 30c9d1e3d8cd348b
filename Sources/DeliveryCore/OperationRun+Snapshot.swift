#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// The database snapshot of a restore: planned before the maintenance window, taken inside it.
extension OperationRun {
    /// What the snapshot needs, found before the maintenance window: the database's settings and
    /// tool, the folder, room for the dump, and whether the server's own copy serves.
    struct SnapshotPlan {
        let tool: DatabaseTool
        let connection: DatabaseConnection
        let directory: String
        let estimate: Int64
        /// The tool on the maintenance database when the snapshot is the server's own copy.
        let copyFrom: DatabaseTool?
        /// The server's `server_version_num` (for the copy).
        let serverVersion: Int
        /// Room for a dump in the folder (the fall-back when the copy cannot be made).
        let dumpFits: Bool
    }

    /// Reads the database settings, finds whether the server's own copy can be the snapshot
    /// (`database.method`) and checks the room for a dump, before maintenance mode goes on (none
    /// of it needs users held out, and the window is shorter for it).
    func planSnapshot() throws(DeliveryError) -> SnapshotPlan {
        let configuration = engine.configuration
        let method = configuration.snapshotSettings.method
        let webUser = try UserIdentity.lookup(configuration.webUser)
        let connection = try DatabaseConnection.read(
            php: configuration.php, codeRoot: layout.codeRoot(of: .production), webUser: webUser)
        let tool = DatabaseTool(
            connection: connection, webUser: webUser, recorder: recorder,
            timeout: configuration.snapshotSettings.timeoutSeconds)
        var copyFrom: DatabaseTool?
        var serverVersion = 0
        if method != .dump {
            let (obstacle, outside, version) = tool.copyObstacle()
            serverVersion = version
            if let obstacle {
                guard method == .auto else {
                    throw DeliveryError(
                        .snapshotFailed,
                        "database.method is \"copy\", but the server cannot copy the database: \(obstacle)")
                }
                note("Database snapshot: a dump (the server's own copy cannot serve: \(obstacle)).")
            }
            copyFrom = outside
        }
        let directory = configuration.snapshotDirectory
        do {
            try SiteAdoption.makeDirectories(directory, mode: 0o700)
            try System.changeMode(directory, 0o700)
        } catch {
            throw DeliveryError.io("cannot make the snapshot folder", error)
        }
        let estimate = try tool.estimatedSize()
        let available: Int64
        do {
            available = try System.availableBytes(directory)
        } catch {
            throw DeliveryError.io("cannot read the free space of \(directory)", error)
        }
        let dumpFits = available > estimate + (16 << 20)
        guard dumpFits || copyFrom != nil else {
            throw DeliveryError(
                .snapshotFailed,
                "not enough free space for the database snapshot in \(directory): \(formatBytes(available)) free, Moodle's tables take \(formatBytes(estimate))"
            )
        }
        return SnapshotPlan(
            tool: tool, connection: connection, directory: directory, estimate: estimate, copyFrom: copyFrom,
            serverVersion: serverVersion, dumpFits: dumpFits)
    }

    /// Takes the database snapshot of this delivery, inside the maintenance window: Moodle's
    /// database as it is once users are held out, copied by the server or dumped.
    func takeSnapshot(_ plan: SnapshotPlan) throws(DeliveryError) {
        let configuration = engine.configuration
        let (tool, connection, directory) = (plan.tool, plan.connection, plan.directory)
        let started = System.monotonicSeconds()
        let tables = try tool.tables()
        guard !tables.isEmpty else {
            throw DeliveryError(
                .snapshotFailed,
                "the database \(connection.name) has no table with the prefix '\(connection.prefix)'")
        }
        let state = try store.read()
        let name = state.deliveryId ?? id
        let takenAt = Date()
        var snapshot = DatabaseSnapshot(
            id: name, file: "", databaseType: connection.type, database: connection.name,
            tableCount: tables.count, takenAt: takenAt, sizeBytes: 0, seconds: 0,
            codeRevision: state.revisionBeforeDelivery ?? state.copies[.backup]?.revision)
        if let outside = plan.copyFrom {
            let copy = DatabaseCopyName.make(.snapshot, site: connection.name, id: id)
            note(
                "Database snapshot: the server copies \(connection.name) (\(formatBytes(plan.estimate)) of Moodle's tables) into \(copy)…"
            )
            do {
                let ended = try outside.copyDatabase(
                    connection.name, into: copy, large: plan.estimate >= 256 << 20, serverVersion: plan.serverVersion)
                if ended > 0 {
                    note(
                        "Database snapshot: ended \(ended) session\(ended == 1 ? "" : "s") of \(connection.user) still on the database (a cron task or a pooled connection; Moodle runs a failed task again)."
                    )
                }
                snapshot.copyDatabase = copy
                snapshot.sizeBytes = outside.databaseSize(copy)
            } catch {
                guard configuration.snapshotSettings.method == .auto, plan.dumpFits else { throw error }
                note("Database snapshot: \(error.message); dumping Moodle's tables instead.")
            }
        }
        if snapshot.copyDatabase == nil {
            let file = "\(directory)/\(name).\(connection.family == .postgres ? "pgdump" : "sql")"
            note(
                "Database snapshot: dumping \(tables.count) tables of \(connection.name) (\(formatBytes(plan.estimate)) in the database) into \(file)…"
            )
            try tool.dump(into: file, tables: tables)
            snapshot.file = file
            snapshot.sizeBytes = (try? System.lstatus(file).size) ?? 0
        }
        snapshot.seconds = System.monotonicSeconds() - started
        snapshotTaken = snapshot
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.snapshot = snapshot }
        note(
            "Database snapshot: \(formatBytes(snapshot.sizeBytes)) in \(format1(snapshot.seconds)) s (the time it adds to the maintenance window)."
        )
        if snapshot.copyDatabase == nil {
            for removed in DatabaseTool.prune(
                directory, keep: configuration.snapshotSettings.keep, protecting: snapshot.file)
            {
                note("Removed the older snapshot \(removed) (keeping \(configuration.snapshotSettings.keep)).")
            }
        }
    }

    /// Drops the older snapshot copies and replaced databases of the site once the window is
    /// closed (a dropped database is a checkpoint and its files unlinked: not for the window).
    func pruneSnapshotCopies(_ plan: SnapshotPlan?) {
        guard let plan, let outside = plan.copyFrom, let kept = snapshotTaken?.copyDatabase else { return }
        let keep = engine.configuration.snapshotSettings.keep
        for removed in outside.pruneCopies(of: plan.connection.name, keep: keep, protecting: [kept]) {
            note("Removed the older database copy \(removed) (keeping \(keep) of each kind).")
        }
    }
}
