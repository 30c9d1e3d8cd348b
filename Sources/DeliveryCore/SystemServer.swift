import CDeliverySystem

#if canImport(Glibc)
    import Glibc
#endif

// The part of the one layer over the operating system that the helper's server uses: its sockets,
// signals, threads and clocks. Same rules as System.swift: EINTR retried, -1 turned into a typed
// `SystemCallError` at once, errnos that can only mean a bug of ours trap.
extension System {
    /// The error of the call that just failed (errno read at once).
    static func failure(_ call: String, _ path: String? = nil) -> SystemCallError {
        let code = cds_errno()
        precondition(code != EBADF && code != EFAULT, "\(call) failed with \(code): a bug in the helper")
        return SystemCallError(errno: code, call: call, path: path)
    }

    // MARK: Files

    /// Reads a whole small file whose last component is not a symlink (the key, the helper's
    /// configuration); refuses one larger than `limit`.
    public static func readFileNoFollow(_ path: String, limit: Int) throws(SystemCallError) -> [UInt8] {
        let fd = try check("open", path) { Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) }
        defer { close(fd) }
        return try readAll(fd, limit: limit, name: path)
    }

    /// The mode, owner and kind of a path, without following a final symlink.
    public static func fileInfo(_ path: String) throws(SystemCallError) -> (
        mode: UInt32, uid: UInt32, isSocket: Bool, inode: UInt64
    )? {
        var info = stat()
        let result = lstat(path, &info)
        if result != 0 {
            if cds_errno() == ENOENT { return nil }
            throw failure("lstat", path)
        }
        return (UInt32(info.st_mode) & 0o7777, info.st_uid, (info.st_mode & S_IFMT) == S_IFSOCK, UInt64(info.st_ino))
    }

    /// Changes the group and mode of a path.
    public static func setGroupAndMode(_ path: String, group: UInt32?, mode: mode_t) throws(SystemCallError) {
        if let group {
            _ = try check("chown", path) { chown(path, UInt32.max, group) }
        }
        _ = try check("chmod", path) { chmod(path, mode) }
    }

    /// The group id of a group name, or the number itself when numeric.
    public static func groupIdentifier(_ name: String) -> UInt32? {
        if let number = UInt32(name) { return number }
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        let code = getgrnam_r(name, &group, &buffer, buffer.count, &result)
        guard code == 0, let result else { return nil }
        return result.pointee.gr_gid
    }

    /// The name of a group id, or the number as text when it has none.
    public static func groupName(_ gid: UInt32) -> String {
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrgid_r(gid, &group, &buffer, buffer.count, &result) == 0, let result,
            let name = result.pointee.gr_name
        else { return String(gid) }
        return String(cString: name)
    }

    // MARK: Sockets

    /// Makes a unix stream socket, close-on-exec.
    public static func unixSocket() throws(SystemCallError) -> Int32 {
        try check("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    /// Connects to the unix stream socket at `path` (a close-on-exec descriptor).
    public static func connectUnixSocket(_ path: String) throws(SystemCallError) -> Int32 {
        let fd = try unixSocket()
        let result: Int32
        do {
            result = try withAddress(path) { Glibc.connect(fd, $0, $1) }
        } catch {
            close(fd)
            throw error
        }
        guard result == 0 else {
            let code = cds_errno()
            close(fd)
            throw SystemCallError(errno: code, call: "connect", path: path)
        }
        return fd
    }

    private static func withAddress<T>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T
    ) throws(SystemCallError) -> T {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity, !bytes.contains(0) else {
            throw SystemCallError(errno: ENAMETOOLONG, call: "sockaddr_un", path: path)
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
    public static func bind(_ fd: Int32, path: String, umask umaskValue: mode_t) throws(SystemCallError) {
        let previous = umask(umaskValue)
        defer { umask(previous) }
        _ = try check("bind", path) { try! withAddress(path) { Glibc.bind(fd, $0, $1) } }
    }

    /// Starts listening.
    public static func listen(_ fd: Int32, backlog: Int32) throws(SystemCallError) {
        _ = try check("listen") { Glibc.listen(fd, backlog) }
    }

    /// Sets or clears O_NONBLOCK.
    public static func setNonBlocking(_ fd: Int32, _ on: Bool) throws(SystemCallError) {
        let flags = try check("fcntl") { fcntl(fd, F_GETFL) }
        _ = try check("fcntl") { fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) }
    }

    /// Sets FD_CLOEXEC.
    public static func setCloseOnExec(_ fd: Int32) throws(SystemCallError) {
        let flags = try check("fcntl") { fcntl(fd, F_GETFD) }
        _ = try check("fcntl") { fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
    }

    /// True when the descriptor is a listening unix stream socket (for systemd-passed fds).
    public static func isListeningUnixSocket(_ fd: Int32) -> Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &length) == 0, value == 1 else { return false }
        var domain: Int32 = 0
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 else { return false }
        return domain == AF_UNIX
    }

    /// Accepts a connection (close-on-exec); nil when none is pending on a non-blocking socket.
    public static func accept(_ listenFd: Int32) throws(SystemCallError) -> Int32? {
        while true {
            let fd = cds_accept_cloexec(listenFd)
            if fd >= 0 { return fd }
            let code = cds_errno()
            switch code {
            case EINTR: continue
            case EAGAIN, ECONNABORTED, EPROTO: return nil
            default: throw failure("accept4")
            }
        }
    }

    /// Waits until one of the descriptors is readable (or hung up), up to `timeoutMilliseconds`.
    /// - Returns: the `revents` of each descriptor, in order.
    public static func pollReadable(_ fds: [Int32], timeoutMilliseconds: Int32) throws(SystemCallError) -> [Int16] {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let count = poll(&entries, nfds_t(entries.count), timeoutMilliseconds)
        if count < 0 {
            if cds_errno() == EINTR { return entries.map { _ in 0 } }
            throw failure("poll")
        }
        return entries.map(\.revents)
    }

    /// Sets the receive and send timeouts of a connected socket.
    public static func setTimeouts(_ fd: Int32, seconds: Double) throws(SystemCallError) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        _ = try check("setsockopt") { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size) }
        _ = try check("setsockopt") { setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size) }
    }

    /// The uid and pid of the peer of a connected unix socket.
    public static func peerCredentials(_ fd: Int32) throws(SystemCallError) -> (uid: UInt32, pid: Int32) {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        _ = try check("getsockopt(SO_PEERCRED)") { cds_peer_credentials(fd, &pid, &uid, &gid) }
        return (uid, pid)
    }

    /// Shuts a socket down in both directions: blocked reads return end-of-file at once. Errors
    /// are ignored (the peer may be gone already).
    public static func shutdownBoth(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Shuts the sending side down: the peer reads end-of-file after what was sent.
    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Duplicates a descriptor (close-on-exec).
    public static func duplicate(_ fd: Int32) throws(SystemCallError) -> Int32 {
        try check("fcntl(F_DUPFD_CLOEXEC)") { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// Reads what is available, up to `count` bytes; 0 at end of file or on a timeout.
    public static func readSome(_ fd: Int32, count: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        while true {
            let result = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if result < 0 && cds_errno() == EINTR { continue }
            return result <= 0 ? [] : Array(buffer[0..<result])
        }
    }

    /// Reads what has arrived on a socket, up to `count` bytes, without waiting: empty when
    /// nothing has, nil at end of file or on an error.
    public static func receiveAvailable(_ fd: Int32, count: Int) -> [UInt8]? {
        guard count > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: min(count, 65536))
        var result: [UInt8] = []
        while result.count < count {
            let wanted = min(buffer.count, count - result.count)
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, wanted, Int32(MSG_DONTWAIT)) }
            if received < 0 {
                let code = cds_errno()
                if code == EINTR { continue }
                return code == EAGAIN || code == EWOULDBLOCK ? result : nil
            }
            if received == 0 { return result.isEmpty ? nil : result }
            result += buffer[0..<received]
        }
        return result
    }

    /// A memory file (`memfd_create`, close-on-exec) holding `bytes`, positioned at its start.
    public static func memoryFile(_ bytes: [UInt8]) throws(SystemCallError) -> Int32 {
        let fd = try check("memfd_create") { cds_memfd("deliveryd-request") }
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if written < 0 {
                if cds_errno() == EINTR { continue }
                let error = failure("write")
                Glibc.close(fd)
                throw error
            }
            done += written
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else {
            let error = failure("lseek")
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Writes all bytes; false when the peer is gone or too slow.
    @discardableResult
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes {
                send(fd, $0.baseAddress! + done, $0.count - done, Int32(MSG_NOSIGNAL))
            }
            if result < 0 {
                if cds_errno() == EINTR { continue }
                return false
            }
            done += result
        }
        return true
    }

    /// A pipe whose read end becomes readable when anything is written: wakes pollers.
    public static func pipe() throws(SystemCallError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        _ = try check("pipe2") { cds_pipe_cloexec(&fds) }
        return (fds[0], fds[1])
    }

    /// A connected pair of unix sockets (close-on-exec): `seqpacket` keeps message boundaries.
    public static func socketPair(seqpacket: Bool = false) throws(SystemCallError) -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        _ = try check("socketpair") {
            cds_socketpair(Int32(seqpacket ? SOCK_SEQPACKET.rawValue : SOCK_STREAM.rawValue), &fds)
        }
        return (fds[0], fds[1])
    }

    /// Passes a descriptor over a unix socket (SCM_RIGHTS); the caller keeps its own copy.
    public static func sendDescriptor(_ fd: Int32, over socket: Int32) throws(SystemCallError) {
        _ = try check("sendmsg") { cds_send_descriptor(socket, fd) }
    }

    /// Receives a descriptor passed by `sendDescriptor`; nil when the other end has closed.
    public static func receiveDescriptor(over socket: Int32) throws(SystemCallError) -> Int32? {
        let fd = try check("recvmsg") { cds_receive_descriptor(socket) }
        return fd == -2 ? nil : fd
    }

    /// Reads exactly `count` bytes; nil at end of file before the first byte.
    /// - Throws: `SystemCallError` on an error or when the stream ends part-way (EPIPE).
    public static func readExactly(_ fd: Int32, count: Int) throws(SystemCallError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = try check("read") {
                buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, count - done) }
            }
            if result == 0 {
                if done == 0 { return nil }
                throw SystemCallError(errno: EPIPE, call: "read", path: nil)
            }
            done += result
        }
        return buffer
    }

    // MARK: Process and signals

    /// An environment variable.
    public static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    /// Removes an environment variable (before any thread starts).
    public static func unsetEnvironment(_ name: String) {
        unsetenv(name)
    }

    /// Blocks the given signals in the calling thread (and so in every thread it starts later),
    /// and ignores SIGPIPE for the whole process.
    public static func blockSignals(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        let result = pthread_sigmask(SIG_BLOCK, &set, nil)
        precondition(result == 0, "pthread_sigmask failed")
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// Waits for one of the (blocked) signals and returns it.
    public static func waitForSignal(_ signals: [Int32]) -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        var received: Int32 = 0
        while sigwait(&set, &received) != 0 {}
        return received
    }

    /// Forks. Only for a process that has started no thread (the child has only the caller's).
    /// - Returns: 0 in the child, the child's pid in the parent.
    public static func fork() throws(SystemCallError) -> Int32 {
        try check("fork") { cds_fork() }
    }

    /// Becomes `uid`:`gid` for good (single-threaded callers only): groups, real, effective and
    /// saved ids, no new privileges, not dumpable, `deathSignal` when the parent dies.
    public static func becomeUser(uid: UInt32, gid: UInt32, deathSignal: Int32) throws(SystemCallError) {
        _ = try check("setresuid") { cds_become_user(uid, gid, deathSignal) }
    }

    /// The parent's pid (1 or a subreaper once the parent died).
    public static var parentProcessIdentifier: Int32 { getppid() }

    /// Sends `signal` to the process `pid`; false when it is gone.
    @discardableResult
    public static func signal(process pid: Int32, _ signal: Int32) -> Bool {
        kill(pid, signal) == 0
    }

    /// Waits for the child `pid` to end; its exit status, or 128 + the signal that killed it.
    public static func waitForChild(_ pid: Int32) throws(SystemCallError) -> Int32 {
        var status: Int32 = 0
        _ = try check("waitpid") { waitpid(pid, &status, 0) }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Sends a signal to this process (tests and shutdown paths).
    public static func raise(_ signal: Int32) {
        kill(getpid(), signal)
    }

    /// Seconds since the epoch, on the wall clock.
    public static func wallSeconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec)
    }

    /// The UTC date and time as `YYYYMMDDTHHMMSSZ`.
    public static func utcStamp() -> String {
        var seconds = time(nil)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    /// Sleeps.
    public static func sleep(seconds: Double) {
        var time = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&time, &remaining) != 0 && cds_errno() == EINTR { time = remaining }
    }

    /// Random bytes from the kernel.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    // MARK: Threads

    private final class ThreadBody {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts a joinable thread.
    public static func startThread(_ body: @escaping @Sendable () -> Void) throws(SystemCallError) -> pthread_t {
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
            throw SystemCallError(errno: result, call: "pthread_create")
        }
        return thread
    }

    /// Starts a thread nobody waits for.
    public static func startDetachedThread(_ body: @escaping @Sendable () -> Void) throws(SystemCallError) {
        let thread = try startThread(body)
        pthread_detach(thread)
    }

    /// Waits for a thread to end.
    public static func join(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }
}
