import CDeliverySystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// Calls on paths relative to an open folder, following no link: the copier's calls.
extension System {
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
}

/// A value shared between threads, behind a pthread mutex: the server's tables, and what two
/// pieces of one operation running at the same time (`concurrently`) must not touch at once.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// Guards `value`.
    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    public func withLock<T, E: Error>(_ body: (inout Value) throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
