import DeliveryCore

/// The limits that bound what one peer can make the helper do.
public struct ServerLimits: Sendable, Codable, Equatable {
    /// The largest request body accepted, in bytes.
    public var maxBodyBytes: Int
    /// The most FastCGI parameters a request may carry.
    public var maxParameters: Int
    /// The largest total size of a request's parameters (names and values), in bytes.
    public var maxParameterBytes: Int
    /// How long a peer has to send its whole request (parameters and body), in seconds.
    public var readTimeoutSeconds: Double
    /// How far a request's timestamp may be from the helper's clock, in seconds.
    public var clockSkewSeconds: Int
    /// The most nonces remembered at once; past it, new requests are refused (`busy`).
    public var nonceCacheSize: Int
    /// How many finished jobs are kept for `GET /jobs/{id}`.
    public var retainedJobs: Int
    /// The most log lines kept per job (later lines are counted, not kept).
    public var maxJobLines: Int
    /// The most log lines one `GET /jobs/{id}` answer carries.
    public var maxLinesPerResponse: Int

    /// The defaults: 64 KiB body, 64 parameters in 32 KiB, 5 s to send a request, ±60 s clock
    /// skew, 65,536 nonces, 16 finished jobs of up to 20,000 lines, 1,000 lines per answer.
    public init(
        maxBodyBytes: Int = 65_536, maxParameters: Int = 64, maxParameterBytes: Int = 32_768,
        readTimeoutSeconds: Double = 5, clockSkewSeconds: Int = 60, nonceCacheSize: Int = 65_536,
        retainedJobs: Int = 16, maxJobLines: Int = 20_000, maxLinesPerResponse: Int = 1_000
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.maxParameters = maxParameters
        self.maxParameterBytes = maxParameterBytes
        self.readTimeoutSeconds = readTimeoutSeconds
        self.clockSkewSeconds = clockSkewSeconds
        self.nonceCacheSize = nonceCacheSize
        self.retainedJobs = retainedJobs
        self.maxJobLines = maxJobLines
        self.maxLinesPerResponse = maxLinesPerResponse
    }

    /// Decodes limits; a missing member takes its default.
    public init(from decoder: any Decoder) throws {
        let defaults = ServerLimits()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxBodyBytes = try container.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? defaults.maxBodyBytes
        maxParameters = try container.decodeIfPresent(Int.self, forKey: .maxParameters) ?? defaults.maxParameters
        maxParameterBytes =
            try container.decodeIfPresent(Int.self, forKey: .maxParameterBytes) ?? defaults.maxParameterBytes
        readTimeoutSeconds =
            try container.decodeIfPresent(Double.self, forKey: .readTimeoutSeconds) ?? defaults.readTimeoutSeconds
        clockSkewSeconds =
            try container.decodeIfPresent(Int.self, forKey: .clockSkewSeconds) ?? defaults.clockSkewSeconds
        nonceCacheSize = try container.decodeIfPresent(Int.self, forKey: .nonceCacheSize) ?? defaults.nonceCacheSize
        retainedJobs = try container.decodeIfPresent(Int.self, forKey: .retainedJobs) ?? defaults.retainedJobs
        maxJobLines = try container.decodeIfPresent(Int.self, forKey: .maxJobLines) ?? defaults.maxJobLines
        maxLinesPerResponse =
            try container.decodeIfPresent(Int.self, forKey: .maxLinesPerResponse) ?? defaults.maxLinesPerResponse
    }
}

/// The farm's listener on a web node (`farm` in `deliveryd.json`): a second socket, for the node's
/// farm account only, through which `deliveryctl follow` passes the coordinator's requests on. It
/// has a group, peers and a key of its own, so that neither side's peers can use the other's socket
/// or key; its requests are recorded with the source `farm` and the farm delivery's id.
public struct FarmListenerConfiguration: Sendable, Codable, Equatable {
    /// The unix socket (mode 0660), outside the web socket's folder.
    public var socketPath: String
    /// The socket file's group: the farm account's.
    public var socketGroup: String
    /// The peer uids allowed on it: the farm account's.
    public var allowedUids: [UInt32]
    /// The key `deliveryctl follow` signs with (group the farm account's, mode 0640).
    public var keyFile: String

    /// Makes a farm listener's configuration.
    public init(socketPath: String, socketGroup: String, allowedUids: [UInt32], keyFile: String) {
        self.socketPath = socketPath
        self.socketGroup = socketGroup
        self.allowedUids = allowedUids
        self.keyFile = keyFile
    }
}

/// The helper's own configuration: a JSON file owned by root (`/etc/moodle-delivery/deliveryd.json`).
///
/// ```json
/// {
///   "socketPath": "/run/deliveryd/deliveryd.sock",
///   "socketGroup": "www-data",
///   "allowedUids": [33],
///   "keyFile": "/etc/moodle-delivery/deliveryd.key",
///   "siteConfiguration": "/etc/moodle-delivery/site.json",
///   "requestUser": "moodle-delivery",
///   "workers": 4,
///   "limits": { "maxBodyBytes": 65536 }
/// }
/// ```
public struct ServerConfiguration: Sendable, Codable, Equatable {
    /// The unix socket to listen on (ignored under systemd socket activation).
    public var socketPath: String
    /// The group given to the socket file (the web server's), by name or number; mode is 0660.
    public var socketGroup: String?
    /// The peer uids (SO_PEERCRED) allowed to talk to the helper.
    public var allowedUids: [UInt32]
    /// The HMAC key file: at least 32 bytes, not readable by others.
    public var keyFile: String
    /// The site configuration read by the engine.
    public var siteConfiguration: String
    /// The user the request-facing process runs as when the helper starts as root (see
    /// `SeparatedServer`): a system user of its own, never root, the web user or the code owner.
    /// Nil means `defaultRequestUser`.
    public var requestUser: String?
    /// Worker threads serving requests (jobs run on threads of their own).
    public var workers: Int
    /// The bounds.
    public var limits: ServerLimits
    /// The farm's listener, on a node that follows a coordinator (nil: none).
    public var farm: FarmListenerConfiguration?

    /// The request-facing process's user when the configuration names none.
    public static let defaultRequestUser = "moodle-delivery"

    /// The default configuration file.
    public static let defaultPath = "/etc/moodle-delivery/deliveryd.json"

    /// Makes a configuration.
    public init(
        socketPath: String, socketGroup: String? = nil, allowedUids: [UInt32], keyFile: String,
        siteConfiguration: String, requestUser: String? = nil, workers: Int = 4, limits: ServerLimits = ServerLimits(),
        farm: FarmListenerConfiguration? = nil
    ) {
        self.farm = farm
        self.requestUser = requestUser
        self.socketPath = socketPath
        self.socketGroup = socketGroup
        self.allowedUids = allowedUids
        self.keyFile = keyFile
        self.siteConfiguration = siteConfiguration
        self.workers = workers
        self.limits = limits
    }

    /// Decodes a configuration; `requestUser`, `workers`, `limits` and `farm` are optional.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        socketPath = try container.decode(String.self, forKey: .socketPath)
        socketGroup = try container.decodeIfPresent(String.self, forKey: .socketGroup)
        allowedUids = try container.decode([UInt32].self, forKey: .allowedUids)
        keyFile = try container.decode(String.self, forKey: .keyFile)
        siteConfiguration = try container.decode(String.self, forKey: .siteConfiguration)
        requestUser = try container.decodeIfPresent(String.self, forKey: .requestUser)
        workers = try container.decodeIfPresent(Int.self, forKey: .workers) ?? 4
        limits = try container.decodeIfPresent(ServerLimits.self, forKey: .limits) ?? ServerLimits()
        farm = try container.decodeIfPresent(FarmListenerConfiguration.self, forKey: .farm)
    }

    /// Reads and checks a configuration file.
    /// - Throws: `ServerStartError` saying what is wrong.
    public static func load(from path: String) throws(ServerStartError) -> ServerConfiguration {
        let bytes: [UInt8]
        do {
            bytes = try System.readFileNoFollow(path, limit: 1 << 20)
        } catch {
            throw ServerStartError("cannot read the helper configuration: \(error)")
        }
        let configuration: ServerConfiguration
        do {
            configuration = try JSONCoding.decode(ServerConfiguration.self, from: bytes)
        } catch {
            throw ServerStartError("the helper configuration \(path) is not valid: \(error)")
        }
        try configuration.validate()
        return configuration
    }

    /// Checks the values the server relies on.
    public func validate() throws(ServerStartError) {
        for (name, value) in [
            ("socketPath", socketPath), ("keyFile", keyFile), ("siteConfiguration", siteConfiguration),
        ] {
            guard value.hasPrefix("/"), !value.utf8.contains(0) else {
                throw ServerStartError("\(name) must be an absolute path")
            }
        }
        guard socketPath.utf8.count < 108 else { throw ServerStartError("socketPath is longer than 107 bytes") }
        if let requestUser {
            guard (1...32).contains(requestUser.utf8.count),
                requestUser.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != 47 && $0 != 58 })
            else {
                throw ServerStartError("requestUser must be a user name")
            }
        }
        guard (1...64).contains(workers) else { throw ServerStartError("workers must be between 1 and 64") }
        guard !allowedUids.isEmpty else { throw ServerStartError("allowedUids must name at least one uid") }
        guard (1...(16 << 20)).contains(limits.maxBodyBytes), limits.maxParameters >= 8,
            limits.maxParameterBytes >= 1024, limits.readTimeoutSeconds > 0, limits.readTimeoutSeconds <= 300,
            (1...3600).contains(limits.clockSkewSeconds), limits.nonceCacheSize >= 16, limits.retainedJobs >= 1,
            limits.maxJobLines >= 10, limits.maxLinesPerResponse >= 1
        else {
            throw ServerStartError("a limit of the helper configuration is out of range")
        }
        if let farm { try validate(farm) }
    }

    /// The farm listener is apart from the web one: its own socket, key and peers.
    private func validate(_ farm: FarmListenerConfiguration) throws(ServerStartError) {
        for (name, value) in [("farm.socketPath", farm.socketPath), ("farm.keyFile", farm.keyFile)] {
            guard value.hasPrefix("/"), !value.utf8.contains(0) else {
                throw ServerStartError("\(name) must be an absolute path")
            }
        }
        guard farm.socketPath.utf8.count < 108 else {
            throw ServerStartError("farm.socketPath is longer than 107 bytes")
        }
        guard farm.socketPath != socketPath, farm.keyFile != keyFile else {
            throw ServerStartError(
                "the farm listener needs a socket and a key of its own (farm.socketPath, farm.keyFile)")
        }
        guard !farm.allowedUids.isEmpty, !farm.allowedUids.contains(0) else {
            throw ServerStartError("farm.allowedUids must name the farm account's uid (and not root)")
        }
        guard Set(farm.allowedUids).isDisjoint(with: allowedUids) else {
            throw ServerStartError(
                "a uid is both in allowedUids and farm.allowedUids: the web socket's peers and the farm's must differ")
        }
        guard !farm.socketGroup.isEmpty, farm.socketGroup != socketGroup else {
            throw ServerStartError("farm.socketGroup must be the farm account's group, not the web socket's")
        }
    }
}

/// Why the server could not start: one sentence for the administrator (it goes to the state file,
/// never to a peer).
public struct ServerStartError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let message: String

    /// Makes an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}
