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
