import CDeliverySystem

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A user the engine runs a child process as.
public struct UserIdentity: Sendable, Equatable, Codable {
    /// The login name.
    public var name: String
    /// The numeric user id.
    public var uid: UInt32
    /// The primary group id.
    public var gid: UInt32
    /// The home directory (VCS credentials live there, in the user's own configuration).
    public var home: String

    /// Looks a user up by name or number.
    /// - Throws: `DeliveryError` `.configuration` when there is no such user.
    public static func lookup(_ nameOrNumber: String) throws(DeliveryError) -> UserIdentity {
        guard let found = System.user(named: nameOrNumber) else {
            throw DeliveryError(.configuration, "there is no user '\(nameOrNumber)' on this machine")
        }
        return UserIdentity(name: found.name, uid: found.uid, gid: found.gid, home: found.home)
    }

    /// The user this process runs as.
    public static var current: UserIdentity {
        let uid = System.effectiveUserIdentifier
        if let found = System.user(named: String(uid)) {
            return UserIdentity(name: found.name, uid: found.uid, gid: found.gid, home: found.home)
        }
        return UserIdentity(name: String(uid), uid: uid, gid: getegid(), home: "/")
    }
}

/// One command to run: an absolute program, an argument array, a clean environment.
///
/// There is no shell anywhere: the program is executed directly with `posix_spawn`, its signal
/// mask and dispositions reset, in a process group of its own (so a timeout kills all of it),
/// with standard input on `/dev/null` and no descriptor of ours leaking into it.
public struct Command: Sendable {
    /// Absolute path of the program.
    public var executable: String
    /// Arguments after the program name.
    public var arguments: [String]
    /// The whole environment of the child; nothing is inherited.
    public var environment: [String: String]
    /// The child's working directory.
    public var workingDirectory: String?
    /// The user to run as; nil runs as the helper's own user.
    public var user: UserIdentity?
    /// Seconds before the child's process group is terminated.
    public var timeoutSeconds: Double
    /// How many bytes of each output stream are kept (the last ones).
    public var outputLimit: Int
    /// A file the child reads as its standard input (opened by the helper, before the child
    /// switches user: the child needs no right on it); nil gives it `/dev/null`.
    public var standardInputFile: String?
    /// Groups the child gets besides its user's own (only when it runs as another user): the code
    /// owner gets the web server's group to read `config.php` when it builds a component cache.
    public var additionalGroups: [UInt32] = []
    /// A file the child's standard output goes to instead of the helper (opened, created with
    /// mode 0600 and truncated by the helper before the child switches user).
    public var standardOutputFile: String?
    /// Runs with a lower CPU (`nice` 10) and I/O (`ionice` best effort, 7) priority than the
    /// site's own processes: a rehearsal's work must not slow the site down.
    public var lowPriority = false

    /// Makes a command with a minimal environment for `user`.
    public init(
        _ executable: String, _ arguments: [String], user: UserIdentity? = nil,
        workingDirectory: String? = nil, timeoutSeconds: Double = 600, outputLimit: Int = 256 * 1024,
        extraEnvironment: [String: String] = [:]
    ) {
        self.executable = executable
        self.arguments = arguments
        self.user = user
        self.workingDirectory = workingDirectory
        self.timeoutSeconds = timeoutSeconds
        self.outputLimit = outputLimit
        let who = user ?? UserIdentity.current
        var environment = [
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": who.home,
            "USER": who.name,
            "LOGNAME": who.name,
        ]
        environment.merge(extraEnvironment) { _, new in new }
        self.environment = environment
    }

    /// The command as a person would read it, for logs (arguments quoted when needed).
    public var displayLine: String {
        ([executable] + arguments).map { argument in
            argument.isEmpty || argument.contains(where: { " \"'$\\".contains($0) })
                ? "'" + argument.replacing("'", with: "'\\''") + "'" : argument
        }.joined(separator: " ")
    }
}

/// What a finished command did.
public struct CommandResult: Sendable, Codable, Equatable {
    /// The command line, for the audit log.
    public var command: String
    /// The user it ran as.
    public var user: String
    /// Exit status, or nil when a signal ended it.
    public var exitCode: Int32?
    /// The signal that ended it, if any.
    public var signal: Int32?
    /// True when the engine ended it for running past its timeout.
    public var timedOut: Bool
    /// Wall-clock seconds.
    public var durationSeconds: Double
    /// The end of its standard output (bounded).
    public var standardOutput: String
    /// The end of its standard error (bounded).
    public var standardError: String

    /// True for exit status 0.
    public var succeeded: Bool { exitCode == 0 && !timedOut }

    /// Standard output, then standard error, trimmed: what to show when it failed.
    public var combinedOutput: String {
        [standardOutput, standardError].map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
            .joined(separator: "\n")
    }
}

/// Runs child processes.
public enum ChildProcess {
    /// Where `setpriv` (util-linux) lives; the engine uses it to run a child as another user.
    static let setprivPath = "/usr/bin/setpriv"
    static let nicePath = "/usr/bin/nice"
    static let ionicePath = "/usr/bin/ionice"

    /// Starts a command: as its user (by `setpriv` when that is not this process's), in a new
    /// session without a terminal, with only its environment, every other descriptor closed; its
    /// standard input `standardInput` (duplicated) or `command.standardInputFile` or /dev/null.
    /// - Returns: its pid, the read ends of its standard output and error, the user it runs as.
    static func launch(_ command: Command, standardInput: Int32?) throws(DeliveryError) -> (
        pid: pid_t, output: Int32, error: Int32, user: UserIdentity
    ) {
        var argv = [command.executable] + command.arguments
        let runAs = command.user ?? UserIdentity.current
        if runAs.uid != System.effectiveUserIdentifier {
            guard System.effectiveUserIdentifier == 0 else {
                throw DeliveryError(
                    .privileges,
                    "cannot run \(lastComponent(of: command.executable)) as \(runAs.name): the helper is not root")
            }
            let groups =
                command.additionalGroups.isEmpty
                ? "--init-groups"
                : "--groups="
                    + (System.groupList(of: runAs.name, primary: runAs.gid) + command.additionalGroups).map(String.init)
                    .joined(separator: ",")
            argv = [setprivPath, "--reuid=\(runAs.uid)", "--regid=\(runAs.gid)", groups, "--"] + argv
        }
        guard argv[0].hasPrefix("/") else {
            throw DeliveryError(.configuration, "program path must be absolute: \(argv[0])")
        }
        guard access(argv[0], X_OK) == 0 else {
            throw DeliveryError(.configuration, "program not found or not executable: \(argv[0])")
        }
        if command.lowPriority, access(Self.nicePath, X_OK) == 0 {
            argv = [Self.nicePath, "-n", "10"] + argv
            if access(Self.ionicePath, X_OK) == 0 { argv = [Self.ionicePath, "-c", "2", "-n", "7"] + argv }
        }

        var outputPipe: [Int32] = [-1, -1]
        var errorPipe: [Int32] = [-1, -1]
        guard cds_pipe_cloexec(&outputPipe) == 0, cds_pipe_cloexec(&errorPipe) == 0 else {
            throw DeliveryError(.io, "cannot create a pipe: \(String(cString: strerror(cds_errno())))")
        }
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        if let standardInput {
            posix_spawn_file_actions_adddup2(&fileActions, standardInput, 0)
        } else {
            posix_spawn_file_actions_addopen(&fileActions, 0, command.standardInputFile ?? "/dev/null", O_RDONLY, 0)
        }
        if let file = command.standardOutputFile {
            posix_spawn_file_actions_addopen(&fileActions, 1, file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&fileActions, outputPipe[1], 1)
        }
        posix_spawn_file_actions_adddup2(&fileActions, errorPipe[1], 2)
        cds_spawn_addclosefrom(&fileActions, 3)
        if let directory = command.workingDirectory {
            cds_spawn_addchdir(&fileActions, directory)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptySet = sigset_t()
        sigemptyset(&emptySet)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // A new session: no controlling terminal (a child can never push keystrokes into the
        // admin's shell with TIOCSTI or open /dev/tty), and a process group of its own.
        cds_spawnattr_setsid(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let environment = command.environment.map { "\($0.key)=\($0.value)" }.sorted()
        var pid: pid_t = 0
        let spawnResult = withCStrings(argv) { cArguments in
            withCStrings(environment) { cEnvironment in
                posix_spawn(&pid, argv[0], &fileActions, &attributes, cArguments, cEnvironment)
            }
        }
        Glibc.close(outputPipe[1])
        Glibc.close(errorPipe[1])
        if spawnResult != 0 {
            Glibc.close(outputPipe[0])
            Glibc.close(errorPipe[0])
            throw DeliveryError(
                .io, "cannot start \(argv[0]): \(String(cString: strerror(spawnResult)))")
        }
        return (pid, outputPipe[0], errorPipe[0], runAs)
    }

    /// Runs a command to its end, streaming each output line to `onLine`.
    ///
    /// - Parameters:
    ///   - command: what to run.
    ///   - onLine: called with every complete line of standard output and standard error.
    /// - Returns: the result, whatever the exit status.
    /// - Throws: `DeliveryError` when the program cannot be started at all.
    public static func run(
        _ command: Command, onStart: (Int32) -> Void = { _ in }, onLine: (String) -> Void = { _ in }
    ) throws(DeliveryError) -> CommandResult {
        let started = System.monotonicSeconds()
        let (pid, outputFD, errorFD, runAs) = try launch(command, standardInput: nil)
        onStart(pid)
        var streams = [
            OutputStream(fd: outputFD, limit: command.outputLimit),
            OutputStream(fd: errorFD, limit: command.outputLimit),
        ]
        // The child's end is watched on a pidfd, so that the time limit holds after it closed its
        // pipes (or handed them to a grandchild) just as before.
        let processFD = cds_pidfd_open(pid)
        defer { if processFD >= 0 { Glibc.close(processFD) } }
        var timedOut = false
        var terminateSentAt: Double?
        var killSentAt: Double?
        var status: Int32 = 0
        var reaped = false
        var waitFailure: Int32?
        while true {
            let now = System.monotonicSeconds()
            if !timedOut && now - started > command.timeoutSeconds {
                timedOut = true
                terminateSentAt = now
                System.signal(processGroup: pid, SIGTERM)
            }
            if let sent = terminateSentAt, now - sent > 5 {
                System.signal(processGroup: pid, SIGKILL)
                terminateSentAt = nil
                killSentAt = now
            }
            // Killed and still holding its pipes open (a process outside its group has them):
            // stop reading, the result is a timeout.
            if let killed = killSentAt, now - killed > 2 {
                for index in streams.indices where !streams[index].closed { streams[index].closed = true }
            }
            let open = streams.filter { !$0.closed }
            if open.isEmpty {
                let waited = waitpid(pid, &status, WNOHANG)
                if waited == pid {
                    reaped = true
                    break
                }
                if waited < 0 {
                    if cds_errno() == EINTR { continue }
                    waitFailure = cds_errno()
                    break
                }
            }
            var pollSet = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if open.isEmpty && processFD >= 0 {
                pollSet.append(pollfd(fd: processFD, events: Int16(POLLIN), revents: 0))
            }
            let ready = poll(&pollSet, nfds_t(pollSet.count), open.isEmpty && processFD < 0 ? 20 : 250)
            if ready < 0 {
                if cds_errno() == EINTR { continue }
                waitFailure = cds_errno()
                break
            }
            for entry in pollSet where entry.revents != 0 {
                guard let index = streams.firstIndex(where: { $0.fd == entry.fd }) else { continue }
                streams[index].readAvailable(onLine: onLine)
            }
        }
        for stream in streams { Glibc.close(stream.fd) }
        if !reaped {
            // The child could not be waited for: stop it, and never report it as succeeded.
            System.signal(processGroup: pid, SIGKILL)
            while waitpid(pid, &status, 0) < 0 && cds_errno() == EINTR {}
        }
        // Make sure nothing of the group lingers after a timeout.
        if timedOut { System.signal(processGroup: pid, SIGKILL) }
        let duration = System.monotonicSeconds() - started
        let exited = reaped && (status & 0x7f) == 0
        var standardError = streams[1].text
        if let waitFailure {
            standardError += "\nmoodle-delivery: cannot wait for the command: \(String(cString: strerror(waitFailure)))"
        }
        return CommandResult(
            command: command.displayLine,
            user: runAs.name,
            exitCode: exited ? (status >> 8) & 0xff : nil,
            signal: exited || !reaped ? nil : status & 0x7f,
            timedOut: timedOut,
            durationSeconds: duration,
            standardOutput: streams[0].text,
            standardError: standardError
        )
    }

    /// Finds a program by name in the usual system folders.
    public static func locate(_ name: String) -> String? {
        if name.hasPrefix("/") { return access(name, X_OK) == 0 ? name : nil }
        for directory in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
            let path = "\(directory)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }
}

/// One output pipe of a child: kept bounded, split into lines as it arrives.
private struct OutputStream {
    let fd: Int32
    let limit: Int
    var closed = false
    var kept: [UInt8] = []
    var pendingLine: [UInt8] = []

    init(fd: Int32, limit: Int) {
        self.fd = fd
        self.limit = limit
    }

    mutating func readAvailable(onLine: (String) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count < 0 && cds_errno() == EINTR { return }
        if count <= 0 {
            closed = true
            if !pendingLine.isEmpty {
                onLine(String(decoding: pendingLine, as: UTF8.self))
                pendingLine = []
            }
            return
        }
        let chunk = buffer[0..<count]
        kept.append(contentsOf: chunk)
        if kept.count > limit { kept.removeFirst(kept.count - limit) }
        for byte in chunk {
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                if !pendingLine.isEmpty { onLine(String(decoding: pendingLine, as: UTF8.self)) }
                pendingLine = []
            } else if pendingLine.count < 4096 {
                pendingLine.append(byte)
            }
        }
    }

    var text: String { String(decoding: kept, as: UTF8.self) }
}

private func withCStrings<Result>(
    _ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result
) -> Result {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
