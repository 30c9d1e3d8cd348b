import DeliveryCore

/// Keeps stalled and slow peers away from the workers: a worker that accepts a connection whose
/// request has not arrived whole within a few milliseconds hands it to the gate, which holds it,
/// without a worker, until its request is complete, and then gives it back to the workers. So a
/// peer that connects and sends nothing (or half a request, or one byte at a time) never ties up a
/// worker, and `status`, `rollback` and the emergency console are answered while others stall.
///
/// One thread watches the held connections with `poll`, reading what arrives into memory (a
/// sender is never held up by the socket's buffer); a request is complete at its empty
/// `FCGI_STDIN` record. A worker then lets libfcgi parse the bytes from a memory file and answers
/// on the connection. A request not complete within the read timeout is closed unanswered, and so
/// is one larger than the helper accepts (`maxBytes`: the limits on parameters and body, plus the
/// records around them). At most `maxWaiting` connections are held; a process with more than
/// `maxPerPeer` held has its oldest one that waited longer than a second closed, and past
/// `maxWaiting` the oldest of all is closed, so that a newcomer always gets in.
final class Gate: Sendable {
    /// A connection whose request has arrived (or a refused peer), for a worker.
    struct Ready: Sendable {
        let fd: Int32
        let request: [UInt8]
        let refused: Bool
        /// The socket it came on (`Endpoint`).
        let endpoint: Endpoint
    }

    /// The sockets a helper answers on.
    enum Endpoint: Sendable {
        /// The web server's socket (the plugin, the emergency console).
        case web
        /// The farm's socket (`deliveryctl follow`, for a coordinator).
        case farm
    }

    private struct Waiting {
        let fd: Int32
        let pid: Int32?
        let since: Double
        let deadline: Double
        let endpoint: Endpoint
        var received: [UInt8] = []
    }

    /// Connections handed over by workers, not yet in the gate's poll set.
    private let incoming = Locked<[Waiting]>([])
    /// Written to when `incoming` grows: wakes the gate's poll.
    private let incomingPipe: (read: Int32, write: Int32)

    private let wake: Int32
    private let timeout: Double
    private let allowedUids: Set<UInt32>
    private let farmUids: Set<UInt32>
    private let maxBytes: Int
    private let maxWaiting: Int
    private let maxPerPeer: Int
    private let ready = Locked<[Ready]>([])
    private let finished = Locked(false)
    /// How long a connection may wait before it counts against its process's bound.
    static let grace = 1.0

    init(
        wake: Int32, timeout: Double, allowedUids: Set<UInt32>, farmUids: Set<UInt32> = [], maxBytes: Int,
        maxWaiting: Int = 256, maxPerPeer: Int = 8
    ) throws(SystemCallError) {
        self.farmUids = farmUids
        incomingPipe = try System.pipe()
        try System.setNonBlocking(incomingPipe.read, true)
        self.wake = wake
        self.timeout = timeout
        self.allowedUids = allowedUids
        self.maxBytes = maxBytes
        self.maxWaiting = maxWaiting
        self.maxPerPeer = maxPerPeer
    }

    /// A connection the gate held whose request has now arrived, if any (never waits).
    func takeReady() -> Ready? {
        ready.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    /// What a worker does with a connection it just accepted: nil when the whole request arrived
    /// within a few milliseconds (the worker answers it), else the gate holds it. A peer whose uid
    /// is not allowed is given back at once (its answer is a refusal that reads only the first
    /// record's header). Each socket has its own peers.
    func admit(_ fd: Int32, on endpoint: Endpoint = .web) -> Ready? {
        let peer = try? System.peerCredentials(fd)
        guard let peer, allows(peer.uid, on: endpoint) else {
            return Ready(fd: fd, request: [], refused: true, endpoint: endpoint)
        }
        var received: [UInt8] = []
        for attempt in 0..<3 {
            guard let bytes = System.receiveAvailable(fd, count: maxBytes + 1 - received.count) else {
                System.close(fd)
                return nil
            }
            received += bytes
            if Self.isComplete(received) {
                return Ready(fd: fd, request: received, refused: false, endpoint: endpoint)
            }
            if received.count > maxBytes || attempt == 2 { break }
            _ = try? System.pollReadable([fd], timeoutMilliseconds: 2)
        }
        if received.count > maxBytes {
            System.close(fd)
            return nil
        }
        let now = System.monotonicSeconds()
        incoming.withLock {
            $0.append(
                Waiting(
                    fd: fd, pid: peer.pid, since: now, deadline: now + timeout, endpoint: endpoint, received: received))
        }
        System.sendAll(incomingPipe.write, [1])
        return nil
    }

    /// Whether a uid may talk on a socket: the web socket's peers and the farm's are apart.
    func allows(_ uid: UInt32, on endpoint: Endpoint) -> Bool {
        switch endpoint {
        case .web: allowedUids.contains(uid)
        case .farm: farmUids.contains(uid)
        }
    }

    /// True once the gate stopped and every connection it let through was taken by a worker.
    var isDone: Bool { finished.withLock { $0 } && ready.withLock { $0.isEmpty } }

    /// Watches the connections it holds until `stop` says so; then lets the requests under way
    /// arrive (each within its deadline) and hands them on before it finishes.
    func run(until stop: () -> Bool, onError: (String) -> Void) {
        var waiting: [Waiting] = []
        defer {
            for entry in waiting { System.close(entry.fd) }
            finished.withLock { $0 = true }
        }
        while true {
            let stopping = stop()
            // Connections handed over by the workers.
            for entry in incoming.withLock({ list in
                defer { list = [] }; return list
            }) {
                // A busy client's connections arrive whole within moments: only those that have
                // waited a while make room.
                if waiting.filter({ $0.pid == entry.pid }).count >= maxPerPeer,
                    let oldest = waiting.firstIndex(where: {
                        $0.pid == entry.pid && entry.since - $0.since > Self.grace
                    })
                {
                    System.close(waiting.remove(at: oldest).fd)
                }
                if waiting.count >= maxWaiting { System.close(waiting.removeFirst().fd) }
                waiting.append(entry)
            }
            if stopping && waiting.isEmpty { break }
            // Once stopping, the wake pipe is left out (it stays readable).
            let fixed = stopping ? [incomingPipe.read] : [incomingPipe.read, wake]
            let events: [Int16]
            do {
                events = try System.pollReadable(fixed + waiting.map(\.fd), timeoutMilliseconds: 100)
            } catch {
                onError("poll failed: \(error)")
                System.sleep(seconds: 0.1)
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
                guard let bytes = System.receiveAvailable(entry.fd, count: maxBytes + 1 - entry.received.count)
                else {
                    System.close(entry.fd)
                    continue
                }
                entry.received += bytes
                if Self.isComplete(entry.received) {
                    hand(Ready(fd: entry.fd, request: entry.received, refused: false, endpoint: entry.endpoint))
                } else if entry.received.count > maxBytes {
                    System.close(entry.fd)
                } else {
                    still.append(entry)
                }
            }
            waiting = still
            if events[0] != 0 { _ = System.readSome(incomingPipe.read, count: 4096) }
            // Too slow: closed.
            let now = System.monotonicSeconds()
            waiting.removeAll { entry in
                guard entry.deadline <= now else { return false }
                System.close(entry.fd)
                return true
            }
        }
    }

    private func hand(_ connection: Ready) {
        ready.withLock { $0.append(connection) }
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
