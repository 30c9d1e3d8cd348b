import Foundation
import Synchronization

/// Something that happens once, that threads wait for: a job's end (a follower's `GET /jobs/{id}`
/// that waits for it), the revision a farm coordinator's update names. Once set it stays set;
/// every waiter, before or after, sees it.
public final class OneTimeEvent: Sendable {
    private let happened = Mutex(false)
    private let semaphore = DispatchSemaphore(value: 0)

    /// An event that has not happened.
    public init() {}

    /// True once `set` was called.
    public var isSet: Bool { happened.withLock { $0 } }

    /// Sets it (again: nothing more) and wakes every waiter.
    public func set() {
        let first = happened.withLock { (value: inout Bool) -> Bool in
            defer { value = true }
            return !value
        }
        if first { semaphore.signal() }
    }

    /// Waits until it is set, at most `seconds` (forever when nil).
    /// - Returns: true when it is set.
    @discardableResult
    public func wait(seconds: Double? = nil) -> Bool {
        if isSet { return true }
        let woken: Bool
        if let seconds {
            woken = semaphore.wait(timeout: .now() + max(0, seconds)) == .success
        } else {
            semaphore.wait()
            woken = true
        }
        // Each waiter woken passes the wake-up on to the next.
        if woken { semaphore.signal() }
        return isSet
    }
}
