import Dispatch

/// Holds every new connection until its whole FastCGI request has arrived, and only then hands it
/// to a worker: a peer that connects and sends nothing (or half a request, or one byte at a time)
/// never ties up a worker, so `status`, `rollback` and the emergency console are answered while
/// others stall.
///
/// One thread accepts and watches the waiting connections with `poll`, reading what arrives into
/// memory (a sender is never held up by the socket's buffer); a request is complete at its empty
/// `FCGI_STDIN` record. A worker then lets libfcgi parse the bytes from a memory file and answers
/// on the connection. A request not complete within the read timeout is closed unanswered, and so
/// is one larger than the helper accepts (`maxBytes`: the limits on parameters and body, plus the
/// records around them). At most `maxWaiting` connections wait; a process with more than
/// `maxPerPeer` waiting has its oldest one that waited longer than a second closed, and past
/// `maxWaiting` the oldest of all is closed, so that a newcomer always gets in. A peer whose uid is not allowed is handed on at once (its answer is a
/// refusal that reads nothing but the first record's header).
final class Gate: Sendable {
    /// A connection whose request has arrived (or a refused peer), for a worker.
    struct Ready: Sendable {
        let fd: Int32
        let request: [UInt8]
        let refused: Bool
    }

    private struct Waiting {
        let fd: Int32
        let pid: Int32?
        let since: Double
        let deadline: Double
        var received: [UInt8] = []
    }

    private let listener: Int32
    private let wake: Int32
    private let timeout: Double
    private let allowedUids: Set<UInt32>
    private let maxBytes: Int
    private let maxWaiting: Int
    private let maxPerPeer: Int
    private let workers: Int
    private let ready = Locked<[Ready]>([])
    private let signal = DispatchSemaphore(value: 0)
    private let finished = Locked(false)
    /// How long a connection may wait before it counts against its process's bound.
    static let grace = 1.0

    init(
        listener: Int32, wake: Int32, timeout: Double, allowedUids: Set<UInt32>, maxBytes: Int, workers: Int,
        maxWaiting: Int = 256, maxPerPeer: Int = 8
    ) {
        self.listener = listener
        self.wake = wake
        self.timeout = timeout
        self.allowedUids = allowedUids
        self.maxBytes = maxBytes
        self.workers = workers
        self.maxWaiting = maxWaiting
        self.maxPerPeer = maxPerPeer
    }

    /// The next connection whose request has arrived; nil after `timeout` seconds, or at once when
    /// the gate has finished.
    func next(timeout seconds: Double) -> Ready? {
        if isDone { return nil }
        guard signal.wait(timeout: .now() + seconds) == .success else { return nil }
        return ready.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    /// True once the gate stopped and every connection it let through was taken by a worker.
    var isDone: Bool { finished.withLock { $0 } && ready.withLock { $0.isEmpty } }

    /// Accepts and watches connections until `stop` says so; then lets the requests under way
    /// arrive (each within its deadline) and hands them on before it finishes.
    func run(until stop: () -> Bool, onError: (String) -> Void) {
        var waiting: [Waiting] = []
        defer {
            for entry in waiting { ServerSystem.close(entry.fd) }
            finished.withLock { $0 = true }
            for _ in 0..<max(workers, 1) { signal.signal() }
        }
        while true {
            let stopping = stop()
            if stopping && waiting.isEmpty { break }
            // Once stopping, the listener and the wake pipe are left out (the pipe stays readable).
            let fixed = stopping ? [Int32]() : [listener, wake]
            let events: [Int16]
            do {
                events = try ServerSystem.pollReadable(fixed + waiting.map(\.fd), timeoutMilliseconds: 100)
            } catch {
                onError("poll failed: \(error)")
                ServerSystem.sleep(seconds: 0.1)
                continue
            }
            // What arrived (or connections that closed).
            var still: [Waiting] = []
            for (index, entry) in waiting.enumerated() {
                guard events[fixed.count + index] != 0 else {
                    still.append(entry)
                    continue
                }
                var entry = entry
                guard let bytes = ServerSystem.receiveAvailable(entry.fd, count: maxBytes + 1 - entry.received.count)
                else {
                    ServerSystem.close(entry.fd)
                    continue
                }
                entry.received += bytes
                if Self.isComplete(entry.received) {
                    hand(Ready(fd: entry.fd, request: entry.received, refused: false))
                } else if entry.received.count > maxBytes {
                    ServerSystem.close(entry.fd)
                } else {
                    still.append(entry)
                }
            }
            waiting = still
            // New connections.
            if !stopping && events[0] != 0 {
                while let fd = try? ServerSystem.accept(listener) {
                    let peer = try? ServerSystem.peerCredentials(fd)
                    guard let peer, allowedUids.contains(peer.uid) else {
                        hand(Ready(fd: fd, request: [], refused: true))
                        continue
                    }
                    let now = ServerSystem.monotonicSeconds()
                    // A busy client's connections arrive whole within moments: only those that have
                    // waited a while make room.
                    if waiting.filter({ $0.pid == peer.pid }).count >= maxPerPeer,
                        let oldest = waiting.firstIndex(where: { $0.pid == peer.pid && now - $0.since > Self.grace })
                    {
                        ServerSystem.close(waiting.remove(at: oldest).fd)
                    }
                    if waiting.count >= maxWaiting { ServerSystem.close(waiting.removeFirst().fd) }
                    waiting.append(Waiting(fd: fd, pid: peer.pid, since: now, deadline: now + timeout))
                }
            }
            // Too slow: closed.
            let now = ServerSystem.monotonicSeconds()
            waiting.removeAll { entry in
                guard entry.deadline <= now else { return false }
                ServerSystem.close(entry.fd)
                return true
            }
        }
    }

    private func hand(_ connection: Ready) {
        ready.withLock { $0.append(connection) }
        signal.signal()
    }

    /// Whether bytes hold a whole FastCGI request: its records are walked up to the empty
    /// `FCGI_STDIN` record that ends one. Bytes that are no FastCGI count as complete (a worker
    /// answers them with an error, or drops them).
    static func isComplete(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset + 8 <= bytes.count {
            guard bytes[offset] == 1 else { return true }
            let type = bytes[offset + 1]
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let padding = Int(bytes[offset + 6])
            if type == 5 && length == 0 { return true }
            offset += 8 + length + padding
        }
        return false
    }
}
