import Dispatch

/// Holds every new connection until its whole FastCGI request has arrived, and only then hands it
/// to a worker: a peer that connects and sends nothing (or half a request) never ties up a worker,
/// so `status`, `rollback` and the emergency console answer while others stall.
///
/// One thread accepts and watches the waiting connections with `poll`, looking at what arrived
/// without reading it (`MSG_PEEK`): a request is complete at its empty `FCGI_STDIN` record. A
/// connection whose request is not complete within the read timeout is closed. At most
/// `maxWaiting` connections wait, at most `maxPerPeer` of them from one process: past either
/// bound the oldest waiting connection (of that process) is dropped, so a newcomer always gets in.
final class Gate: Sendable {
    /// A connection whose request has arrived, for a worker.
    struct Ready: Sendable {
        let fd: Int32
        let peer: (uid: UInt32, pid: Int32)?
    }

    private struct Waiting {
        let fd: Int32
        let peer: (uid: UInt32, pid: Int32)?
        let deadline: Double
        /// Half a request stays readable: it is looked at again after a short pause, not in a loop.
        var quietUntil: Double = 0
    }

    private let listener: Int32
    private let wake: Int32
    private let timeout: Double
    private let maxWaiting: Int
    private let maxPerPeer: Int
    private let ready = Locked<[Ready]>([])
    private let signal = DispatchSemaphore(value: 0)

    /// The largest request looked at before it is complete; a larger one goes to a worker as it is
    /// (it is arriving, not stalled, and the worker's reading is bounded by the read timeout).
    static let peekLimit = 256 * 1024

    init(listener: Int32, wake: Int32, timeout: Double, maxWaiting: Int = 64, maxPerPeer: Int = 8) {
        self.listener = listener
        self.wake = wake
        self.timeout = timeout
        self.maxWaiting = maxWaiting
        self.maxPerPeer = maxPerPeer
    }

    /// The next connection whose request has arrived; nil after `timeout` seconds.
    func next(timeout seconds: Double) -> Ready? {
        guard signal.wait(timeout: .now() + seconds) == .success else { return nil }
        return ready.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    /// Accepts and watches connections until `stop` says so or the wake pipe is written.
    func run(until stop: () -> Bool, onError: (String) -> Void) {
        var waiting: [Waiting] = []
        defer { for entry in waiting { ServerSystem.close(entry.fd) } }
        while !stop() {
            let events: [Int16]
            let started = ServerSystem.monotonicSeconds()
            let watched = waiting.indices.filter { waiting[$0].quietUntil <= started }
            do {
                events = try ServerSystem.pollReadable(
                    [listener, wake] + watched.map { waiting[$0].fd },
                    timeoutMilliseconds: watched.count < waiting.count ? 10 : 100)
            } catch {
                onError("poll failed: \(error)")
                ServerSystem.sleep(seconds: 0.1)
                continue
            }
            if events[1] != 0 || stop() { break }
            // Requests that arrived (or connections that closed).
            var still: [Waiting] = []
            var revents = [Int16](repeating: 0, count: waiting.count)
            for (position, index) in watched.enumerated() { revents[index] = events[position + 2] }
            for (index, entry) in waiting.enumerated() {
                guard revents[index] != 0 else {
                    still.append(entry)
                    continue
                }
                switch Self.requestState(entry.fd) {
                case .complete: hand(Ready(fd: entry.fd, peer: entry.peer))
                case .incomplete:
                    var quiet = entry
                    quiet.quietUntil = ServerSystem.monotonicSeconds() + 0.01
                    still.append(quiet)
                case .closed: ServerSystem.close(entry.fd)
                }
            }
            waiting = still
            // New connections.
            if events[0] != 0 {
                while let fd = try? ServerSystem.accept(listener) {
                    let peer = try? ServerSystem.peerCredentials(fd)
                    if let pid = peer?.pid, waiting.filter({ $0.peer?.pid == pid }).count >= maxPerPeer,
                        let oldest = waiting.firstIndex(where: { $0.peer?.pid == pid })
                    {
                        ServerSystem.close(waiting.remove(at: oldest).fd)
                    }
                    if waiting.count >= maxWaiting { ServerSystem.close(waiting.removeFirst().fd) }
                    waiting.append(Waiting(fd: fd, peer: peer, deadline: ServerSystem.monotonicSeconds() + timeout))
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

    enum RequestState { case complete, incomplete, closed }

    /// Whether a whole FastCGI request has arrived on a connection, looked at without reading it:
    /// its records are walked up to the empty `FCGI_STDIN` record that ends a request. Bytes that
    /// are no FastCGI go to a worker at once (it answers them with an error).
    static func requestState(_ fd: Int32) -> RequestState {
        guard let bytes = ServerSystem.peek(fd, count: peekLimit) else { return .closed }
        var offset = 0
        while offset + 8 <= bytes.count {
            guard bytes[offset] == 1 else { return .complete }
            let type = bytes[offset + 1]
            let length = Int(bytes[offset + 4]) << 8 | Int(bytes[offset + 5])
            let padding = Int(bytes[offset + 6])
            if type == 5 && length == 0 { return .complete }
            offset += 8 + length + padding
        }
        return bytes.count >= peekLimit ? .complete : .incomplete
    }
}
