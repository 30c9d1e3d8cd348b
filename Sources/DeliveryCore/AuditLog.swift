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
