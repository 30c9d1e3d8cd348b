#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// Step 1, secure: the backup copy (and the security copy) refreshed from production.
extension OperationRun {
    // MARK: Step 1: secure

    func secure() throws(DeliveryError) -> [Notice] {
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
                        .wrongState, .refusedMixedRevisions,
                        [
                            "tree": .tree(tree), "held": .revision(held), "revision": .revision(revision),
                            "path": .text(path.value),
                        ])
                }
            }
        }
        try checkRoom(for: targets, state: state)
        var summary: [Notice] = []
        if targets.count == 2, request.securePath == nil {
            summary = try refreshBothCopies(revision: revision)
        } else {
            for (index, tree) in targets.enumerated() {
                let weight = (Double(index), Double(targets.count))
                summary.append(try refreshCopy(tree, revision: revision, component: request.securePath, weight: weight))
            }
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
        return summary + [Notice(.nextSwitch)]
    }

    /// Runs one synchronisation as the code owner (`CopyWorker`), its target's root made first.
    func copy(_ job: CopyJob, onProgress: (CopyProgress) -> Void = { _ in }) throws(DeliveryError)
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

    func shouldContinue() -> Bool {
        guard let preempted = try? store.read().preemptedAt else { return true }
        return preempted <= startedAt
    }

    /// The room a secure leaves free on the copies' file system, besides what the copies take.
    static let reservedBytes: Int64 = 64 << 20

    /// Refuses a secure the disk could not hold, before anything is written: a copy made for the
    /// first time takes as much as production's files (VCS metadata aside); a copy refreshed from a
    /// complete one shares its unchanged files, and needs room for what changed. Either way
    /// `reservedBytes` must stay free, so that a delivery never fills the disk Moodle writes to.
    func checkRoom(for targets: [TreeName], state: DeliveryState) throws(DeliveryError) {
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
        throw DeliveryError(
            .noRoom, .refusedNoRoom,
            [
                "folder": .text(layout.releases), "availableBytes": .number(available),
                "neededBytes": .number(needed), "reservedBytes": .number(Self.reservedBytes),
            ])
    }

    static func countEntries(_ path: String) -> Int { measure(path).entries }

    /// The entries of a tree and the bytes of its files, VCS metadata aside, walked through
    /// descriptors that never follow a link.
    static func measure(_ path: String) -> (entries: Int, bytes: Int64) {
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
    func generations(of tree: TreeName) throws(DeliveryError) -> (active: String?, inactive: String) {
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
                    forgetComponentCache(of: moved)
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
            if try System.lstatusIfExists(fresh) == nil {
                forgetComponentCache(of: lastComponent(of: fresh))
                if let reusable = others.last { try System.rename("\(layout.releases)/\(reusable)", fresh) }
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

    /// Forgets what the state says of a generation's component cache: its folder is about to be
    /// made, or to take another folder's place (whose cache was built for another path).
    func forgetComponentCache(of generation: String) {
        try? change { (state: inout DeliveryState) throws(DeliveryError) in
            state.componentCacheFingerprints?[generation] = nil
        }
    }

    /// Builds the component cache of a copy generation just refilled (or of production just
    /// updated), unless the folder has one built for code of the same
    /// `CodeFingerprint.componentCache` digest (the names Moodle's cache lists, and the files
    /// `core_component` reads, are the same): one bootstrap of PHP saved per tree when a delivery
    /// changed only the contents of existing files or a plugin's version.
    func buildComponentCacheUnlessCurrent(at generation: String, fingerprint: String?) throws(DeliveryError) {
        guard engine.configuration.componentCacheFile != nil else { return }
        let name = lastComponent(of: generation)
        if let fingerprint, !lacksComponentCache(generation),
            (try store.read()).componentCacheFingerprints?[name] == fingerprint
        {
            note("The component cache of \(name) is current for its code: kept.")
            return
        }
        try buildComponentCache(at: generation)
        guard let fingerprint else { return }
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.componentCacheFingerprints = (state.componentCacheFingerprints ?? [:]).merging([name: fingerprint]) {
                $1
            }
        }
    }

    /// Makes a copy an exact mirror of production (or refreshes one component of it).
    func refreshCopy(
        _ tree: TreeName, revision: Revision, component: ComponentPath?, weight: (Double, Double)
    ) throws(DeliveryError) -> Notice {
        let progress = self.progress
        let preparation = try prepareCopy(tree, revision: revision, component: component) { share in
            progress(.fraction(.secure, (weight.0 + share) / weight.1 * 0.98))
        }
        return try finish(preparation)
    }

    /// What a prepared copy comes to: nothing to do when it was already exact, else put in place.
    func finish(_ preparation: CopyPreparation) throws(DeliveryError) -> Notice {
        switch preparation {
        case .identical(let notice): notice
        case .prepared(let copy): try installCopy(copy)
        }
    }

    /// Fills a copy's other generation from production (or refreshes one component of it),
    /// with its component cache; nothing is served from it yet. Safe to run for the backup and
    /// the security copies at the same time: each works on its own folders.
    /// - Parameters:
    ///   - report: the share of the walk done (0 to 1).
    ///   - settingUp: marks the operation as changing the site and removes what interrupted
    ///     copies left, once the request is known to be sound; false when the caller did it.
    func prepareCopy(
        _ tree: TreeName, revision: Revision, component: ComponentPath?, settingUp: Bool = true,
        report: @escaping (Double) -> Void
    ) throws(DeliveryError) -> CopyPreparation {
        let state = try store.read()
        let complete = engine.copyStatuses(state)[tree]?.complete == true
        let production = layout.path(of: .production)
        var relative: String?
        if let component {
            guard complete else {
                throw DeliveryError(.copyMissing, .refusedPartialCopy, ["tree": .tree(tree)])
            }
            let path = layout.treeRelative(component)
            try component.checkInside(tree: production, relative: path, mustExist: true)
            try component.checkInside(tree: layout.path(of: tree), relative: path, mustExist: false)
            relative = path
        }
        if settingUp {
            mutated = true
            try removeLeftoverStaging()
        }
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
        var shown = 0.0
        let onProgress: (CopyProgress) -> Void = { done in
            let share =
                total > 0
                ? Double(done.entries) / Double(total) : Double(done.foldersDone) / Double(max(1, done.foldersFound))
            shown = max(shown, min(1, share))
            report(shown)
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
                let fingerprint =
                    state.copies[tree]?.fingerprint ?? CodeFingerprint.of(active, leavingOut: preservedFiles)
                try change { (state: inout DeliveryState) throws(DeliveryError) in
                    state.copies[tree]?.revision = revision
                    state.copies[tree]?.copiedAt = Date()
                    state.copies[tree]?.refreshedPaths = []
                    state.copies[tree]?.fingerprint = fingerprint
                }
                let seconds = System.monotonicSeconds() - started
                return .identical(Notice(.copyIdentical, ["tree": .tree(tree), "checkSeconds": .duration(seconds)]))
            }
        }

        var statistics: CopyStatistics
        var fingerprint: String?
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
            let digests = CodeFingerprint.digests(of: inactive, leavingOut: preservedFiles)
            fingerprint = digests?.answers
            try buildComponentCacheUnlessCurrent(at: inactive, fingerprint: digests?.componentCache)
            // The copy is flushed to disk before anything serves it (`flushCopies`), not now: the
            // kernel writes it back within seconds meanwhile, and a restart before it is on disk
            // makes it incomplete (`unflushedBoot`). Without a boot identifier, flush now.
            if unflushedBoot == nil { try System.syncFileSystem(inactive) }
            // This generation may have been served before, with other code under the same paths.
            try dropFromOPcache(statistics.changedScripts, under: inactive)
        } catch let error as DeliveryError {
            throw error.within([Notice(.copyFailed, ["tree": .tree(tree)])])
        } catch {
            throw DeliveryError(.io, "the \(tree.rawValue) copy failed: \(error)").within([
                Notice(.copyFailed, ["tree": .tree(tree)])
            ])
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
        record.fingerprint = fingerprint
        return .prepared(
            PreparedCopy(
                tree: tree, inactive: inactive, record: record, statistics: statistics, relative: relative,
                started: started))
    }

    /// Puts a prepared copy in place (its tree's link to the other generation, under the switch
    /// mutex, recorded first as a pending swap for `recover`).
    func installCopy(_ copy: PreparedCopy) throws(DeliveryError) -> Notice {
        let (tree, inactive, record, statistics, relative, started) = (
            copy.tree, copy.inactive, copy.record, copy.statistics, copy.relative, copy.started
        )
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
                    throw DeliveryError(.wrongState, .copyServed, ["tree": .tree(tree)])
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
            return Notice(
                .copyRefreshed,
                [
                    "path": .text(relative), "tree": .tree(tree), "files": .count(statistics.files),
                    "copied": .count(statistics.filesCopied), "copySeconds": .duration(seconds),
                ])
        }
        return Notice(
            .copyMade,
            [
                "tree": .tree(tree), "files": .count(statistics.files), "sizeBytes": .number(Int64(statistics.bytes)),
                "copied": .count(statistics.filesCopied), "shared": .count(statistics.filesLinked),
                "removed": .count(statistics.entriesRemoved), "copySeconds": .duration(seconds),
            ])
    }
}
