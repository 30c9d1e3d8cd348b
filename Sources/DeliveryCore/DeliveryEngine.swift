import Logging

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A progress event of a running operation, in order.
public enum ProgressEvent: Sendable, Equatable, Codable {
    /// A step begins (run-all goes through several).
    case stepStarted(Operation)
    /// A line of the log (commands and their output, the engine's own notes).
    case line(String)
    /// How far the current step is, from 0 to 1, where it can tell.
    case fraction(Operation, Double)
    /// A step ended.
    case stepFinished(Operation, succeeded: Bool, notices: [Notice])
}

/// The end of an operation that ran to its end.
public struct OperationOutcome: Sendable, Codable, Equatable {
    /// The operation's id (as in the audit log).
    public var id: String
    /// The operation.
    public var operation: Operation
    /// What happened and what to do next, in English.
    public var message: String
    /// The same, as notices each client words in its language.
    public var notices: [Notice]
    /// The state afterwards.
    public var phase: DeliveryPhase
    /// The tree served afterwards.
    public var served: TreeName?
}

/// A copy as `status` shows it.
public struct CopyStatus: Sendable, Codable, Equatable {
    public var exists: Bool
    public var complete: Bool
    public var revision: Revision?
    public var copiedAt: Date?
    public var refreshedPaths: [String]
}

/// Everything `status` reports: cheap to compute (no child process), so it can be polled.
public struct SiteStatus: Sendable, Codable, Equatable {
    public var phase: DeliveryPhase
    /// The tree `current` points at (nil when it points nowhere the engine knows).
    public var served: TreeName?
    public var publicLayout: Bool
    public var siteRoot: String
    public var wwwroot: String
    public var vcs: VersionControlKind
    public var productionRevision: Revision?
    public var revisionBeforeDelivery: Revision?
    public var copies: [TreeName: CopyStatus]
    public var deliveryId: String?, deliveryStartedAt: Date?
    /// The operation running now, and who runs it.
    public var running: RunningOperation?
    /// An operation whose process died while running (run `recover`).
    public var interrupted: RunningOperation?
    public var lastResults: [Operation: StepResult]
    /// The operations the state allows now.
    public var allowed: [Operation]
    /// The copy an emergency rollback would serve.
    public var rollbackTarget: TreeName?
    public var upgradeRan: Bool, maintenanceEnabled: Bool
    public var comments: [String]
    /// The prebuilt component cache file each tree carries, when the site uses one.
    public var componentCacheFile: String?
    /// What an emergency rollback would do now.
    public var rollback: RollbackPlan
    /// The database snapshot of the current or last delivery.
    public var snapshot: DatabaseSnapshot?
    /// True inside the delivery's own window (maintenance by the helper until the health check).
    public var deliveryWindowOpen: Bool
    /// The last health check after "restore production".
    public var lastHealthCheck: HealthReport?
    /// The Moodle user ids enrolled for the second factor (`deliveryctl admin enrol-totp`): a
    /// database restore outside the delivery window asked with the plugin's key needs one's code.
    public var secondFactorEnrolled: [Int]?
    /// The last upstream check (`POST /upstream-checks`, `deliveryctl check-upstream`).
    public var upstream: UpstreamPreview?
    /// The scheduled Run all, when one is set.
    public var schedule: DeliverySchedule?
    /// The last rehearsal, and whether it tried what a delivery would bring now.
    public var rehearsal: Rehearsal?, rehearsalCurrent: Bool?
    /// The other nodes of the site's web farm, by name (none: a single node); their state is
    /// `GET /farm`'s, asked over SSH.
    public var farmNodes: [String]? = nil
}

/// What an emergency rollback would do, shown before it is asked for.
public struct RollbackPlan: Sendable, Codable, Equatable {
    /// The kinds of rollback.
    public enum Kind: String, Sendable, Codable {
        /// Serve the older code; the database stays as it is.
        case code
        /// Maintenance mode, serve the older code and restore the database snapshot.
        case codeAndDatabase = "code_and_database"
        /// No complete copy to serve.
        case unavailable
    }

    /// The kind.
    public var kind: Kind
    /// The copy it serves.
    public var target: TreeName?
    /// The snapshot it restores (code and database).
    public var snapshot: DatabaseSnapshot?
    /// Seconds since the snapshot was taken.
    public var snapshotAgeSeconds: Double?
    /// True when the site was open to users since the snapshot: the rollback would lose what
    /// they wrote, so it needs an explicit confirmation.
    public var needsConfirmation: Bool
    /// One paragraph for the administrator, in English.
    public var explanation: String
    /// The same, as notices each client words in its language.
    public var notices: [Notice]

    init(
        kind: Kind, target: TreeName?, snapshot: DatabaseSnapshot?, snapshotAgeSeconds: Double?,
        needsConfirmation: Bool, notices: [Notice]
    ) {
        self.kind = kind
        self.target = target
        self.snapshot = snapshot
        self.snapshotAgeSeconds = snapshotAgeSeconds
        self.needsConfirmation = needsConfirmation
        self.explanation = notices.english
        self.notices = notices
    }
}

/// The delivery engine: the four steps, run all, cancel, emergency rollback and recovery, on one
/// site. The CLI and the responder both drive it; it holds no state in memory between calls
/// (the state directory is the truth), so several processes can use it safely.
public final class DeliveryEngine: Sendable {
    /// The site's configuration.
    public let configuration: SiteConfiguration
    /// The site's layout.
    public let layout: SiteLayout
    let store: StateStore
    let audit: AuditLog
    let logger: Logger
    /// The administrators' second factor, for destructive operations asked with the plugin's key.
    public let secondFactor: SecondFactor
    /// The site's name (`SiteDirectory`): what every node of its farm must serve too.
    public let siteName: String

    /// Makes an engine for a configured site; creates the state directory when missing.
    /// - Throws: `DeliveryError` when the configuration is invalid or the state directory unusable.
    public init(
        configuration: SiteConfiguration, siteName: String = SiteDirectory.legacyName,
        logger: Logger = Logger(label: "delivery")
    ) throws(DeliveryError) {
        try configuration.validate()
        self.siteName = siteName
        self.configuration = configuration
        self.layout = SiteLayout(
            root: configuration.siteRoot, publicLayout: configuration.publicLayout,
            adminDirectory: configuration.moodle.admin)
        self.store = StateStore(directory: configuration.stateDirectory)
        self.audit = AuditLog(path: "\(configuration.stateDirectory)/audit.log")
        self.secondFactor = SecondFactor(
            stateDirectory: configuration.stateDirectory, siteName: SecondFactor.siteName(configuration.moodle.wwwroot))
        self.logger = logger
        // The code the VCS writes must be readable by the web user, whatever umask we inherited
        // (systemd's UMask=0027 would make every updated file unreadable by the web server).
        System.allowReadableFiles()
        do {
            if try System.lstatusIfExists(configuration.stateDirectory) == nil {
                try System.makeDirectory(configuration.stateDirectory, 0o750)
            }
        } catch {
            throw DeliveryError.io("cannot create the state directory", error)
        }
        // Everything below these is the code owner's or the web user's: reached through
        // descriptors only (see System.guardPaths).
        System.guardPaths(below: [layout.releases, configuration.moodle.dataroot])
        try Self.checkTrustedFolders(
            [configuration.siteRoot, layout.releases, configuration.stateDirectory], siteRoot: configuration.siteRoot)
        if (try? System.lstatusIfExists(store.stateFile)) == nil {
            try store.update { (_: inout DeliveryState) throws(DeliveryError) in }
        }
    }

    /// The helper works by path in the site root, `releases/` and the state directory, so nobody
    /// else may be able to change what is in them: each must be a real folder (not a symlink) of
    /// the helper's own user, writable by nobody else. (The code owner owns only what is inside
    /// `releases/`: the trees.)
    static func checkTrustedFolders(_ folders: [String], siteRoot: String) throws(DeliveryError) {
        let helper = System.effectiveUserIdentifier
        for folder in folders {
            guard let status = try? System.lstatusIfExists(folder) else { continue }
            let name = System.user(named: String(status.uid))?.name ?? String(status.uid)
            guard status.kind == .directory, status.uid == helper, status.mode & 0o022 == 0 else {
                throw DeliveryError(
                    .privileges,
                    "\(folder) must be a folder of the helper's user (uid \(helper)) that nobody else can write (it is \(status.kind == .directory ? "owned by \(name), mode \(String(status.mode, radix: 8))" : "not a folder")): whoever can change it could make the helper act elsewhere; run `chown \(helper): \(folder) && chmod go-w \(folder)` (scripts/install does it for \(siteRoot))"
                )
            }
        }
    }

    // MARK: Reading

    /// The site's status, from the state file and the `current` symlink only.
    public func status() throws(DeliveryError) -> SiteStatus {
        let state = try store.read()
        let served = layout.servedTree()
        let holder = DeliveryLock.currentHolder(in: configuration.stateDirectory)
        var running: RunningOperation?
        var interrupted = state.interrupted
        switch holder {
        case .some(.some(let current)): running = current
        case .some(.none): if let entry = state.running { interrupted = entry }
        case .none: running = state.running
        }
        let copies = copyStatuses(state)
        let plan = Self.rollbackPlan(state, copies: copies)
        let stale = state.running != nil && running == nil
        let upstream = lastUpstreamCheck()?.seen(from: state.productionRevision)
        var status = SiteStatus(
            phase: state.phase, served: served, publicLayout: layout.publicLayout, siteRoot: layout.root,
            wwwroot: configuration.moodle.wwwroot, vcs: configuration.upstream.kind,
            productionRevision: state.productionRevision, revisionBeforeDelivery: state.revisionBeforeDelivery,
            copies: copies, deliveryId: state.deliveryId, deliveryStartedAt: state.deliveryStartedAt,
            running: running, interrupted: interrupted, lastResults: state.lastResults,
            allowed: running != nil
                ? [.rollback] : (stale ? [.recover, .rollback] : Self.allowed(state, served: served, copies: copies)),
            rollbackTarget: plan.target, upgradeRan: state.upgradeRan,
            maintenanceEnabled: state.maintenanceEnabled, comments: state.comments,
            componentCacheFile: configuration.componentCacheFile, rollback: plan,
            snapshot: state.snapshot, deliveryWindowOpen: state.deliveryWindowOpen ?? false,
            lastHealthCheck: state.lastHealthCheck,
            secondFactorEnrolled: (try? secondFactor.list())?.map(\.moodleUserId) ?? [],
            upstream: upstream, schedule: schedule(), rehearsal: state.rehearsal,
            rehearsalCurrent: Self.rehearsalCurrent(state, upstream: upstream))
        status.farmNodes = configuration.farm?.nodes.map(\.name)
        return status
    }

    /// What a rollback would do in this state. The database is restored only when Moodle's
    /// upgrade moved it past the copies' code and a snapshot of the data that code knows exists;
    /// outside the delivery's own window that loses what users wrote since, so it asks first.
    static func rollbackPlan(_ state: DeliveryState, copies: [TreeName: CopyStatus], now: Date = Date())
        -> RollbackPlan
    {
        guard let fallback = rollbackTarget(copies) else {
            return RollbackPlan(
                kind: .unavailable, target: nil, snapshot: nil, snapshotAgeSeconds: nil, needsConfirmation: false,
                notices: [Notice(.planUnavailable)])
        }
        let candidates = [TreeName.security, .backup].filter { copies[$0]?.complete == true }
        let known = state.copiesMatchingDatabase ?? [:]
        if let matching = candidates.first(where: { known[$0] == true }) {
            return RollbackPlan(
                kind: .code, target: matching, snapshot: nil, snapshotAgeSeconds: nil, needsConfirmation: false,
                notices: [Notice(.planCodeMatches, ["tree": .tree(matching)])])
        }
        let mismatching = candidates.filter { known[$0] == false }
        guard state.databaseAhead == true || !mismatching.isEmpty else {
            return RollbackPlan(
                kind: .code, target: fallback, snapshot: nil, snapshotAgeSeconds: nil, needsConfirmation: false,
                notices: [Notice(.planCodeNoUpgrade, ["tree": .tree(fallback)])])
        }
        if state.databaseAhead != true {
            return RollbackPlan(
                kind: .code, target: fallback, snapshot: nil, snapshotAgeSeconds: nil, needsConfirmation: false,
                notices: [Notice(.planCodeMismatch, ["trees": .list(mismatching.map(\.rawValue))])])
        }
        guard let snapshot = state.snapshot, snapshot.isAvailable else {
            return RollbackPlan(
                kind: .code, target: fallback, snapshot: nil, snapshotAgeSeconds: nil, needsConfirmation: false,
                notices: [Notice(.planNoSnapshot, ["tree": .tree(fallback)])])
        }
        // The copy whose code the snapshot's data belongs to.
        let target =
            [TreeName.security, .backup].first {
                copies[$0]?.complete == true && copies[$0]?.revision?.id == snapshot.codeRevision?.id
            } ?? fallback
        let age = max(0, now.timeIntervalSince(snapshot.takenAt))
        let values: [String: NoticeValue] = [
            "tree": .tree(target), "ageSeconds": .number(Int64(age.rounded())),
            "sizeBytes": .number(snapshot.sizeBytes),
        ]
        if state.deliveryWindowOpen == true {
            return RollbackPlan(
                kind: .codeAndDatabase, target: target, snapshot: snapshot, snapshotAgeSeconds: age,
                needsConfirmation: false,
                notices: [Notice(.planDatabaseInWindow, values)])
        }
        return RollbackPlan(
            kind: .codeAndDatabase, target: target, snapshot: snapshot, snapshotAgeSeconds: age,
            needsConfirmation: true,
            notices: [
                snapshot.copyDatabase == nil
                    ? Notice(.planDatabaseConfirm, values)
                    : Notice(.planDatabaseConfirmKept, ["tree": .tree(target), "ageSeconds": values["ageSeconds"]!])
            ])
    }

    func opcache(_ recorder: CommandRecorder) -> OPcacheInvalidator {
        OPcacheInvalidator(
            sockets: configuration.phpFpmSockets ?? [], directory: "\(layout.root)/.delivery-opcache",
            webUser: try? UserIdentity.lookup(configuration.webUser), recorder: recorder)
    }

    /// The audit log, newest first.
    public func history(limit: Int = 50, offset: Int = 0) throws(DeliveryError) -> [AuditRecord] {
        try audit.read(limit: max(1, min(limit, 1000)), offset: max(0, offset))
    }

    /// True when a copy's symlink leads to a folder.
    func copyExists(_ tree: TreeName) -> Bool {
        (try? System.status(layout.path(of: tree)))?.kind == .directory
    }

    /// The copies as the state file and the disk together show them: complete only when both agree.
    func copyStatuses(_ state: DeliveryState) -> [TreeName: CopyStatus] {
        var copies: [TreeName: CopyStatus] = [:]
        let boot = System.bootIdentifier
        for tree in [TreeName.backup, .security] {
            let exists = copyExists(tree)
            let record = state.copies[tree]
            // A copy recorded before its data reached the disk, in an earlier boot, may have lost it.
            let lostInRestart = record?.unflushedBoot.map { $0 != boot } ?? false
            copies[tree] = CopyStatus(
                exists: exists, complete: exists && (record?.complete ?? false) && !lostInRestart,
                revision: record?.revision,
                copiedAt: record?.copiedAt, refreshedPaths: record?.refreshedPaths ?? [])
        }
        return copies
    }

    static func rollbackTarget(_ copies: [TreeName: CopyStatus]) -> TreeName? {
        if copies[.security]?.complete == true { return .security }
        if copies[.backup]?.complete == true { return .backup }
        return nil
    }

    /// The operations a state allows (`StateMachine`): one rule set for `status` and for the
    /// refusals.
    static func allowed(_ state: DeliveryState, served: TreeName?, copies: [TreeName: CopyStatus]) -> [Operation] {
        StateMachine.allowed(
            state.phase, productionServed: served == .production, backupComplete: copies[.backup]?.complete == true,
            copyToServe: rollbackTarget(copies) != nil)
    }

    // MARK: Running an operation

    /// Runs one operation to its end, reporting progress as it goes.
    ///
    /// - Parameters:
    ///   - request: what to do and who asks.
    ///   - id: the operation's id (the responder passes its job id); a new one when nil.
    ///   - progress: receives the events in order, on the calling thread.
    /// - Returns: the outcome when the operation succeeded.
    /// - Throws: `DeliveryError`: a refusal (nothing changed) or a failure (the message says what
    ///   state the site is in). Either way one audit line is written.
    @discardableResult
    public func perform(
        _ request: OperationRequest, id: String? = nil, progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in }
    ) throws(DeliveryError) -> OperationOutcome {
        // On a farm's coordinator the Moodle page's buttons act on every node (`performOnFarm`).
        if configuration.farm != nil, request.actor.viaKey, request.actor.farmDelivery == nil {
            return try performOnFarm(request, id: id ?? OperationIdentifier.make(), progress: progress)
        }
        return try perform(request, id: id, progress: progress, farmHooks: nil)
    }

    /// `perform`, for a farm's coordinator: its restore calls on the other nodes at the points of
    /// the lock-step upgrade (`FarmRestoreHooks`); its update names its revision as soon as it
    /// knows it (`onUpdateTarget`).
    func perform(
        _ request: OperationRequest, id: String? = nil, progress: @escaping @Sendable (ProgressEvent) -> Void,
        farmHooks: FarmRestoreHooks?, secondFactorChecked: Bool = false,
        onUpdateTarget: (@Sendable (Revision) -> Void)? = nil
    ) throws(DeliveryError) -> OperationOutcome {
        let run = OperationRun(
            id: id ?? OperationIdentifier.make(), request: request, progress: progress, engine: self)
        run.farmHooks = farmHooks
        run.onUpdateTarget = onUpdateTarget
        run.secondFactorChecked = secondFactorChecked
        do {
            try OperationLimits.admit(
                request, limits: configuration.limits,
                store: OperationLimits.store(stateDirectory: configuration.stateDirectory))
        } catch {
            run.auditRefusal(error)
            throw error
        }
        if request.operation == .rollback {
            return try run.emergencyRollback()
        }
        let holder = RunningOperation(
            id: run.id, operation: request.operation, step: request.operation, actor: request.actor,
            pid: System.processIdentifier, host: System.hostName, startedAt: run.startedAt)
        let lock: DeliveryLock
        do {
            lock = try DeliveryLock.acquire(in: configuration.stateDirectory, holder: holder)
        } catch {
            run.auditRefusal(error)
            throw error
        }
        defer { lock.release() }
        do {
            try store.update { (state: inout DeliveryState) throws(DeliveryError) in
                if let dead = state.running, request.operation != .recover {
                    throw DeliveryError(
                        .staleLock,
                        "'\(dead.operation.rawValue)' started by \(dead.actor.name) at \(dead.startedAt.formatted(.iso8601)) (pid \(dead.pid)) was interrupted: its process is gone. Run 'recover' to record it and continue (or 'rollback' in an emergency)"
                    )
                }
                if state.running == nil { state.running = holder }
            }
        } catch {
            run.auditRefusal(error)
            throw error
        }
        return try run.execute()
    }

    /// Writes the audit line of a request refused before it reached `perform` (the responder
    /// refuses some at once: a second delivery while its job runs, a malformed path).
    public func recordRefusal(_ request: OperationRequest, _ error: DeliveryError) {
        OperationRun(id: OperationIdentifier.make(), request: request, progress: { _ in }, engine: self).auditRefusal(
            error)
    }

    func versionControl(_ recorder: CommandRecorder) throws(DeliveryError) -> any VersionControl {
        VersionControlContext.make(
            VersionControlContext(
                upstream: configuration.upstream, owner: try UserIdentity.lookup(configuration.codeOwner),
                timeout: configuration.timeouts.versionControl,
                ignoredFiles: configuration.componentCacheFile.map { [$0] } ?? [],
                localFiles: configuration.siteLocalFiles))
    }

    func moodle(_ recorder: CommandRecorder) throws(DeliveryError) -> MoodleCLI {
        MoodleCLI(
            php: configuration.php, layout: layout, webUser: try UserIdentity.lookup(configuration.webUser),
            timeouts: configuration.timeouts, recorder: recorder)
    }
}
