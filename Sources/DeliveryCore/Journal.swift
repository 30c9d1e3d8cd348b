import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The operations of the closed set the engine accepts.
public enum Operation: String, Sendable, Codable, CaseIterable, CodingKeyRepresentable {
    case secure
    case switchToDelivery = "switch"
    case update
    case restore
    case runAll = "run-all"
    case cancel
    case rollback
    case recover
}

/// `Operation` under a name that does not clash with Foundation's `Operation`.
public typealias DeliveryOperation = Operation

/// Where a delivery stands.
public enum DeliveryPhase: String, Sendable, Codable, CaseIterable {
    /// Production serves; no delivery in progress.
    case idle
    /// The copies are fresh; production still serves.
    case secured
    /// The backup copy serves; production may be changed ("delivery mode").
    case delivering
    /// The backup copy serves; production has been updated.
    case updated
    /// Production serves again; the upgrade runs or failed.
    case restoring
    /// A copy serves after an emergency rollback.
    case rolledBack = "rolled_back"
}

/// A revision of a tree as its VCS names it.
public struct Revision: Sendable, Codable, Equatable {
    /// git commit, svn revision, or a CVS fingerprint of its Entries files.
    public var id: String
    /// A short human label (`main @ 1a2b3c4`, `r42`, `cvs 2026-11-25 10:00:00 UTC`).
    public var label: String
    /// git: the branch checked out, nil when detached.
    public var branch: String?
    /// When it was read (CVS uses it to go back to this state).
    public var readAt: Date

    /// Makes a revision.
    public init(id: String, label: String, branch: String? = nil, readAt: Date = Date()) {
        self.id = id
        self.label = label
        self.branch = branch
        self.readAt = readAt
    }
}

/// What the journal knows of a copy.
public struct CopyRecord: Sendable, Codable, Equatable {
    /// True once a full copy was swapped into place.
    public var complete: Bool
    /// The production revision it was copied from.
    public var revision: Revision?
    /// When the last full copy finished.
    public var copiedAt: Date
    /// Component paths refreshed since, with the revision they came from.
    public var refreshedPaths: [String]
    /// Files and bytes of the last full copy.
    public var files: Int
    public var bytes: Int64
    /// Entries (files, folders, links) of the last full copy: the next copy's progress total.
    public var entries: Int? = nil
    /// The boot of the machine during which the copy was recorded, while its data may still be
    /// only in memory: it is flushed to disk before anything serves it, and a copy recorded in an
    /// earlier boot than this one is not complete (the machine stopped before it was on disk).
    public var unflushedBoot: String? = nil
}

/// Who asked for an operation: carried from the CLI or the signed request into the audit log.
public struct Actor: Sendable, Codable, Equatable {
    /// A person's name or login.
    public var name: String
    /// `cli` or `moodle`.
    public var source: String
    /// The Moodle user id when the request came from the plugin.
    public var moodleUserId: Int?
    /// The uid of the process that asked: the peer of the helper's socket (`SO_PEERCRED`, checked
    /// by the kernel), or the user running `deliveryctl`. Absent in records written before it was
    /// kept.
    public var peerUid: UInt32?
    /// True when `name` and `moodleUserId` are only what the request says: the plugin signs with a
    /// key the web user holds, so any process of the web user can name any Moodle user. What is
    /// proven is `peerUid` and that the key was used (see docs/SECURITY.md, Accountability).
    public var claimed: Bool?

    /// The sources of requests signed with the plugin's key (the plugin, and the emergency console
    /// whose tokens the plugin obtains): anything any process of the web user can send.
    public static let keySources: Set<String> = ["moodle", "console"]

    /// True when the request came with the plugin's key (see `keySources`).
    public var viaKey: Bool { Self.keySources.contains(source) }

    /// Makes an actor.
    public init(
        name: String, source: String, moodleUserId: Int? = nil, peerUid: UInt32? = nil, claimed: Bool? = nil
    ) {
        self.name = name
        self.source = source
        self.moodleUserId = moodleUserId
        self.peerUid = peerUid
        self.claimed = claimed
    }
}

/// An operation that holds the lock (or held it when its process died).
public struct RunningOperation: Sendable, Codable, Equatable {
    public var id: String
    public var operation: Operation
    /// The step under way (run-all goes through several).
    public var step: Operation
    public var actor: Actor
    public var pid: Int32
    public var host: String
    public var startedAt: Date
}

/// The last result of a step.
public struct StepResult: Sendable, Codable, Equatable {
    public var succeeded: Bool
    public var finishedAt: Date
    public var message: String
    public var errorCode: DeliveryError.Code?
}

/// A full copy about to be swapped in: kept so that a crash between swap and record is understood.
public struct PendingSwap: Sendable, Codable, Equatable {
    public var tree: TreeName
    public var staging: String
    public var stagingInode: UInt64
    public var record: CopyRecord
}

/// The delivery state, written atomically to `state.json` after every change.
public struct DeliveryState: Sendable, Codable, Equatable {
    public var phase: DeliveryPhase = .idle
    /// The delivery under way (set by secure, cleared when it ends).
    public var deliveryId: String?
    public var deliveryStartedAt: Date?
    /// Production's revision when the site switched to delivery: what cancel goes back to.
    public var revisionBeforeDelivery: Revision?
    /// Production's revision now, as last read.
    public var productionRevision: Revision?
    /// Paths updated during this delivery (empty string: the whole tree).
    public var updatedPaths: [String] = []
    /// Comments given with the updates.
    public var comments: [String] = []
    /// True once Moodle's upgrade has run in this delivery (the database changed).
    public var upgradeRan = false
    /// True while maintenance mode was turned on by the engine and not yet off.
    public var maintenanceEnabled = false
    /// Files of production that differed from the backup copy when production was last served in
    /// this delivery: PHP-FPM may hold them compiled, so they are dropped from its OPcache again
    /// whenever production changes and is served anew.
    public var servedProductionChanges: [String]?
    public var copies: [TreeName: CopyRecord] = [:]
    public var running: RunningOperation?
    /// The last operation whose process died while holding the lock (cleared by `recover`).
    public var interrupted: RunningOperation?
    public var lastResults: [Operation: StepResult] = [:]
    /// When an emergency rollback last took over.
    public var preemptedAt: Date?
    public var pendingSwap: PendingSwap?
    /// The database snapshot of the current or last delivery.
    public var snapshot: DatabaseSnapshot?
    /// True when Moodle's upgrade moved the database past the code of the copies (an upgrade
    /// started in the current or last delivery, and no secure or database restore since).
    public var databaseAhead: Bool?
    /// True inside the delivery's own window: from the maintenance mode the helper turned on for
    /// the snapshot and the upgrade until the health check that closes it passed. Users have not
    /// written since the snapshot, so a rollback may restore it without asking.
    public var deliveryWindowOpen: Bool?
    /// The critical results of Moodle's checks before the delivery (the health check's baseline).
    public var criticalChecksBefore: [String]?
    /// The last health check.
    public var lastHealthCheck: HealthReport?
    /// Whether each complete copy's code matches the database, as Moodle answered
    /// (`upgrade.php --is-pending`) at the end of the last operation; emptied when an upgrade
    /// starts. The rollback plan picks a copy that matches; nil when never asked.
    public var copiesMatchingDatabase: [TreeName: Bool]?
    /// The process group of the upgrade running now (stopped by a rollback after the helper died).
    public var upgradeProcessGroup: Int32?

    /// Empty state: production serves, nothing secured.
    public init() {}
}

/// A JSON file of root's that several processes read and change: each change is made while
/// holding a mutex file beside it and written atomically (a crash leaves the old or the new file).
struct JSONFileStore<Value: Codable & Sendable>: Sendable {
    let file: String
    let mutexFile: String
    let mode: mode_t
    /// What the file is, for messages ("the delivery state").
    let what: String
    let empty: @Sendable () -> Value

    /// Reads the value; a missing file is the empty value.
    func read() throws(DeliveryError) -> Value {
        let bytes: [UInt8]
        do {
            guard try System.lstatusIfExists(file) != nil else { return empty() }
            bytes = try System.readFile(file, limit: 8 << 20)
        } catch {
            throw DeliveryError.io("cannot read \(what)", error)
        }
        do {
            return try JSONCoding.decode(Value.self, from: bytes)
        } catch {
            throw DeliveryError(.io, "\(what) \(file) is unreadable: \(error)")
        }
    }

    /// Reads, changes and writes the value while holding the mutex. The value is written even
    /// when `change` returns a refusal to report (the caller throws it afterwards).
    @discardableResult
    func update<T>(_ change: (inout Value) throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        let fd: Int32
        do {
            fd = try System.open(mutexFile, O_RDWR | O_CREAT, mode)
            _ = try System.lockFile(fd, wait: true)
        } catch {
            throw DeliveryError.io("cannot take the mutex of \(what)", error)
        }
        defer { System.close(fd) }
        var value = try read()
        let result = try change(&value)
        do {
            try System.writeFileAtomically(file, try JSONCoding.encode(value), mode: mode)
        } catch let error as SystemCallError {
            throw DeliveryError.io("cannot write \(what)", error)
        } catch {
            throw DeliveryError(.io, "cannot write \(what): \(error)")
        }
        return result
    }
}

/// Reads and changes the state file under a mutex, so that the CLI, the responder and an
/// emergency rollback never lose each other's changes.
struct StateStore: Sendable {
    let directory: String
    var stateFile: String { "\(directory)/state.json" }
    var mutexFile: String { "\(directory)/state.lock" }
    private var store: JSONFileStore<DeliveryState> {
        JSONFileStore(file: stateFile, mutexFile: mutexFile, mode: 0o640, what: "the delivery state") {
            DeliveryState()
        }
    }

    /// Reads the state; a missing file is the empty state.
    func read() throws(DeliveryError) -> DeliveryState {
        try store.read()
    }

    /// Reads, changes and writes the state while holding the state mutex.
    @discardableResult
    func update<T>(_ change: (inout DeliveryState) throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        try store.update(change)
    }
}

/// The delivery lock: one operation at a time, across processes.
///
/// An OFD lock on `delivery.lock` (the kernel drops it when the holder dies, so it can never be
/// left "held" by a dead process) plus the journal's `running` entry, written when an operation
/// starts and cleared when it ends. A `running` entry whose lock is free means the holder died:
/// that is reported as an interrupted operation, and nothing starts until `recover` has recorded it.
final class DeliveryLock: @unchecked Sendable {
    private let fd: Int32
    private let id: String

    /// The operations of this process that hold a lock now.
    private static let heldHere = Mutex<Set<String>>([])

    private init(fd: Int32, id: String) {
        self.fd = fd
        self.id = id
    }

    static func path(in directory: String) -> String { "\(directory)/delivery.lock" }

    /// Takes the lock or says who holds it.
    static func acquire(in directory: String, holder: RunningOperation) throws(DeliveryError) -> DeliveryLock {
        let fd: Int32
        do {
            fd = try System.open(path(in: directory), O_RDWR | O_CREAT, 0o640)
        } catch {
            throw DeliveryError.io("cannot open the delivery lock", error)
        }
        var taken: Bool
        do {
            taken = try System.lockFile(fd, wait: false)
            // An operation of this process that has finished may still hold the lock for a moment:
            // a child another thread is starting shares the lock's descriptor until it runs its
            // program. Wait for that (a second at most); a real holder is never waited for.
            var tries = 0
            while !taken, tries < 40, let holder = Self.readHolder(fd: fd), holder.pid == System.processIdentifier,
                !heldHere.withLock({ $0.contains(holder.id) })
            {
                System.sleep(seconds: 0.025)
                taken = try System.lockFile(fd, wait: false)
                tries += 1
            }
        } catch {
            System.close(fd)
            throw DeliveryError.io("cannot take the delivery lock", error)
        }
        guard taken else {
            let current = Self.readHolder(fd: fd)
            System.close(fd)
            throw DeliveryError(.lockHeld, Self.describeHeld(current))
        }
        do {
            try System.truncate(fd)
            try System.writeAt(fd, try JSONCoding.encode(holder, pretty: false))
        } catch {
            // The holder description is informative only; the lock itself is held.
        }
        heldHere.withLock { _ = $0.insert(holder.id) }
        return DeliveryLock(fd: fd, id: holder.id)
    }

    /// Who holds the lock now, or nil when it is free.
    static func currentHolder(in directory: String) -> RunningOperation?? {
        guard let fd = try? System.open(path(in: directory), O_RDONLY) else { return .some(nil) }
        defer { System.close(fd) }
        guard let locked = try? System.isFileLocked(fd) else { return nil }
        return locked ? .some(readHolder(fd: fd)) : .some(nil)
    }

    static func describeHeld(_ holder: RunningOperation?) -> String {
        guard let holder else { return "another delivery operation is running" }
        return
            "\(holder.actor.name) is running '\(holder.operation.rawValue)' since \(holder.startedAt.formatted(.iso8601)) (pid \(holder.pid) on \(holder.host)); wait for it to finish"
    }

    private static func readHolder(fd: Int32) -> RunningOperation? {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return try? JSONCoding.decode(RunningOperation.self, from: Array(buffer[0..<count]))
    }

    /// Releases the lock.
    func release() {
        System.close(fd)
        Self.heldHere.withLock { _ = $0.remove(id) }
    }
}

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
    public var message: String
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
