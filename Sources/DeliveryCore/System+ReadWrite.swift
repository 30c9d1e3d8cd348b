import CDeliverySystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// Reading and writing descriptors, and the sockets of the engine's children.
extension System {
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

    /// Reads standard input to its end; more than `limit` bytes is an error (`EFBIG`).
    public static func readStandardInput(limit: Int) throws(SystemCallError) -> [UInt8] {
        try readAll(STDIN_FILENO, limit: limit, name: "standard input")
    }

    /// Reads a descriptor line by line (lines end with `\n`), each line at most `limit` bytes.
    public struct LineReader {
        private let fd: Int32
        private let limit: Int
        private var buffer: [UInt8] = []
        private var atEnd = false

        /// Reads `fd` (standard input by default).
        public init(fd: Int32 = STDIN_FILENO, limit: Int) {
            self.fd = fd
            self.limit = limit
        }

        /// The next line without its newline (a last line without one too); nil at the end.
        /// - Throws: `EFBIG` for a line over the limit, or the read's error.
        public mutating func next() throws(SystemCallError) -> [UInt8]? {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                if let end = buffer.firstIndex(of: 10), end <= limit {
                    let line = Array(buffer[..<end])
                    buffer.removeFirst(end + 1)
                    return line
                }
                if buffer.count > limit { throw SystemCallError(errno: EFBIG, call: "read", path: "a line") }
                if atEnd {
                    defer { buffer = [] }
                    return buffer.isEmpty ? nil : buffer
                }
                let count = try check("read", "a line") {
                    chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                }
                if count == 0 { atEnd = true } else { buffer.append(contentsOf: chunk[0..<count]) }
            }
        }
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
}
