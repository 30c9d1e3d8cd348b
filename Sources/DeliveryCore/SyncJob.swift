import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The shared state of one synchronisation: a queue of folders and the workers' results.
final class SyncJob: Sendable {
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

    func same(_ a: FileStatus, _ b: FileStatus) -> Bool {
        a.kind == b.kind && (a.kind == .directory || a.size == b.size) && a.modificationSeconds == b.modificationSeconds
            && a.modificationNanoseconds == b.modificationNanoseconds && a.mode == b.mode
            && copier.ownersMatch(a, b)
    }

    func temporaryName(_ name: String) -> String {
        ".\(name).delivery-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// True when a new entry can be made with `mode` directly: no special bits, nothing the
    /// umask would remove.
    func creatable(withMode mode: UInt32) -> Bool {
        mode & 0o7000 == 0 && mode & umask == 0
    }

    /// The owner an entry made in `folder` gets, when known.
    func madeOwner(in folder: Folder) -> (uid: UInt32, gid: UInt32)? {
        folder.created ? roots.ownerOfNewFiles : nil
    }

    /// Set when a check-only walk found a difference.
    let differenceFound = Atomic<Bool>(false)
    static let differenceSentinel = "\u{0}difference"

    /// Records a difference: in check-only mode it ends the walk.
    func difference(_ local: inout CopyStatistics) throws(DeliveryError) {
        local.changedOther += 1
        if checkOnly { throw DeliveryError(.io, Self.differenceSentinel) }
    }

    /// The open folders of one synchronised folder.
    struct OpenFolders {
        let source: Int32
        let target: Int32
        /// The same folder in the tree to share unchanged files with, opened on first need.
        var link: Int32?? = .none
    }
}
