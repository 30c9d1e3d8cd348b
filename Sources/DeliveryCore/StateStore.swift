import Synchronization

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// A JSON file of root's that several processes read and change: each change is made while
/// holding a mutex file beside it and written atomically (a crash leaves the old or the new file).
struct JSONFileStore<Value: Codable & Sendable>: Sendable {
    let file: String
    let mutexFile: String
    let mode: mode_t
    /// What the file is, for messages ("the delivery state").
    let what: String
    let empty: @Sendable () -> Value

    /// Reads the value; a missing file is the empty value.
    func read() throws(DeliveryError) -> Value {
        let bytes: [UInt8]
        do {
            guard try System.lstatusIfExists(file) != nil else { return empty() }
            bytes = try System.readFile(file, limit: 8 << 20)
        } catch {
            throw DeliveryError.io("cannot read \(what)", error)
        }
        do {
            return try JSONCoding.decode(Value.self, from: bytes)
        } catch {
            throw DeliveryError(.io, "\(what) \(file) is unreadable: \(error)")
        }
    }

    /// Reads, changes and writes the value while holding the mutex. The value is written even
    /// when `change` returns a refusal to report (the caller throws it afterwards).
    @discardableResult
    func update<T>(_ change: (inout Value) throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        let fd: Int32
        do {
            fd = try System.open(mutexFile, O_RDWR | O_CREAT, mode)
            _ = try System.lockFile(fd, wait: true)
        } catch {
            throw DeliveryError.io("cannot take the mutex of \(what)", error)
        }
        defer { System.close(fd) }
        var value = try read()
        let result = try change(&value)
        do {
            try System.writeFileAtomically(file, try JSONCoding.encode(value), mode: mode)
        } catch let error as SystemCallError {
            throw DeliveryError.io("cannot write \(what)", error)
        } catch {
            throw DeliveryError(.io, "cannot write \(what): \(error)")
        }
        return result
    }
}

/// Reads and changes the state file under a mutex, so that the CLI, the responder and an
/// emergency rollback never lose each other's changes.
struct StateStore: Sendable {
    let directory: String
    var stateFile: String { "\(directory)/state.json" }
    var mutexFile: String { "\(directory)/state.lock" }
    private var store: JSONFileStore<DeliveryState> {
        JSONFileStore(file: stateFile, mutexFile: mutexFile, mode: 0o640, what: "the delivery state") {
            DeliveryState()
        }
    }

    /// Reads the state; a missing file is the empty state.
    func read() throws(DeliveryError) -> DeliveryState {
        try store.read()
    }

    /// Reads, changes and writes the state while holding the state mutex.
    @discardableResult
    func update<T>(_ change: (inout DeliveryState) throws(DeliveryError) -> T) throws(DeliveryError) -> T {
        try store.update(change)
    }
}
