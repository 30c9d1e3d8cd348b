import CDeliverySystem
import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// Processes, users and threads.
extension System {
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
