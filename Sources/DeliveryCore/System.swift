import CDeliverySystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A failed system call: which call, on which path, and the errno it set.
///
/// Every libc call of the engine goes through this file. A call that returns -1 is turned into a
/// `SystemCallError` at once (after retrying `EINTR`); callers never read `errno` themselves.
public struct SystemCallError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The errno value (or a library's negative code, such as libfcgi's for `FCGX_*` calls).
    public let errno: Int32
    /// The name of the call (`open`, `renameat2` …).
    public let call: String
    /// The path it was about, when there is one.
    public let path: String?

    /// Makes an error.
    public init(errno: Int32, call: String, path: String? = nil) {
        self.errno = errno
        self.call = call
        self.path = path
    }

    /// A human description: `open(/x): No such file or directory`.
    public var description: String {
        let reason = errno > 0 ? String(cString: strerror(errno)) : "library error \(errno)"
        if let path { return "\(call)(\(path)): \(reason)" }
        return "\(call): \(reason)"
    }

    /// True when the error says the path does not exist.
    public var isNotFound: Bool { errno == ENOENT }
    /// True when the error says the path exists already.
    public var isExists: Bool { errno == EEXIST }
}

/// The kind of a file system entry, as `lstat` sees it (links are not followed).
public enum FileKind: Sendable, Equatable {
    case regular, directory, symlink, other
}

/// What the engine needs of `struct stat`.
public struct FileStatus: Sendable, Equatable {
    public var kind: FileKind
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    public var inode: UInt64
    public var device: UInt64
    public var modificationSeconds: Int
    public var modificationNanoseconds: Int

    init(_ raw: stat) {
        switch raw.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        mode = UInt32(raw.st_mode & 0o7777)
        uid = raw.st_uid
        gid = raw.st_gid
        size = Int64(raw.st_size)
        inode = UInt64(raw.st_ino)
        device = UInt64(raw.st_dev)
        modificationSeconds = Int(raw.st_mtim.tv_sec)
        modificationNanoseconds = Int(raw.st_mtim.tv_nsec)
    }
}

/// Thin, typed wrappers over the libc calls the engine uses.
public enum System {
    @inline(__always)
    static func check<T: BinaryInteger>(
        _ call: String, _ path: String? = nil, _ body: () -> T
    ) throws(SystemCallError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = cds_errno()
            if code == EINTR { continue }
            if code == EBADF || code == EFAULT {
                fatalError("\(call)(\(path ?? "")) failed with \(code): a bug in the engine")
            }
            throw SystemCallError(errno: code, call: call, path: path)
        }
    }

    // MARK: Guarded folders

    /// Folders whose contents a less-privileged user can change: the trees in `releases/` (the
    /// code owner's) and Moodle's dataroot (the web user's). The engine registers them once
    /// (`guardPaths`); from then on every path-based call of this file that names something below
    /// one of them opens that folder by its path (which only root can change) and reaches the rest
    /// through descriptors that follow no symlink (`open(beneath:)`): the first rule of
    /// docs/SECURITY.md, kept here for every caller. The one symlink followed is a tree's own name
    /// in `releases/` (`backup` → `.backup.a`), which lives in a folder only the helper writes and
    /// must name a sibling.
    private static let guardedFolders = Mutex<[String]>([])

    /// Registers folders whose contents less-privileged users can write (their real paths are
    /// registered too).
    public static func guardPaths(below folders: [String]) {
        var all: [String] = []
        for folder in folders where folder.hasPrefix("/") && folder.count > 1 {
            let trimmed = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
            all.append(trimmed)
            if let real = try? realPath(trimmed), real != trimmed { all.append(real) }
        }
        guardedFolders.withLock { $0 = Array(Set($0 + all)).sorted { $0.count > $1.count } }
    }

    /// The guarded folder a path lies below, if any.
    private static func guardedFolder(of path: String) -> String? {
        guardedFolders.withLock { folders in folders.first { path.hasPrefix($0 + "/") } }
    }

    /// Runs `body` with the folder holding `path` and the entry's last name: `AT_FDCWD` and the
    /// path itself outside the guarded folders; inside one, a descriptor reached as described above.
    static func resolving<T>(_ path: String, _ body: (Int32, String) throws(SystemCallError) -> T)
        throws(SystemCallError) -> T
    {
        guard let folder = guardedFolder(of: path) else { return try body(AT_FDCWD, path) }
        let relative = String(path.dropFirst(folder.count + 1))
        let root = try check("open", folder) { Glibc.open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(root) }
        guard let slash = relative.lastIndex(of: "/") else { return try body(root, relative) }
        let parent = try openGuarded(root, String(relative[..<slash]), path: path)
        defer { close(parent) }
        return try body(parent, String(relative[relative.index(after: slash)...]))
    }

    /// Opens the folder `relative` below an open guarded folder: its first part may be a symlink
    /// to a sibling (a tree's name in `releases/`); nothing after it is followed.
    private static func openGuarded(_ root: Int32, _ relative: String, path: String) throws(SystemCallError) -> Int32 {
        let parts = relative.split(separator: "/", maxSplits: 1).map(String.init)
        let first = try sibling(at: root, parts[0], path: path)
        return try open(beneath: root, parts.count > 1 ? "\(first)/\(parts[1])" : first, O_RDONLY | O_DIRECTORY)
    }

    /// The entry `name` of a guarded folder stands for: itself, or the sibling its symlink names
    /// (`backup` → `.backup.a`); a symlink to anything else is refused (`ELOOP`).
    private static func sibling(at root: Int32, _ name: String, path: String) throws(SystemCallError) -> String {
        guard let status = try lstatusIfExists(at: root, name), status.kind == .symlink else { return name }
        let target = try readLink(at: root, name)
        guard !target.contains("/"), target != "..", target != "." else {
            throw SystemCallError(errno: ELOOP, call: "open", path: path)
        }
        return target
    }

    // MARK: Files and directories

    static func lstatus(_ path: String) throws(SystemCallError) -> FileStatus {
        var raw = stat()
        try resolving(path) { (folder, name) throws(SystemCallError) in
            _ = try check("lstat", path) { fstatat(folder, name, &raw, AT_SYMLINK_NOFOLLOW) }
        }
        return FileStatus(raw)
    }

    static func lstatusIfExists(_ path: String) throws(SystemCallError) -> FileStatus? {
        do {
            return try lstatus(path)
        } catch {
            if error.errno == ENOENT || error.errno == ENOTDIR { return nil }
            throw error
        }
    }

    /// `stat`, following a final symlink (inside a guarded folder only a tree's name in
    /// `releases/`, as `resolving` allows).
    static func status(_ path: String) throws(SystemCallError) -> FileStatus {
        if guardedFolder(of: path) != nil {
            let fd = try open(path, cds_o_path())
            defer { close(fd) }
            return try fileStatus(fd)
        }
        var raw = stat()
        _ = try check("stat", path) { stat(path, &raw) }
        return FileStatus(raw)
    }

    static func fileStatus(_ fd: Int32) throws(SystemCallError) -> FileStatus {
        var raw = stat()
        _ = try check("fstat") { fstat(fd, &raw) }
        return FileStatus(raw)
    }

    /// Opens a path; inside a guarded folder the last part is not followed either (`O_NOFOLLOW`),
    /// but for a tree's name in it that links to a sibling (`releases/backup` → `.backup.a`).
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o600) throws(SystemCallError) -> Int32 {
        let topLevel = guardedFolder(of: path).map { parentDirectory(of: path) == $0 } ?? false
        return try resolving(path) { (folder, name) throws(SystemCallError) in
            guard folder != AT_FDCWD else {
                return try check("open", path) { openat(folder, name, flags | O_CLOEXEC, mode) }
            }
            let entry = topLevel ? try sibling(at: folder, name, path: path) : name
            return try check("open", path) { openat(folder, entry, flags | O_CLOEXEC | O_NOFOLLOW, mode) }
        }
    }

    /// Closes a descriptor (errors are ignored: the descriptor is gone either way).
    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    static func makeDirectory(_ path: String, _ mode: mode_t) throws(SystemCallError) {
        try resolving(path) { (folder, name) throws(SystemCallError) in
            _ = try check("mkdir", path) { mkdirat(folder, name, mode) }
        }
    }

    static func removeDirectory(_ path: String) throws(SystemCallError) {
        try resolving(path) { (folder, name) throws(SystemCallError) in
            _ = try check("rmdir", path) { unlinkat(folder, name, AT_REMOVEDIR) }
        }
    }

    public static func unlink(_ path: String) throws(SystemCallError) {
        try resolving(path) { (folder, name) throws(SystemCallError) in
            _ = try check("unlink", path) { unlinkat(folder, name, 0) }
        }
    }

    /// Runs `body` with the folders and names of two paths (renames, links).
    private static func resolvingBoth<T>(
        _ first: String, _ second: String, _ body: (Int32, String, Int32, String) throws(SystemCallError) -> T
    ) throws(SystemCallError) -> T {
        try resolving(first) { (firstFolder, firstName) throws(SystemCallError) in
            try resolving(second) { (secondFolder, secondName) throws(SystemCallError) in
                try body(firstFolder, firstName, secondFolder, secondName)
            }
        }
    }

    static func rename(_ from: String, _ to: String) throws(SystemCallError) {
        try resolvingBoth(from, to) { (a, x, b, y) throws(SystemCallError) in
            _ = try check("rename", "\(from) -> \(to)") { renameat(a, x, b, y) }
        }
    }

    /// Points a symlink at a new target in one step, the one way every switch is made: a fresh
    /// link made under `temporary` (beside it), one rename(2) over the old link, the folder
    /// synced. Never `ln -sfn`, never two renames; the temporary link goes when the rename fails.
    static func replaceSymlink(_ link: String, target: String, temporary: String) throws(SystemCallError) {
        try? unlink(temporary)
        try symlink(target: target, at: temporary)
        do throws(SystemCallError) {
            try rename(temporary, link)
        } catch {
            try? unlink(temporary)
            throw error
        }
        try syncDirectory(parentDirectory(of: link))
    }

    /// Atomically swaps two existing paths (renameat2 RENAME_EXCHANGE).
    static func exchange(_ first: String, _ second: String) throws(SystemCallError) {
        try resolvingBoth(first, second) { (a, x, b, y) throws(SystemCallError) in
            _ = try check("renameat2", "\(first) <-> \(second)") { cds_rename_exchange(a, x, b, y) }
        }
    }

    /// Renames, failing with EEXIST rather than replacing (renameat2 RENAME_NOREPLACE).
    static func renameNoReplace(_ from: String, _ to: String) throws(SystemCallError) {
        try resolvingBoth(from, to) { (a, x, b, y) throws(SystemCallError) in
            _ = try check("renameat2", "\(from) -> \(to)") { cds_rename_noreplace(a, x, b, y) }
        }
    }

    static func symlink(target: String, at path: String) throws(SystemCallError) {
        try resolving(path) { (folder, name) throws(SystemCallError) in
            _ = try check("symlink", path) { symlinkat(target, folder, name) }
        }
    }

    static func link(_ existing: String, _ new: String) throws(SystemCallError) {
        try resolvingBoth(existing, new) { (a, x, b, y) throws(SystemCallError) in
            _ = try check("link", new) { linkat(a, x, b, y, 0) }
        }
    }

    static func readLink(_ path: String) throws(SystemCallError) -> String {
        try resolving(path) { (folder, name) throws(SystemCallError) in try readLink(at: folder, name) }
    }

    /// The real path (every symlink resolved): only for paths no less-privileged user can change,
    /// such as a tree's name in `releases/`.
    static func realPath(_ path: String) throws(SystemCallError) -> String {
        guard let resolved = realpath(path, nil) else {
            throw SystemCallError(errno: cds_errno(), call: "realpath", path: path)
        }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func changeMode(_ path: String, _ mode: UInt32) throws(SystemCallError) {
        if guardedFolder(of: path) != nil {
            try resolving(path) { (folder, name) throws(SystemCallError) in try changeMode(at: folder, name, mode) }
            return
        }
        _ = try check("chmod", path) { chmod(path, mode_t(mode)) }
    }

    static func changeOwner(_ path: String, uid: UInt32, gid: UInt32) throws(SystemCallError) {
        try resolving(path) { (folder, name) throws(SystemCallError) in
            _ = try check("lchown", path) { fchownat(folder, name, uid, gid, AT_SYMLINK_NOFOLLOW) }
        }
    }

    /// Sets access and modification times without following a final symlink.
    static func setTimes(_ path: String, seconds: Int, nanoseconds: Int) throws(SystemCallError) {
        var times = [
            timespec(tv_sec: seconds, tv_nsec: nanoseconds),
            timespec(tv_sec: seconds, tv_nsec: nanoseconds),
        ]
        try resolving(path) { (folder, name) throws(SystemCallError) in
            _ = try check("utimensat", path) { utimensat(folder, name, &times, AT_SYMLINK_NOFOLLOW) }
        }
    }

    static func setTimes(fd: Int32, seconds: Int, nanoseconds: Int) throws(SystemCallError) {
        var times = (
            timespec(tv_sec: seconds, tv_nsec: nanoseconds), timespec(tv_sec: seconds, tv_nsec: nanoseconds)
        )
        _ = try check("futimens") {
            withUnsafePointer(to: &times) { $0.withMemoryRebound(to: timespec.self, capacity: 2) { futimens(fd, $0) } }
        }
    }

    static func fileChangeMode(_ fd: Int32, _ mode: UInt32) throws(SystemCallError) {
        _ = try check("fchmod") { fchmod(fd, mode_t(mode)) }
    }

    static func fileChangeOwner(_ fd: Int32, uid: UInt32, gid: UInt32) throws(SystemCallError) {
        _ = try check("fchown") { fchown(fd, uid, gid) }
    }

    /// Changes only the group of an open file (allowed to its owner for a group it belongs to).
    static func fileChangeGroup(_ fd: Int32, gid: UInt32) throws(SystemCallError) {
        _ = try check("fchown") { fchown(fd, UInt32.max, gid) }
    }

    static func sync(_ fd: Int32) throws(SystemCallError) {
        _ = try check("fsync") { fsync(fd) }
    }

    /// fsyncs a directory so that renames inside it are durable.
    static func syncDirectory(_ path: String) throws(SystemCallError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try sync(fd)
    }

    /// The names in a directory, without `.` and `..`, with the kind when the file system tells it.
    static func listDirectory(_ path: String) throws(SystemCallError) -> [(name: String, kind: FileKind?)] {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        return try listDirectory(fd: fd)
    }

    /// Takes an exclusive OFD lock on a whole file (released when the descriptor closes or the
    /// process dies); false when another holder has it and `wait` is false.
    static func lockFile(_ fd: Int32, wait: Bool) throws(SystemCallError) -> Bool {
        while true {
            if cds_ofd_lock(fd, wait ? 1 : 0) == 0 { return true }
            let code = cds_errno()
            if code == EINTR { continue }
            if code == EAGAIN || code == EACCES { return false }
            throw SystemCallError(errno: code, call: "fcntl(F_OFD_SETLK)", path: nil)
        }
    }

    /// True when another open file description holds a lock on the file.
    static func isFileLocked(_ fd: Int32) throws(SystemCallError) -> Bool {
        let result = try check("fcntl(F_OFD_GETLK)") { cds_ofd_is_locked(fd) }
        return result == 1
    }

    /// Flushes the file system holding `path` (one call instead of an fsync per file).
    static func syncFileSystem(_ path: String) throws(SystemCallError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        _ = try check("syncfs", path) { cds_syncfs(fd) }
    }

    static func truncate(_ fd: Int32) throws(SystemCallError) {
        _ = try check("ftruncate") { ftruncate(fd, 0) }
    }

    static func writeAt(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
        _ = try check("lseek") { lseek(fd, 0, SEEK_SET) }
        try writeAll(fd, bytes)
    }

    // MARK: Paths relative to an open folder (the copier's calls)

    /// Opens a folder below an open folder (or that folder itself for ""), following no symlink at
    /// any level and never leaving it (see `open(beneath:)`). With `AT_FDCWD` the path is resolved
    /// as usual except for its last component, which must not be a symlink: use it only for paths
    /// whose folders no less-privileged user can write (the site root, the state directory).
    static func openDirectory(at directory: Int32, _ relative: String) throws(SystemCallError) -> Int32 {
        if directory == AT_FDCWD {
            return try check("open", relative) {
                openat(directory, relative.isEmpty ? "." : relative, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
        }
        return try open(beneath: directory, relative.isEmpty ? "." : relative, O_RDONLY | O_DIRECTORY)
    }

    /// Opens `relative` below the open folder `directory` without following a symlink at any level
    /// and without leaving it (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; an
    /// `O_NOFOLLOW` walk where the kernel lacks it). This is how the engine reaches anything inside
    /// a folder a less-privileged user can write: a symlink swapped in anywhere on the way makes
    /// the call fail (`ELOOP`, `EXDEV`) instead of leading elsewhere.
    static func open(beneath directory: Int32, _ relative: String, _ flags: Int32, _ mode: mode_t = 0o600)
        throws(SystemCallError) -> Int32
    {
        try check("open", relative) { cds_open_beneath(directory, relative, flags | O_NOFOLLOW, mode) }
    }

    /// Writes a file in an open folder durably and atomically, through descriptors only: a new
    /// temporary name (`O_CREAT | O_EXCL | O_NOFOLLOW`), owner and mode set on the descriptor,
    /// fsync, `renameat` over `name`, fsync of the folder.
    static func writeFileAtomically(
        at directory: Int32, _ name: String, _ bytes: [UInt8], mode: mode_t, owner: (uid: UInt32, gid: UInt32)?
    ) throws(SystemCallError) {
        let temporary = ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try open(at: directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode)
        do {
            defer { close(fd) }  // once: a second close could hit a descriptor another thread just opened
            try writeAll(fd, bytes)
            if let owner { try fileChangeOwner(fd, uid: owner.uid, gid: owner.gid) }
            try fileChangeMode(fd, UInt32(mode))
            try sync(fd)
        } catch {
            _ = unlinkat(directory, temporary, 0)
            throw error
        }
        do {
            try rename(at: directory, temporary, name)
        } catch {
            _ = unlinkat(directory, temporary, 0)
            throw error
        }
        try sync(directory)
    }

    /// Removes an entry of an open folder (`unlinkat`; `AT_REMOVEDIR` for an empty folder).
    static func unlink(at directory: Int32, _ name: String, folder: Bool = false) throws(SystemCallError) {
        _ = try check(folder ? "rmdir" : "unlink", name) { unlinkat(directory, name, folder ? AT_REMOVEDIR : 0) }
    }

    /// Opens a file relative to an open folder.
    static func open(at directory: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0o600)
        throws(SystemCallError) -> Int32
    {
        try check("open", name) { openat(directory, name, flags | O_CLOEXEC, mode) }
    }

    /// `lstat` of an entry of an open folder; nil when it does not exist.
    static func lstatusIfExists(at directory: Int32, _ name: String) throws(SystemCallError) -> FileStatus? {
        var raw = stat()
        while fstatat(directory, name, &raw, AT_SYMLINK_NOFOLLOW) != 0 {
            let code = cds_errno()
            if code == EINTR { continue }
            if code == ENOENT || code == ENOTDIR { return nil }
            throw SystemCallError(errno: code, call: "lstat", path: name)
        }
        return FileStatus(raw)
    }

    /// `lstat` of an entry below an open folder (no symlink followed on the way: see `withParent`).
    static func lstatus(at directory: Int32, _ name: String) throws(SystemCallError) -> FileStatus {
        var raw = stat()
        try withParent(of: name, in: directory) { (parent, last) throws(SystemCallError) in
            _ = try check("lstat", name) { fstatat(parent, last, &raw, AT_SYMLINK_NOFOLLOW) }
        }
        return FileStatus(raw)
    }

    static func makeDirectory(at directory: Int32, _ name: String, _ mode: mode_t) throws(SystemCallError) {
        _ = try check("mkdir", name) { mkdirat(directory, name, mode) }
    }

    static func rename(at directory: Int32, _ from: String, _ to: String) throws(SystemCallError) {
        _ = try check("rename", to) { renameat(directory, from, directory, to) }
    }

    /// Hard-links `name` of one open folder as `new` in another.
    static func link(at directory: Int32, _ name: String, to newDirectory: Int32, _ new: String)
        throws(SystemCallError)
    {
        _ = try check("link", new) { linkat(directory, name, newDirectory, new, 0) }
    }

    static func symlink(target: String, at directory: Int32, _ name: String) throws(SystemCallError) {
        _ = try check("symlink", name) { symlinkat(target, directory, name) }
    }

    static func readLink(at directory: Int32, _ name: String) throws(SystemCallError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = try check("readlink", name) { readlinkat(directory, name, &buffer, buffer.count - 1) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs `body` with the folder holding `relative` (opened beneath `directory`, following no
    /// symlink) and the entry's last name; a single name needs no extra open.
    private static func withParent<T>(
        of relative: String, in directory: Int32, _ body: (Int32, String) throws(SystemCallError) -> T
    ) throws(SystemCallError) -> T {
        let path = relative.isEmpty ? "." : relative
        guard let slash = path.lastIndex(of: "/") else { return try body(directory, path) }
        let parent = try open(beneath: directory, String(path[..<slash]), O_RDONLY | O_DIRECTORY)
        defer { close(parent) }
        return try body(parent, String(path[path.index(after: slash)...]))
    }

    /// Changes the owner of an entry below an open folder, following no symlink on the way or at
    /// the end.
    static func changeOwner(at directory: Int32, _ name: String, uid: UInt32, gid: UInt32)
        throws(SystemCallError)
    {
        try withParent(of: name, in: directory) { (parent, last) throws(SystemCallError) in
            _ = try check("lchown", name) { fchownat(parent, last, uid, gid, AT_SYMLINK_NOFOLLOW) }
        }
    }

    /// Changes the mode of an entry below an open folder. `chmod` has no "do not follow" flag on
    /// Linux, so the entry is opened first (`O_PATH`, beneath the folder, no symlink anywhere) and
    /// its mode is changed through that descriptor (`/proc/self/fd`): a symlink swapped in
    /// leads nowhere.
    static func changeMode(at directory: Int32, _ name: String, _ mode: UInt32) throws(SystemCallError) {
        let fd = try open(beneath: directory, name.isEmpty ? "." : name, cds_o_path())
        defer { close(fd) }
        _ = try check("chmod", name) { chmod("/proc/self/fd/\(fd)", mode_t(mode)) }
    }

    /// Sets the access and modification times of an entry below an open folder, following no
    /// symlink on the way or at the end.
    static func setTimes(at directory: Int32, _ name: String, seconds: Int, nanoseconds: Int)
        throws(SystemCallError)
    {
        var times = (
            timespec(tv_sec: seconds, tv_nsec: nanoseconds), timespec(tv_sec: seconds, tv_nsec: nanoseconds)
        )
        try withParent(of: name, in: directory) { (parent, last) throws(SystemCallError) in
            _ = try check("utimensat", name) {
                withUnsafePointer(to: &times) {
                    $0.withMemoryRebound(to: timespec.self, capacity: 2) {
                        utimensat(parent, last, $0, AT_SYMLINK_NOFOLLOW)
                    }
                }
            }
        }
    }

    /// The entries of a folder just opened, without `.` and `..`, read straight from the kernel
    /// (`getdents64`, no `DIR` stream). The descriptor's position is left at the end.
    static func listDirectory(fd: Int32) throws(SystemCallError) -> [(name: String, kind: FileKind?)] {
        var entries: [(name: String, kind: FileKind?)] = []
        try withUnsafeTemporaryAllocation(byteCount: 32768, alignment: 8) { (buffer) throws(SystemCallError) in
            while true {
                let count = try check("getdents64") { cds_getdents64(fd, buffer.baseAddress, UInt(buffer.count)) }
                if count == 0 { break }
                var offset = 0
                while offset < count {
                    let record = buffer.baseAddress! + offset
                    let length = Int(record.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
                    let type = record.load(fromByteOffset: 18, as: UInt8.self)
                    let name = String(cString: record.advanced(by: 19).assumingMemoryBound(to: CChar.self))
                    offset += length
                    if name == "." || name == ".." { continue }
                    let kind: FileKind?
                    switch Int32(type) {
                    case Int32(DT_REG): kind = .regular
                    case Int32(DT_DIR): kind = .directory
                    case Int32(DT_LNK): kind = .symlink
                    case Int32(DT_UNKNOWN): kind = nil
                    default: kind = .other
                    }
                    entries.append((name, kind))
                }
            }
        }
        return entries
    }

    /// The process's umask, read without changing it (`/proc/self/status`); 0o022 when unknown.
    static var currentUmask: UInt32 {
        guard let bytes = try? readFile("/proc/self/status", limit: 65536) else { return 0o022 }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("Umask:") {
            let value = line.dropFirst("Umask:".count).filter { $0 != " " && $0 != "\t" }
            if let mask = UInt32(value, radix: 8) { return mask }
        }
        return 0o022
    }

    static var effectiveGroupIdentifier: UInt32 { getegid() }

    /// The groups of this process: its effective group and its supplementary groups.
    static var processGroups: Set<UInt32> {
        let count = getgroups(0, nil)
        var groups = [gid_t](repeating: 0, count: Int(max(0, count)))
        let found = count > 0 ? getgroups(count, &groups) : 0
        return Set(groups.prefix(Int(max(0, found)))).union([getegid()])
    }

    /// This boot of the machine (`/proc/sys/kernel/random/boot_id`); nil when the kernel does not say.
    static var bootIdentifier: String? {
        guard let bytes = try? readFile("/proc/sys/kernel/random/boot_id", limit: 128) else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
        return text.isEmpty ? nil : text
    }

    /// Runs `body` on `count` new threads and returns when all have finished; `whileWaiting` is
    /// called on the calling thread about every `interval` seconds meanwhile.
    static func runThreads(
        _ count: Int, interval: Double, whileWaiting: () -> Void, _ body: @escaping @Sendable () -> Void
    ) {
        final class Work: Sendable {
            let body: @Sendable () -> Void
            let done = DispatchSemaphore(value: 0)
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let shares = Array(repeating: Work(body), count: count)
        var threads: [pthread_t] = []
        for work in shares {
            var thread = pthread_t()
            let context = Unmanaged.passRetained(work).toOpaque()
            let started = pthread_create(
                &thread, nil,
                { context in
                    let work = Unmanaged<Work>.fromOpaque(context!).takeRetainedValue()
                    work.body()
                    work.done.signal()
                    return nil
                }, context)
            if started == 0 {
                threads.append(thread)
            } else {
                // No thread: run this share on the calling thread instead.
                let work = Unmanaged<Work>.fromOpaque(context).takeRetainedValue()
                work.body()
                work.done.signal()
            }
        }
        for work in shares {
            while work.done.wait(timeout: .now() + interval) == .timedOut { whileWaiting() }
        }
        for thread in threads { pthread_join(thread, nil) }
    }

    // MARK: Reading and writing

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
        var offset = 0
        while offset < bytes.count {
            let written = try check("write") {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            }
            offset += written
        }
    }

    static func readFile(_ path: String, limit: Int) throws(SystemCallError) -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        return try readAll(fd, limit: limit, name: path)
    }

    /// Reads an open file to its end; more than `limit` bytes is an error (`EFBIG`).
    static func readAll(_ fd: Int32, limit: Int, name path: String) throws(SystemCallError) -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while result.count <= limit {
            let count = try check("read", path) {
                chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        if result.count > limit {
            throw SystemCallError(errno: EFBIG, call: "read", path: path)
        }
        return result
    }

    /// Writes a whole file durably and atomically: temporary file, fsync, rename, fsync of the folder.
    public static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o640)
        throws(SystemCallError)
    {
        let directory = parentDirectory(of: path)
        let temporary = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = try open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode)
        do {
            // Closed once: a second close could hit a descriptor another thread has just opened
            // (another operation's lock, say).
            defer { close(fd) }
            try writeAll(fd, bytes)
            try fileChangeMode(fd, UInt32(mode))
            try sync(fd)
        } catch {
            try? unlink(temporary)
            throw error
        }
        do {
            try rename(temporary, path)
        } catch {
            try? unlink(temporary)
            throw error
        }
        try syncDirectory(directory)
    }

    /// Appends one record to a file opened with O_APPEND, then fsyncs it.
    static func appendDurably(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o640) throws(SystemCallError) {
        let fd = try open(path, O_WRONLY | O_CREAT | O_APPEND, mode)
        defer { close(fd) }
        try writeAll(fd, bytes)
        try sync(fd)
    }

    /// Copies a regular file's contents from one descriptor to another: reflink when the file
    /// system shares extents, else copy_file_range, else read/write.
    /// What a reflink attempt gave.
    enum CloneResult { case cloned, unsupported, failed }

    /// Makes `destination` share all of `source`'s extents (`FICLONE`); `.unsupported` when the
    /// file system cannot (ext4 …), so that callers stop trying.
    static func cloneContents(from source: Int32, to destination: Int32) -> CloneResult {
        if cds_ficlone(destination, source) == 0 { return .cloned }
        let code = cds_errno()
        if code == EOPNOTSUPP || code == ENOTTY || code == EINVAL || code == EXDEV || code == ENOSYS {
            return .unsupported
        }
        return .failed
    }

    /// Copies a file's contents in the kernel (`copy_file_range`), else by reading and writing.
    static func copyContents(
        from source: Int32, to destination: Int32, size: Int64, tryClone: Bool = true
    ) throws(SystemCallError) {
        if size == 0 { return }
        if tryClone && cloneContents(from: source, to: destination) == .cloned { return }
        var remaining = size
        var useKernelCopy = true
        while remaining > 0 {
            if useKernelCopy {
                let copied = cds_copy_file_range(source, destination, Int(min(remaining, 1 << 30)))
                if copied > 0 {
                    remaining -= Int64(copied)
                    continue
                }
                if copied == 0 { break }  // the file shrank while we copied
                let code = cds_errno()
                if code == EINTR { continue }
                if code == EXDEV || code == ENOSYS || code == EOPNOTSUPP || code == EINVAL {
                    useKernelCopy = false
                    continue
                }
                throw SystemCallError(errno: code, call: "copy_file_range", path: nil)
            }
            var buffer = [UInt8](repeating: 0, count: 1 << 17)
            let count = try check("read") {
                buffer.withUnsafeMutableBytes { Glibc.read(source, $0.baseAddress, $0.count) }
            }
            if count == 0 { break }
            try writeAll(destination, Array(buffer[0..<count]))
            remaining -= Int64(count)
        }
    }

    /// Writes text to standard output (fd 1) or standard error (fd 2), unbuffered.
    public static func writeStandard(_ text: String, toError: Bool = false) {
        try? writeAll(toError ? 2 : 1, Array(text.utf8))
    }

    /// The bytes an unprivileged user may still write on the file system holding `path`.
    static func availableBytes(_ path: String) throws(SystemCallError) -> Int64 {
        var result = statvfs()
        _ = try check("statvfs", path) { statvfs(path, &result) }
        return Int64(result.f_bavail) * Int64(result.f_frsize)
    }

    // MARK: Sockets

    /// Whether a process listens on the unix stream socket at `path`: true when a connection is
    /// accepted, false when nobody listens there (no such file, or `ECONNREFUSED`: a socket file
    /// left by a stopped server). Other failures (permission denied …) are thrown.
    public static func unixSocketAnswers(_ path: String) throws(SystemCallError) -> Bool {
        let fd = try check("socket", path) {
            socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path), !bytes.contains(0) else {
            throw SystemCallError(errno: ENAMETOOLONG, call: "connect", path: path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result == 0 { return true }
        let code = cds_errno()
        if code == ECONNREFUSED || code == ENOENT { return false }
        throw SystemCallError(errno: code, call: "connect", path: path)
    }

    // MARK: Processes and users

    /// Makes sure files the children write (git checkouts, Moodle's caches) are readable by the
    /// web server: clears the read and search bits from the process's umask (0027 → 0022).
    static func allowReadableFiles() {
        let old = umask(0o022)
        umask(old & ~0o055)
    }

    /// The process id.
    public static var processIdentifier: Int32 { getpid() }
    public static var effectiveUserIdentifier: UInt32 { geteuid() }
    /// The real user id (who started the process).
    public static var realUserIdentifier: UInt32 { getuid() }

    static func signal(processGroup: Int32, _ signal: Int32) {
        _ = kill(-processGroup, signal)
    }

    /// True when a process with this id exists (and is not a zombie waiting to be reaped).
    static func processIsRunning(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 || cds_errno() == EPERM else { return false }
        guard let bytes = try? readFile("/proc/\(pid)/stat", limit: 4096) else { return false }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return true }
        return !text[text.index(after: close)...].hasPrefix(" Z")
    }

    /// A process's command line, its arguments joined by spaces.
    static func commandLine(of pid: Int32) -> String? {
        guard let bytes = try? readFile("/proc/\(pid)/cmdline", limit: 65536) else { return nil }
        return String(decoding: bytes.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        return cString(buffer)
    }

    /// Looks a user up by name or number in the passwd database.
    public static func user(named name: String) -> (name: String, uid: UInt32, gid: UInt32, home: String)? {
        var record = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        if let number = UInt32(name) {
            getpwuid_r(number, &record, &buffer, buffer.count, &result)
        } else {
            getpwnam_r(name, &record, &buffer, buffer.count, &result)
        }
        guard let found = result?.pointee else { return nil }
        return (String(cString: found.pw_name), found.pw_uid, found.pw_gid, String(cString: found.pw_dir))
    }

    /// The groups a user belongs to (its primary group first), from the group database.
    static func groupList(of name: String, primary: UInt32) -> [UInt32] {
        var count: Int32 = 64
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let previous = count
            if getgrouplist(name, primary, &groups, &count) >= 0 {
                return Array(groups.prefix(Int(count)))
            }
            if count <= previous { return [primary] }
        }
    }

    /// Seconds on the monotonic clock.
    public static func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

/// A NUL-terminated C buffer as a String.
func cString(_ buffer: [CChar]) -> String {
    let end = buffer.firstIndex(of: 0) ?? buffer.count
    return String(decoding: buffer[0..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The folder part of a path (`/a/b` → `/a`, `b` → `.`).
func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// The last component of a path.
func lastComponent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}
