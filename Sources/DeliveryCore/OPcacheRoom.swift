/// What a PHP-FPM pool's OPcache can hold, against what a delivered site puts into it.
///
/// OPcache keys compiled scripts on their real paths, so one site fills it with up to five trees:
/// production and two generations of each copy (`releases/.backup.a|b`, `.security.a|b`). When
/// the keys run out, OPcache stops caching (or restarts itself) and the first requests after a
/// switch compile Moodle afresh: measured on a real Moodle 4.5 site (17,612 PHP files a tree) with
/// Debian's default `opcache.max_accelerated_files=10000`, the first request after a restore took
/// 2.6–2.8 times the steady time, 5 times after a rollback; with 100000, 1.03–1.06 times.
public struct OPcacheRoom: Sendable, Codable, Equatable {
    /// The trees of one site that OPcache may hold at once.
    public static let treesPerSite = 5

    /// The pool's socket.
    public var socket: String
    /// OPcache is on in the pool.
    public var enabled: Bool
    /// `opcache.max_accelerated_files` as set.
    public var maxAcceleratedFiles: Int
    /// The keys OPcache really has (the setting rounded up to one of its primes).
    public var maxCachedKeys: Int
    /// `opcache.memory_consumption`, in MiB.
    public var memoryMiB: Int
    /// OPcache says it is full now.
    public var cacheFull: Bool
    /// Restarts OPcache made because its memory ran out.
    public var outOfMemoryRestarts: Int
    /// PHP files in production (VCS folders left out).
    public var phpFiles: Int
    /// The PHP-FPM master's pid (0 when PHP could not say): pools under one master share its OPcache.
    public var master: Int
    /// The other sites on this server whose pools run under the same master, with the keys each
    /// needs (`sharing(with:)`).
    public var sharedWith: [String: Int] = [:]

    /// Reads the pool script's answer: `enabled=1 max_accelerated_files=… php_files=…`.
    public init?(socket: String, report: String) {
        var values: [String: Int] = [:]
        for pair in report.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Int(parts[1]) else { continue }
            values[String(parts[0])] = value
        }
        guard let enabled = values["enabled"], let setting = values["max_accelerated_files"],
            let files = values["php_files"]
        else { return nil }
        self.socket = socket
        self.enabled = enabled == 1
        maxAcceleratedFiles = setting
        maxCachedKeys = values["max_cached_keys"] ?? setting
        memoryMiB = values["memory_mb"] ?? 0
        cacheFull = values["cache_full"] == 1
        outOfMemoryRestarts = values["oom_restarts"] ?? 0
        phpFiles = files
        master = values["master"] ?? 0
    }

    /// This report with the other sites whose pools share its master's OPcache.
    public func sharing(with others: [(site: String, room: OPcacheRoom)]) -> OPcacheRoom {
        var shared = self
        for other in others where other.room.master != 0 && other.room.master == master && other.room.socket != socket {
            shared.sharedWith[other.site] = max(shared.sharedWith[other.site] ?? 0, other.room.keysNeeded)
        }
        return shared
    }

    /// The keys this site needs: its PHP files in every tree OPcache may hold.
    public var keysNeeded: Int { phpFiles * Self.treesPerSite }

    /// The keys the master's OPcache needs: this site's and those of the sites sharing it.
    public var keysNeededWithSharing: Int { keysNeeded + sharedWith.values.reduce(0, +) }

    /// A setting with room for every site on this master, rounded up to the next 10,000 (sites
    /// not installed with moodle-delivery are not counted: add theirs).
    public var suggestedSetting: Int { max(10_000, (keysNeededWithSharing + 9_999) / 10_000 * 10_000) }

    private var sharingText: String {
        sharedWith.isEmpty
            ? ""
            : " (with \(sharedWith.keys.sorted().joined(separator: ", ")), whose pools share this PHP-FPM master's OPcache: \(keysNeededWithSharing) in all)"
    }

    /// What the administrator should change; empty when the pool has room.
    public var warnings: [String] {
        guard enabled else {
            return [
                "OPcache is off in the PHP-FPM pool at \(socket): every request compiles Moodle afresh. Turn it on (opcache.enable=1) and restart PHP-FPM."
            ]
        }
        var warnings: [String] = []
        if maxCachedKeys < keysNeededWithSharing {
            warnings.append(
                "PHP-FPM's OPcache at \(socket) holds at most \(maxCachedKeys) scripts (opcache.max_accelerated_files=\(maxAcceleratedFiles)), but this site puts up to \(keysNeeded) into it (\(phpFiles) PHP files in each of \(Self.treesPerSite) trees)\(sharingText): when it runs out of keys, the first requests after a switch compile Moodle afresh (measured 2.6 to 5 times slower). Set opcache.max_accelerated_files=\(suggestedSetting) in a file of PHP-FPM's conf.d read after the others (e.g. /etc/php/8.2/fpm/conf.d/99-moodle-delivery.ini: the files are read in name order and the last setting wins), and restart PHP-FPM."
            )
        }
        if cacheFull || outOfMemoryRestarts > 0 {
            warnings.append(
                "PHP-FPM's OPcache at \(socket) is full (\(memoryMiB) MiB, \(outOfMemoryRestarts) restarts for lack of memory): raise opcache.memory_consumption (512 for a Moodle 4.5 site with its copies) and restart PHP-FPM."
            )
        }
        return warnings
    }

    /// One line for the administrator.
    public var summary: String {
        guard enabled else { return "PHP-FPM \(socket): OPcache is off" }
        return
            "PHP-FPM \(socket): OPcache holds \(maxCachedKeys) scripts (max_accelerated_files=\(maxAcceleratedFiles)), \(memoryMiB) MiB; this site needs up to \(keysNeeded) (\(phpFiles) PHP files × \(Self.treesPerSite) trees)\(sharingText)"
    }
}

extension DeliveryEngine {
    /// The OPcache room of every configured PHP-FPM pool, against production's PHP files.
    /// - Returns: a report per pool that answers, and the sockets that did not.
    public func opcacheRoom() throws(DeliveryError) -> (reports: [OPcacheRoom], notRunning: [String]) {
        let sockets = configuration.phpFpmSockets ?? []
        guard !sockets.isEmpty else { return ([], []) }
        let production = layout.path(of: .production)
        let tree = (try? System.realPath(production)) ?? production
        let reports = try opcache(CommandRecorder(onLine: { _ in })).room(codeRoot: tree)
        return (reports, sockets.filter { socket in !reports.contains { $0.socket == socket } })
    }
}
