import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The delivery lock: one operation at a time, across processes.
///
/// An OFD lock on `delivery.lock` (the kernel drops it when the holder dies, so it can never be
/// left "held" by a dead process) plus the state file's `running` entry, written when an operation
/// starts and cleared when it ends. A `running` entry whose lock is free means the holder died:
/// that is reported as an interrupted operation, and nothing starts until `recover` has recorded it.
final class DeliveryLock: @unchecked Sendable {
    private let fd: Int32
    private let id: String

    /// The operations of this process that hold a lock now.
    private static let heldHere = Mutex<Set<String>>([])

    private init(fd: Int32, id: String) {
        self.fd = fd
        self.id = id
    }

    static func path(in directory: String) -> String { "\(directory)/delivery.lock" }

    /// Takes the lock or says who holds it.
    static func acquire(in directory: String, holder: RunningOperation) throws(DeliveryError) -> DeliveryLock {
        let fd: Int32
        do {
            fd = try System.open(path(in: directory), O_RDWR | O_CREAT, 0o640)
        } catch {
            throw DeliveryError.io("cannot open the delivery lock", error)
        }
        var taken: Bool
        do {
            taken = try System.lockFile(fd, wait: false)
            // An operation of this process that has finished may still hold the lock for a moment:
            // a child another thread is starting shares the lock's descriptor until it runs its
            // program. Wait for that (a second at most); a real holder is never waited for.
            var tries = 0
            while !taken, tries < 40, let holder = Self.readHolder(fd: fd), holder.pid == System.processIdentifier,
                !heldHere.withLock({ $0.contains(holder.id) })
            {
                System.sleep(seconds: 0.025)
                taken = try System.lockFile(fd, wait: false)
                tries += 1
            }
        } catch {
            System.close(fd)
            throw DeliveryError.io("cannot take the delivery lock", error)
        }
        guard taken else {
            let current = Self.readHolder(fd: fd)
            System.close(fd)
            throw DeliveryError(.lockHeld, Self.describeHeld(current))
        }
        do {
            try System.truncate(fd)
            try System.writeAt(fd, try JSONCoding.encode(holder, pretty: false))
        } catch {
            // The holder description is informative only; the lock itself is held.
        }
        heldHere.withLock { _ = $0.insert(holder.id) }
        return DeliveryLock(fd: fd, id: holder.id)
    }

    /// Who holds the lock now, or nil when it is free.
    static func currentHolder(in directory: String) -> RunningOperation?? {
        guard let fd = try? System.open(path(in: directory), O_RDONLY) else { return .some(nil) }
        defer { System.close(fd) }
        guard let locked = try? System.isFileLocked(fd) else { return nil }
        return locked ? .some(readHolder(fd: fd)) : .some(nil)
    }

    /// True when an operation holds the lock now (whether or not it wrote who it is).
    static func isHeld(in directory: String) -> Bool {
        guard let fd = try? System.open(path(in: directory), O_RDONLY) else { return false }
        defer { System.close(fd) }
        return (try? System.isFileLocked(fd)) ?? true
    }

    static func describeHeld(_ holder: RunningOperation?) -> String {
        guard let holder else { return "another delivery operation is running" }
        return
            "\(holder.actor.name) is running '\(holder.operation.rawValue)' since \(holder.startedAt.formatted(.iso8601)) (pid \(holder.pid) on \(holder.host)); wait for it to finish"
    }

    private static func readHolder(fd: Int32) -> RunningOperation? {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return try? JSONCoding.decode(RunningOperation.self, from: Array(buffer[0..<count]))
    }

    /// Releases the lock.
    func release() {
        System.close(fd)
        Self.heldHere.withLock { _ = $0.remove(id) }
    }
}
