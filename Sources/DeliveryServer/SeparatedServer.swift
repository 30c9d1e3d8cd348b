import DeliveryCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// How `deliveryd` runs: split in two when it starts as root, whole otherwise.
///
/// Split, the process that reads what peers send (libfcgi, the signature, JSON, the console)
/// runs as `requestUser`: no root, no capability, no new privileges, not dumpable, in a group of
/// its own. It holds the listening socket and the key, and reaches the engine only through the
/// `Monitor`, which stays root in the parent and answers a closed set of typed calls
/// (`MonitorCall`), checking each again. Either process ending ends the other: the request side
/// gets SIGTERM when the monitor dies, the monitor returns when the request side closes its
/// channel. The monitor removes the socket file at the end (the request side cannot).
public enum SeparatedServer {
    /// Runs the helper until SIGTERM or SIGINT, or until its request side ends.
    /// - Parameter pidFile: where to write the helper's pid (the monitor's) once it listens; it is
    ///   removed when the helper stops.
    /// - Returns: the exit status for `main`: 0 after a clean stop.
    /// - Throws: `ServerStartError` when it cannot start.
    public static func run(configuration: ServerConfiguration, logger: Logger, pidFile: String? = nil)
        throws(ServerStartError) -> Int32
    {
        guard System.effectiveUserIdentifier == 0 else {
            // Nothing to separate: the helper has no more rights than its peers' user gave it.
            let server = try DeliveryServer.make(configuration: configuration, logger: logger)
            let written: PidFile?
            do {
                written = try pidFile.map { (path: String) throws(ServerStartError) in
                    try PidFile.write(path, pid: System.processIdentifier)
                }
            } catch {
                server.close()
                throw error
            }
            defer { written?.remove() }
            try server.run()
            return 0
        }
        try configuration.validate()
        let key = try Authenticator.readKey(configuration.keyFile)
        let engine = try DeliveryServer.makeEngine(configuration, logger: logger)
        let requestUser = try requestUserIdentity(configuration, site: engine.configuration)
        let (listener, farm) = try DeliveryServer.openListeners(configuration)
        let farmListener = farm?.listener
        // Both sockets closed and their files removed, when the helper cannot start.
        let closeBoth = {
            listener.close()
            farmListener?.close()
        }
        let channel: (monitor: Int32, request: Int32)
        do {
            channel = try System.socketPair(seqpacket: true)
        } catch {
            closeBoth()
            throw ServerStartError("cannot make the monitor's channel: \(error)")
        }
        let monitorPid = System.processIdentifier
        let written: PidFile?
        do {
            written = try pidFile.map { (path: String) throws(ServerStartError) in
                try PidFile.write(path, pid: monitorPid)
            }
        } catch {
            closeBoth()
            throw error
        }
        defer { written?.remove() }
        let child: Int32
        do {
            // No thread has started yet: the child is a whole copy of this process.
            child = try System.fork()
        } catch {
            closeBoth()
            throw ServerStartError("cannot start the request-facing process: \(error)")
        }
        if child == 0 {
            System.close(channel.monitor)
            exit(
                runRequestSide(
                    configuration, key: key, listener: listener,
                    farm: farm, channel: channel.request,
                    user: requestUser, monitorPid: monitorPid, logger: logger))
        }
        System.close(channel.request)
        System.close(listener.fd)
        if let farmListener { System.close(farmListener.fd) }
        return runMonitor(
            engine, channel: channel.monitor, child: child, listeners: [listener] + (farmListener.map { [$0] } ?? []),
            farmPeers: Set(configuration.farm?.allowedUids ?? []), logger: logger)
    }

    /// The request side's user: it must exist and be none of those the helper protects itself
    /// from or acts for (root, the peers, the web user, the code owner).
    static func requestUserIdentity(_ configuration: ServerConfiguration, site: SiteConfiguration)
        throws(ServerStartError) -> (name: String, uid: UInt32, gid: UInt32)
    {
        let name = configuration.requestUser ?? ServerConfiguration.defaultRequestUser
        guard let user = System.user(named: name) else {
            throw ServerStartError(
                "the user '\(name)' that serves requests does not exist: create it (useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \(name)) or name another in requestUser; scripts/install does it"
            )
        }
        var forbidden: [(String, UInt32)] = [("root", 0)]
        forbidden += configuration.allowedUids.map { ("a peer of the socket (allowedUids)", $0) }
        forbidden += (configuration.farm?.allowedUids ?? []).map {
            ("a peer of the farm socket (farm.allowedUids)", $0)
        }
        for (role, account) in [("the web user", site.webUser), ("the code owner", site.codeOwner)] {
            if let uid = System.user(named: account)?.uid { forbidden.append((role, uid)) }
        }
        if let (role, _) = forbidden.first(where: { $0.1 == user.uid }) {
            throw ServerStartError(
                "requestUser '\(name)' (uid \(user.uid)) is \(role): it must be a user of the helper's own")
        }
        guard user.gid != 0 else {
            throw ServerStartError("requestUser '\(name)' has group root: give it a group of its own")
        }
        return (user.name, user.uid, user.gid)
    }

    private static func runRequestSide(
        _ configuration: ServerConfiguration, key: [UInt8], listener: Listener,
        farm: (listener: Listener, key: [UInt8])?, channel: Int32, user: (name: String, uid: UInt32, gid: UInt32),
        monitorPid: Int32, logger: Logger
    ) -> Int32 {
        do {
            try System.becomeUser(uid: user.uid, gid: user.gid, deathSignal: SIGTERM)
        } catch {
            System.writeStandard("deliveryd: cannot become \(user.name): \(error)\n", toError: true)
            return 1
        }
        // The monitor may have died before the death signal was armed.
        guard System.parentProcessIdentifier == monitorPid else { return 1 }
        do {
            let server = try DeliveryServer.assemble(
                configuration, key: key, engine: MonitorClient(channel: channel),
                listener: Listener(fd: listener.fd, ownedPath: nil, shownPath: listener.ownedPath),
                farm: farm.map {
                    (Listener(fd: $0.listener.fd, ownedPath: nil, shownPath: $0.listener.ownedPath), $0.key)
                }, logger: logger)
            logger.notice("serving requests as \(user.name) (uid \(user.uid)); the engine stays in the monitor")
            try server.run()
            return 0
        } catch {
            System.writeStandard("deliveryd: \(error)\n", toError: true)
            return 1
        }
    }

    private static func runMonitor(
        _ engine: DeliveryEngine, channel: Int32, child: Int32, listeners: [Listener], farmPeers: Set<UInt32>,
        logger: Logger
    ) -> Int32 {
        System.blockSignals([SIGTERM, SIGINT])
        try? System.startDetachedThread {
            // The request side stops on its own signal too (systemd signals the whole group);
            // passing it on covers a signal sent to the monitor's pid alone.
            let signal = System.waitForSignal([SIGTERM, SIGINT])
            System.signal(process: child, SIGTERM)
            logger.notice("monitor: passed signal \(signal) on to the request side")
        }
        Monitor(engine: engine, logger: logger, farmPeers: farmPeers).serve(channel: channel)
        System.close(channel)
        let status = (try? System.waitForChild(child)) ?? 1
        for listener in listeners { listener.removeOwnedFile() }
        if status != 0 {
            logger.error("the request-facing process ended with status \(status); the monitor stops too")
        }
        return status
    }
}
