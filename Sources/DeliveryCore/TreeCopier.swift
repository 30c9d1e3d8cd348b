import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// How far a synchronisation is.
public struct CopyProgress: Sendable, Equatable {
    /// Entries (files, folders, links) seen so far.
    public var entries: Int
    /// Folders finished.
    public var foldersDone: Int
    /// Folders found so far (the root included), finished or not.
    public var foldersFound: Int
}

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
    /// PHP scripts (relative paths; "" for a single-file target) the target got a new file for,
    /// when asked for (`recordingScripts`): the only ones PHP-FPM may hold compiled with other code.
    public var changedScripts: [String] = []

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
        changedScripts += other.changedScripts
    }
}

/// Makes a target tree an exact mirror of a source tree, as `rsync -a --delete` would: deletions
/// propagate, dotfiles, symlinks (copied as links, never followed), modes, mtimes to the
/// nanosecond and, as root, owners are kept; VCS metadata (`.git`, `.svn`, `CVS`) is left out.
///
/// Files whose size, mtime, mode and owner match are left alone. Work is spread over several
/// threads, one folder at a time, with calls relative to open folders. A folder the copy creates
/// is filled directly (no comparison, no temporary names). An existing inode of the target is never written in place: a
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
    /// Without `preserveOwnership`: the groups an entry keeps (those this process belongs to; the
    /// code owner's copy worker has the web server's group, so `config.php` stays readable by it).
    public var groupsKept: Set<UInt32>
    /// How many threads walk and copy.
    public var workers: Int

    /// Makes a copier; owners are kept when running as root, else the groups this process has.
    public init(preserveOwnership: Bool = System.effectiveUserIdentifier == 0, workers: Int = 4) {
        self.preserveOwnership = preserveOwnership
        self.groupsKept = preserveOwnership ? [] : System.processGroups
        self.workers = max(1, workers)
    }

    /// True when the copy `b` of `a` has the owner the copier gives it.
    func ownersMatch(_ a: FileStatus, _ b: FileStatus) -> Bool {
        if preserveOwnership { return a.uid == b.uid && a.gid == b.gid }
        return !groupsKept.contains(a.gid) || a.gid == b.gid
    }

    /// Gives a copied entry the source's owner (as root) or group (else, when this process has
    /// it), through `change(uid, gid)` (UInt32.max leaves one as it is). `made` is the owner a new
    /// entry got when known. A group this process lacks whose rights exceed the others' would hand
    /// those rights to the process's own group: that is refused. True when something changed.
    func giveOwner(
        of status: FileStatus, name: String, made: (uid: UInt32, gid: UInt32)?,
        change: (UInt32, UInt32) throws(SystemCallError) -> Void
    ) throws(SystemCallError) -> Bool {
        if preserveOwnership {
            if let made, made.uid == status.uid, made.gid == status.gid { return false }
            try change(status.uid, status.gid)
            return true
        }
        guard groupsKept.contains(status.gid) else {
            let groupRights = (status.mode >> 3) & 0o7
            let otherRights = status.mode & 0o7
            if groupRights & ~otherRights != 0 {
                throw SystemCallError(
                    errno: EPERM, call: "keep group \(status.gid) (not one of this user's)", path: name)
            }
            return false
        }
        if let made, made.gid == status.gid { return false }
        try change(UInt32.max, status.gid)
        return true
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
    ///   - recordingScripts: list the PHP scripts given a new file in `changedScripts`.
    ///   - onProgress: called on the calling thread about ten times a second with how far it is.
    ///   - shouldContinue: polled on the calling thread; false stops the work with `.preempted`.
    /// - Throws: `DeliveryError` with the path; the target may then be partly synchronised.
    public func synchronize(
        source: String, target: String, linkFrom: String? = nil, below component: String? = nil,
        skipping: String? = nil, preserving: Set<String> = [], checkOnly: Bool = false, recordingScripts: Bool = false,
        onProgress: (CopyProgress) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
    ) throws(DeliveryError) -> CopyStatistics {
        let sourceStatus: FileStatus
        do {
            if let component {
                let base = try System.openDirectory(at: AT_FDCWD, source)
                defer { System.close(base) }
                sourceStatus = try System.lstatus(at: base, component)
            } else {
                sourceStatus = try System.lstatus(source)
            }
        } catch {
            throw DeliveryError.io("cannot read the source tree", error)
        }
        let skip = preserving.union(skipping.map { [$0] } ?? [])
        guard sourceStatus.kind == .directory else {
            // A single file component.
            return try SyncJob.synchronizeSingle(
                copier: self, source: source, target: target, component: component ?? "", status: sourceStatus,
                checkOnly: checkOnly, recordingScripts: recordingScripts)
        }
        let roots: SyncJob.Roots
        do {
            guard
                let opened = try SyncJob.Roots(
                    source: source, target: target, linkFrom: linkFrom, below: component, checkOnly: checkOnly)
            else {
                // Check only, and the target is missing or not a folder.
                var statistics = CopyStatistics()
                statistics.changedOther = 1
                return statistics
            }
            roots = opened
        } catch {
            throw DeliveryError.io("cannot open the trees to copy", error)
        }
        defer { roots.close() }
        let job = SyncJob(
            copier: self, sourceRoot: component.map { "\(source)/\($0)" } ?? source,
            targetRoot: component.map { "\(target)/\($0)" } ?? target, roots: roots, skip: skip, checkOnly: checkOnly,
            recordingScripts: recordingScripts)
        job.enqueue(
            SyncJob.Folder(
                relative: "", created: roots.targetCreated, createdWithMode: false, status: sourceStatus,
                targetStatus: roots.targetStatus))
        System.runThreads(
            workers, interval: 0.1,
            whileWaiting: {
                onProgress(job.progress)
                if !shouldContinue() { job.stop(DeliveryError(.preempted, "the copy was stopped before it finished")) }
            }, job.work)
        if let failure = job.failure.withLock({ $0 }) { throw failure }
        var statistics = job.statistics.withLock { $0 }
        if job.differenceFound.load(ordering: .relaxed) {
            statistics.changedOther += 1
            return statistics
        }
        if !checkOnly { try job.fixDirectories() }
        statistics.changedScripts = job.changedScripts.withLock { $0 }
        onProgress(job.progress)
        return statistics
    }

    /// Copies `source` into a new `destination`, hard-linking unchanged files from `previous`.
    public func mirror(
        from source: String, to destination: String, sharingUnchangedWith previous: String? = nil,
        onProgress: (CopyProgress) -> Void = { _ in }, shouldContinue: () -> Bool = { true }
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

    /// Removes a tree by its path: the parent folder is opened (its path must be one no
    /// less-privileged user can write: the site root, `releases/`, the state directory), and
    /// everything below it is removed through descriptors (`removeEntry`).
    static func removeTreeOrFail(_ path: String) throws(SystemCallError) {
        let parent = try System.open(parentDirectory(of: path), O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        defer { System.close(parent) }
        try removeEntry(at: parent, lastComponent(of: path))
    }

    /// Removes everything in a folder (opened by its path, without following a link), leaving
    /// the folder itself: what the copy worker does, as the code owner, before root removes the
    /// emptied folder from its own `releases/`.
    static func removeContents(of path: String) throws(SystemCallError) {
        let folder = try System.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        defer { System.close(folder) }
        for entry in try System.listDirectory(fd: folder) {
            try removeEntry(at: folder, entry.name)
        }
    }

    /// Removes an entry of an open folder and, for a folder, everything in it, through
    /// descriptors only: each folder is opened with `O_NOFOLLOW` relative to its parent, its
    /// entries are removed relative to it, and a symlink is removed, never followed. A folder
    /// swapped for a symlink while this runs makes it fail; it never removes anything elsewhere.
    static func removeEntry(at directory: Int32, _ name: String) throws(SystemCallError) {
        guard let status = try System.lstatusIfExists(at: directory, name) else { return }
        guard status.kind == .directory else {
            try System.unlink(at: directory, name)
            return
        }
        let folder = try System.openDirectory(at: directory, name)
        do throws(SystemCallError) {
            let opened = try System.fileStatus(folder)
            guard opened.inode == status.inode, opened.device == status.device else {
                throw SystemCallError(errno: ESTALE, call: "open", path: name)
            }
            // Without write and search rights for its owner (a read-only folder of the code), its
            // entries could not be removed (the mode is changed on the open descriptor).
            if System.effectiveUserIdentifier != 0 && opened.mode & 0o700 != 0o700 {
                try System.fileChangeMode(folder, opened.mode | 0o700)
            }
            for entry in try System.listDirectory(fd: folder) {
                try removeEntry(at: folder, entry.name)
            }
        } catch {
            System.close(folder)
            throw error
        }
        System.close(folder)
        try System.unlink(at: directory, name, folder: true)
    }
}

/// The shared state of one synchronisation: a queue of folders and the workers' results.
private final class SyncJob: Sendable {
    /// The open roots of the three trees; every call is made relative to them.
    struct Roots: Sendable {
        let source: Int32
        let target: Int32
        let link: Int32?
        /// The target's root was made by this copy.
        let targetCreated: Bool
        /// The target root's status before the copy (nil when made by it).
        let targetStatus: FileStatus?
        /// Files made in folders this copy created belong to the process's user and group (no
        /// set-group-ID folder above them), so their owner needs no change when it matches.
        let ownerOfNewFiles: (uid: UInt32, gid: UInt32)?

        /// Opens the roots, making the target's when missing; nil when checking only and the
        /// target is not a folder. `source`, `target` and `linkFrom` are tree roots, opened by
        /// path (they sit in folders no less-privileged user can write); a `component` below them
        /// is reached through descriptors only, following no symlink.
        init?(source: String, target: String, linkFrom: String?, below component: String?, checkOnly: Bool)
            throws(SystemCallError)
        {
            var created = false
            let parent: Int32
            let name: String
            if let component {
                let base = try System.openDirectory(at: AT_FDCWD, target)
                if component.contains("/") {
                    defer { System.close(base) }
                    parent = try System.openDirectory(at: base, parentDirectory(of: component))
                } else {
                    parent = base
                }
                name = lastComponent(of: component)
            } else {
                parent = try System.open(parentDirectory(of: target), O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
                name = lastComponent(of: target)
            }
            defer { System.close(parent) }
            let existing = try System.lstatusIfExists(at: parent, name)
            if existing?.kind != .directory {
                if checkOnly { return nil }
                if existing != nil { try TreeCopier.removeEntry(at: parent, name) }
                try System.makeDirectory(at: parent, name, 0o700)
                created = true
            }
            self.source = try Self.open(source, below: component)
            do {
                self.target = try System.openDirectory(at: parent, name)
            } catch {
                System.close(self.source)
                throw error
            }
            var link: Int32?
            if let linkFrom, (try? System.lstatus(linkFrom))?.kind == .directory {
                link = try? Self.open(linkFrom, below: component)
            }
            self.link = link
            targetCreated = created
            let rootStatus = try System.fileStatus(self.target)
            targetStatus = created ? nil : rootStatus
            ownerOfNewFiles =
                created && rootStatus.mode & UInt32(S_ISGID) == 0
                ? (System.effectiveUserIdentifier, System.effectiveGroupIdentifier) : nil
        }

        /// Opens a tree root by path, then the component below it through descriptors.
        static func open(_ root: String, below component: String?) throws(SystemCallError) -> Int32 {
            let base = try System.openDirectory(at: AT_FDCWD, root)
            guard let component else { return base }
            defer { System.close(base) }
            return try System.openDirectory(at: base, component)
        }

        func close() {
            System.close(source)
            System.close(target)
            if let link { System.close(link) }
        }
    }

    /// A folder to synchronise: its path relative to the roots, and whether this copy made it
    /// in the target (then it is empty and needs no comparison), with its final mode or not.
    struct Folder {
        var relative: String
        var created: Bool
        var createdWithMode: Bool
        /// The folder's status in the source, as its parent read it.
        var status: FileStatus
        /// Its status in the target before the copy (nil when created).
        var targetStatus: FileStatus?
    }

    let copier: TreeCopier
    let sourceRoot: String
    let targetRoot: String
    let roots: Roots
    let skip: Set<String>
    let checkOnly: Bool
    let recordingScripts: Bool
    /// Permission bits the process's umask removes from new files.
    let umask: UInt32
    /// Set once a reflink failed as unsupported: no file after it tries again.
    let cloneUnsupported = Atomic<Bool>(false)

    struct Queue {
        var pending: [Folder] = []
        var active = 0
        var stopped = false
    }

    let queue = Mutex(Queue())
    let wakeUp = DispatchSemaphore(value: 0)
    let entriesDone = Atomic<Int>(0)
    let foldersDone = Atomic<Int>(0)
    let foldersFound = Atomic<Int>(0)
    let statistics = Mutex(CopyStatistics())
    let failure = Mutex<DeliveryError?>(nil)
    let changedScripts = Mutex<[String]>([])
    /// Folders whose metadata must be set after their contents.
    let directoriesToFix = Mutex<[Folder]>([])

    init(
        copier: TreeCopier, sourceRoot: String, targetRoot: String, roots: Roots, skip: Set<String>,
        checkOnly: Bool, recordingScripts: Bool
    ) {
        self.copier = copier
        self.sourceRoot = sourceRoot
        self.targetRoot = targetRoot
        self.roots = roots
        self.skip = skip
        self.checkOnly = checkOnly
        self.recordingScripts = recordingScripts
        self.umask = System.currentUmask
    }

    /// How far the workers are.
    var progress: CopyProgress {
        CopyProgress(
            entries: entriesDone.load(ordering: .relaxed), foldersDone: foldersDone.load(ordering: .relaxed),
            foldersFound: foldersFound.load(ordering: .relaxed))
    }

    func enqueue(_ folder: Folder) {
        foldersFound.add(1, ordering: .relaxed)
        queue.withLock { $0.pending.append(folder) }
        wakeUp.signal()
    }

    func stop(_ error: DeliveryError?) {
        if let error { failure.withLock { if $0 == nil { $0 = error } } }
        let workers = copier.workers
        queue.withLock { $0.stopped = true }
        for _ in 0..<workers { wakeUp.signal() }
    }

    /// A worker: takes folders until none is left and none is being worked on.
    @Sendable func work() {
        while true {
            let next: Folder?? = queue.withLock { state in
                if state.stopped { return .some(nil) }
                if let item = state.pending.popLast() {
                    state.active += 1
                    return .some(item)
                }
                if state.active == 0 { return .some(nil) }
                return .none
            }
            switch next {
            case .some(.some(let folder)):
                do {
                    try synchronizeDirectory(folder)
                } catch {
                    if error.message == Self.differenceSentinel {
                        differenceFound.store(true, ordering: .relaxed)
                        stop(nil)
                    } else {
                        stop(error)
                    }
                }
                foldersDone.add(1, ordering: .relaxed)
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

    private func same(_ a: FileStatus, _ b: FileStatus) -> Bool {
        a.kind == b.kind && (a.kind == .directory || a.size == b.size) && a.modificationSeconds == b.modificationSeconds
            && a.modificationNanoseconds == b.modificationNanoseconds && a.mode == b.mode
            && copier.ownersMatch(a, b)
    }

    private func temporaryName(_ name: String) -> String {
        ".\(name).delivery-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// True when a new entry can be made with `mode` directly: no special bits, nothing the
    /// umask would remove.
    private func creatable(withMode mode: UInt32) -> Bool {
        mode & 0o7000 == 0 && mode & umask == 0
    }

    /// The owner an entry made in `folder` gets, when known.
    private func madeOwner(in folder: Folder) -> (uid: UInt32, gid: UInt32)? {
        folder.created ? roots.ownerOfNewFiles : nil
    }

    /// Set when a check-only walk found a difference.
    let differenceFound = Atomic<Bool>(false)
    static let differenceSentinel = "\u{0}difference"

    /// Records a difference: in check-only mode it ends the walk.
    private func difference(_ local: inout CopyStatistics) throws(DeliveryError) {
        local.changedOther += 1
        if checkOnly { throw DeliveryError(.io, Self.differenceSentinel) }
    }

    /// The open folders of one synchronised folder.
    private struct OpenFolders {
        let source: Int32
        let target: Int32
        /// The same folder in the tree to share unchanged files with, opened on first need.
        var link: Int32?? = .none
    }

    func synchronizeDirectory(_ folder: Folder) throws(DeliveryError) {
        let relative = folder.relative
        var local = CopyStatistics()
        var scripts: [String] = []
        defer {
            statistics.withLock { $0.add(local) }
            if !scripts.isEmpty { changedScripts.withLock { $0 += scripts } }
        }
        var folders: OpenFolders?
        defer {
            if let folders {
                System.close(folders.source)
                System.close(folders.target)
                if case .some(.some(let link)) = folders.link { System.close(link) }
            }
        }
        do {
            let source = try System.openDirectory(at: roots.source, relative)
            let target: Int32
            do {
                target = try System.openDirectory(at: roots.target, relative)
            } catch {
                System.close(source)
                throw error
            }
            folders = OpenFolders(source: source, target: target)
            let sourceStatus = folder.status
            local.directories += 1
            // Names of the target not (yet) seen in the source: what is left is removed.
            var targetNames: [String: FileKind?] = [:]
            var changedHere = folder.created
            if !folder.created {
                for entry in try System.listDirectory(fd: target) { targetNames[entry.name] = entry.kind }
                if let targetStatus = folder.targetStatus, !same(sourceStatus, targetStatus) { changedHere = true }
            }
            // Entries seen, added to the shared count once per folder.
            var seen = 0
            defer { entriesDone.add(seen, ordering: .relaxed) }
            for entry in try System.listDirectory(fd: source) {
                let name = entry.name
                let inTarget = !targetNames.isEmpty && targetNames.removeValue(forKey: name) != nil
                if !skip.isEmpty && skip.contains(child(of: relative, name)) { continue }
                let status = try System.lstatus(at: source, name)
                if TreeCopier.versionControlNames.contains(name)
                    && (status.kind == .directory || (name == ".git" && status.kind == .regular))
                {
                    // Left out of the copy, and out of the target when it is there.
                    if inTarget { targetNames[name] = .some(nil) }
                    continue
                }
                seen += 1
                let existing = inTarget ? try System.lstatusIfExists(at: target, name) : nil
                switch status.kind {
                case .directory:
                    if let existing, existing.kind == .directory {
                        enqueue(
                            Folder(
                                relative: child(of: relative, name), created: false, createdWithMode: false,
                                status: status, targetStatus: existing))
                        continue
                    }
                    try difference(&local)
                    local.changedOther -= 1
                    if existing != nil { try TreeCopier.removeEntry(at: target, name) }
                    // Made searchable and writable for the copy; its own mode comes last.
                    let direct = creatable(withMode: status.mode) && status.mode & 0o700 == 0o700
                    try System.makeDirectory(at: target, name, direct ? mode_t(status.mode) : 0o700)
                    local.changedOther += 1
                    changedHere = true
                    enqueue(
                        Folder(
                            relative: child(of: relative, name), created: true, createdWithMode: direct,
                            status: status, targetStatus: nil))
                case .regular:
                    local.files += 1
                    local.bytes += status.size
                    if let existing, same(status, existing) { continue }
                    try difference(&local)
                    local.changedOther -= 1
                    changedHere = true
                    try placeFile(
                        name, status: status, existing: existing, in: folder,
                        folders: &folders!, statistics: &local)
                    if recordingScripts && name.hasSuffix(".php") { scripts.append(child(of: relative, name)) }
                case .symlink:
                    local.symlinks += 1
                    let linkTarget = try System.readLink(at: source, name)
                    if linkTarget.hasPrefix("/") && (linkTarget == sourceRoot || linkTarget.hasPrefix(sourceRoot + "/"))
                    {
                        local.absoluteLinksIntoSource.append(child(of: relative, name))
                    }
                    if let existing, existing.kind == .symlink, same(status, existing),
                        (try? System.readLink(at: target, name)) == linkTarget
                    {
                        continue
                    }
                    try difference(&local)
                    changedHere = true
                    let made = existing == nil ? name : temporaryName(name)
                    try System.symlink(target: linkTarget, at: target, made)
                    _ = try copier.giveOwner(of: status, name: child(of: relative, name), made: madeOwner(in: folder)) {
                        uid, gid throws(SystemCallError) in try System.changeOwner(at: target, made, uid: uid, gid: gid)
                    }
                    try System.setTimes(
                        at: target, made, seconds: status.modificationSeconds,
                        nanoseconds: status.modificationNanoseconds)
                    if let existing {
                        if existing.kind == .directory { try TreeCopier.removeEntry(at: target, name) }
                        try System.rename(at: target, made, name)
                    }
                case .other:
                    local.skipped.append(child(of: relative, name))
                }
            }
            for (name, _) in targetNames {
                try difference(&local)
                local.changedOther -= 1
                local.entriesRemoved += 1
                changedHere = true
                try TreeCopier.removeEntry(at: target, name)
            }
            // Nothing changes this folder's own entries any more (its subfolders' contents are
            // theirs): its times can be set now. A mode without the owner's search bit would stop
            // the copy reaching its subfolders, so such a folder waits for the end.
            if changedHere {
                if checkOnly {
                    try difference(&local)
                } else if copier.preserveOwnership || sourceStatus.mode & 0o100 != 0 {
                    try setMetadata(of: folder, fd: target)
                } else {
                    directoriesToFix.withLock { $0.append(folder) }
                }
            }
        } catch let error as SystemCallError {
            throw DeliveryError.io("copy failed at '\(relative.isEmpty ? "." : relative)'", error)
        } catch let error as DeliveryError {
            throw error
        } catch {
            throw DeliveryError(.io, "copy failed at '\(relative)': \(error)")
        }
    }

    /// The relative path of an entry of a folder (made only when needed: most entries never need it).
    private func child(of relative: String, _ name: String) -> String {
        relative.isEmpty ? name : "\(relative)/\(name)"
    }

    /// The absolute path of an entry of the target.
    private func path(_ relative: String) -> String {
        relative.isEmpty ? targetRoot : "\(targetRoot)/\(relative)"
    }

    /// Puts a regular file in place: a hard link from the tree to share with when the file is
    /// unchanged there, else a copy. A file replacing an existing entry is made under a temporary
    /// name and renamed over it, so that no existing inode is ever changed.
    private func placeFile(
        _ name: String, status: FileStatus, existing: FileStatus?, in folder: Folder,
        folders: inout OpenFolders, statistics local: inout CopyStatistics
    ) throws {
        let made = existing == nil ? name : temporaryName(name)
        var linked = false
        if let linkRoot = roots.link {
            if case .none = folders.link {
                folders.link = .some(try? System.openDirectory(at: linkRoot, folder.relative))
            }
            if case .some(.some(let link)) = folders.link, let old = try System.lstatusIfExists(at: link, name),
                old.kind == .regular, same(status, old)
            {
                do {
                    try System.link(at: link, name, to: folders.target, made)
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
            let input = try System.open(at: folders.source, name, O_RDONLY | O_NOFOLLOW)
            defer { System.close(input) }
            let direct = creatable(withMode: status.mode)
            let output = try System.open(
                at: folders.target, made, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                direct ? mode_t(status.mode) : 0o600)
            defer { System.close(output) }
            var cloned = false
            if status.size > 0 && !cloneUnsupported.load(ordering: .relaxed) {
                switch System.cloneContents(from: input, to: output) {
                case .cloned: cloned = true
                case .unsupported: cloneUnsupported.store(true, ordering: .relaxed)
                case .failed: break
                }
            }
            if !cloned { try System.copyContents(from: input, to: output, size: status.size, tryClone: false) }
            let ownerChanged = try copier.giveOwner(of: status, name: name, made: madeOwner(in: folder)) {
                uid, gid throws(SystemCallError) in try System.fileChangeOwner(output, uid: uid, gid: gid)
            }
            if !direct || ownerChanged { try System.fileChangeMode(output, status.mode) }
            try System.setTimes(
                fd: output, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
        }
        if let existing {
            if existing.kind == .directory { try TreeCopier.removeEntry(at: folders.target, name) }
            try System.rename(at: folders.target, made, name)
        }
    }

    /// Sets a folder's owner, mode and times from the source, through its open descriptor.
    private func setMetadata(of folder: Folder, fd: Int32) throws(SystemCallError) {
        let status = folder.status
        let ownerChanged = try copier.giveOwner(of: status, name: folder.relative, made: madeOwner(in: folder)) {
            uid, gid throws(SystemCallError) in try System.fileChangeOwner(fd, uid: uid, gid: gid)
        }
        if !folder.createdWithMode || ownerChanged { try System.fileChangeMode(fd, status.mode) }
        try System.setTimes(fd: fd, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
    }

    /// Sets the mode, owner and times of the folders left for the end (modes that would have
    /// stopped the copy), deepest first.
    func fixDirectories() throws(DeliveryError) {
        var folders = directoriesToFix.withLock { $0 }
        folders.sort { $0.relative.count > $1.relative.count }
        do {
            for folder in folders {
                let status = folder.status
                let relative = folder.relative
                let ownerChanged = try copier.giveOwner(of: status, name: relative, made: madeOwner(in: folder)) {
                    uid, gid throws(SystemCallError) in
                    try System.changeOwner(at: roots.target, relative.isEmpty ? "." : relative, uid: uid, gid: gid)
                }
                if !folder.createdWithMode || ownerChanged {
                    try System.changeMode(at: roots.target, relative, status.mode)
                }
                try System.setTimes(
                    at: roots.target, relative, seconds: status.modificationSeconds,
                    nanoseconds: status.modificationNanoseconds)
            }
        } catch {
            throw DeliveryError.io("cannot set folder times", error)
        }
    }

    /// A component that is a single file: `component` below the tree roots `source` and `target`,
    /// reached through descriptors only.
    static func synchronizeSingle(
        copier: TreeCopier, source root: String, target targetRoot: String, component: String, status: FileStatus,
        checkOnly: Bool, recordingScripts: Bool
    ) throws(DeliveryError) -> CopyStatistics {
        var local = CopyStatistics()
        let name = lastComponent(of: component)
        let source = "\(root)/\(component)"
        do {
            let targetFolder = try Roots.open(
                targetRoot, below: component.contains("/") ? parentDirectory(of: component) : nil)
            defer { System.close(targetFolder) }
            let existing = try System.lstatusIfExists(at: targetFolder, name)
            guard status.kind == .regular else {
                local.skipped.append(lastComponent(of: source))
                return local
            }
            local.files = 1
            local.bytes = status.size
            let sameFile =
                existing.map {
                    $0.kind == status.kind && $0.size == status.size && $0.mode == status.mode
                        && $0.modificationSeconds == status.modificationSeconds
                        && $0.modificationNanoseconds == status.modificationNanoseconds
                        && copier.ownersMatch(status, $0)
                } ?? false
            if sameFile { return local }
            if checkOnly {
                local.changedOther = 1
                return local
            }
            let sourceFolder = try Roots.open(
                root, below: component.contains("/") ? parentDirectory(of: component) : nil)
            defer { System.close(sourceFolder) }
            let made = existing == nil ? name : ".\(name).delivery-\(UInt32.random(in: 0...UInt32.max))"
            let input = try System.open(at: sourceFolder, name, O_RDONLY | O_NOFOLLOW)
            defer { System.close(input) }
            let output = try System.open(at: targetFolder, made, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
            defer { System.close(output) }
            try System.copyContents(from: input, to: output, size: status.size)
            _ = try copier.giveOwner(of: status, name: component, made: nil) { uid, gid throws(SystemCallError) in
                try System.fileChangeOwner(output, uid: uid, gid: gid)
            }
            try System.fileChangeMode(output, status.mode)
            try System.setTimes(
                fd: output, seconds: status.modificationSeconds, nanoseconds: status.modificationNanoseconds)
            if let existing {
                if existing.kind == .directory { try TreeCopier.removeEntry(at: targetFolder, name) }
                try System.rename(at: targetFolder, made, name)
            }
            local.filesCopied = 1
            if recordingScripts && name.hasSuffix(".php") { local.changedScripts = [""] }
        } catch {
            throw DeliveryError.io("copy failed at '\(source)'", error)
        }
        return local
    }
}
