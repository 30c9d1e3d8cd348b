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
    /// Moodle's upgrade of the next revision, tried on a copy of the database (`Rehearsal`).
    case rehearse
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

/// What the state file knows of a copy.
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
    /// The copy's `CodeFingerprint` when it was made (what Moodle's answers about it depend on);
    /// absent in records written before it was kept.
    public var fingerprint: String? = nil
}

/// Who asked for an operation: carried from the CLI or the signed request into the audit log.
public struct Actor: Sendable, Codable, Equatable {
    /// The `source` of a request a farm's coordinator sent through the node's farm socket.
    public static let farmSource = "farm"

    /// A person's name or login.
    public var name: String
    /// `cli` or `moodle`, or `farm` (`farmSource`).
    public var source: String
    /// True for a request a farm's coordinator sent through this node's farm socket.
    public var isFromFarmCoordinator: Bool { source == Self.farmSource }
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
    /// The farm delivery this request is a part of, when a coordinator sent it to this node
    /// (source `farm`): the same id in every node's audit log.
    public var farmDelivery: String?

    /// The sources of requests signed with the plugin's key (the plugin, and the emergency console
    /// whose tokens the plugin obtains): anything any process of the web user can send.
    public static let keySources: Set<String> = ["moodle", "console"]

    /// The sources of requests that reach the helper through one of its sockets: the plugin's key
    /// (`keySources`) and a farm coordinator through the farm socket (`farm`, the farm's key, which
    /// only the node's farm account holds).
    public static let socketSources: Set<String> = keySources.union([farmSource])

    /// True when the request came with the plugin's key (see `keySources`).
    public var viaKey: Bool { Self.keySources.contains(source) }

    /// Makes an actor.
    public init(
        name: String, source: String, moodleUserId: Int? = nil, peerUid: UInt32? = nil, claimed: Bool? = nil,
        farmDelivery: String? = nil
    ) {
        self.farmDelivery = farmDelivery
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
    /// What happened, in English.
    public var message: String
    public var errorCode: DeliveryError.Code?
    /// The same, as notices (absent in a state written before they existed).
    public var notices: [Notice]?
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
    /// The farm delivery whose operation last asked (`copiesMatchingDatabase`), nil outside one.
    public var copiesMatchingDatabaseFarmDelivery: String?
    /// Moodle's answers to `upgrade.php --is-pending` by what they depend on: the tree's
    /// `CodeFingerprint` and the database's versions (`DatabaseTool.versionsKey`), as
    /// `"<fingerprint> <versions>"`. A copy whose key is here is not asked again (a bootstrap of
    /// PHP each); the newest few are kept.
    public var databaseAnswers: [String: Bool]?
    /// The fingerprint of the code each copy generation's component cache was built for (by the
    /// generation's folder name): a generation refilled with code of the same fingerprint keeps it.
    public var componentCacheFingerprints: [String: String]?
    /// The process group of the upgrade running now (stopped by a rollback after the helper died).
    public var upgradeProcessGroup: Int32?
    /// The last rehearsal (kept until the next one): a failed one blocks the restore of its
    /// revision; a passed one is the revision Update brings.
    public var rehearsal: Rehearsal?
    /// What a farm's `ready` stage found before production is served: the restore of the same
    /// farm delivery that follows serves production at once (`ReadiedRestore.serves`).
    public var readiedRestore: ReadiedRestore?

    /// Empty state: production serves, nothing secured.
    public init() {}
}
