#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// One operation from its start to its audit line.
final class OperationRun: @unchecked Sendable {
    let id: String
    let request: OperationRequest
    let progress: @Sendable (ProgressEvent) -> Void
    let engine: DeliveryEngine
    let startedAt = Date()
    let startedMonotonic = System.monotonicSeconds()
    let recorder: CommandRecorder
    var revisionBefore: Revision?
    var revisionAfter: Revision?
    var servedBefore: TreeName?
    /// Set when an emergency rollback's switch was not followed by the web server.
    var webServerLag: DeliveryError?
    /// Set at the first change to the site or the state: a failure before it is a refusal.
    private(set) var mutated = false

    init(
        id: String, request: OperationRequest, progress: @escaping @Sendable (ProgressEvent) -> Void,
        engine: DeliveryEngine
    ) {
        self.id = id
        self.request = request
        self.progress = progress
        self.engine = engine
        self.recorder = CommandRecorder(onLine: { progress(.line($0)) })
        self.servedBefore = engine.layout.servedTree()
    }

    private var layout: SiteLayout { engine.layout }
    private var store: StateStore { engine.store }

    func note(_ line: String) { progress(.line(line)) }

    /// Changes the state, marking the operation as having changed something.
    @discardableResult
    private func change<T>(_ body: (inout DeliveryState) throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        mutated = true
        return try store.update { (state: inout DeliveryState) throws(DeliveryError) -> T in
            try checkNotPreempted(state)
            return try body(&state)
        }
    }

    /// Stops an operation that an emergency rollback took over (rollback itself is never stopped).
    private func checkNotPreempted(_ state: DeliveryState) throws(DeliveryError) {
        guard request.operation != .rollback, let preempted = state.preemptedAt, preempted > startedAt else { return }
        throw DeliveryError(
            .preempted,
            "an emergency rollback took over at \(preempted.formatted(.iso8601)); this operation stopped. The site serves the \(layout.servedTree()?.rawValue ?? "rolled-back") tree"
        )
    }

    /// Runs `body` under the switch mutex, after checking that no rollback took over: every change
    /// of what is served, and every swap of a copy into place, goes through here.
    private func underSwitchMutex<T>(_ body: () throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        let mutexPath = "\(engine.configuration.stateDirectory)/switch.lock"
        let fd: Int32
        do {
            fd = try System.open(mutexPath, O_RDWR | O_CREAT, 0o640)
            _ = try System.lockFile(fd, wait: true)
        } catch {
            throw DeliveryError.io("cannot take the switch mutex", error)
        }
        defer { System.close(fd) }
        try checkNotPreempted(try store.read())
        return try body()
    }

    /// True for an error that stopped the operation before it changed anything.
    private func isRefusal(_ error: DeliveryError) -> Bool {
        !mutated
            && [
                .wrongState, .badPath, .copyMissing, .badRequest, .lockHeld, .staleLock, .notMoodle, .preflightFailed,
                .confirmationRequired, .notUpdatable, .secondFactorRequired, .secondFactorRefused,
                .secondFactorLocked, .rateLimited, .noRoom,
            ].contains(error.code)
    }

    // MARK: Dispatch

    /// Runs the operation under the lock; the caller holds it and has set `running`.
    func execute() throws(DeliveryError) -> OperationOutcome {
        var failure: DeliveryError?
        var message = ""
        do throws(DeliveryError) {
            switch request.operation {
            case .secure: message = try step(.secure) { () throws(DeliveryError) in try secure() }
            case .switchToDelivery:
                message = try step(.switchToDelivery) { () throws(DeliveryError) in try switchToDelivery() }
            case .update: message = try step(.update) { () throws(DeliveryError) in try update() }
            case .restore: message = try step(.restore) { () throws(DeliveryError) in try restore() }
            case .cancel: message = try step(.cancel) { () throws(DeliveryError) in try cancel() }
            case .recover: message = try step(.recover) { () throws(DeliveryError) in try recover() }
            case .runAll: message = try runAll()
            case .rollback: message = "rollback runs on its own path"
            }
        } catch {
            failure = error
        }
        if !(failure.map(isRefusal) ?? false) && failure?.code != .preempted { refreshCopiesMatchingDatabase() }
        let served = layout.servedTree()
        let phase: DeliveryPhase
        do {
            let refused = failure.map(isRefusal) ?? false
            phase = try store.update { (state: inout DeliveryState) throws(DeliveryError) in
                if state.running?.id == id { state.running = nil }
                if refused { return state.phase }
                // What recover recorded is shown until an operation succeeds after it.
                if failure == nil && request.operation != .recover { state.interrupted = nil }
                state.lastResults[request.operation] = StepResult(
                    succeeded: failure == nil, finishedAt: Date(), message: failure?.message ?? message,
                    errorCode: failure?.code)
                return state.phase
            }
        } catch {
            failure = failure ?? error
            phase = (try? store.read().phase) ?? .idle
        }
        let result = failure == nil ? "succeeded" : (isRefusal(failure!) ? "refused" : "failed")
        writeAudit(result: result, error: failure, message: failure?.message ?? message, phase: phase, served: served)
        if let failure { throw failure }
        return OperationOutcome(id: id, operation: request.operation, message: message, phase: phase, served: served)
    }

    private func step(_ operation: Operation, _ body: () throws(DeliveryError) -> String) throws(DeliveryError)
        -> String
    {
        progress(.stepStarted(operation))
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
            if state.running?.id == id { state.running?.step = operation }
        }
        do {
            let message = try body()
            progress(.fraction(operation, 1))
            progress(.stepFinished(operation, succeeded: true, message: message))
            recordStepOfRunAll(operation, nil, message)
            return message
        } catch {
            progress(.stepFinished(operation, succeeded: false, message: error.message))
            if !isRefusal(error) { recordStepOfRunAll(operation, error, error.message) }
            throw error
        }
    }

    /// Run all records each of its steps' results too, so that every step shows its latest result.
    private func recordStepOfRunAll(_ operation: Operation, _ failure: DeliveryError?, _ message: String) {
        guard request.operation == .runAll else { return }
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
            state.lastResults[operation] = StepResult(
                succeeded: failure == nil, finishedAt: Date(), message: message, errorCode: failure?.code)
        }
    }

    private func runAll() throws(DeliveryError) -> String {
        let state = try store.read()
        try requireAllowed(.runAll, state)
        try requireUpdatable()
        _ = try step(.secure) { () throws(DeliveryError) in try secure() }
        _ = try step(.switchToDelivery) { () throws(DeliveryError) in try switchToDelivery() }
        _ = try step(.update) { () throws(DeliveryError) in try update() }
        return try step(.restore) { () throws(DeliveryError) in try restore() }
    }

    // MARK: Rules

    /// Refuses an operation the state does not allow, with the reason in the site's terms.
    private func requireAllowed(_ operation: Operation, _ state: DeliveryState) throws(DeliveryError) {
        let served = layout.servedTree()
        let copies = engine.copyStatuses(state)
        if DeliveryEngine.allowed(state, served: served, copies: copies).contains(operation) { return }
        let servedText = served.map { "the \($0.rawValue) tree" } ?? "an unknown tree"
        let reason: String
        switch operation {
        case .secure, .runAll:
            reason =
                served != .production
                ? "the site is serving \(servedText); securing writes only copies that are not served, while production serves"
                : "a delivery is in progress (state '\(state.phase.rawValue)'); finish it with restore, or cancel it"
        case .switchToDelivery:
            reason =
                state.phase == .idle || copies[.backup]?.complete != true
                ? "secure the site first: the backup copy must be fresh and complete"
                : "the site is already in delivery mode (state '\(state.phase.rawValue)')"
        case .update:
            reason =
                served == .production
                ? "production is being served; switch to delivery first"
                : "the state '\(state.phase.rawValue)' does not allow an update"
        case .restore:
            reason =
                "there is nothing to restore (state '\(state.phase.rawValue)'): switch to delivery and update first"
        case .cancel:
            reason = "there is no delivery to cancel"
        default:
            reason = "the state '\(state.phase.rawValue)' does not allow it"
        }
        throw DeliveryError(.wrongState, "\(operation.rawValue) refused: \(reason)")
    }

    // MARK: Switching

    /// Points `current` at a tree with one rename(2) of a fresh symlink, under the switch mutex.
    /// Refuses when an emergency rollback took over since this operation started.
    func switchServed(to tree: TreeName, preempting: Bool = false) throws(DeliveryError) {
        if tree != .production {
            let state = try store.read()
            guard engine.copyStatuses(state)[tree]?.complete == true
            else {
                throw DeliveryError(
                    .copyMissing, "the \(tree.rawValue) copy is missing or incomplete; it cannot be served")
            }
            do {
                try flushCopies(state)
            } catch {
                guard preempting else { throw error }
                note("Warning: \(error.message); serving the \(tree.rawValue) copy anyway (emergency rollback).")
            }
            let copyRoot = (try? System.realPath(layout.path(of: tree))) ?? layout.path(of: tree)
            if lacksComponentCache(copyRoot) {
                // Moodle dies on a component cache file it cannot find: make it before serving.
                do {
                    try buildComponentCache(at: copyRoot)
                } catch {
                    guard preempting else { throw error }
                    note("Warning: \(error.message); serving the \(tree.rawValue) copy anyway (emergency rollback).")
                }
            }
        } else {
            guard (try? System.lstatus(layout.path(of: .production)))?.kind == .directory else {
                throw DeliveryError(.copyMissing, "the production tree is missing")
            }
        }
        try underSwitchMutex { () throws(DeliveryError) in
            if preempting {
                try change { (state: inout DeliveryState) throws(DeliveryError) in state.preemptedAt = Date() }
            }
            let previous = layout.servedTree()
            if previous == tree { return }
            mutated = true
            try pointCurrent(at: tree)
            note("The site now serves the \(tree.rawValue) tree.")
            let webServer = webServerSwitch()
            do throws(DeliveryError) {
                try webServer.tellWebServer(tree)
                try webServer.checkServed(tree)
            } catch {
                if preempting {
                    // An emergency rollback goes on (the database too, when its plan says so), so
                    // that the state says what current points at; it fails at its end.
                    webServerLag = DeliveryError(
                        .webServerStale,
                        "\(error.message): current points at the \(tree.rawValue) tree, but the web server serves the tree it served until it is reloaded by hand (README, \"Web servers\")"
                    )
                    note("Warning: \(webServerLag?.message ?? error.message).")
                    return
                }
                guard let previous else {
                    throw DeliveryError(
                        .webServerStale,
                        "\(error.message). current points at the \(tree.rawValue) tree; reload the web server by hand (README, \"Web servers\")"
                    )
                }
                // The web server did not follow: it serves the old tree, so current goes back to it.
                try pointCurrent(at: previous)
                try? webServer.tellWebServer(previous)
                throw DeliveryError(
                    .webServerStale,
                    "\(error.message). The switch was undone: the site serves the \(previous.rawValue) tree")
            }
        }
    }

    /// One rename(2) of a freshly made symlink over `current`.
    private func pointCurrent(at tree: TreeName) throws(DeliveryError) {
        let temporary =
            "\(layout.root)/.current.new-\(System.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        do throws(SystemCallError) {
            try System.replaceSymlink(layout.current, target: layout.linkTarget(of: tree), temporary: temporary)
        } catch {
            throw DeliveryError.io("cannot switch the site to the \(tree.rawValue) tree", error)
        }
    }

    /// The web server's part of a switch, with this site's settings.
    private func webServerSwitch() -> WebServerSwitch {
        let configuration = engine.configuration
        return WebServerSwitch(
            settings: configuration.webServerSettings, layout: layout, wwwroot: configuration.moodle.wwwroot,
            healthSettings: configuration.healthCheckSettings,
            webUser: try? UserIdentity.lookup(configuration.webUser), recorder: recorder, note: { [self] in note($0) })
    }

    /// Flushes to disk the copies recorded before their data was (`unflushedBoot`): called before
    /// a copy is served. One `syncfs` covers them all; it waits only for what the kernel has not
    /// written back yet.
    private func flushCopies(_ state: DeliveryState) throws(DeliveryError) {
        let boot = System.bootIdentifier
        let pending = state.copies.filter { boot != nil && $0.value.unflushedBoot == boot }
        guard !pending.isEmpty else { return }
        let started = System.monotonicSeconds()
        do {
            try System.syncFileSystem(layout.releases)
        } catch {
            throw DeliveryError.io("cannot flush the copies to disk", error)
        }
        try store.update { (state: inout DeliveryState) throws(DeliveryError) in
            for tree in pending.keys where state.copies[tree]?.unflushedBoot == boot {
                state.copies[tree]?.unflushedBoot = nil
            }
        }
        let seconds = System.monotonicSeconds() - started
        if seconds >= 0.05 { note("Flushed the copies to disk (\(format1(seconds)) s).") }
    }

    // MARK: Step 1: secure

    private func secure() throws(DeliveryError) -> String {
        let state = try store.read()
        try requireAllowed(.secure, state)
        let vcs = try engine.versionControl(recorder)
        let production = layout.path(of: .production)
        let revision = try vcs.revision(of: production, recorder: recorder)
        revisionBefore = state.copies[.backup]?.revision
        revisionAfter = revision
        let targets: [TreeName] = request.securityCopy ? [.backup, .security] : [.backup]
        if let path = request.securePath {
            // A component refresh keeps the rest of the copy: only right when the rest is
            // production's code at its revision, else the copy would mix two revisions (and claim
            // to match the database as production does). Checked for every copy before any changes.
            for tree in targets {
                if let held = state.copies[tree]?.revision, held.id != revision.id {
                    throw DeliveryError(
                        .wrongState,
                        "the \(tree.rawValue) copy holds \(held.label) and production is at \(revision.label): refreshing only '\(path)' would mix two revisions in one copy; secure the whole site (without --path)"
                    )
                }
            }
        }
        try checkRoom(for: targets, state: state)
        var summary: [String] = []
        for (index, tree) in targets.enumerated() {
            let weight = (Double(index), Double(targets.count))
            let component = try request.securePath.map { (raw: String) throws(DeliveryError) in try ComponentPath(raw) }
            summary.append(try refreshCopy(tree, revision: revision, component: component, weight: weight))
        }
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = .secured
            state.productionRevision = revision
            // The copies now hold the code that runs on the database as it is.
            state.databaseAhead = false
            if state.deliveryId == nil {
                state.deliveryId = id
                state.deliveryStartedAt = startedAt
                // A new delivery: the later steps' results were the last delivery's.
                for step in [Operation.switchToDelivery, .update, .restore, .cancel] { state.lastResults[step] = nil }
            }
        }
        return summary.joined(separator: " ") + " Next: switch to delivery."
    }

    /// Runs one synchronisation as the code owner (`CopyWorker`), its target's root made first.
    private func copy(_ job: CopyJob, onProgress: (CopyProgress) -> Void = { _ in }) throws(DeliveryError)
        -> CopyStatistics
    {
        let owner = try UserIdentity.lookup(engine.configuration.codeOwner)
        let webGroup = (try? UserIdentity.lookup(engine.configuration.webUser)).map { [$0.gid] } ?? []
        if !job.checkOnly { try CopyWorker.prepareTarget(job.target, for: owner) }
        return try CopyWorker.run(
            job, as: owner, groups: webGroup, recorder: recorder, onProgress: onProgress,
            shouldContinue: { [self] in shouldContinue() })
    }

    /// Removes folders left by copies of earlier versions of the engine that were interrupted.
    func removeLeftoverStaging() throws(DeliveryError) {
        let entries: [(name: String, kind: FileKind?)]
        do {
            entries = try System.listDirectory(layout.releases)
        } catch {
            throw DeliveryError.io("cannot read \(layout.releases)", error)
        }
        for entry in entries where entry.name.hasPrefix(".staging-") || entry.name.hasPrefix(".copy-link-") {
            note("Removing \(entry.name), left by an interrupted operation.")
            try CopyWorker.removeTree(
                "\(layout.releases)/\(entry.name)", owner: try UserIdentity.lookup(engine.configuration.codeOwner),
                recorder: recorder)
        }
    }

    private func shouldContinue() -> Bool {
        guard let preempted = try? store.read().preemptedAt else { return true }
        return preempted <= startedAt
    }

    /// The room a secure leaves free on the copies' file system, besides what the copies take.
    static let reservedBytes: Int64 = 64 << 20

    /// Refuses a secure the disk could not hold, before anything is written: a copy made for the
    /// first time takes as much as production's files (VCS metadata aside); a copy refreshed from a
    /// complete one shares its unchanged files, and needs room for what changed. Either way
    /// `reservedBytes` must stay free, so that a delivery never fills the disk Moodle writes to.
    private func checkRoom(for targets: [TreeName], state: DeliveryState) throws(DeliveryError) {
        let statuses = engine.copyStatuses(state)
        let firstCopies = targets.filter { statuses[$0]?.complete != true }
        var needed = Self.reservedBytes
        if !firstCopies.isEmpty {
            let size =
                state.copies.values.map(\.bytes).max().flatMap { $0 > 0 ? $0 : nil }
                ?? Self.measure(layout.path(of: .production)).bytes
            needed += size * Int64(firstCopies.count)
        }
        let available: Int64
        do {
            available = try System.availableBytes(layout.releases)
        } catch {
            throw DeliveryError.io("cannot read the free space of \(layout.releases)", error)
        }
        guard available < needed else { return }
        let what =
            firstCopies.isEmpty
            ? "\(formatBytes(Self.reservedBytes)) must stay free"
            : "the \(firstCopies.map(\.rawValue).joined(separator: " and ")) copy takes \(formatBytes(needed - Self.reservedBytes)) and \(formatBytes(Self.reservedBytes)) must stay free"
        throw DeliveryError(
            .noRoom,
            "secure refused: not enough free space in \(layout.releases) (\(formatBytes(available)) free; \(what)); nothing was changed: free some space on that file system first"
        )
    }

    private static func countEntries(_ path: String) -> Int { measure(path).entries }

    /// The entries of a tree and the bytes of its files, VCS metadata aside, walked through
    /// descriptors that never follow a link.
    private static func measure(_ path: String) -> (entries: Int, bytes: Int64) {
        guard let root = try? System.openDirectory(at: AT_FDCWD, path) else { return (0, 0) }
        defer { System.close(root) }
        var count = 0
        var bytes: Int64 = 0
        var pending = [""]
        while let relative = pending.popLast() {
            guard let folder = try? System.openDirectory(at: root, relative) else { continue }
            defer { System.close(folder) }
            guard let entries = try? System.listDirectory(fd: folder) else { continue }
            for entry in entries {
                count += 1
                if entry.kind == .directory && !TreeCopier.versionControlNames.contains(entry.name) {
                    pending.append(relative.isEmpty ? entry.name : "\(relative)/\(entry.name)")
                } else if entry.kind == .regular, let status = try? System.lstatus(at: folder, entry.name) {
                    bytes += Int64(status.size)
                }
            }
        }
        return (count, bytes)
    }

    /// The two generations of a copy, `.<copy>.a` and `.<copy>.b`: `releases/<copy>` is a symlink to
    /// the complete one; the other is brought in line with production, its scripts are dropped from
    /// PHP-FPM's OPcache (it may hold them from when that generation was served), and it becomes
    /// `releases/<copy>` by one rename(2) of a fresh symlink. The complete generation is never
    /// written to, and only two paths per copy ever reach OPcache, so its memory stays bounded.
    private func generations(of tree: TreeName) throws(DeliveryError) -> (active: String?, inactive: String) {
        let link = layout.path(of: tree)
        let prefix = ".\(tree.rawValue)."
        var fresh = "\(layout.releases)/\(prefix)a"
        do {
            var active: String?
            if let status = try System.lstatusIfExists(link) {
                if status.kind == .directory {
                    // A copy made before generations: it moves behind the symlink as it is.
                    guard layout.servedTree() != tree else {
                        throw DeliveryError(
                            .wrongState, "the \(tree.rawValue) copy is being served; it is never written to")
                    }
                    let moved = "\(prefix)b"
                    try System.rename(link, "\(layout.releases)/\(moved)")
                    try System.symlink(target: moved, at: link)
                    active = moved
                } else {
                    active = try System.readLink(link)
                    guard active!.hasPrefix(prefix), !active!.contains("/") else {
                        throw DeliveryError(
                            .io, "releases/\(tree.rawValue) points at '\(active!)', not at one of its generations")
                    }
                }
            }
            if active == "\(prefix)a" { fresh = "\(layout.releases)/\(prefix)b" }
            let others = try System.listDirectory(layout.releases).map(\.name)
                .filter { $0.hasPrefix(prefix) && $0 != active }
                .sorted()
            if try System.lstatusIfExists(fresh) == nil, let reusable = others.last {
                try System.rename("\(layout.releases)/\(reusable)", fresh)
            }
            for leftover in others where "\(layout.releases)/\(leftover)" != fresh {
                if try System.lstatusIfExists("\(layout.releases)/\(leftover)") != nil {
                    try CopyWorker.removeTree(
                        "\(layout.releases)/\(leftover)",
                        owner: try UserIdentity.lookup(engine.configuration.codeOwner), recorder: recorder)
                }
            }
            return (active.map { "\(layout.releases)/\($0)" }, fresh)
        } catch let error as SystemCallError {
            throw DeliveryError.io("cannot prepare the \(tree.rawValue) copy's generations", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "cannot prepare the \(tree.rawValue) copy's generations: \(error)")
        }
    }

    /// Makes a copy an exact mirror of production (or refreshes one component of it).
    private func refreshCopy(
        _ tree: TreeName, revision: Revision, component: ComponentPath?, weight: (Double, Double)
    ) throws(DeliveryError) -> String {
        let state = try store.read()
        let complete = engine.copyStatuses(state)[tree]?.complete == true
        let production = layout.path(of: .production)
        var relative: String?
        if let component {
            guard complete else {
                throw DeliveryError(
                    .copyMissing,
                    "the \(tree.rawValue) copy is not complete: a component path refreshes only part of a complete copy; secure the whole tree first"
                )
            }
            let path = layout.treeRelative(component)
            try component.checkInside(tree: production, relative: path, mustExist: true)
            try component.checkInside(tree: layout.path(of: tree), relative: path, mustExist: false)
            relative = path
        }
        mutated = true
        try removeLeftoverStaging()
        let (active, inactive) = try generations(of: tree)
        let started = System.monotonicSeconds()
        let unflushedBoot = System.bootIdentifier
        let linkFrom = complete ? active : nil

        // The progress total: the last full copy's count, or a component's (counted: it is small).
        // A first copy has none; its progress is the share of the folders found so far that are
        // done (no walk of its own before the copy). The comparison with a complete copy reports
        // through the same measure (it walks the same entries, and is the whole step when nothing
        // changed): the bar moves from the start, and never goes back when the copy follows.
        let total = relative.map { Self.countEntries("\(production)/\($0)") } ?? state.copies[tree]?.entries ?? 0
        // PHP-FPM may hold the inactive generation's scripts compiled from when it was served:
        // the copier lists those it gives a new file, and only they are dropped.
        let recordingScripts = !(engine.configuration.phpFpmSockets ?? []).isEmpty
        let progress = self.progress
        var shown = 0.0
        let onProgress: (CopyProgress) -> Void = { done in
            let share =
                total > 0
                ? Double(done.entries) / Double(total) : Double(done.foldersDone) / Double(max(1, done.foldersFound))
            shown = max(shown, min(1, share))
            progress(.fraction(.secure, (weight.0 + shown) / weight.1 * 0.98))
        }
        if relative == nil, complete, let active {
            // Nothing changed since the last copy? Then the complete copy is already exact.
            note("Comparing production (\(revision.label)) with the \(tree.rawValue) copy…")
            let differs = try copy(
                CopyJob(source: production, target: active, preserving: preservedFiles, checkOnly: true),
                onProgress: onProgress
            ).changed
            if !differs {
                if lacksComponentCache(active) { try buildComponentCache(at: active) }
                try change { (state: inout DeliveryState) throws(DeliveryError) in
                    state.copies[tree]?.revision = revision
                    state.copies[tree]?.copiedAt = Date()
                    state.copies[tree]?.refreshedPaths = []
                }
                let seconds = System.monotonicSeconds() - started
                return
                    "The \(tree.rawValue) copy was already identical to production (checked in \(format1(seconds)) s)."
            }
        }

        var statistics: CopyStatistics
        do {
            if let relative, let active {
                note("Refreshing '\(relative)' of the \(tree.rawValue) copy from production (\(revision.label))…")
                // The other generation takes the complete copy as it is, but for the component…
                let outside = try copy(
                    CopyJob(
                        source: active, target: inactive, linkFrom: active, skipping: relative,
                        preserving: preservedFiles, recordingScripts: recordingScripts))
                // …which comes from production.
                statistics = try copy(
                    CopyJob(
                        source: production, target: inactive, linkFrom: active, below: relative,
                        recordingScripts: recordingScripts), onProgress: onProgress)
                statistics.changedScripts =
                    outside.changedScripts
                    + statistics.changedScripts.map { $0.isEmpty ? relative : "\(relative)/\($0)" }
            } else {
                note(
                    "Copying production (\(revision.label)) into the \(tree.rawValue) copy\(linkFrom == nil ? "" : ", sharing unchanged files")…"
                )
                statistics = try copy(
                    CopyJob(
                        source: production, target: inactive, linkFrom: linkFrom, preserving: preservedFiles,
                        recordingScripts: recordingScripts), onProgress: onProgress)
            }
            try buildComponentCache(at: inactive)
            // The copy is flushed to disk before anything serves it (`flushCopies`), not now: the
            // kernel writes it back within seconds meanwhile, and a restart before it is on disk
            // makes it incomplete (`unflushedBoot`). Without a boot identifier, flush now.
            if unflushedBoot == nil { try System.syncFileSystem(inactive) }
            // This generation may have been served before, with other code under the same paths.
            try dropFromOPcache(statistics.changedScripts, under: inactive)
        } catch let error as DeliveryError {
            throw DeliveryError(
                error.code, "the \(tree.rawValue) copy failed, the previous copy is unchanged: \(error.message)")
        } catch {
            throw DeliveryError(.io, "the \(tree.rawValue) copy failed, the previous copy is unchanged: \(error)")
        }
        for path in statistics.absoluteLinksIntoSource {
            note(
                "Warning: '\(path)' is an absolute symlink into production; the copy serves production's file through it."
            )
        }
        for path in statistics.skipped { note("Left out '\(path)': not a file, folder or symlink.") }

        var record =
            state.copies[tree]
            ?? CopyRecord(
                complete: true, revision: revision, copiedAt: Date(), refreshedPaths: [], files: 0, bytes: 0)
        if relative != nil, let component {
            record.refreshedPaths.append("\(component.value) @ \(revision.label)")
        } else {
            record = CopyRecord(
                complete: true, revision: revision, copiedAt: Date(), refreshedPaths: [], files: statistics.files,
                bytes: statistics.bytes,
                entries: statistics.files + statistics.directories - 1 + statistics.symlinks + statistics.skipped.count)
        }
        record.unflushedBoot = unflushedBoot
        let generation = lastComponent(of: inactive)
        let inode: UInt64
        do {
            inode = try System.lstatus(inactive).inode
        } catch {
            throw DeliveryError.io("cannot read the new copy", error)
        }
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.pendingSwap = PendingSwap(tree: tree, staging: inactive, stagingInode: inode, record: record)
        }
        do {
            try underSwitchMutex { () throws(DeliveryError) in
                guard layout.servedTree() != tree else {
                    throw DeliveryError(
                        .wrongState, "the \(tree.rawValue) copy is being served; it is never written to")
                }
                let temporary = "\(layout.releases)/.copy-link-\(tree.rawValue)-\(System.processIdentifier)"
                do throws(SystemCallError) {
                    try System.replaceSymlink(layout.path(of: tree), target: generation, temporary: temporary)
                } catch {
                    throw DeliveryError.io(
                        "cannot put the new \(tree.rawValue) copy in place; the previous copy is unchanged", error)
                }
                try store.update { (state: inout DeliveryState) throws(DeliveryError) in
                    state.copies[tree] = record
                    state.pendingSwap = nil
                }
            }
        } catch {
            try? store.update { (state: inout DeliveryState) throws(DeliveryError) in state.pendingSwap = nil }
            throw error
        }
        let seconds = System.monotonicSeconds() - started
        if let relative {
            return
                "Refreshed '\(relative)' of the \(tree.rawValue) copy (\(statistics.files) files, \(statistics.filesCopied) copied) in \(format1(seconds)) s."
        }
        let sizeMB = Double(statistics.bytes) / 1_048_576
        return
            "The \(tree.rawValue) copy holds \(statistics.files) files (\(format1(sizeMB)) MB; \(statistics.filesCopied) copied, \(statistics.filesLinked) shared, \(statistics.entriesRemoved) removed) in \(format1(seconds)) s."
    }

    // MARK: Step 2: switch to delivery

    private func switchToDelivery() throws(DeliveryError) -> String {
        let state = try store.read()
        try requireAllowed(.switchToDelivery, state)
        let vcs = try engine.versionControl(recorder)
        let revision = try vcs.revision(of: layout.path(of: .production), recorder: recorder)
        if let secured = state.copies[.backup]?.revision, secured.id != revision.id,
            engine.configuration.upstream.kind != .cvs
        {
            throw DeliveryError(
                .wrongState,
                "switch refused: production changed since it was secured (\(secured.label) → \(revision.label)); secure again"
            )
        }
        revisionBefore = revision
        if request.operation == .switchToDelivery { try requireUpdatable() }
        warmByRequest(.backup)
        try switchServed(to: .backup)
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = .delivering
            state.revisionBeforeDelivery = revision
            state.productionRevision = revision
            state.updatedPaths = []
            state.comments = []
            state.upgradeRan = false
        }
        return "The site is in delivery mode: the backup copy serves, production can be updated."
    }

    /// Fails before acting: the update after a switch must be able to run, or the site would be
    /// set aside for nothing. Production has no local modifications (site-local files aside), the
    /// upstream answers the code owner (`git ls-remote`, `svn info -r HEAD`, `cvs -n update`) and
    /// does not change a site-local file.
    private func requireUpdatable() throws(DeliveryError) {
        let production = layout.path(of: .production)
        let vcs = try engine.versionControl(recorder)
        let modified = try vcs.localModifications(of: production, recorder: recorder)
        if !modified.isEmpty {
            throw DeliveryError(
                .notUpdatable,
                "\(request.operation.rawValue) refused: production has local modifications (\(modified.prefix(3).joined(separator: ", "))\(modified.count > 3 ? " …" : "")), so the update would refuse; commit or discard them first (nothing was changed)"
            )
        }
        do throws(DeliveryError) {
            try vcs.checkUpdatable(of: production, recorder: recorder)
        } catch {
            // The upstream changing a site-local file is a refusal that says it all already.
            throw DeliveryError(
                .notUpdatable,
                error.code == .notUpdatable
                    ? "\(request.operation.rawValue) refused: \(error.message)"
                    : "\(request.operation.rawValue) refused: \(error.message), so the update would fail (nothing was changed)"
            )
        }
    }

    // MARK: Step 3: update

    private func update() throws(DeliveryError) -> String {
        let state = try store.read()
        try requireAllowed(.update, state)
        let production = layout.path(of: .production)
        var relative: String?
        if let raw = request.updatePath {
            let component = try ComponentPath(raw)
            let path = layout.treeRelative(component)
            try component.checkInside(tree: production, relative: path, mustExist: false)
            relative = path
        }
        let vcs = try engine.versionControl(recorder)
        let before = try vcs.revision(of: production, recorder: recorder)
        revisionBefore = before
        if state.updatedPaths.isEmpty {
            let modified = try vcs.localModifications(of: production, recorder: recorder)
            if !modified.isEmpty {
                throw DeliveryError(
                    .vcsFailed,
                    "update refused: production has local modifications (\(modified.prefix(3).joined(separator: ", "))\(modified.count > 3 ? " …" : "")); commit or discard them first. The site still serves the backup copy"
                )
            }
        }
        note(
            "Updating \(relative.map { "'\($0)' of production" } ?? "production") with \(engine.configuration.upstream.kind.rawValue)…"
        )
        let kept = try vcs.modifiedLocalFiles(of: production, recorder: recorder)
        if !kept.isEmpty {
            note("Site-local files kept as this site has them: \(kept.joined(separator: ", ")).")
        }
        progress(.fraction(.update, 0.1))
        do {
            try vcs.update(tree: production, path: relative, recorder: recorder)
        } catch {
            throw DeliveryError(
                error.code,
                "\(error.message). The site still serves the \(layout.servedTree()?.rawValue ?? "backup") copy.")
        }
        try buildComponentCache(at: (try? System.realPath(production)) ?? production)
        let after = try vcs.revision(of: production, recorder: recorder)
        revisionAfter = after
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = state.phase == .rolledBack ? .rolledBack : .updated
            state.productionRevision = after
            state.updatedPaths.append(relative ?? "")
            if let comment = request.comment, !comment.isEmpty { state.comments.append(comment) }
        }
        let change = before.id == after.id ? "revision unchanged (\(after.label))" : "\(before.label) → \(after.label)"
        return "Production updated\(relative.map { " at '\($0)'" } ?? ""): \(change). Next: restore production."
    }

    // MARK: Step 4: restore production

    private func restore() throws(DeliveryError) -> String {
        let state = try store.read()
        try requireAllowed(.restore, state)
        let versionFile = "\(layout.codeRoot(of: .production))/version.php"
        guard (try? System.lstatus(versionFile))?.kind == .regular else {
            throw DeliveryError(
                .notMoodle, "restore refused: the production tree has no version.php; it is not a complete Moodle tree")
        }
        revisionBefore = state.revisionBeforeDelivery
        revisionAfter = state.productionRevision
        var changedScripts: [String] = []
        var forecast: UpgradeForecast?
        if state.phase != .restoring {
            note("Preflight: checking what the update brought before production is served…")
            let report = try engine.preflight(recorder)
            changedScripts = report.added + report.changed + report.removed
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
                throw DeliveryError(
                    .preflightFailed,
                    "restore refused: \(report.blockingSummary). The site still serves the \(layout.servedTree()?.rawValue ?? "backup") copy; fix production (update again) or cancel"
                )
            }
        }
        if state.phase == .restoring, let preflight = try? engine.preflighter(recorder) {
            let report = preflight.differences()
            changedScripts = report.added + report.changed + report.removed
        }
        let moodle = try engine.moodle(recorder)
        let configuration = engine.configuration
        // Asked of the new code while the backup copy still serves: nothing has changed yet.
        let need: MoodleCLI.UpgradeNeed
        if let forecast {
            need = forecast.pending ? (forecast.maintenanceRequired ? .withMaintenance : .withoutMaintenance) : .none
        } else {
            need = try moodle.upgradeNeed(in: .production)
        }
        let checker = healthChecker(moodle)
        // The site's critical checks as they are now, from the copy that serves: at every restore
        // from a copy (a retry after an automatic rollback compares with the site as it is then).
        if let checker, let served = layout.servedTree(), served != .production {
            let baseline = checker.criticalChecks(in: served).map { Array($0).sorted() } ?? []
            try change { (state: inout DeliveryState) throws(DeliveryError) in state.criticalChecksBefore = baseline }
        }
        let snapshotting = need != .none && configuration.snapshotSettings.enabled && !state.upgradeRan
        let wantsMaintenance =
            need == .withMaintenance || (need != .none && configuration.snapshotSettings.enabled)
        // Warm PHP-FPM's OPcache with production's code while the site still answers (in maintenance
        // mode Moodle answers with the maintenance page and compiles nothing). With an upgrade
        // pending, Moodle's bootstrap runs and sends to the upgrade page: the bulk is compiled.
        if wantsMaintenance && !state.maintenanceEnabled { try readyProductionForServing(warm: true) }
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
        if snapshotting {
            do {
                try takeSnapshot()
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
                throw DeliveryError(
                    .snapshotFailed,
                    "restore refused: \(error.message). Moodle's upgrade did not run; the site still serves the \(layout.servedTree()?.rawValue ?? "backup") copy"
                )
            }
        }
        let previouslyServed = state.servedProductionChanges ?? []
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = .restoring
            state.servedProductionChanges = Array(Set(previouslyServed + changedScripts)).sorted()
        }
        try dropFromOPcache(Array(Set(previouslyServed + changedScripts)))
        try readyProductionForServing(warm: !(try store.read()).maintenanceEnabled)
        try switchServed(to: .production)
        progress(.fraction(.restore, 0.3))
        var upgradeText = "no upgrade was needed"
        var cachesText = "caches purged"
        if need == .none {
            note("Moodle reports no pending upgrade.")
        } else {
            note("Running Moodle's upgrade…")
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.upgradeRan = true
                state.databaseAhead = true
                state.copiesMatchingDatabase = [:]
            }
            do {
                try moodle.upgrade(in: .production) { group in
                    try? self.store.update { (state: inout DeliveryState) throws(DeliveryError) in
                        state.upgradeProcessGroup = group
                    }
                }
                try change { (state: inout DeliveryState) throws(DeliveryError) in state.upgradeProcessGroup = nil }
            } catch {
                try? change { (state: inout DeliveryState) throws(DeliveryError) in state.upgradeProcessGroup = nil }
                throw try afterFailure(error, what: "Moodle's upgrade failed")
            }
            upgradeText =
                (try store.read()).maintenanceEnabled
                ? "the upgrade ran in maintenance mode" : "the upgrade ran without maintenance mode"
        }
        progress(.fraction(.restore, 0.7))
        if need == .none && changedScripts.isEmpty && previouslyServed.isEmpty
            && (state.phase != .restoring) && forecast != nil
        {
            // The code served now is the code the caches were built from: a purge would only make
            // every request rebuild them (and Moodle's rebuild races under load).
            note("Production holds the code that was served: no upgrade, caches kept.")
            cachesText = "caches kept (the code did not change)"
        } else {
            try moodle.purgeCaches(in: .production)
        }
        var healthText = ""
        // Moodle's own checks run while maintenance mode still holds users out; only the page
        // itself needs the site open, and it is asked for at once.
        var health = HealthReport(passed: true, checkedAt: Date(), results: [], failures: [])
        if let checker {
            note("Health check: pending upgrade and Moodle's checks, still in maintenance mode…")
            health = checker.runCommandLineChecks(
                tree: .production, baseline: Set((try store.read()).criticalChecksBefore ?? []))
            if !health.passed { throw try healthFailure(health) }
        }
        if (try store.read()).maintenanceEnabled {
            try moodle.setMaintenance(false, in: .production)
            try change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = false }
        }
        if let checker {
            note("Health check: \(checker.url)…")
            health = checker.addPageCheck(to: health)
            if !health.passed { throw try healthFailure(health) }
            for line in health.results { note("Health check: \(line)") }
            try change { (state: inout DeliveryState) throws(DeliveryError) in state.lastHealthCheck = health }
            healthText = " The health check passed."
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
        }
        return
            "Production is restored and serves \(revisionAfter?.label ?? "the updated code"); \(upgradeText), \(cachesText).\(healthText) The delivery is complete."
    }

    /// Records a failed health check and ends the step the way the site asks (automatic rollback,
    /// or maintenance mode and the administrator's decision).
    private func healthFailure(_ report: HealthReport) throws(DeliveryError) -> DeliveryError {
        for line in report.results { note("Health check: \(line)") }
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.lastHealthCheck = report }
        return try afterFailure(
            DeliveryError(.healthCheckFailed, report.failures.joined(separator: "; ")), what: "The health check failed")
    }

    /// Makes production ready to be served: its component cache built if missing, and, when
    /// `warm`, PHP-FPM's OPcache warmed with one request (useless in maintenance mode, where Moodle
    /// compiles nothing).
    private func readyProductionForServing(warm: Bool) throws(DeliveryError) {
        let productionRoot = (try? System.realPath(layout.path(of: .production))) ?? layout.path(of: .production)
        if lacksComponentCache(productionRoot) { try buildComponentCache(at: productionRoot) }
        if warm { warmByRequest(.production) }
    }

    /// The health checker, unless the site turned it off.
    private func healthChecker(_ moodle: MoodleCLI) -> HealthChecker? {
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
    private func afterFailure(_ error: DeliveryError, what: String) throws(DeliveryError) -> DeliveryError {
        if error.code == .preempted { return error }
        let mode = engine.configuration.healthCheckSettings.mode
        let reason = error.code == .healthCheckFailed ? "\(what): \(error.message)" : error.message
        note("\(reason).")
        if mode == .automatic {
            note("Rolling back automatically (healthCheck.mode = automatic)…")
            do {
                let done = try rollBack(preempting: false)
                return DeliveryError(error.code, "\(reason). Rolled back automatically: \(done)")
            } catch {
                return DeliveryError(
                    error.code, "\(reason). The automatic rollback failed too: \(error.message)")
            }
        }
        let moodle = try engine.moodle(recorder)
        if !(try store.read()).maintenanceEnabled {
            try? moodle.setMaintenance(true, in: layout.servedTree() ?? .production)
            try? change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = true }
        }
        let plan = DeliveryEngine.rollbackPlan(try store.read(), copies: engine.copyStatuses(try store.read()))
        return DeliveryError(
            error.code,
            "\(reason). Maintenance mode stays on: restore again once production is fixed, or roll back (\(plan.kind == .codeAndDatabase ? "the older code and the database snapshot" : "the older code"))."
        )
    }

    /// Takes the database snapshot of this delivery, inside the maintenance window.
    private func takeSnapshot() throws(DeliveryError) {
        let configuration = engine.configuration
        let webUser = try UserIdentity.lookup(configuration.webUser)
        let connection = try DatabaseConnection.read(
            php: configuration.php, codeRoot: layout.codeRoot(of: .production), webUser: webUser)
        let tool = DatabaseTool(
            connection: connection, webUser: webUser, recorder: recorder,
            timeout: configuration.snapshotSettings.timeoutSeconds)
        let directory = configuration.snapshotDirectory
        do {
            try SiteAdoption.makeDirectories(directory, mode: 0o700)
            try System.changeMode(directory, 0o700)
        } catch {
            throw DeliveryError.io("cannot make the snapshot folder", error)
        }
        let tables = try tool.tables()
        guard !tables.isEmpty else {
            throw DeliveryError(
                .snapshotFailed,
                "the database \(connection.name) has no table with the prefix '\(connection.prefix)'")
        }
        let estimate = try tool.estimatedSize()
        let available: Int64
        do {
            available = try System.availableBytes(directory)
        } catch {
            throw DeliveryError.io("cannot read the free space of \(directory)", error)
        }
        guard available > estimate + (16 << 20) else {
            throw DeliveryError(
                .snapshotFailed,
                "not enough free space for the database snapshot in \(directory): \(formatBytes(available)) free, Moodle's tables take \(formatBytes(estimate))"
            )
        }
        let state = try store.read()
        let name = state.deliveryId ?? id
        let file = "\(directory)/\(name).\(connection.family == .postgres ? "pgdump" : "sql")"
        note(
            "Database snapshot: dumping \(tables.count) tables of \(connection.name) (\(formatBytes(estimate)) in the database) into \(file)…"
        )
        let takenAt = Date()
        let started = System.monotonicSeconds()
        try tool.dump(into: file, tables: tables)
        let seconds = System.monotonicSeconds() - started
        let size = (try? System.lstatus(file).size) ?? 0
        let snapshot = DatabaseSnapshot(
            id: name, file: file, databaseType: connection.type, database: connection.name,
            tableCount: tables.count, takenAt: takenAt, sizeBytes: size, seconds: seconds,
            codeRevision: state.revisionBeforeDelivery ?? state.copies[.backup]?.revision)
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.snapshot = snapshot }
        note(
            "Database snapshot: \(formatBytes(size)) in \(format1(seconds)) s (the time it adds to the maintenance window)."
        )
        for removed in DatabaseTool.prune(directory, keep: configuration.snapshotSettings.keep, protecting: file) {
            note("Removed the older snapshot \(removed) (keeping \(configuration.snapshotSettings.keep)).")
        }
    }

    /// The files each tree makes for itself, left alone by copies (the component cache).
    private var preservedFiles: Set<String> {
        engine.configuration.componentCacheFile.map { [$0] } ?? []
    }

    /// Builds the prebuilt component cache of a tree (by its real path) when the site uses one.
    private func buildComponentCache(at treeRoot: String) throws(DeliveryError) {
        guard let file = engine.configuration.componentCacheFile else { return }
        note("Building the component cache of \(lastComponent(of: treeRoot)) for its code…")
        try engine.moodle(recorder).buildComponentCache(
            treeRoot: treeRoot, file: file, owner: try UserIdentity.lookup(engine.configuration.codeOwner))
    }

    /// True when the site uses a component cache and the tree lacks it.
    private func lacksComponentCache(_ treeRoot: String) -> Bool {
        guard let file = engine.configuration.componentCacheFile else { return false }
        return (try? System.lstatus("\(treeRoot)/\(file)"))?.kind != .regular
    }

    /// Warms PHP-FPM's OPcache for a tree about to be served: one real request for its login page,
    /// straight to the pool (see `OPcacheInvalidator.warmByRequest`). Skipped by the emergency
    /// rollback, which must not wait on the pool.
    private func warmByRequest(_ tree: TreeName) {
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
    private func dropFromOPcache(_ relativePaths: [String], under root: String? = nil) throws(DeliveryError) {
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
                // OPcache afresh (tests/apache shows it with validate_timestamps=0).
                return
            }
            note(
                "Warning: no PHP-FPM socket is configured (phpFpmSockets): \(scripts.count) changed scripts stay in PHP-FPM's OPcache until it revalidates them (never with opcache.validate_timestamps=0)."
            )
            return
        }
        for line in try engine.opcache(recorder).invalidate(scripts) { note(line) }
    }

    // MARK: Cancel

    private func cancel() throws(DeliveryError) -> String {
        let state = try store.read()
        try requireAllowed(.cancel, state)
        if state.upgradeRan, !(try preDeliveryCodeMatchesDatabase(state)) {
            throw DeliveryError(
                .wrongState,
                "cancel refused: Moodle's upgrade changed the database in this delivery and the pre-delivery code does not match it any more (Moodle would refuse to run it). Finish with restore, or use rollback"
            )
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
                throw DeliveryError(
                    .wrongState,
                    "cancel refused: neither production's code nor the \(served.rawValue) copy's matches the database (Moodle says an upgrade is pending or the code is older than the database); nothing was changed. Restore production to run Moodle's upgrade"
                )
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
                .wrongState,
                "cancel stopped before serving production: Moodle says production's code (\(revisionAfter?.label ?? "unknown revision")) does not match the database; the site keeps serving the \(served.rawValue) copy. Restore production to run Moodle's upgrade, or update production to the code that matches"
            )
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
        }
        return
            "The delivery is cancelled: production serves again at \(revisionAfter?.label ?? "its pre-delivery revision")."
    }

    /// After an upgrade attempt, asks the backup copy (the pre-delivery code) whether it still
    /// matches the database; only then can cancel serve that code again.
    private func preDeliveryCodeMatchesDatabase(_ state: DeliveryState) throws(DeliveryError) -> Bool {
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
        // Holding the lock, it is the journal's running operation like any other, so that a rollback
        // killed part-way (after its switch, before the database is back) is seen as interrupted by
        // `status` and `recover`. Preempting, the journal names the operation it takes over from.
        var journaled = false
        if lock != nil {
            try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
                if state.running == nil { state.running = holder }
            }
            journaled = (try? store.read().running?.id) == id
        }
        progress(.stepStarted(.rollback))
        var failure: DeliveryError?
        var message = ""
        do throws(DeliveryError) {
            let state = try store.read()
            let plan = DeliveryEngine.rollbackPlan(state, copies: engine.copyStatuses(state))
            guard plan.target != nil else {
                throw DeliveryError(.copyMissing, "rollback impossible: there is no complete security or backup copy")
            }
            if plan.kind == .codeAndDatabase && plan.needsConfirmation && request.confirmDatabaseRestore != true {
                throw DeliveryError(
                    .confirmationRequired,
                    "rollback not done: it must be confirmed. \(plan.explanation) Confirm with 'deliveryctl rollback --restore-database', or tick the confirmation on the delivery screen."
                )
            }
            // Destructive: with the plugin's key alone, any process of the web user could ask it.
            if plan.kind == .codeAndDatabase && plan.needsConfirmation && request.actor.viaKey {
                try engine.secondFactor.verify(request.secondFactorCode, for: request.actor)
            }
            if preempting, let running = DeliveryLock.currentHolder(in: engine.configuration.stateDirectory) ?? nil {
                note(
                    "Taking over from '\(running.operation.rawValue)' run by \(running.actor.name); it will stop at its next step."
                )
            }
            message = try rollBack(preempting: preempting)
            if let lag = webServerLag {
                throw DeliveryError(.webServerStale, "\(message) But \(lag.message).")
            }
            progress(.fraction(.rollback, 1))
        } catch {
            failure = error
        }
        progress(.stepFinished(.rollback, succeeded: failure == nil, message: failure?.message ?? message))
        let refused = failure.map(isRefusal) ?? false
        if !refused && !preempting { refreshCopiesMatchingDatabase() }
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in
            if journaled && state.running?.id == id { state.running = nil }
            if !refused {
                state.lastResults[.rollback] = StepResult(
                    succeeded: failure == nil, finishedAt: Date(), message: failure?.message ?? message,
                    errorCode: failure?.code)
            }
        }
        let phase = (try? store.read().phase) ?? .rolledBack
        let served = layout.servedTree()
        writeAudit(
            result: failure == nil ? "succeeded" : (refused ? "refused" : "failed"), error: failure,
            message: failure?.message ?? message, phase: phase, served: served)
        if let failure { throw failure }
        return OperationOutcome(id: id, operation: .rollback, message: message, phase: phase, served: served)
    }

    /// Serves the rollback target and, when Moodle's upgrade moved the database past its code,
    /// restores the database snapshot under maintenance mode. Shared by the emergency rollback and
    /// the automatic rollback after a failed upgrade or health check.
    /// - Parameter preempting: another operation still runs (the database is then left for a
    ///   second rollback once it has stopped: two processes must never write it at once).
    /// - Returns: what was done, for the administrator.
    private func rollBack(preempting: Bool) throws(DeliveryError) -> String {
        let state = try store.read()
        let plan = DeliveryEngine.rollbackPlan(state, copies: engine.copyStatuses(state))
        guard let target = plan.target else {
            throw DeliveryError(.copyMissing, "rollback impossible: there is no complete security or backup copy")
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
                return
                    "The site serves the \(target.rawValue) copy (\(revisionAfter?.label ?? "unknown revision")) in maintenance mode. The database snapshot is not restored yet because another operation is still running: run rollback again once it has stopped."
            }
            stopOrphanedUpgrade(state)
            note(
                "Restoring the database snapshot taken at \(snapshot.takenAt.formatted(.iso8601)) (\(formatBytes(snapshot.sizeBytes)))…"
            )
            let started = System.monotonicSeconds()
            let webUser = try UserIdentity.lookup(engine.configuration.webUser)
            do {
                let connection = try DatabaseConnection.read(
                    php: engine.configuration.php, codeRoot: layout.codeRoot(of: target), webUser: webUser)
                try DatabaseTool(
                    connection: connection, webUser: webUser, recorder: recorder,
                    timeout: engine.configuration.snapshotSettings.timeoutSeconds
                ).restore(snapshot)
            } catch {
                throw DeliveryError(
                    .databaseRestoreFailed,
                    "\(error.message). The site serves the \(target.rawValue) copy in maintenance mode; run rollback again"
                )
            }
            let seconds = System.monotonicSeconds() - started
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.databaseAhead = false
                state.upgradeRan = false
                state.copiesMatchingDatabase = [target: true]
            }
            note("Database restored in \(format1(seconds)) s.")
            guard try moodle.codeMatchesDatabase(in: target) else {
                throw DeliveryError(
                    .databaseRestoreFailed,
                    "the snapshot is restored but Moodle says the \(target.rawValue) copy's code still does not match the database; maintenance mode stays on"
                )
            }
            try moodle.purgeCaches(in: target)
            try moodle.setMaintenance(false, in: target)
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.maintenanceEnabled = false
                state.deliveryWindowOpen = false
            }
            return
                "The site serves the \(target.rawValue) copy (\(revisionAfter?.label ?? "unknown revision")) and the database is back as it was at \(snapshot.takenAt.formatted(.iso8601)) (restored in \(format1(seconds)) s); caches purged, maintenance mode off. Then: fix production and restore, or cancel."
        }
        if !emergency && state.databaseAhead == true {
            throw DeliveryError(
                .upgradeFailed,
                "no automatic rollback: Moodle's upgrade changed the database and there is no snapshot, so the older code would not run; the site stays on production in maintenance mode"
            )
        }
        if !emergency { warmByRequest(target) }
        try switchServed(to: target, preempting: emergency)
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.phase = .rolledBack }
        var message = "The site serves the \(target.rawValue) copy (\(revisionAfter?.label ?? "unknown revision"))."
        // The site already serves the copy; now ask its code whether it runs on the database as
        // it is (an upgrade, even of an earlier delivery, may have moved the database on).
        let databaseMatches = (try? moodle.codeMatchesDatabase(in: target)) ?? false
        if state.maintenanceEnabled && databaseMatches {
            try moodle.setMaintenance(false, in: target)
            try change { (state: inout DeliveryState) throws(DeliveryError) in
                state.maintenanceEnabled = false
                state.deliveryWindowOpen = false
            }
            message += " The older code matches the database: maintenance mode is off."
        } else if !databaseMatches {
            message += " Warning: Moodle's upgrade changed the database and the older code does not match it"
            if state.maintenanceEnabled {
                message += "; maintenance mode stays on."
            } else if try maintenanceForRefusedCode(target, moodle: moodle) {
                message += "; maintenance mode is now on."
            } else {
                message += ", and maintenance mode could not be turned on."
            }
        }
        return message + " Then: fix production and restore, or cancel."
    }

    /// Turns maintenance mode on for a served copy whose code Moodle refuses on the database as
    /// it is (an upgrade moved it on, no snapshot was restored): its users see the maintenance
    /// page rather than errors, as the rollback plan says. The one place of that rule, for the
    /// rollback and for the recovery of an interrupted one. False when Moodle could not do it.
    private func maintenanceForRefusedCode(_ tree: TreeName, moodle: MoodleCLI) throws(DeliveryError) -> Bool {
        guard (try? moodle.setMaintenance(true, in: tree)) != nil else { return false }
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.maintenanceEnabled = true }
        return true
    }

    /// Waits, before recover does anything else, for Moodle's upgrade when it still runs after the
    /// helper that started it died (kill -9): stopping it midway would leave the database half
    /// upgraded, and a new one would fail on Moodle's upgrade lock. It is stopped only past the
    /// upgrade's time limit. A sentence for the result, or nil when there was none.
    private func waitForOrphanedUpgrade(_ state: DeliveryState) -> String? {
        defer { forgetUpgradeProcessGroup(state) }
        guard let group = orphanedUpgrade(state) else { return nil }
        note(
            "Moodle's upgrade from the interrupted operation still runs (process group \(group)): waiting for it to end…"
        )
        let started = System.monotonicSeconds()
        let deadline = started + engine.configuration.timeouts.upgrade
        while System.processIsRunning(group) && System.monotonicSeconds() < deadline { usleep(200_000) }
        let seconds = format1(System.monotonicSeconds() - started)
        guard System.processIsRunning(group) else {
            return
                "Moodle's upgrade left running by it ended after \(seconds) s more; run restore again to finish the delivery."
        }
        stop(processGroup: group)
        return
            "Moodle's upgrade left running by it was still running after its time limit (\(seconds) s) and was stopped: the database may be half upgraded; check it before anything else."
    }

    /// Stops Moodle's upgrade when it still runs after the helper that started it died (kill -9):
    /// the database must not change under the snapshot being restored.
    private func stopOrphanedUpgrade(_ state: DeliveryState) {
        defer { forgetUpgradeProcessGroup(state) }
        guard let group = orphanedUpgrade(state) else { return }
        note("Moodle's upgrade (process group \(group)) still runs from the interrupted operation: stopping it…")
        stop(processGroup: group)
    }

    /// The process group of Moodle's upgrade that an interrupted operation left running, or nil.
    private func orphanedUpgrade(_ state: DeliveryState) -> Int32? {
        guard let group = state.upgradeProcessGroup else { return nil }
        guard System.processIsRunning(group), let commandLine = System.commandLine(of: group),
            commandLine.contains("upgrade.php")
        else { return nil }
        return group
    }

    /// The journal forgets the upgrade's process group once it is dealt with.
    private func forgetUpgradeProcessGroup(_ state: DeliveryState) {
        guard state.upgradeProcessGroup != nil else { return }
        try? change { (state: inout DeliveryState) throws(DeliveryError) in state.upgradeProcessGroup = nil }
    }

    /// SIGTERM, 10 s to end, then SIGKILL.
    private func stop(processGroup group: Int32) {
        System.signal(processGroup: group, SIGTERM)
        let deadline = System.monotonicSeconds() + 10
        while System.processIsRunning(group) && System.monotonicSeconds() < deadline { usleep(100_000) }
        if System.processIsRunning(group) { System.signal(processGroup: group, SIGKILL) }
    }

    /// Asks Moodle, in every complete copy, whether its code matches the database as it is now
    /// (`upgrade.php --is-pending`), for the rollback plan. An answer that cannot be had is left out.
    private func refreshCopiesMatchingDatabase() {
        guard let state = try? store.read(), let moodle = try? engine.moodle(recorder) else { return }
        let copies = engine.copyStatuses(state)
        var answers: [TreeName: Bool] = [:]
        for tree in [TreeName.security, .backup] where copies[tree]?.complete == true {
            if let answer = (try? moodle.databaseMatch(in: tree, echo: false)) ?? nil { answers[tree] = answer }
        }
        try? store.update { (state: inout DeliveryState) throws(DeliveryError) in state.copiesMatchingDatabase = answers
        }
    }

    // MARK: Recover

    private func recover() throws(DeliveryError) -> String {
        let state = try store.read()
        guard let dead = state.running, dead.id != id else {
            throw DeliveryError(.wrongState, "recover refused: no interrupted operation to recover from")
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
        let again =
            dead.operation == .rollback ? " Run the emergency rollback again to finish it." : ""
        let maintenance =
            orphan == nil ? "" : after.maintenanceEnabled ? " Maintenance mode is on." : " Maintenance mode is off."
        return
            "Recorded the interrupted '\(dead.operation.rawValue)' (step '\(dead.step.rawValue)', started by \(dead.actor.name) at \(dead.startedAt.formatted(.iso8601))).\(orphan.map { " \($0)" } ?? "") The site serves the \(served?.rawValue ?? "unknown") tree; state '\(after.phase.rawValue)'.\(maintenance)\(again)"
    }

    // MARK: Audit

    func auditRefusal(_ error: DeliveryError) {
        writeAudit(
            result: "refused", error: error, message: error.message, phase: try? store.read().phase,
            served: layout.servedTree())
    }

    private func writeAudit(
        result: String, error: DeliveryError?, message: String, phase: DeliveryPhase?, served: TreeName?
    ) {
        let deliveryId = try? store.read().deliveryId
        let record = AuditRecord(
            id: id, deliveryId: deliveryId ?? nil, time: startedAt, actor: request.actor, operation: request.operation,
            result: result, securePath: request.securePath, updatePath: request.updatePath,
            securityCopy: [.secure, .runAll].contains(request.operation) ? request.securityCopy : nil,
            comment: request.comment, revisionBefore: revisionBefore, revisionAfter: revisionAfter,
            servedBefore: servedBefore, servedAfter: served, phaseAfter: phase, commands: recorder.summaries,
            durationSeconds: System.monotonicSeconds() - startedMonotonic, errorCode: error?.code, message: message)
        do {
            try engine.audit.append(record)
        } catch {
            engine.logger.error("audit log write failed: \(error.message)")
            progress(.line("Warning: \(error.message)"))
        }
    }
}

/// A number with one decimal.
func format1(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}

/// A size for people: `812 KB`, `39.2 MB`, `1.4 GB`.
func formatBytes(_ bytes: Int64) -> String {
    let value = Double(bytes)
    if value < 1_000_000 { return "\(Int((value / 1000).rounded())) KB" }
    if value < 1_000_000_000 { return "\(format1(value / 1_000_000)) MB" }
    return "\(format1(value / 1_000_000_000)) GB"
}

/// A duration for people: `40 s`, `12 min`, `2 h 5 min`, `3 days 4 h`.
func formatDuration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    if total < 60 { return "\(total) s" }
    if total < 3600 { return "\(total / 60) min" }
    if total < 86400 { return "\(total / 3600) h \((total % 3600) / 60) min" }
    return "\(total / 86400) day\(total / 86400 == 1 ? "" : "s") \((total % 86400) / 3600) h"
}
