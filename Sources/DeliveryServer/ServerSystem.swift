import CFastCGI
import CFastCGIShim

#if canImport(Glibc)
    import Glibc
#endif

/// A failed system or libfcgi call: the call's name, the errno it left and the path it was about.
struct ServerSystemError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The errno value (or libfcgi's negative code for `FCGX_*` calls).
    let errno: Int32
    /// The call that failed (`bind`, `FCGX_Accept_r`…).
    let call: String
    /// The path the call was about, if any.
    let path: String?

    /// Makes an error.
    init(errno: Int32, call: String, path: String? = nil) {
        self.errno = errno
        self.call = call
        self.path = path
    }

    /// `call(path): strerror`.
    var description: String {
        let reason = errno > 0 ? String(cString: strerror(errno)) : "libfcgi error \(errno)"
        if let path { return "\(call)(\(path)): \(reason)" }
        return "\(call): \(reason)"
    }
}

/// Every libc and libfcgi call of the server, in one place: EINTR is retried, -1 becomes a typed
/// `ServerSystemError` at once, and errnos that can only mean a bug of ours (EBADF, EFAULT) trap.
/// Callers never read `errno`.
enum ServerSystem {
    // MARK: Errors

    private static func fail(_ call: String, _ path: String? = nil) -> ServerSystemError {
        let code = cfs_errno()
        precondition(code != EBADF && code != EFAULT, "\(call) failed with \(code): a bug in deliveryd")
        return ServerSystemError(errno: code, call: call, path: path)
    }

    /// Runs a call that returns -1 on error, retrying on EINTR.
    private static func retrying<T: BinaryInteger>(
        _ call: String, _ path: String? = nil, _ body: () -> T
    ) throws(ServerSystemError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            if cfs_errno() == EINTR { continue }
            throw fail(call, path)
        }
    }

    // MARK: Files

    /// Reads a whole small file; refuses one larger than `limit`.
    static func readFile(_ path: String, limit: Int) throws(ServerSystemError) -> [UInt8] {
        let fd = try retrying("open", path) { open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = try retrying("read", path) {
                buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            }
            if count == 0 { break }
            result += buffer[0..<count]
            if result.count > limit { throw ServerSystemError(errno: EFBIG, call: "read", path: path) }
        }
        return result
    }

    /// The mode, owner and kind of a path, without following a final symlink.
    static func fileInfo(_ path: String) throws(ServerSystemError) -> (mode: UInt32, uid: UInt32, isSocket: Bool)? {
        var info = stat()
        let result = lstat(path, &info)
        if result != 0 {
            if cfs_errno() == ENOENT { return nil }
            throw fail("lstat", path)
        }
        return (UInt32(info.st_mode) & 0o7777, info.st_uid, (info.st_mode & S_IFMT) == S_IFSOCK)
    }

    /// Removes a file.
    static func unlink(_ path: String) throws(ServerSystemError) {
        _ = try retrying("unlink", path) { Glibc.unlink(path) }
    }

    /// Changes the group and mode of a path.
    static func setGroupAndMode(_ path: String, group: UInt32?, mode: mode_t) throws(ServerSystemError) {
        if let group {
            _ = try retrying("chown", path) { chown(path, UInt32.max, group) }
        }
        _ = try retrying("chmod", path) { chmod(path, mode) }
    }

    /// The group id of a group name, or the number itself when numeric.
    static func groupIdentifier(_ name: String) -> UInt32? {
        if let number = UInt32(name) { return number }
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        let code = getgrnam_r(name, &group, &buffer, buffer.count, &result)
        guard code == 0, let result else { return nil }
        return result.pointee.gr_gid
    }

    // MARK: Sockets

    /// Makes a unix stream socket, close-on-exec.
    static func unixSocket() throws(ServerSystemError) -> Int32 {
        try retrying("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    private static func withAddress<T>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T
    ) throws(ServerSystemError) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity, !bytes.contains(0) else {
            throw ServerSystemError(errno: ENAMETOOLONG, call: "sockaddr_un", path: path)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }

    /// Binds a socket to a path with the process umask set to `umaskValue` (so that the socket
    /// file is never more open than intended, even for an instant).
    static func bind(_ fd: Int32, path: String, umask umaskValue: mode_t) throws(ServerSystemError) {
        let previous = umask(umaskValue)
        defer { umask(previous) }
        _ = try retrying("bind", path) { try! withAddress(path) { Glibc.bind(fd, $0, $1) } }
    }

    /// Starts listening.
    static func listen(_ fd: Int32, backlog: Int32) throws(ServerSystemError) {
        _ = try retrying("listen") { Glibc.listen(fd, backlog) }
    }

    /// Sets or clears O_NONBLOCK.
    static func setNonBlocking(_ fd: Int32, _ on: Bool) throws(ServerSystemError) {
        let flags = try retrying("fcntl") { fcntl(fd, F_GETFL) }
        _ = try retrying("fcntl") { fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) }
    }

    /// Sets FD_CLOEXEC.
    static func setCloseOnExec(_ fd: Int32) throws(ServerSystemError) {
        let flags = try retrying("fcntl") { fcntl(fd, F_GETFD) }
        _ = try retrying("fcntl") { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    /// True when the descriptor is a listening unix stream socket (for systemd-passed fds).
    static func isListeningUnixSocket(_ fd: Int32) -> Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) == 0, value == 1 else { return false }
        var domain: Int32 = 0
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 else { return false }
        return domain == AF_UNIX
    }

    /// Accepts a connection (close-on-exec); nil when none is pending on a non-blocking socket.
    static func accept(_ listenFd: Int32) throws(ServerSystemError) -> Int32? {
        while true {
            let fd = cfs_accept_cloexec(listenFd)
            if fd >= 0 { return fd }
            let code = cfs_errno()
            switch code {
            case EINTR: continue
            case EAGAIN, ECONNABORTED, EPROTO: return nil
            default: throw fail("accept4")
            }
        }
    }

    /// Waits until one of the descriptors is readable (or hung up), up to `timeoutMilliseconds`.
    /// - Returns: the `revents` of each descriptor, in order.
    static func pollReadable(_ fds: [Int32], timeoutMilliseconds: Int32) throws(ServerSystemError) -> [Int16] {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let count = poll(&entries, nfds_t(entries.count), timeoutMilliseconds)
        if count < 0 {
            if cfs_errno() == EINTR { return entries.map { _ in 0 } }
            throw fail("poll")
        }
        return entries.map(\.revents)
    }

    /// Sets the receive and send timeouts of a connected socket.
    static func setTimeouts(_ fd: Int32, seconds: Double) throws(ServerSystemError) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        _ = try retrying("setsockopt") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size) }
        _ = try retrying("setsockopt") { setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size) }
    }

    /// The uid and pid of the peer of a connected unix socket.
    static func peerCredentials(_ fd: Int32) throws(ServerSystemError) -> (uid: UInt32, pid: Int32) {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        _ = try retrying("getsockopt(SO_PEERCRED)") { cfs_peer_credentials(fd, &pid, &uid, &gid) }
        return (uid, pid)
    }

    /// Shuts a socket down in both directions: blocked reads return end-of-file at once. Errors
    /// are ignored (the peer may be gone already).
    static func shutdownBoth(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Shuts the sending side down: the peer reads end-of-file after what was sent.
    static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Duplicates a descriptor (close-on-exec).
    static func duplicate(_ fd: Int32) throws(ServerSystemError) -> Int32 {
        try retrying("fcntl(F_DUPFD_CLOEXEC)") { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// Reads what is available, up to `count` bytes; 0 at end of file or on a timeout.
    static func readSome(_ fd: Int32, count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let result = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if result < 0 && cfs_errno() == EINTR { continue }
            return result <= 0 ? [] : Array(buffer[0..<result])
        }
    }

    /// Reads what has arrived on a socket, up to `count` bytes, without waiting: empty when
    /// nothing has, nil at end of file or on an error.
    static func receiveAvailable(_ fd: Int32, count: Int) -> [UInt8]? {
        guard count > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: min(count, 65536))
        var result: [UInt8] = []
        while result.count < count {
            let wanted = min(buffer.count, count - result.count)
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, wanted, Int32(MSG_DONTWAIT)) }
            if received < 0 {
                let code = cfs_errno()
                if code == EINTR { continue }
                return code == EAGAIN || code == EWOULDBLOCK ? result : nil
            }
            if received == 0 { return result.isEmpty ? nil : result }
            result += buffer[0..<received]
        }
        return result
    }

    /// A memory file (`memfd_create`, close-on-exec) holding `bytes`, positioned at its start.
    static func memoryFile(_ bytes: [UInt8]) throws(ServerSystemError) -> Int32 {
        let fd = try retrying("memfd_create") { cfs_memfd("deliveryd-request") }
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if written < 0 {
                if cfs_errno() == EINTR { continue }
                let error = fail("write")
                Glibc.close(fd)
                throw error
            }
            done += written
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else {
            let error = fail("lseek")
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Writes all bytes; false when the peer is gone or too slow.
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes {
                send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL))
            }
            if result < 0 {
                if cfs_errno() == EINTR { continue }
                return false
            }
            done += result
        }
        return true
    }

    /// Closes a descriptor, ignoring errors other than a bad descriptor (our bug).
    static func close(_ fd: Int32) {
        if Glibc.close(fd) != 0 {
            precondition(cfs_errno() != EBADF, "close of a descriptor that is not open: a bug in deliveryd")
        }
    }

    /// A pipe whose read end becomes readable when anything is written: wakes pollers.
    static func pipe() throws(ServerSystemError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        _ = try retrying("pipe2") { cfs_pipe_cloexec(&fds) }
        return (fds[0], fds[1])
    }

    // MARK: Process and signals

    /// The process id.
    static var processIdentifier: Int32 { getpid() }

    /// The real user id.
    static var userIdentifier: UInt32 { getuid() }

    /// An environment variable.
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    /// Removes an environment variable (before any thread starts).
    static func unsetEnvironment(_ name: String) {
        unsetenv(name)
    }

    /// Blocks the given signals in the calling thread (and so in every thread it starts later),
    /// and ignores SIGPIPE for the whole process.
    static func blockSignals(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        let result = pthread_sigmask(SIG_BLOCK, &set, nil)
        precondition(result == 0, "pthread_sigmask failed")
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// Waits for one of the (blocked) signals and returns it.
    static func waitForSignal(_ signals: [Int32]) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }

    /// Sends a signal to this process (tests and shutdown paths).
    static func raise(_ signal: Int32) {
        kill(getpid(), signal)
    }

    /// Seconds on the monotonic clock.
    static func monotonicSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Seconds since the epoch, on the wall clock.
    static func wallSeconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec)
    }

    /// The UTC date and time as `YYYYMMDDTHHMMSSZ`.
    static func utcStamp() -> String {
        var seconds = time(nil)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    /// Sleeps.
    static func sleep(seconds: Double) {
        var time = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&time, &remaining) != 0 && cfs_errno() == EINTR { time = remaining }
    }

    /// Random bytes from the kernel.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    // MARK: Threads

    private final class ThreadBody {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts a joinable thread.
    static func startThread(_ body: @escaping @Sendable () -> Void) throws(ServerSystemError) -> pthread_t {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        guard result == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            throw ServerSystemError(errno: result, call: "pthread_create")
        }
        return thread
    }

    /// Starts a thread nobody waits for.
    static func startDetachedThread(_ body: @escaping @Sendable () -> Void) throws(ServerSystemError) {
        let thread = try startThread(body)
        pthread_detach(thread)
    }

    /// Waits for a thread to end.
    static func join(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }

    // MARK: libfcgi

    /// Initialises libfcgi once per process.
    static func fastCGIInitialize() throws(ServerSystemError) {
        let result = FCGX_Init()
        guard result == 0 else { throw ServerSystemError(errno: result, call: "FCGX_Init") }
    }
}

/// A value shared between threads, behind a pthread mutex.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// One FastCGI request slot of a worker thread, over libfcgi's `FCGX_Request`.
///
/// The worker accepts connections itself, so that it can check the peer, set the read deadline
/// and close-on-exec before libfcgi reads a byte, and hands each one to `FCGX_Accept_r`, which
/// then only parses the request. libfcgi accepts on its own after a protocol error (to "try
/// again"); that accept would bypass those checks, so the slot's listening descriptor is a decoy:
/// an unbound socket on which accept(2) fails at once with EINVAL.
final class FastCGIRequest {
    private let request: UnsafeMutablePointer<FCGX_Request>

    /// Prepares a request slot; `decoyFd` is the descriptor libfcgi would accept on.
    init(decoyFd: Int32) {
        request = .allocate(capacity: 1)
        FCGX_InitRequest(request, decoyFd, 0)
    }

    deinit {
        FCGX_Free(request, request.pointee.ipcFd >= 0 ? 1 : 0)
        request.deallocate()
    }

    /// Parses one request from an accepted connection.
    /// - Returns: false when the connection was closed or malformed (libfcgi then closed it).
    func parse(connection fd: Int32) -> Bool {
        request.pointee.ipcFd = fd
        // Keeps FCGX_Accept_r's opening FCGX_Finish_r from closing the fresh connection.
        request.pointee.keepConnection = 1
        return FCGX_Accept_r(request) == 0
    }

    /// A request parameter, or nil.
    func parameter(_ name: String) -> String? {
        guard let envp = request.pointee.envp, let value = FCGX_GetParam(name, envp) else { return nil }
        return String(cString: value)
    }

    /// The number of parameters and their total size in bytes.
    func parameterTotals() -> (count: Int, bytes: Int) {
        guard let envp = request.pointee.envp else { return (0, 0) }
        var count = 0
        var bytes = 0
        while let entry = envp[count] {
            bytes += strlen(entry)
            count += 1
        }
        return (count, bytes)
    }

    /// Reads up to `limit` bytes of the request body.
    /// - Returns: the bytes, and whether the stream ended cleanly (false on a read error, such
    ///   as the read deadline).
    func readBody(limit: Int) -> (bytes: [UInt8], clean: Bool) {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while result.count < limit {
            let wanted = Int32(min(buffer.count, limit - result.count))
            let count = buffer.withUnsafeMutableBytes {
                FCGX_GetStr($0.baseAddress!.assumingMemoryBound(to: CChar.self), wanted, request.pointee.in)
            }
            if count > 0 { result += buffer[0..<Int(count)] }
            if count < wanted { break }
        }
        return (result, FCGX_GetError(request.pointee.in) == 0)
    }

    /// From now on the response goes to `fd` (the connection), while the request was read from
    /// the memory file the gate filled: libfcgi writes to the request's `ipcFd` when it flushes.
    /// The memory file is closed.
    func answer(on fd: Int32) {
        let input = request.pointee.ipcFd
        request.pointee.ipcFd = fd
        if input >= 0 && input != fd { Glibc.close(input) }
    }

    /// Writes response bytes with `FCGX_PutStr`.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let chunk = min(bytes.count - done, 1 << 20)
            let written = bytes.withUnsafeBytes {
                FCGX_PutStr(
                    $0.baseAddress!.assumingMemoryBound(to: CChar.self) + done, Int32(chunk), request.pointee.out)
            }
            if written < 0 { return false }
            done += Int(written)
        }
        return true
    }

    /// Ends the request: flushes the output and closes the connection (a peer's request to keep
    /// it open is not honoured: one request per connection bounds what a worker can be held for).
    func finish() {
        FCGX_Finish_r(request)
        if request.pointee.ipcFd >= 0 { FCGX_Free(request, 1) }
    }

    /// Drops the connection without a response.
    func abandon() {
        FCGX_Free(request, request.pointee.ipcFd >= 0 ? 1 : 0)
    }
}
