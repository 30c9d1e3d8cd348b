#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One delivery as its audit records tell it (docs/protocol.md, `GET /reports/{deliveryId}`): who,
/// when, what it brought, each step, the maintenance window, the snapshot, the health check and
/// any rollback. Made from the records alone, so it says only what happened.
public struct DeliveryReport: Sendable, Codable, Equatable {
    /// How the delivery ended (so far).
    public enum Outcome: String, Sendable, Codable {
        case delivered, failed, cancelled
        case rolledBack = "rolled_back"
        case inProgress = "in_progress"
    }

    /// One step: an operation, or a step of a Run all.
    public struct Step: Sendable, Codable, Equatable {
        public var id: String
        public var operation: Operation
        public var actor: Actor
        public var startedAt: Date
        public var durationSeconds: Double
        public var result: String
        public var errorCode: DeliveryError.Code?
        public var notices: [Notice]
    }

    /// What a rollback in the delivery did.
    public struct Rollback: Sendable, Codable, Equatable {
        public var at: Date
        public var served: TreeName?
        public var databaseRestored: Bool
        public var revision: Revision?
    }

    public var deliveryId: String
    public var startedAt: Date
    public var finishedAt: Date
    public var actor: Actor
    public var scheduled: Bool
    public var comments: [String]
    public var outcome: Outcome
    public var revisionFrom: Revision?
    public var revisionTo: Revision?
    public var commits: [UpstreamCommit] = []
    public var commitCount = 0
    public var added: [String] = []
    public var changed: [String] = []
    public var removed: [String] = []
    public var fileCount = 0
    public var versionChanges: [VersionChange] = []
    public var steps: [Step] = []
    public var maintenance: MaintenanceWindow?
    public var snapshot: DatabaseSnapshot?
    public var healthCheck: HealthReport?
    public var rollback: Rollback?
    /// The rehearsal of the revision delivered (its own, or the last before it), when there was one.
    public var rehearsal: Rehearsal?

    /// The report of the records of one delivery, oldest first; nil when there are none.
    public init?(records: [AuditRecord]) {
        guard let first = records.first, let last = records.last else { return nil }
        deliveryId = first.deliveryId ?? first.id
        startedAt = first.time
        finishedAt = last.time.addingTimeInterval(last.durationSeconds)
        actor = first.actor
        scheduled = first.scheduled ?? false
        comments = records.compactMap { $0.result == "succeeded" ? $0.comment : nil }.filter { !$0.isEmpty }
        // Production before the update (a Run all's record says it too), else when it was secured.
        revisionFrom =
            records.first { [.update, .runAll].contains($0.operation) && $0.revisionBefore != nil }?.revisionBefore
            ?? records.first { $0.operation == .secure }?.revisionAfter
        revisionTo = records.last { $0.result == "succeeded" && $0.revisionAfter != nil }?.revisionAfter
        var outcome = Outcome.inProgress
        for record in records where record.result != "started" {
            if let brought = record.upstreamChanges, record.result == "succeeded" {
                commits += brought.commits
                commitCount += brought.commitCount
                added += brought.added
                changed += brought.changed
                removed += brought.removed
                fileCount += brought.fileCount
                versionChanges += brought.versionChanges
            }
            for step in record.steps ?? [] {
                steps.append(
                    Step(
                        id: record.id, operation: step.operation, actor: record.actor, startedAt: step.startedAt,
                        durationSeconds: step.durationSeconds, result: step.result, errorCode: step.errorCode,
                        notices: step.notices))
            }
            if record.steps == nil {
                steps.append(
                    Step(
                        id: record.id, operation: record.operation, actor: record.actor, startedAt: record.time,
                        durationSeconds: record.durationSeconds, result: record.result, errorCode: record.errorCode,
                        notices: record.notices ?? []))
            }
            if let window = record.maintenance {
                maintenance = MaintenanceWindow.joined(maintenance, window)
            }
            if let snapshot = record.snapshot { self.snapshot = snapshot }
            if let health = record.healthCheck { healthCheck = health }
            if let tried = record.rehearsal { rehearsal = tried }
            if record.result == "failed" { outcome = .failed }
            guard record.result == "succeeded" else { continue }
            switch record.operation {
            case .restore, .runAll: outcome = .delivered
            case .cancel: outcome = .cancelled
            case .rollback:
                outcome = .rolledBack
                rollback = Rollback(
                    at: record.time, served: record.servedAfter, databaseRestored: record.databaseRestored ?? false,
                    revision: record.revisionAfter)
            default: break
            }
        }
        if records.contains(where: { $0.databaseRestored == true }) && rollback == nil, let failed = records.last {
            // The automatic rollback after a failed upgrade or health check.
            rollback = Rollback(
                at: failed.time, served: failed.servedAfter, databaseRestored: true, revision: failed.revisionAfter)
            outcome = .rolledBack
        }
        self.outcome = outcome
    }
}

extension MaintenanceWindow {
    /// Two operations' windows as one: the first `on`, the last `off`.
    static func joined(_ earlier: MaintenanceWindow?, _ later: MaintenanceWindow) -> MaintenanceWindow {
        guard let earlier else { return later }
        let on = earlier.onAt ?? later.onAt
        let off = later.offAt ?? earlier.offAt
        let parts = [earlier, later].filter { $0.upgradeSeconds != nil || $0.snapshotSeconds != nil }
        return MaintenanceWindow(
            onAt: on, offAt: off, seconds: on.flatMap { start in off.map { $0.timeIntervalSince(start) } },
            upgradeSeconds: parts.isEmpty ? nil : parts.reduce(0) { $0 + ($1.upgradeSeconds ?? 0) },
            snapshotSeconds: parts.isEmpty ? nil : parts.reduce(0) { $0 + ($1.snapshotSeconds ?? 0) })
    }
}
