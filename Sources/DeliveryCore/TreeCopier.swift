import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What a synchronisation did.
public struct CopyStatistics: Sendable, Codable, Equatable {
    /// Regular files in the target afterwards.
    public var files = 0
    /// Folders in the target afterwards (its root included).
    public var directories = 0
    /// Symlinks in the target afterwards.
    public var symlinks = 0
    /// Bytes of file contents in the target afterwards.
    public var bytes: Int64 = 0
    /// Files whose contents were copied.
    public var filesCopied = 0
    /// Files hard-linked from the unchanged previous version instead of copied.
    public var filesLinked = 0
    /// Entries removed from the target because the source no longer has them.
    public var entriesRemoved = 0
    /// Entries left out: sockets, fifos, devices (relative paths).
    public var skipped: [String] = []
    /// Absolute symlinks pointing into the source tree (they would serve the source, not the copy).
    public var absoluteLinksIntoSource: [String] = []

    /// True when the target had to change at all.
    public var changed: Bool { filesCopied + filesLinked + entriesRemoved + changedOther > 0 }
    /// Folders made, symlinks written and metadata fixed.
    public var changedOther = 0

    /// Makes empty statistics.
    public init() {}

    mutating func add(_ other: CopyStatistics) {
        files += other.files
        directories += other.directories
        symlinks += other.symlinks
        bytes += other.bytes
        filesCopied += other.filesCopied
        filesLinked += other.filesLinked
        entriesRemoved += other.entriesRemoved
        changedOther += other.changedOther
        skipped += other.skipped
        absoluteLinksIntoSource += other.absoluteLinksIntoSource
    }
}

/// Makes a target tree an exact mirror of a source tree, as `rsync -a --delete` would: deletions
/// propagate, dotfiles, symlinks (copied as links, never followed), modes, mtimes to the
/// nanosecond and, as root, owners are kept; VCS metadata (`.git`, `.svn`, `CVS`) is left out.
///
/// Files whose size, mtime, mode and owner match are left alone. Work is spread over several
/// threads, one folder at a time. An existing inode of the target is never written in place: a
/// changed file is written under a temporary name and renamed over the old one. That makes it
/// safe for the target to share inodes (hard links) with another tree, `linkFrom`, the other
/// generation of the same copy: a file missing from the target whose metadata match the file in
/// `linkFrom` is hard-linked from it rather than copied. Contents are copied with reflinks where
/// the file system supports them, else `copy_file_range`.
public struct TreeCopier: Sendable {
    /// Names of folders (and `.git` files of submodules) never copied.
    public static let versionControlNames: Set<String> = [".git", ".svn", "CVS"]

    /// Keep owners (possible only as root).
    public var preserveOwnership: Bool
    /// How many threads walk and copy.
    public var workers: Int

    /// Makes a copier; owners are kept when running as root.
    public init(preserveOwnership: Bool = System.effectiveUserIdentifier == 0, workers: Int = 4) {
        self.preserveOwnership = preserveOwnership
        self.workers = max(1, workers)
    }

    /// Makes `target` (created when missing) an exact mirror of `source`.
    ///
    /// - Parameters:
    ///   - source: the tree to mirror.
    ///   - target: the tree to change.
    ///   - linkFrom: a tree on the same file system whose unchanged files may be hard-linked.
    ///   - skipping: a relative path left alone on both sides (a component refreshed separately).
    ///   - preserving: relative paths also left alone on both sides (files each tree makes itself).
    ///   - checkOnly: change nothing; stop at the first difference (`changed` tells).
    ///   - onProgress: called on the calling thread about ten times a second with entries done.
    ///   - shouldContinue: polled on the calling thread; false stops the work with `.preempted`.
    /// - Throws: `DeliveryError` with the path; the target may then be partly synchronised.
    public func synchronize(
        source: String, target: String, linkFrom: String? = nil, skipping: String? = nil,
        preserving: Set<String> = [], checkOnly: Bool = false,
        onProgress: (Int) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws(DeliveryError) -> CopyStatistics {
        let job = SyncJob(
            copier: self, sourceRoot: source, targetRoot: target, linkRoot: linkFrom,
            skip: preserving.union(skipping.map { [$0] } ?? []),
            checkOnly: checkOnly)
        let sourceStatus: FileStatus
        do {
            sourceStatus = try System.lstatus(source)
        } catch {
            throw DeliveryError.io("cannot read the source tree", error)
        }
        guard sourceStatus.kind == .directory else {
            // A single file component.
            return try job.synchronizeSingle(sourceStatus)
        }
        job.enqueue("")
        let group = DispatchGroup()
        for _ in 0..<workers {
            DispatchQueue.global().async(group: group) { job.work() }
        }
        while group.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            onProgress(job.entriesDone.load(ordering: .relaxed))
            if !shouldContinue() { job.stop(DeliveryError(.preempted, "the copy was stopped before it finished")) }
        }
        if let failure = job.failure.withLock({ $0 }) { throw failure }
        var statistics = job.statistics.withLock { $0 }
        if job.differenceFound.load(ordering: .relaxed) {
            statistics.changedOther += 1
            return statistics
        }
        if !checkOnly || !statistics.changed {
            try job.fixDirectories(root: sourceStatus, statistics: &statistics)
        }
        onProgress(job.entriesDone.load(ordering: .relaxed))
        return statistics
    }

    /// Copies `source` into a new `destination`, hard-linking unchanged files from `previous`.
    public func mirror(
        from source: String, to destination: String, sharingUnchangedWith previous: String? = nil,
        onProgress: (Int) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws(DeliveryError) -> CopyStatistics {
        try synchronize(
            source: source, target: destination, linkFrom: previous, onProgress: onProgress,
            shouldContinue: shouldContinue)
    }

    /// True when `target` differs from `source` in anything a mirror keeps (read only).
    public func differs(
        source: String, target: String, preserving: Set<String> = [], shouldContinue: () -> Bool = { true }
    ) throws(DeliveryError) -> Bool {
        try synchronize(
            source: source, target: target, preserving: preserving, checkOnly: true, shouldContinue: shouldContinue
        ).changed
    }

    /// Removes a tree without following symlinks, making read-only folders writable first.
    public static func removeTree(_ path: String) throws(DeliveryError) {
        do {
            try removeTreeOrFail(path)
        } catch {
            throw DeliveryError.io("cannot remove \(path)", error)
        }
    }

    static func removeTreeOrFail(_ path: String) throws(SystemCallError) {
        guard let status = try System.lstatusIfExists(path) else { return }
        if status.kind == .directory {
            if status.mode & 0o700 != 0o700 { try System.changeMode(path, status.mode | 0o700) }
            for entry in try System.listDirectory(path) {
                let child = "\(path)/\(entry.name)"
                if entry.kind == .directory || entry.kind == nil {
                    try removeTreeOrFail(child)
                } else {
                    try System.unlink(child)
                }
            }
            try System.removeDirectory(path)
        } else {
            try System.unlink(path)
        }
    }
}

/// The shared state of one synchronisation: a queue of folders and the workers' results.
private final class SyncJob: Sendable {
    let copier: TreeCopier
    let sourceRoot: String
    let targetRoot: String
    let linkRoot: String?
    let skip: Set<String>
    let checkOnly: Bool

    struct Queue {
        var pending: [String] = []
        var active = 0
        var stopped = false
    }

    let queue = Mutex(Queue())
    let wakeUp = DispatchSemaphore(value: 0)
    let entriesDone = Atomic<Int>(0)
    let statistics = Mutex(CopyStatistics())
    let failure = Mutex<DeliveryError?>(nil)
    /// Folders whose metadata must be set after their contents (relative path, source status).
    let directoriesToFix = Mutex<[(String, FileStatus)]>([])

    init(
        copier: TreeCopier, sourceRoot: String, targetRoot: String, linkRoot: String?, skip: Set<String>,
        checkOnly: Bool
    ) {
        self.copier = copier
        self.sourceRoot = sourceRoot
        self.targetRoot = targetRoot
        self.linkRoot = linkRoot
        self.skip = skip
        self.checkOnly = checkOnly
    }

    func path(_ root: String, _ relative: String) -> String {
        relative.isEmpty ? root : "\(root)/\(relative)"
    }

    func enqueue(_ relative: String) {
        queue.withLock { $0.pending.append(relative) }
        wakeUp.signal()
    }

    func stop(_ error: DeliveryError?) {
        if let error { failure.withLock { if $0 == nil { $0 = error } } }
        let workers = copier.workers
        queue.withLock { $0.stopped = true }
        for _ in 0..<workers { wakeUp.signal() }
    }

    /// A worker: takes folders until none is left and none is being worked on.
    func work() {
        while true {
            let next: String?? = queue.withLock { state in
                if state.stopped { return .some(nil) }
                if let item = state.pending.popLast() {
                    state.active += 1
                    return .some(item)
                }
                if state.active == 0 { return .some(nil) }
                return .none
            }
            switch next {
            case .some(.some(let relative)):
                do {
                    try synchronizeDirectory(relative)
                } catch {
                    if error.message == Self.differenceSentinel {
                        differenceFound.store(true, ordering: .relaxed)
                        stop(nil)
                    } else {
                        stop(error)
                    }
                }
                let finished = queue.withLock { state in
                    state.active -= 1
                    return state.active == 0 && state.pending.isEmpty
                }
                if finished { stop(nil) }
            case .some(.none):
                return
            case .none:
                _ = wakeUp.wait(timeout: .now() + .milliseconds(20))
            }
        }
    }

    private func isSkipped(_ relative: String) -> Bool {
        skip.contains(relative)
    }

    private func same(_ a: FileStatus, _ b: FileStatus) -> Bool {
        a.kind == b.kind && (a.kind == .directory || a.size == b.size) && a.modificationSeconds == b.modificationSeconds
            && a.modificationNanoseconds == b.modificationNanoseconds && a.mode == b.mode
            && (!copier.preserveOwnership || (a.uid == b.uid && a.gid == b.gid))
    }

    private func temporaryName(_ target: String) -> String {
        "\(parentDirectory(of: target))/.\(lastComponent(of: target)).delivery-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Set when a check-only walk found a difference.
    let differenceFound = Atomic<Bool>(false)
    static let differenceSentinel = "\u{0}difference"

    /// Records a difference: in check-only mode it ends the walk.
    private func difference(_ local: inout CopyStatistics) throws(DeliveryError) {
        local.changedOther += 1
        if checkOnly { throw DeliveryError(.io, Self.differenceSentinel) }
    }

    func synchronizeDirectory(_ relative: String) throws(DeliveryError) {
        var local = CopyStatistics()
        defer { statistics.withLock { $0.add(local) } }
        let sourceDirectory = path(sourceRoot, relative)
        let targetDirectory = path(targetRoot, relative)
        do {
            let sourceStatus = try System.lstatus(sourceDirectory)
            local.directories += 1
            var targetNames: [String: FileKind?] = [:]
            let targetStatus = try System.lstatusIfExists(targetDirectory)
            var changedHere = false
            if let targetStatus, targetStatus.kind != .directory {
                try difference(&local)
                try System.unlink(targetDirectory)
            }
            if targetStatus?.kind == .directory {
                for entry in try System.listDirectory(targetDirectory) { targetNames[entry.name] = entry.kind }
                if !same(sourceStatus, targetStatus!) { changedHere = true }
            } else {
                try difference(&local)
                try System.makeDirectory(targetDirectory, 0o700)
                changedHere = true
            }
            var sourceNames = Set<String>()
            for entry in try System.listDirectory(sourceDirectory) {
                let name = entry.name
                let childRelative = relative.isEmpty ? name : "\(relative)/\(name)"
                if isSkipped(childRelative) {
                    sourceNames.insert(name)
                    continue
                }
                let sourcePath = "\(sourceDirectory)/\(name)"
                let status = try System.lstatus(sourcePath)
                if TreeCopier.versionControlNames.contains(name)
                    && (status.kind == .directory || (name == ".git" && status.kind == .regular))
                {
                    continue
                }
                sourceNames.insert(name)
                entriesDone.add(1, ordering: .relaxed)
                let targetPath = "\(targetDirectory)/\(name)"
                let existing = targetNames[name] == nil ? nil : try System.lstatusIfExists(targetPath)
                switch status.kind {
                case .directory:
                    if let existing, existing.kind != .directory {
                        try difference(&local)
                        try TreeCopier.removeTreeOrFail(targetPath)
                        changedHere = true
                    }
                    if existing == nil { changedHere = true }
                    enqueue(childRelative)
                case .regular:
                    local.files += 1
                    local.bytes += status.size
                    if let existing, same(status, existing) { continue }
                    try difference(&local)
                    local.changedOther -= 1
                    changedHere = true
                    try placeFile(
                        relative: childRelative, source: sourcePath, status: status, target: targetPath,
                        existing: existing, statistics: &local)
                case .symlink:
                    local.symlinks += 1
                    let linkTarget = try System.readLink(sourcePath)
                    if linkTarget.hasPrefix("/") && (linkTarget == sourceRoot || linkTarget.hasPrefix(sourceRoot + "/"))
                    {
                        local.absoluteLinksIntoSource.append(childRelative)
                    }
                    if let existing, existing.kind == .symlink, same(status, existing),
                        (try? System.readLink(targetPath)) == linkTarget
                    {
                        continue
                    }
                    try difference(&local)
                    changedHere = true
                    let temporary = temporaryName(targetPath)
                    try System.symlink(target: linkTarget, at: temporary)
                    if copier.preserveOwnership { try System.changeOwner(temporary, uid: status.uid, gid: status.gid) }
                    try System.setTimes(
                        temporary, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
                    if let existing, existing.kind == .directory { try TreeCopier.removeTreeOrFail(targetPath) }
                    try System.rename(temporary, targetPath)
                case .other:
                    local.skipped.append(childRelative)
                }
            }
            for (name, _) in targetNames where !sourceNames.contains(name) {
                try difference(&local)
                local.changedOther -= 1
                local.entriesRemoved += 1
                changedHere = true
                try TreeCopier.removeTreeOrFail("\(targetDirectory)/\(name)")
            }
            if changedHere && !relative.isEmpty {
                directoriesToFix.withLock { $0.append((relative, sourceStatus)) }
            }
        } catch let error as SystemCallError {
            throw DeliveryError.io("copy failed at '\(relative.isEmpty ? "." : relative)'", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "copy failed at '\(relative)': \(error)")
        }
    }

    /// Puts a regular file in place: hard link from `linkFrom` when unchanged there, else a copy;
    /// always under a temporary name first, so that no existing inode is changed.
    private func placeFile(
        relative: String, source: String, status: FileStatus, target: String, existing: FileStatus?,
        statistics local: inout CopyStatistics
    ) throws {
        let temporary = temporaryName(target)
        var linked = false
        if let linkRoot {
            let candidate = "\(linkRoot)/\(relative)"
            if let old = try System.lstatusIfExists(candidate), old.kind == .regular, same(status, old) {
                do {
                    try System.link(candidate, temporary)
                    linked = true
                } catch {
                    if error.errno != EMLINK && error.errno != EXDEV && error.errno != EPERM { throw error }
                }
            }
        }
        if linked {
            local.filesLinked += 1
        } else {
            local.filesCopied += 1
            let input = try System.open(source, O_RDONLY | O_NOFOLLOW)
            defer { System.close(input) }
            let output = try System.open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
            defer { System.close(output) }
            try System.copyContents(from: input, to: output, size: status.size)
            if copier.preserveOwnership { try System.fileChangeOwner(output, uid: status.uid, gid: status.gid) }
            try System.fileChangeMode(output, status.mode)
            try System.setTimes(
                fd: output, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
        }
        if let existing, existing.kind == .directory { try TreeCopier.removeTreeOrFail(target) }
        try System.rename(temporary, target)
    }

    /// Sets the mode, owner and times of every folder that changed, deepest first, then the root.
    func fixDirectories(root: FileStatus, statistics: inout CopyStatistics) throws(DeliveryError) {
        var folders = directoriesToFix.withLock { $0 }
        folders.sort { $0.0.count > $1.0.count }
        folders.append(("", root))
        do {
            for (relative, status) in folders {
                let target = path(targetRoot, relative)
                if let current = try System.lstatusIfExists(target), current.kind == .directory, same(status, current) {
                    continue
                }
                if checkOnly {
                    statistics.changedOther += 1
                    return
                }
                if copier.preserveOwnership { try System.changeOwner(target, uid: status.uid, gid: status.gid) }
                try System.changeMode(target, status.mode)
                try System.setTimes(
                    target, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
            }
        } catch {
            throw DeliveryError.io("cannot set folder times", error)
        }
    }

    /// A component that is a single file.
    func synchronizeSingle(_ status: FileStatus) throws(DeliveryError) -> CopyStatistics {
        var local = CopyStatistics()
        do {
            let existing = try System.lstatusIfExists(targetRoot)
            if status.kind == .regular {
                local.files = 1
                local.bytes = status.size
                if let existing, same(status, existing) { return local }
                if checkOnly {
                    local.changedOther = 1
                    return local
                }
                try placeFile(
                    relative: "", source: sourceRoot, status: status, target: targetRoot, existing: existing,
                    statistics: &local)
            } else {
                local.skipped.append(lastComponent(of: sourceRoot))
            }
        } catch let error as SystemCallError {
            throw DeliveryError.io("copy failed at '\(sourceRoot)'", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "copy failed: \(error)")
        }
        return local
    }
}
