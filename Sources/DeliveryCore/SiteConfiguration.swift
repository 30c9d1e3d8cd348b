#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The version control system of the production tree.
public enum VersionControlKind: String, Sendable, Codable, CaseIterable {
    case git, svn, cvs
}

/// Where updates come from. It lives in the helper's configuration, never in a request.
public struct UpstreamConfiguration: Sendable, Codable, Equatable {
    /// git, svn or cvs.
    public var kind: VersionControlKind
    /// git: the remote to fetch from (default `origin`).
    public var remote: String?
    /// git: the branch to fast-forward to.
    public var branch: String?
    /// git: a tag or commit to check out instead of the branch head; svn: a revision instead of HEAD.
    public var pin: String?

    /// Makes an upstream description.
    public init(kind: VersionControlKind, remote: String? = nil, branch: String? = nil, pin: String? = nil) {
        self.kind = kind
        self.remote = remote
        self.branch = branch
        self.pin = pin
    }
}

/// What the helper knows of the Moodle site, read from its `config.php` by PHP itself.
public struct MoodleSettings: Sendable, Codable, Equatable {
    public var wwwroot: String
    public var dataroot: String
    public var admin: String
    public var dbtype: String
    public var dbhost: String
    public var dbname: String
    public var dbuser: String
    public var prefix: String
    /// The `$CFG->alternative_component_cache` setting, when the site has one.
    public var alternativeComponentCache: String?

    /// Makes the settings.
    public init(
        wwwroot: String, dataroot: String, admin: String = "admin", dbtype: String = "", dbhost: String = "",
        dbname: String = "", dbuser: String = "", prefix: String = "mdl_", alternativeComponentCache: String? = nil
    ) {
        self.wwwroot = wwwroot
        self.dataroot = dataroot
        self.admin = admin
        self.dbtype = dbtype
        self.dbhost = dbhost
        self.dbname = dbname
        self.dbuser = dbuser
        self.prefix = prefix
        self.alternativeComponentCache = alternativeComponentCache
    }
}

/// Time limits for child processes, in seconds.
public struct Timeouts: Sendable, Codable, Equatable {
    public var versionControl: Double
    public var upgrade: Double
    public var phpScript: Double

    /// The defaults: 10 minutes for the VCS, 1 hour for the upgrade, 5 minutes for other scripts.
    public init(versionControl: Double = 600, upgrade: Double = 3600, phpScript: Double = 300) {
        self.versionControl = versionControl
        self.upgrade = upgrade
        self.phpScript = phpScript
    }
}

/// The helper's configuration of one site: a JSON file written by `deliveryctl init`, owned by root.
public struct SiteConfiguration: Sendable, Codable, Equatable {
    /// The site root holding `current` and `releases/`.
    public var siteRoot: String
    /// Where the state file, lock and audit log live.
    public var stateDirectory: String
    /// True for Moodle 5.1+'s layout, where the web root is `public/`.
    public var publicLayout: Bool
    /// The PHP CLI binary of the site.
    public var php: String
    /// The web server's user: every PHP CLI script runs as it.
    public var webUser: String
    /// The owner of the code trees: every VCS command runs as it.
    public var codeOwner: String
    /// Where updates come from.
    public var upstream: UpstreamConfiguration
    /// The Moodle settings read at adoption.
    public var moodle: MoodleSettings
    /// Child process time limits.
    public var timeouts: Timeouts
    /// The directory the site was adopted from (it is now a symlink to `current`), if any.
    public var adoptedFrom: String?
    /// The PHP-FPM pools serving the site (their sockets): production's changed scripts are
    /// dropped from their OPcache before production is served again.
    public var phpFpmSockets: [String]?
    /// The prebuilt component cache file (`$CFG->alternative_component_cache`), relative to the
    /// root of every tree: each tree gets its own, built for its code, before it can be served.
    public var componentCacheFile: String?
    /// The database snapshot before each upgrade (default: on, 3 kept).
    public var database: SnapshotSettings?
    /// The health check after production is served again (default: automatic rollback).
    public var healthCheck: HealthCheckSettings?
    /// How many switches, restores and rollbacks the plugin's key may start per hour (default:
    /// `OperationLimits()`).
    public var operationLimits: OperationLimits?
    /// Site-local files besides `config.php`, relative to a tree's root (`deliveryctl init
    /// --local-file`): the site's own version is kept through every update and cancel.
    public var localFiles: [String]?
    /// The web server and what it needs after each switch (default: nginx serving real paths).
    public var webServer: WebServerSettings?
    /// The rehearsal of Moodle's upgrade on a database copy (default: only when asked).
    public var rehearsal: RehearsalOptions?
    /// Moodle's caches after a code change (default: only those the change needs purged).
    public var caches: CacheSettings?
    /// The other web nodes of the site, reached over OpenSSH (none: a single node).
    public var farm: FarmSettings?

    /// The site-local files: `config.php` (always: it holds this site's settings) and `localFiles`.
    public var siteLocalFiles: [String] {
        var files = ["config.php"]
        for file in localFiles ?? [] where !files.contains(file) { files.append(file) }
        return files
    }

    /// The limits in force.
    public var limits: OperationLimits { operationLimits ?? OperationLimits() }
    /// The snapshot settings in force.
    public var snapshotSettings: SnapshotSettings { database ?? SnapshotSettings() }
    /// The health check settings in force.
    public var healthCheckSettings: HealthCheckSettings { healthCheck ?? HealthCheckSettings() }
    /// The web server settings in force.
    public var webServerSettings: WebServerSettings { webServer ?? WebServerSettings() }
    /// The rehearsal options in force.
    public var rehearsalOptions: RehearsalOptions { rehearsal ?? RehearsalOptions() }
    /// The cache settings in force.
    public var cacheSettings: CacheSettings { caches ?? CacheSettings() }
    /// Where the database snapshots go.
    public var snapshotDirectory: String { snapshotSettings.directory ?? "\(stateDirectory)/snapshots" }

    /// Makes a configuration.
    public init(
        siteRoot: String, stateDirectory: String, publicLayout: Bool = false, php: String = "/usr/bin/php",
        webUser: String, codeOwner: String, upstream: UpstreamConfiguration, moodle: MoodleSettings,
        timeouts: Timeouts = Timeouts(), adoptedFrom: String? = nil, phpFpmSockets: [String]? = nil,
        componentCacheFile: String? = nil, database: SnapshotSettings? = nil, healthCheck: HealthCheckSettings? = nil
    ) {
        self.siteRoot = siteRoot
        self.stateDirectory = stateDirectory
        self.publicLayout = publicLayout
        self.php = php
        self.webUser = webUser
        self.codeOwner = codeOwner
        self.upstream = upstream
        self.moodle = moodle
        self.timeouts = timeouts
        self.adoptedFrom = adoptedFrom
        self.phpFpmSockets = phpFpmSockets
        self.componentCacheFile = componentCacheFile
        self.database = database
        self.healthCheck = healthCheck
    }

    /// The default configuration file.
    public static let defaultPath = "/etc/moodle-delivery/site.json"

    /// Reads and checks a configuration file.
    /// - Throws: `DeliveryError` `.configuration` with the reason.
    public static func load(from path: String) throws(DeliveryError) -> SiteConfiguration {
        let bytes: [UInt8]
        do {
            bytes = try System.readFile(path, limit: 1 << 20)
        } catch {
            throw DeliveryError(.configuration, "cannot read the configuration \(path): \(error)")
        }
        let configuration: SiteConfiguration
        do {
            configuration = try JSONCoding.decode(SiteConfiguration.self, from: bytes)
        } catch {
            throw DeliveryError(.configuration, "the configuration \(path) is not valid: \(error)")
        }
        try configuration.validate()
        return configuration
    }

    /// Checks the values that the engine relies on.
    public func validate() throws(DeliveryError) {
        for (name, value) in [("siteRoot", siteRoot), ("stateDirectory", stateDirectory), ("php", php)]
            + (phpFpmSockets ?? []).map({ ("phpFpmSockets", $0) })
            + [database?.directory].compactMap({ $0 }).map({ ("database.directory", $0) })
        {
            guard value.hasPrefix("/"), !value.contains("\0") else {
                throw DeliveryError(.configuration, "\(name) must be an absolute path")
            }
        }
        if let file = componentCacheFile {
            guard (try? ComponentPath(file)) != nil else {
                throw DeliveryError(.configuration, "componentCacheFile must be a file name inside the tree")
            }
        }
        for file in localFiles ?? [] where (try? ComponentPath(file)) == nil {
            throw DeliveryError(
                .configuration, "localFiles: '\(file)' is not a relative path inside the tree (such as .htaccess)")
        }
        if let limits = operationLimits,
            [limits.switchesPerHour, limits.restoresPerHour, limits.rollbacksPerHour].contains(where: { $0 < 1 })
        {
            throw DeliveryError(.configuration, "operationLimits: each limit must be at least 1 per hour")
        }
        if let database, database.keep < 1 || database.timeoutSeconds <= 0 {
            throw DeliveryError(.configuration, "database.keep must be at least 1 and database.timeoutSeconds positive")
        }
        try healthCheck?.validate()
        try webServer?.validate()
        try farm?.validate()
        if upstream.kind == .git && (upstream.branch ?? "").isEmpty && (upstream.pin ?? "").isEmpty {
            throw DeliveryError(.configuration, "a git upstream needs a branch or a pin")
        }
        for value in [upstream.remote, upstream.branch, upstream.pin].compactMap({ $0 }) {
            guard !value.hasPrefix("-"), !value.contains("\0"), !value.contains(where: { $0.isWhitespace }) else {
                throw DeliveryError(.configuration, "the upstream setting '\(value)' is not allowed")
            }
        }
    }

    /// Writes the configuration atomically (mode 0640).
    public func save(to path: String) throws(DeliveryError) {
        do {
            try System.writeFileAtomically(path, try JSONCoding.encode(self), mode: 0o640)
        } catch let error as SystemCallError {
            throw DeliveryError.io("cannot write the configuration", error)
        } catch {
            throw DeliveryError(.io, "cannot write the configuration: \(error)")
        }
    }
}

/// The engine's JSON settings: sorted keys, ISO 8601 dates.
public enum JSONCoding {
    /// Dates keep their milliseconds: the engine compares them (an emergency rollback against the
    /// start of the operation it takes over).
    static let fractionalStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    /// Encodes a value as pretty, key-sorted JSON bytes.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = true) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting =
            pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            // Formatting truncates to the millisecond and parsing may land a hair below it: round
            // to the nearest millisecond so that a read-write round trip keeps the same text.
            try container.encode(date.addingTimeInterval(0.0005).formatted(fractionalStyle))
        }
        var bytes = [UInt8](try encoder.encode(value))
        if pretty { bytes.append(UInt8(ascii: "\n")) }
        return bytes
    }

    /// Decodes JSON bytes.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            if let date = try? fractionalStyle.parse(text) { return date }
            if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 date: \(text)"))
        }
        if let key = duplicateKey(in: bytes) {
            throw DecodingError.dataCorrupted(
                .init(codingPath: [], debugDescription: "the key '\(key)' appears twice in one object"))
        }
        return try decoder.decode(type, from: Data(bytes))
    }

    /// The first key that appears twice in one object, if any. JSON parsers disagree on which of
    /// two equal keys wins, so a signed request or a configuration that holds one is refused
    /// rather than read one way here and another way elsewhere. Keys are compared unescaped.
    static func duplicateKey(in bytes: [UInt8]) -> String? {
        var objects: [(keys: Set<String>, expectingKey: Bool)?] = []
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "{"): objects.append((keys: [], expectingKey: true))
            case UInt8(ascii: "["): objects.append(nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = objects.popLast()
            case UInt8(ascii: ","):
                if objects.last??.expectingKey == false { objects[objects.count - 1]?.expectingKey = true }
            case UInt8(ascii: "\""):
                let (text, end) = unescapedString(bytes, from: index + 1)
                if let object = objects.last ?? nil, object.expectingKey {
                    if object.keys.contains(text) { return text }
                    objects[objects.count - 1] = (keys: object.keys.union([text]), expectingKey: false)
                }
                index = end
            default: break
            }
            index += 1
        }
        return nil
    }

    /// A JSON string's text from just after its opening quote; returns the closing quote's index.
    private static func unescapedString(_ bytes: [UInt8], from start: Int) -> (String, Int) {
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        var index = start
        func flush() {
            scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw = []
        }
        var pendingHigh: UInt32?
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            guard bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count else {
                raw.append(bytes[index])
                index += 1
                continue
            }
            flush()
            let escaped = bytes[index + 1]
            index += 2
            var value: UInt32
            switch escaped {
            case UInt8(ascii: "u"):
                let hex = bytes[index..<min(index + 4, bytes.count)]
                value = UInt32(String(decoding: hex, as: UTF8.self), radix: 16) ?? 0xFFFD
                index += 4
            case UInt8(ascii: "b"): value = 8
            case UInt8(ascii: "f"): value = 12
            case UInt8(ascii: "n"): value = 10
            case UInt8(ascii: "r"): value = 13
            case UInt8(ascii: "t"): value = 9
            default: value = UInt32(escaped)
            }
            if (0xD800..<0xDC00).contains(value) {
                pendingHigh = value
                continue
            }
            if let high = pendingHigh, (0xDC00..<0xE000).contains(value) {
                value = 0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00)
            }
            pendingHigh = nil
            scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
        }
        flush()
        return (String(scalars), index)
    }
}
