import CDeliverySystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

#if !os(Linux)
    #error("moodle-delivery runs on Linux only: openat2(2), SO_PEERCRED, OFD locks and /proc")
#endif

/// A failed system call: which call, on which path, and the errno it set.
///
/// Every libc call of the engine goes through this file and its extensions (`System+*.swift`,
/// `SystemServer.swift`). A call that returns -1 is turned into a
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
