import DeliveryCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// `deliveryd`: a FastCGI responder on libfcgi that runs the delivery engine's operations for
/// authenticated peers.
///
/// Threads: `workers` request threads (each accepts on the shared listening socket by itself and
/// answers a request that arrived whole within moments, parsing it with `FCGX_Accept_r`), a gate
/// that holds the other connections until their request has arrived (`Gate`: a stalled peer never
/// ties up a worker), a watchdog that cuts a connection whose answer cannot be written in time, a
/// `sigwait` thread for SIGTERM and SIGINT, and one thread per running job.
public final class DeliveryServer: Sendable {
    /// The version of moodle-delivery (`ProductVersion`), for `deliveryd --version`.
    public static let version = ProductVersion.number

    /// The configuration it was built from.
    public let configuration: ServerConfiguration
    let api: API
    let authenticator: Authenticator
    let listener: Listener
    /// The farm's socket, on a node that follows a coordinator.
    let farm: FarmEndpoint?
    let logger: Logger
    private let watchdog = Watchdog()
    private let gate: Gate
    private let stopping = Locked(false)
    private let wake: (read: Int32, write: Int32)

    /// Builds a server from its configuration: reads the key and the site configuration, makes
    /// the engine, and opens the socket (or takes systemd's). `main` and the tests both call it.
    /// - Throws: `ServerStartError` with a sentence for the administrator.
    public static func make(configuration: ServerConfiguration, logger: Logger) throws(ServerStartError)
        -> DeliveryServer
    {
        try configuration.validate()
        let key = try Authenticator.readKey(configuration.keyFile)
        let engine = try makeEngine(configuration, logger: logger)
        let (listener, farm) = try openListeners(configuration)
        return try assemble(configuration, key: key, engine: engine, listener: listener, farm: farm, logger: logger)
    }

    /// The web socket (`openListener`) and, on a farm node, the farm socket with its key; nothing
    /// left open when either fails.
    static func openListeners(_ configuration: ServerConfiguration) throws(ServerStartError)
        -> (web: Listener, farm: (listener: Listener, key: [UInt8])?)
    {
        let farmKey = try configuration.farm.map { (farm) throws(ServerStartError) in
            try Authenticator.readKey(farm.keyFile)
        }
        let listener = try openListener(configuration)
        do {
            guard let farmListener = try FarmEndpoint.openListener(configuration) else { return (listener, nil) }
            return (listener, (farmListener, farmKey ?? []))
        } catch {
            listener.close()
            throw error
        }
    }

    /// The engine of the configured site.
    static func makeEngine(_ configuration: ServerConfiguration, logger: Logger) throws(ServerStartError)
        -> DeliveryEngine
    {
        do throws(DeliveryError) {
            return try DeliveryEngine(
                configuration: try SiteConfiguration.load(from: configuration.siteConfiguration),
                siteName: SiteDirectory.name(ofConfiguration: configuration.siteConfiguration), logger: logger)
        } catch {
            throw ServerStartError("the site cannot be served: \(error.message)")
        }
    }

    /// libfcgi initialised, and the listening socket: systemd's, or one made at `socketPath`.
    static func openListener(_ configuration: ServerConfiguration) throws(ServerStartError) -> Listener {
        do {
            try FastCGI.initialize()
        } catch {
            throw ServerStartError("libfcgi failed to initialise: \(error)")
        }
        if let passed = try Listener.fromSystemd() { return passed }
        return try Listener.open(path: configuration.socketPath, group: configuration.socketGroup)
    }

    /// The server around an engine (in this process, or the monitor's through `MonitorClient`)
    /// and a listening socket.
    static func assemble(
        _ configuration: ServerConfiguration, key: [UInt8], engine: any EngineAccess, listener: Listener,
        farm: (listener: Listener, key: [UInt8])? = nil, logger: Logger
    ) throws(ServerStartError) -> DeliveryServer {
        let wake: (read: Int32, write: Int32)
        do {
            wake = try System.pipe()
        } catch {
            listener.close()
            farm?.listener.close()
            throw ServerStartError("cannot make a pipe: \(error)")
        }
        let limits = configuration.limits
        let gate: Gate
        do {
            gate = try Gate(
                wake: wake.read, timeout: limits.readTimeoutSeconds, allowedUids: Set(configuration.allowedUids),
                farmUids: Set(configuration.farm?.allowedUids ?? []),
                // The parameters and the body the helper accepts, the records around them, and a
                // byte more, so that a larger request is still answered "too large".
                maxBytes: limits.maxParameterBytes + limits.maxParameters * 16 + limits.maxBodyBytes * 9 / 8 + 65536)
        } catch {
            listener.close()
            farm?.listener.close()
            throw ServerStartError("cannot make the gate's pipe: \(error)")
        }
        let authenticator = { (key: [UInt8]) in
            Authenticator(
                key: key, clockSkewSeconds: limits.clockSkewSeconds, nonceCacheSize: limits.nonceCacheSize,
                now: { System.wallSeconds() })
        }
        return DeliveryServer(
            configuration: configuration,
            api: API(
                engine: engine, jobs: JobRegistry(retained: limits.retainedJobs, maxLines: limits.maxJobLines),
                limits: limits, logger: logger, siteConfiguration: configuration.siteConfiguration,
                workers: configuration.workers),
            authenticator: authenticator(key), listener: listener,
            farm: farm.map { FarmEndpoint(listener: $0.listener, authenticator: authenticator($0.key)) },
            logger: logger,
            wake: wake, gate: gate)
    }

    private init(
        configuration: ServerConfiguration, api: API, authenticator: Authenticator, listener: Listener,
        farm: FarmEndpoint?, logger: Logger, wake: (read: Int32, write: Int32), gate: Gate
    ) {
        self.farm = farm
        self.configuration = configuration
        self.api = api
        self.authenticator = authenticator
        self.listener = listener
        self.logger = logger
        self.wake = wake
        self.gate = gate
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting, lets requests under way finish and
    /// returns. A running job is left to the engine's state file (a later `recover` handles it).
    /// - Throws: `ServerStartError` when the threads cannot be started.
    public func run() throws(ServerStartError) {
        // Before any thread starts: every thread inherits the mask, so only sigwait sees them.
        System.blockSignals([SIGTERM, SIGINT])
        var threads: [pthread_t] = []
        do {
            try System.startDetachedThread { [self] in
                let signal = System.waitForSignal([SIGTERM, SIGINT])
                logger.notice("stopping on signal \(signal)")
                stop()
            }
            try System.startDetachedThread { [self] in watchdog.run(until: { isStopping }) }
            // The helper keeps the timer of a scheduled Run all: no browser and no cron needed.
            try System.startDetachedThread { [self] in
                while !isStopping {
                    System.sleep(seconds: DeliverySchedule.timerSeconds)
                    if !isStopping { api.startDueSchedule() }
                }
            }
            threads.append(
                try System.startThread { [self] in
                    gate.run(until: { isStopping }, onError: { logger.error("\($0)") })
                })
            for index in 0..<configuration.workers {
                threads.append(try System.startThread { [self] in work(index) })
            }
        } catch {
            stop()
            for thread in threads { System.join(thread) }
            listener.close()
            farm?.listener.close()
            throw ServerStartError("cannot start the server's threads: \(error)")
        }
        logger.notice(
            "deliveryd ready",
            metadata: [
                "socket": "\(listener.shownPath ?? listener.ownedPath ?? "systemd")",
                "workers": "\(configuration.workers)",
                "farm": "\(farm.map { $0.listener.shownPath ?? $0.listener.ownedPath ?? "" } ?? "none")",
                "pid": "\(System.processIdentifier)",
            ])
        for thread in threads { System.join(thread) }
        listener.close()
        farm?.listener.close()
        logger.notice("deliveryd stopped")
    }

    /// Releases the socket of a server that was made but will not run (`run` does it itself).
    public func close() {
        stop()
        listener.close()
        farm?.listener.close()
        System.close(wake.read)
        System.close(wake.write)
    }

    /// Stops accepting and wakes the workers; requests under way finish.
    public func stop() {
        let already = stopping.withLock { value in
            defer { value = true }
            return value
        }
        guard !already else { return }
        for job in api.jobs.noteShutdown() {
            logger.warning(
                "stopping while a job runs: the engine's state file keeps it as running; run 'recover' once the helper is back",
                metadata: [
                    "job": "\(job.id)", "operation": "\(job.request.operation.rawValue)",
                    "actor": "\(job.request.actor.name)",
                ])
        }
        listener.shutdown()
        farm?.listener.shutdown()
        System.sendAll(wake.write, [1])
    }

    private var isStopping: Bool { stopping.withLock { $0 } }

    // MARK: Workers

    private func work(_ index: Int) {
        // libfcgi retries a broken connection by accepting on its own; give it a socket on
        // which accept fails at once, so that every connection goes through `serve`.
        guard let decoy = try? System.unixSocket() else {
            logger.error("worker \(index) cannot make its decoy socket")
            return
        }
        defer { System.close(decoy) }
        let slot = FastCGIRequest(decoyFd: decoy)
        // Accepts while the helper runs; a request that has not arrived whole within moments goes
        // to the gate, and comes back once it has. After a stop, until the gate has finished:
        // requests under way still arrive and are answered.
        while !(isStopping && gate.isDone) {
            if let connection = gate.takeReady() {
                serve(connection, slot: slot)
                continue
            }
            // The web socket, the farm's if any, and the wake pipe.
            let sockets: [(fd: Int32, endpoint: Gate.Endpoint)] =
                [(listener.fd, .web)] + (farm.map { [($0.listener.fd, .farm)] } ?? [])
            let events: [Int16]
            do {
                events = try System.pollReadable(
                    isStopping ? [] : sockets.map(\.fd) + [wake.read], timeoutMilliseconds: isStopping ? 20 : 50)
            } catch {
                logger.error("poll failed: \(error)")
                System.sleep(seconds: 0.1)
                continue
            }
            guard !isStopping else { continue }
            for (index, socket) in sockets.enumerated() where events[index] != 0 {
                let accepted: Int32?
                do {
                    accepted = try System.accept(socket.fd)
                } catch {
                    logger.error("accept failed: \(error)")
                    System.sleep(seconds: 0.1)
                    continue
                }
                guard let fd = accepted, let connection = gate.admit(fd, on: socket.endpoint) else { continue }
                serve(connection, slot: slot)
            }
        }
    }

    private func serve(_ connection: Gate.Ready, slot: FastCGIRequest) {
        let fd = connection.fd
        let limits = configuration.limits
        let watch = watchdog.watch(fd, seconds: limits.readTimeoutSeconds)
        defer { watchdog.release(watch) }
        try? System.setTimeouts(fd, seconds: limits.readTimeoutSeconds)
        let peer = try? System.peerCredentials(fd)
        guard let peer, !connection.refused, gate.allows(peer.uid, on: connection.endpoint) else {
            logger.warning(
                "refused a peer",
                metadata: [
                    "uid": "\(peer.map { "\($0.uid)" } ?? "?")", "pid": "\(peer?.pid ?? 0)",
                    "socket": "\(connection.endpoint)",
                ])
            RawResponder.refuse(fd, with: .error(APIError(.peerRefused, "this user may not talk to the helper")))
            System.close(fd)
            return
        }
        // libfcgi parses the request the gate received, from a memory file, then answers on the
        // connection.
        guard let input = try? System.memoryFile(connection.request) else {
            System.close(fd)
            return
        }
        guard slot.parse(connection: input) else {
            logger.debug("dropped a malformed request")
            System.close(fd)
            return
        }
        let response = respond(slot, peer: peer, endpoint: connection.endpoint, release: { watchdog.release(watch) })
        slot.answer(on: fd)
        slot.write(response.encoded())
        slot.finish()
    }

    private func respond(
        _ slot: FastCGIRequest, peer: (uid: UInt32, pid: Int32), endpoint: Gate.Endpoint, release: () -> Void
    ) -> Response {
        let limits = configuration.limits
        guard slot.parameter("FCGI_ROLE") == "RESPONDER" else {
            return .error(APIError.badRequest("deliveryd only plays the FastCGI responder role"))
        }
        let totals = slot.parameterTotals()
        guard totals.count <= limits.maxParameters, totals.bytes <= limits.maxParameterBytes else {
            return .error(APIError(.parametersTooLarge, "the request carries too many or too large parameters"))
        }
        var declaredLength: Int?
        if let length = slot.parameter("CONTENT_LENGTH"), !length.isEmpty {
            guard length.utf8.count <= 12, length.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int(length)
            else {
                return .error(APIError.badRequest("CONTENT_LENGTH is not a number"))
            }
            guard value <= limits.maxBodyBytes else {
                return .error(APIError(.bodyTooLarge, "the body is larger than \(limits.maxBodyBytes) bytes"))
            }
            declaredLength = value
        }
        let body = slot.readBody(limit: limits.maxBodyBytes + 1)
        guard body.clean else {
            return .error(APIError(.requestTimeout, "the request was not received in time"))
        }
        guard body.bytes.count <= limits.maxBodyBytes else {
            return .error(APIError(.bodyTooLarge, "the body is larger than \(limits.maxBodyBytes) bytes"))
        }
        if let declaredLength, declaredLength != body.bytes.count {
            return .error(APIError.badRequest("the body's length does not match CONTENT_LENGTH"))
        }
        release()
        let method = slot.parameter("REQUEST_METHOD") ?? ""
        let path = (slot.parameter("SCRIPT_NAME") ?? "") + (slot.parameter("PATH_INFO") ?? "")
        let queryString = slot.parameter("QUERY_STRING") ?? ""
        if endpoint == .web, path == API.consolePrefix || path.hasPrefix(API.consolePrefix + "/") {
            // The emergency console: reached through the web server, with a console token.
            guard let query = API.parseQuery(queryString) else {
                return .error(APIError.badRequest("the query string is malformed"))
            }
            return api.console(
                method: method, path: path, token: slot.parameter("HTTP_X_DELIVERY_CONSOLE_TOKEN"), query: query,
                secondFactor: slot.parameter("HTTP_X_DELIVERY_SECOND_FACTOR"))
        }
        // Each socket checks the signatures with its own key.
        guard let checker = endpoint == .farm ? farm?.authenticator : authenticator else {
            return .error(APIError(.peerRefused, "this helper has no farm socket"))
        }
        var actor: Actor
        do {
            actor = try checker.authenticate(
                SignedRequest(
                    method: method, path: path, query: queryString,
                    timestamp: slot.parameter("HTTP_X_DELIVERY_TIMESTAMP"),
                    nonce: slot.parameter("HTTP_X_DELIVERY_NONCE"),
                    userId: slot.parameter("HTTP_X_DELIVERY_USER_ID"),
                    userName: slot.parameter("HTTP_X_DELIVERY_USER_NAME"),
                    signature: slot.parameter("HTTP_X_DELIVERY_SIGNATURE"), body: body.bytes))
        } catch {
            logger.notice(
                "refused a request", metadata: ["code": "\(error.code)", "uid": "\(peer.uid)", "pid": "\(peer.pid)"])
            return .error(error)
        }
        // What the kernel says of the peer goes into the audit log beside what the request claims.
        actor.peerUid = peer.uid
        guard var query = API.parseQuery(queryString) else {
            return .error(APIError.badRequest("the query string is malformed"))
        }
        if endpoint == .farm {
            do throws(APIError) {
                try FarmEndpoint.mark(&actor, method: method, query: &query)
            } catch {
                return .error(error)
            }
        }
        guard path.hasPrefix("/") else { return .error(APIError(.notFound, "no such route")) }
        return api.handle(APIRequest(method: method, path: path, query: query, body: body.bytes, actor: actor))
    }
}

/// Cuts connections that have not sent their whole request in time: `shutdown(2)` makes the
/// worker's blocked read return at once, whatever libfcgi was reading.
final class Watchdog: Sendable {
    struct Entry {
        var fd: Int32
        var deadline: Double
        var fired: Bool
    }

    /// A watched connection.
    struct Token: Sendable {
        let id: UInt64
    }

    private struct State {
        var next: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
    }

    private let state = Locked(State())

    /// Starts watching a connection. The watchdog keeps a duplicate of the descriptor, so that
    /// the number cannot be reused by another connection while it is watched.
    func watch(_ fd: Int32, seconds: Double) -> Token? {
        guard let duplicate = try? System.duplicate(fd) else { return nil }
        return state.withLock { state in
            state.next += 1
            state.entries[state.next] = Entry(
                fd: duplicate, deadline: System.monotonicSeconds() + seconds, fired: false)
            return Token(id: state.next)
        }
    }

    /// Stops watching (idempotent).
    func release(_ token: Token?) {
        guard let token else { return }
        let entry = state.withLock { $0.entries.removeValue(forKey: token.id) }
        if let entry { System.close(entry.fd) }
    }

    /// Checks the deadlines ten times a second until `stop` says so.
    func run(until stop: () -> Bool) {
        while !stop() {
            System.sleep(seconds: 0.1)
            let now = System.monotonicSeconds()
            state.withLock { state in
                for (id, entry) in state.entries where !entry.fired && entry.deadline <= now {
                    System.shutdownBoth(entry.fd)
                    state.entries[id]?.fired = true
                }
            }
        }
    }
}

/// Answers a refused peer without letting libfcgi parse anything it sent: reads the first
/// record header for the request id, writes the response records, and closes.
enum RawResponder {
    static func refuse(_ fd: Int32, with response: Response) {
        var header: [UInt8] = []
        while header.count < 8 {
            let bytes = System.readSome(fd, count: 8 - header.count)
            if bytes.isEmpty { return }
            header += bytes
        }
        // version 1, type 1 (FCGI_BEGIN_REQUEST)
        guard header[0] == 1, header[1] == 1 else { return }
        let requestId = UInt16(header[2]) << 8 | UInt16(header[3])
        var output: [UInt8] = []
        let payload = response.encoded()
        var index = 0
        while index < payload.count {
            let chunk = Array(payload[index..<min(payload.count, index + 32_768)])
            output += record(type: 6, requestId: requestId, content: chunk)
            index += chunk.count
        }
        output += record(type: 6, requestId: requestId, content: [])
        output += record(type: 3, requestId: requestId, content: [0, 0, 0, 0, 0, 0, 0, 0])
        guard System.sendAll(fd, output) else { return }
        // Let the peer read the answer before the close: drain what it sent, briefly.
        System.shutdownWrite(fd)
        var drained = 0
        while drained < 1 << 20 {
            let bytes = System.readSome(fd, count: 16_384)
            if bytes.isEmpty { break }
            drained += bytes.count
        }
    }

    /// A FastCGI record (version 1, no padding).
    static func record(type: UInt8, requestId: UInt16, content: [UInt8]) -> [UInt8] {
        [
            1, type, UInt8(requestId >> 8), UInt8(requestId & 0xFF), UInt8(content.count >> 8),
            UInt8(content.count & 0xFF), 0, 0,
        ]
            + content
    }
}
