import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One line of the audit log.
public struct AuditRecord: Sendable, Codable, Equatable {
    /// The operation's id (the job id in the responder).
    public var id: String
    public var deliveryId: String?
    public var time: Date
    public var actor: Actor
    public var operation: Operation
    /// `succeeded`, `failed` or `refused`.
    public var result: String
    public var securePath: String?
    public var updatePath: String?
    public var securityCopy: Bool?
    public var comment: String?
    public var revisionBefore: Revision?
    public var revisionAfter: Revision?
    public var servedBefore: TreeName?
    public var servedAfter: TreeName?
    public var phaseAfter: DeliveryPhase?
    public var commands: [CommandSummary]
    public var durationSeconds: Double
    public var errorCode: DeliveryError.Code?
    /// What happened, in English.
    public var message: String
    /// The same, as notices each client words in its language (absent in older records).
    public var notices: [Notice]?
    /// True when the operation put the database back to its snapshot (an emergency rollback, or
    /// the automatic one after a failed upgrade); absent otherwise and in older records.
    public var databaseRestored: Bool?
    /// update: what the update brought (commits, files, versions); absent for a path update.
    public var upstreamChanges: UpstreamChanges?
    /// restore, rollback: Moodle's maintenance mode as the helper turned it on and off.
    public var maintenance: MaintenanceWindow?
    /// restore: the database snapshot taken before Moodle's upgrade.
    public var snapshot: DatabaseSnapshot?
    /// restore: the health check that ran after it.
    public var healthCheck: HealthReport?
    /// True for a Run all the helper started at its scheduled time.
    public var scheduled: Bool?
    /// `scheduled` / `unscheduled` records, and a skipped scheduled Run all: the schedule.
    public var schedule: DeliverySchedule?
    /// run-all: each of its steps.
    public var steps: [AuditStep]?
    /// rehearse (and a Run all that rehearsed first): the rehearsal's result.
    public var rehearsal: Rehearsal?
    /// restore, run-all: true when the administrator confirmed restoring a revision whose
    /// rehearsal failed.
    public var rehearsalOverridden: Bool?
}

/// One step of a Run all, as its audit record keeps it.
public struct AuditStep: Sendable, Codable, Equatable {
    public var operation: Operation
    public var startedAt: Date
    public var durationSeconds: Double
    /// `succeeded`, `failed` or `refused`.
    public var result: String
    public var errorCode: DeliveryError.Code?
    public var notices: [Notice]
}

/// Moodle's maintenance mode during one operation, measured by the helper: from the moment the
/// `on` command finished (users are kept out) to the moment the `off` command finished.
public struct MaintenanceWindow: Sendable, Codable, Equatable {
    /// When it went on; absent when it was already on when the operation started.
    public var onAt: Date?
    /// When it went off; absent when the operation left it on.
    public var offAt: Date?
    /// `offAt - onAt`, when both are known.
    public var seconds: Double?
    /// restore: what Moodle's upgrade took of the window (absent when none ran in it).
    public var upgradeSeconds: Double?
    /// restore: what the database snapshot took of the window (absent when none was taken).
    public var snapshotSeconds: Double?
    /// restore: the rest of the window, the helper's own part (`seconds` less the upgrade and
    /// the snapshot): maintenance on and off, the switch, the health check's commands. The goal
    /// is at most a second (issue 20; `bench/deliver` prints it).
    public var otherSeconds: Double?

    init(
        onAt: Date?, offAt: Date?, seconds: Double?, upgradeSeconds: Double? = nil, snapshotSeconds: Double? = nil
    ) {
        self.onAt = onAt
        self.offAt = offAt
        self.seconds = seconds
        self.upgradeSeconds = upgradeSeconds
        self.snapshotSeconds = snapshotSeconds
        if let seconds, upgradeSeconds != nil || snapshotSeconds != nil {
            // From the tenths each part is shown with, so that the parts shown add up to the whole.
            otherSeconds = max(
                0, Self.tenths(seconds) - Self.tenths(upgradeSeconds ?? 0) - Self.tenths(snapshotSeconds ?? 0))
        }
    }

    /// The window of the changes an operation made, in order: the first `on`, the last `off`
    /// after it, and what the upgrade and the snapshot took of it; nil when it changed nothing.
    static func of(
        _ changes: [(enabled: Bool, at: Date)], upgradeSeconds: Double? = nil, snapshotSeconds: Double? = nil
    ) -> MaintenanceWindow? {
        guard !changes.isEmpty else { return nil }
        let on = changes.first { $0.enabled }?.at
        let off = changes.last { !$0.enabled && (on == nil || $0.at >= on!) }?.at
        return MaintenanceWindow(
            onAt: on, offAt: off, seconds: on.flatMap { start in off.map { $0.timeIntervalSince(start) } },
            upgradeSeconds: upgradeSeconds, snapshotSeconds: snapshotSeconds)
    }

    /// A duration rounded to the tenth of a second it is shown with.
    static func tenths(_ value: Double) -> Double { (value * 10).rounded() / 10 }

    /// The window as one notice (restore's result, the history): its length and its parts, in the
    /// tenths they are shown with.
    var notice: Notice? {
        guard let seconds else { return nil }
        guard upgradeSeconds != nil || snapshotSeconds != nil else {
            return Notice(.maintenanceWindow, ["windowSeconds": .duration(Self.tenths(seconds))])
        }
        return Notice(
            .maintenanceWindowParts,
            [
                "windowSeconds": .duration(Self.tenths(seconds)),
                "upgradeSeconds": .duration(Self.tenths(upgradeSeconds ?? 0)),
                "snapshotSeconds": .duration(Self.tenths(snapshotSeconds ?? 0)),
                "otherSeconds": .duration(Self.tenths(otherSeconds ?? 0)),
            ])
    }
}

/// A child process as the audit log keeps it (no output: outputs may hold site data).
public struct CommandSummary: Sendable, Codable, Equatable {
    public var command: String
    public var user: String
    public var exitCode: Int32?
    public var timedOut: Bool
    public var durationSeconds: Double
}

/// The append-only audit log: one JSON line per operation, fsynced.
struct AuditLog: Sendable {
    let path: String

    func append(_ record: AuditRecord) throws(DeliveryError) {
        do {
            var line = try JSONCoding.encode(record, pretty: false)
            line.append(UInt8(ascii: "\n"))
            try System.appendDurably(path, line, mode: 0o640)
        } catch let error as SystemCallError {
            throw DeliveryError.io("cannot write the audit log", error)
        } catch {
            throw DeliveryError(.io, "cannot write the audit log: \(error)")
        }
    }

    /// The newest records first, at most `limit`, skipping `offset` newest ones.
    func read(limit: Int, offset: Int = 0) throws(DeliveryError) -> [AuditRecord] {
        let bytes: [UInt8]
        do {
            guard try System.lstatusIfExists(path) != nil else { return [] }
            bytes = try Self.readTail(path, bytes: 16 << 20)
        } catch {
            throw DeliveryError.io("cannot read the audit log", error)
        }
        var records: [AuditRecord] = []
        for line in bytes.split(separator: UInt8(ascii: "\n")).reversed() {
            if let record = try? JSONCoding.decode(AuditRecord.self, from: Array(line)) {
                records.append(record)
            }
            if records.count >= offset + limit { break }
        }
        return Array(records.dropFirst(offset))
    }

    /// The records of one delivery, oldest first (only lines naming it are decoded).
    func records(ofDelivery deliveryId: String) throws(DeliveryError) -> [AuditRecord] {
        let bytes: [UInt8]
        do {
            guard try System.lstatusIfExists(path) != nil else { return [] }
            bytes = try Self.readTail(path, bytes: 64 << 20)
        } catch {
            throw DeliveryError.io("cannot read the audit log", error)
        }
        let needle = Array("\"\(deliveryId)\"".utf8)
        return bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            guard line.firstRange(of: needle) != nil,
                let record = try? JSONCoding.decode(AuditRecord.self, from: Array(line)),
                record.deliveryId == deliveryId
            else { return nil }
            return record
        }
    }

    private static func readTail(_ path: String, bytes limit: Int) throws(SystemCallError) -> [UInt8] {
        let fd = try System.open(path, O_RDONLY)
        defer { System.close(fd) }
        let size = try System.fileStatus(fd).size
        let start = max(0, size - Int64(limit))
        var result = [UInt8](repeating: 0, count: Int(size - start))
        var done = 0
        while done < result.count {
            let count = result.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, $0.count - done, off_t(start) + off_t(done))
            }
            if count <= 0 { break }
            done += count
        }
        result.removeLast(result.count - done)
        if start > 0, let firstNewline = result.firstIndex(of: UInt8(ascii: "\n")) {
            result.removeFirst(firstNewline + 1)
        }
        return result
    }
}
