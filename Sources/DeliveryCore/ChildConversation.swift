import CDeliverySystem

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A child process spoken to line by line: each request one line on its standard input, each
/// answer one line on its standard output (the farm's `ssh` to a node's `deliveryctl follow`,
/// kept open for a whole farm operation). Started as `ChildProcess.launch` starts every child: its
/// user, a new session, no terminal, its own environment. One exchange at a time; closing its
/// standard input ends it.
final class ChildConversation: Sendable {
    /// Why a conversation cannot go on: what the child left, as a command's result (its
    /// standard error, its exit, a timeout).
    struct Ended: Error {
        let result: CommandResult
    }

    private struct Channel {
        var pid: pid_t
        var input: Int32
        var output: Int32
        var error: Int32
        var pendingOutput: [UInt8] = []
        var errorText: [UInt8] = []
        var ended: CommandResult?
    }

    private let command: Command
    private let user: String
    private let started: Double
    private let channel: Locked<Channel>

    /// The most bytes of one answer, and of the standard error kept.
    private let limit: Int

    /// Starts the child.
    /// - Throws: `DeliveryError` when it cannot be started.
    init(_ command: Command) throws(DeliveryError) {
        var input: [Int32] = [-1, -1]
        guard cds_socketpair(Int32(SOCK_STREAM.rawValue), &input) == 0 else {
            throw DeliveryError(.io, "cannot create a socket pair: \(String(cString: strerror(cds_errno())))")
        }
        defer { Glibc.close(input[1]) }
        let launched: (pid: pid_t, output: Int32, error: Int32, user: UserIdentity)
        do {
            launched = try ChildProcess.launch(command, standardInput: input[1])
        } catch {
            Glibc.close(input[0])
            throw error
        }
        self.command = command
        self.user = launched.user.name
        self.limit = command.outputLimit
        self.started = System.monotonicSeconds()
        channel = Locked(Channel(pid: launched.pid, input: input[0], output: launched.output, error: launched.error))
    }

    deinit { close() }

    /// Sends `line` (a newline is added) and waits, at most `seconds`, for the child's next line.
    /// - Throws: `Ended` when the child's output ends, it cannot be written to, or no line came in
    ///   time (the child is then stopped: its state in between is unknown).
    func exchange(_ line: [UInt8], seconds: Double) throws(Ended) -> [UInt8] {
        try channel.withLock { (channel: inout Channel) throws(Ended) -> [UInt8] in
            if let ended = channel.ended { throw Ended(result: ended) }
            if !Self.send(line + [10], to: channel.input) {
                throw Ended(result: finish(&channel, timedOut: false))
            }
            let deadline = System.monotonicSeconds() + seconds
            while true {
                if let end = channel.pendingOutput.firstIndex(of: 10) {
                    let answer = Array(channel.pendingOutput[..<end])
                    channel.pendingOutput.removeFirst(end + 1)
                    return answer
                }
                let left = deadline - System.monotonicSeconds()
                if left <= 0 || channel.pendingOutput.count > limit {
                    throw Ended(result: finish(&channel, timedOut: left <= 0))
                }
                var watched = [
                    pollfd(fd: channel.output, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: channel.error, events: Int16(POLLIN), revents: 0),
                ]
                let ready = poll(&watched, 2, Int32(min(left, 1) * 1000) + 1)
                if ready < 0 && cds_errno() != EINTR { throw Ended(result: finish(&channel, timedOut: false)) }
                if watched[1].revents != 0, channel.error >= 0,
                    !Self.readInto(&channel.errorText, from: channel.error, keep: limit)
                {
                    Glibc.close(channel.error)
                    channel.error = -1
                }
                if watched[0].revents != 0,
                    !Self.readInto(&channel.pendingOutput, from: channel.output, keep: Int.max)
                {
                    throw Ended(result: finish(&channel, timedOut: false))
                }
            }
        }
    }

    /// Ends the conversation: its standard input closed, the child given 3 seconds to leave,
    /// then its process group killed; the child reaped.
    func close() {
        channel.withLock { channel in _ = finish(&channel, timedOut: false, patience: 3) }
    }

    /// Stops the child (at once, or after `patience` seconds from its standard input's end) and
    /// reaps it; what it left. Idempotent.
    private func finish(_ channel: inout Channel, timedOut: Bool, patience: Double = 0.5) -> CommandResult {
        if let ended = channel.ended { return ended }
        Glibc.close(channel.input)
        var status: Int32 = 0
        var reaped = false
        let until = System.monotonicSeconds() + (timedOut ? 0 : patience)
        while true {
            let waited = waitpid(channel.pid, &status, WNOHANG)
            if waited == channel.pid {
                reaped = true
                break
            }
            if waited < 0 && cds_errno() != EINTR { break }
            if System.monotonicSeconds() >= until { break }
            if channel.error < 0 {
                System.sleep(seconds: 0.01)
            } else if !Self.readInto(&channel.errorText, from: channel.error, keep: limit, wait: 10) {
                Glibc.close(channel.error)
                channel.error = -1
            }
        }
        if !reaped {
            System.signal(processGroup: channel.pid, SIGKILL)
            while waitpid(channel.pid, &status, 0) < 0 && cds_errno() == EINTR {}
        }
        if channel.error >= 0 {
            _ = Self.readInto(&channel.errorText, from: channel.error, keep: limit, wait: 0)
            Glibc.close(channel.error)
        }
        Glibc.close(channel.output)
        let exited = reaped && (status & 0x7f) == 0
        let result = CommandResult(
            command: command.displayLine, user: user, exitCode: exited ? (status >> 8) & 0xff : nil,
            signal: exited ? nil : status & 0x7f, timedOut: timedOut,
            durationSeconds: System.monotonicSeconds() - started,
            standardOutput: String(decoding: channel.pendingOutput, as: UTF8.self),
            standardError: String(decoding: channel.errorText, as: UTF8.self))
        channel.ended = result
        return result
    }

    /// Writes all of `bytes` on a socket, without SIGPIPE; false when the other end is gone.
    private static func send(_ bytes: [UInt8], to fd: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && cds_errno() == EINTR { continue }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// Reads what is there (waiting up to `wait` ms) onto `buffer`, keeping its last `keep`
    /// bytes; false at the end of the stream or on an error.
    private static func readInto(_ buffer: inout [UInt8], from fd: Int32, keep: Int, wait: Int32 = 0) -> Bool {
        if wait > 0 {
            var watched = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
            guard poll(&watched, 1, wait) > 0 else { return true }
        }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 && (cds_errno() == EINTR || cds_errno() == EAGAIN) { return true }
        guard count > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<count])
        if buffer.count > keep { buffer.removeFirst(buffer.count - keep) }
        return true
    }
}
