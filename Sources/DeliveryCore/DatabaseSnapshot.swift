import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The snapshot settings of a site (`database` in the configuration).
public struct SnapshotSettings: Sendable, Codable, Equatable {
    /// Take a snapshot of Moodle's tables before every upgrade (default true). Without one, a
    /// rollback after an upgrade cannot run the older code (Moodle refuses a database ahead of it).
    public var enabled: Bool
    /// How many snapshots to keep; older ones are removed after a new one is taken (default 3).
    public var keep: Int
    /// Where the snapshots go; default `<state directory>/snapshots`.
    public var directory: String?
    /// Seconds a dump or a restore may take (default 4 hours).
    public var timeoutSeconds: Double
    /// How the snapshot is taken (default `auto`: the server's own copy where it may serve, a dump
    /// otherwise).
    public var method: SnapshotMethod

    /// Makes the settings.
    public init(
        enabled: Bool = true, keep: Int = 3, directory: String? = nil, timeoutSeconds: Double = 14400,
        method: SnapshotMethod = .auto
    ) {
        self.enabled = enabled
        self.keep = keep
        self.directory = directory
        self.timeoutSeconds = timeoutSeconds
        self.method = method
    }

    private enum CodingKeys: String, CodingKey {
        case enabled, keep, directory, timeoutSeconds, method
    }

    /// Reads the settings; a member left out keeps its default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = SnapshotSettings()
        enabled = try container.decodeIfPresent(Bool.self, forKey: .enabled) ?? defaults.enabled
        keep = try container.decodeIfPresent(Int.self, forKey: .keep) ?? defaults.keep
        directory = try container.decodeIfPresent(String.self, forKey: .directory)
        timeoutSeconds = try container.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? defaults.timeoutSeconds
        method = try container.decodeIfPresent(SnapshotMethod.self, forKey: .method) ?? defaults.method
    }
}

/// A snapshot of the Moodle database, taken inside the maintenance window just before Moodle's
/// upgrade: what an emergency rollback restores so that the older code runs on data it knows.
public struct DatabaseSnapshot: Sendable, Codable, Equatable {
    /// The delivery it was taken for.
    public var id: String
    /// The dump file (empty for the server's own copy).
    public var file: String
    /// Moodle's `$CFG->dbtype` (`pgsql`, `mariadb`, `mysqli`, `auroramysql`).
    public var databaseType: String
    /// The database name.
    public var database: String
    /// How many of Moodle's tables it holds.
    public var tableCount: Int
    /// When the dump started.
    public var takenAt: Date
    /// The dump's size in bytes.
    public var sizeBytes: Int64
    /// How long the dump took (it adds to the maintenance window).
    public var seconds: Double
    /// The code that runs on this data: production's revision before the delivery.
    public var codeRevision: Revision?
    /// The server's own copy of the database, when the snapshot is one (PostgreSQL), not a dump.
    public var copyDatabase: String?
    /// Where a rollback put the database it replaced by the copy: the copy is then used up.
    public var replacedDatabase: String?

    /// True while a rollback can put the database back to it: the dump is there, or the copy
    /// has not been swapped in yet (a copy dropped behind the helper's back is found by the rollback).
    public var isAvailable: Bool {
        if copyDatabase != nil { return replacedDatabase == nil }
        return (try? System.lstatus(file))?.kind == .regular
    }
}

/// How to reach the Moodle database, read from the site's `config.php` at the moment it is needed
/// (never stored: the password stays in `config.php`).
struct DatabaseConnection: Sendable {
    enum Family: Sendable { case postgres, mysql }

    let type: String
    let family: Family
    let host: String
    let port: Int?
    let socket: String?
    let name: String
    let user: String
    let password: String
    let prefix: String

    /// Moodle's database types the helper can snapshot.
    static func family(of type: String) -> Family? {
        switch type {
        case "pgsql": .postgres
        case "mariadb", "mysqli", "auroramysql": .mysql
        default: nil
        }
    }

    /// PHP that prints the database settings of config.php (ABORT_AFTER_CONFIG: no connection).
    static let reader = """
        define('CLI_SCRIPT', true);
        define('ABORT_AFTER_CONFIG', true);
        require($argv[1] . '/config.php');
        $o = (isset($CFG->dboptions) && is_array($CFG->dboptions)) ? $CFG->dboptions : [];
        echo json_encode([
            'type' => (string)($CFG->dbtype ?? ''), 'host' => (string)($CFG->dbhost ?? ''),
            'name' => (string)($CFG->dbname ?? ''), 'user' => (string)($CFG->dbuser ?? ''),
            'password' => (string)($CFG->dbpass ?? ''), 'prefix' => (string)($CFG->prefix ?? ''),
            'port' => empty($o['dbport']) ? null : (int)$o['dbport'],
            'socket' => empty($o['dbsocket']) ? null : (is_string($o['dbsocket']) ? $o['dbsocket'] : ''),
        ]), "\\n";
        """

    private struct Settings: Decodable {
        var type, host, name, user, password, prefix: String
        var port: Int?
        var socket: String?
    }

    /// Reads the settings with the site's PHP, as the web user. The output holds the password: it
    /// never goes to the log.
    static func read(php: String, codeRoot: String, webUser: UserIdentity) throws(DeliveryError) -> DatabaseConnection {
        let result = try ChildProcess.run(
            Command(php, ["-r", reader, codeRoot], user: webUser, workingDirectory: codeRoot, timeoutSeconds: 60))
        let json = result.standardOutput.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        guard result.succeeded, let settings = try? JSONCoding.decode(Settings.self, from: Array(json.utf8)) else {
            throw DeliveryError(.snapshotFailed, "cannot read the database settings of \(codeRoot)/config.php")
        }
        guard let family = family(of: settings.type) else {
            throw DeliveryError(
                .snapshotFailed,
                "the database type '\(settings.type)' has no snapshot support (PostgreSQL, MariaDB and MySQL have); set \"database\": {\"enabled\": false} in the helper's configuration to upgrade without a snapshot"
            )
        }
        guard settings.prefix.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }),
            !settings.name.isEmpty
        else {
            throw DeliveryError(.snapshotFailed, "config.php's database name or table prefix is not usable")
        }
        return DatabaseConnection(
            type: settings.type, family: family, host: settings.host, port: settings.port, socket: settings.socket,
            name: settings.name, user: settings.user, password: settings.password, prefix: settings.prefix)
    }
}

/// Dumps and restores Moodle's tables with the database's own tools (`pg_dump`/`pg_restore`,
/// `mariadb-dump`/`mariadb`), run as the web user (the database sees the same client as Moodle's),
/// with the password in a private option file, never on a command line.
struct DatabaseTool {
    let connection: DatabaseConnection
    let webUser: UserIdentity
    let recorder: CommandRecorder
    let timeout: Double

    func program(_ names: String...) throws(DeliveryError) -> String {
        for name in names {
            if let path = ChildProcess.locate(name) { return path }
        }
        throw DeliveryError(
            .snapshotFailed,
            "\(names[0]) is not installed (Debian package \(connection.family == .postgres ? "postgresql-client" : "mariadb-client"))"
        )
    }

    /// Runs `body` with the arguments and environment that point the tools at the database. The
    /// password travels in the child's environment (`PGPASSWORD`, `MYSQL_PWD`): never on a command
    /// line, in a file, the log or the audit log. Only the child's own user (the web user, which
    /// reads it from `config.php` anyway) and root can read a process's environment.
    func withCredentials<T>(
        _ body: (_ arguments: [String], _ environment: [String: String]) throws(DeliveryError) -> T
    ) throws(DeliveryError) -> T {
        var arguments: [String] = []
        var environment: [String: String] = [:]
        switch connection.family {
        case .postgres:
            environment["PGPASSWORD"] = connection.password
            environment["PGUSER"] = connection.user
            environment["PGDATABASE"] = connection.name
            environment["PGCONNECT_TIMEOUT"] = "15"
            environment["PGAPPNAME"] = "moodle-delivery"
            // As Moodle's pgsql driver: a socket when one is set for a local host, else TCP.
            if let socket = connection.socket, ["localhost", "127.0.0.1", ""].contains(connection.host) {
                if socket.contains("/") { environment["PGHOST"] = socket }
            } else {
                environment["PGHOST"] = connection.host.isEmpty ? "localhost" : connection.host
            }
            if let port = connection.port { environment["PGPORT"] = String(port) }
        case .mysql:
            environment["MYSQL_PWD"] = connection.password
            arguments = [
                "--user=\(connection.user)", "--host=\(connection.host.isEmpty ? "localhost" : connection.host)",
            ]
            if let port = connection.port { arguments.append("--port=\(port)") }
            if let socket = connection.socket, !socket.isEmpty { arguments.append("--socket=\(socket)") }
        }
        return try body(arguments, environment)
    }

    func command(
        _ program: String, _ arguments: [String], _ environment: [String: String], input: String? = nil,
        output: String? = nil
    ) -> Command {
        var command = Command(
            program, arguments, user: webUser, workingDirectory: "/", timeoutSeconds: timeout,
            extraEnvironment: environment)
        command.standardInputFile = input
        command.standardOutputFile = output
        return command
    }

    /// Runs one SQL statement and returns the lines of its result.
    /// - Parameter more: PostgreSQL only: statements run after it by the same client, each in its
    ///   own transaction (`CREATE DATABASE` may not run inside one); the first that fails stops them.
    /// - Parameter outputLimit: the most bytes of answer taken; an answer as long is refused
    ///   (`snapshotFailed`), never read cut: a schema read in part would tell of tables dropped.
    func query(_ sql: String, then more: [String] = [], outputLimit: Int = 256 * 1024) throws(DeliveryError)
        -> [String]
    {
        precondition(more.isEmpty || connection.family == .postgres)
        let result = try withCredentials { (arguments, environment) throws(DeliveryError) in
            var run: Command
            switch connection.family {
            case .postgres:
                run = command(
                    try program("psql"),
                    ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql] + more.flatMap { ["-c", $0] },
                    environment)
            case .mysql:
                run = command(
                    try program("mariadb", "mysql"),
                    arguments + ["--batch", "--skip-column-names", "-e", sql, connection.name], environment)
            }
            run.outputLimit = outputLimit
            return try ChildProcess.run(run)
        }
        guard result.succeeded else {
            throw DeliveryError(.snapshotFailed, "the database did not answer: \(MoodleCLI.lastLines(result))")
        }
        guard result.standardOutput.utf8.count < outputLimit else {
            throw DeliveryError(
                .snapshotFailed, "the database's answer is larger than \(formatBytes(Int64(outputLimit)))")
        }
        return result.standardOutput.split(whereSeparator: \.isNewline).map { String($0) }.filter { !$0.isEmpty }
    }

    /// `LIKE` pattern of the prefix's tables (the prefix holds only `[a-z0-9_]`).
    var likePattern: String { connection.prefix.replacing("_", with: "\\_") + "%" }

    /// Moodle's tables (those with the site's prefix) in the site's database.
    func tables() throws(DeliveryError) -> [String] {
        switch connection.family {
        case .postgres:
            try query(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE '\(likePattern)' ORDER BY 1"
            )
        case .mysql:
            try query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND table_name LIKE '\(likePattern)' ORDER BY 1"
            )
        }
    }

    /// What Moodle's "does this code match the database" depends on, on the database's side, as
    /// one digest: core's version and release, `allversionshash`, and every plugin's version.
    /// Any upgrade changes it, whoever ran it (the helper, the web installer, another admin).
    func versionsKey() throws(DeliveryError) -> String {
        let prefix = connection.prefix
        let lines = try query(
            "SELECT \(concatenation("name", "value")) FROM \(prefix)config WHERE name IN ('version', 'release', 'allversionshash') UNION ALL SELECT \(concatenation("plugin", "value")) FROM \(prefix)config_plugins WHERE name = 'version' ORDER BY 1",
            outputLimit: 4 << 20)
        guard !lines.isEmpty else { throw DeliveryError(.snapshotFailed, "the database holds no Moodle versions") }
        return hexString(SHA256.hash(data: Array(lines.joined(separator: "\n").utf8)))
    }

    /// `a || '=' || b` in the database's own words (MariaDB's `||` is OR unless told otherwise).
    private func concatenation(_ first: String, _ second: String) -> String {
        connection.family == .postgres ? "\(first) || '=' || \(second)" : "CONCAT(\(first), '=', \(second))"
    }

    /// The size Moodle's tables take in the database, in bytes (an upper bound of the dump's size).
    func estimatedSize() throws(DeliveryError) -> Int64 {
        let lines: [String]
        switch connection.family {
        case .postgres:
            lines = try query(
                "SELECT coalesce(sum(pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass)), 0) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE '\(likePattern)'"
            )
        case .mysql:
            lines = try query(
                "SELECT coalesce(sum(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE '\(likePattern)'"
            )
        }
        return Int64(lines.first?.trimmingWhitespace() ?? "") ?? 0
    }

    /// Dumps Moodle's tables into `file` (written through a temporary name, synced, then renamed).
    /// - Returns: the number of tables dumped.
    func dump(into file: String, tables: [String], lowPriority: Bool = false) throws(DeliveryError) {
        let partial = "\(file).partial"
        defer { try? System.unlink(partial) }
        let result = try withCredentials { (arguments, environment) throws(DeliveryError) in
            switch connection.family {
            case .postgres:
                // Custom format, restorable table by table; one transaction (a consistent view).
                // Not compressed: compression is most of pg_dump's time, and the dump is taken
                // inside the maintenance window (bench/snapshot, 2.1 GB: 12.2 s against 40.8 s,
                // for three times the disk). `--table` patterns take the tables and their sequences.
                var options = ["--format=custom", "--compress=0", "--no-owner", "--no-privileges"]
                if !connection.prefix.isEmpty { options.append("--table=\(connection.prefix)*") }
                var dump = command(try program("pg_dump"), options, environment, output: partial)
                dump.lowPriority = lowPriority
                return try recorder.run(dump)
            case .mysql:
                let options = [
                    "--single-transaction", "--quick", "--no-tablespaces", "--skip-lock-tables", "--hex-blob",
                    "--default-character-set=utf8mb4", connection.name,
                ]
                var dump = command(
                    try program("mariadb-dump", "mysqldump"), arguments + options + tables, environment,
                    output: partial)
                dump.lowPriority = lowPriority
                return try recorder.run(dump)
            }
        }
        guard result.succeeded else {
            throw DeliveryError(.snapshotFailed, "the database dump failed: \(MoodleCLI.lastLines(result))")
        }
        do {
            let fd = try System.open(partial, O_RDONLY)
            defer { System.close(fd) }
            try System.sync(fd)
            try System.writeFileAtomically("\(file).tables", Array(tables.joined(separator: "\n").utf8), mode: 0o600)
            try System.rename(partial, file)
            try System.syncDirectory(parentDirectory(of: file))
        } catch {
            throw DeliveryError(.snapshotFailed, "cannot keep the database dump: \(error)")
        }
    }

    /// Puts Moodle's tables back as they were in the snapshot: the tables created since are
    /// dropped, and every table of the snapshot is dropped and re-created with its rows.
    func restore(_ snapshot: DatabaseSnapshot) throws(DeliveryError) {
        guard (try? System.lstatus(snapshot.file))?.kind == .regular else {
            throw DeliveryError(.databaseRestoreFailed, "the snapshot \(snapshot.file) is missing")
        }
        let kept = Set(
            ((try? System.readFile("\(snapshot.file).tables", limit: 16 << 20)) ?? [])
                .split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) })
        let current: [String]
        do {
            current = try tables()
        } catch {
            throw DeliveryError(.databaseRestoreFailed, error.message)
        }
        let extra = current.filter { !kept.contains($0) }
        if !extra.isEmpty {
            recorder.onLine(
                "Dropping the \(extra.count) tables created since the snapshot: \(extra.joined(separator: ", "))")
            let statement: String
            switch connection.family {
            case .postgres:
                statement =
                    "DROP TABLE IF EXISTS "
                    + extra.map { "\"" + $0.replacing("\"", with: "\"\"") + "\"" }.joined(separator: ", ") + " CASCADE"
            case .mysql:
                statement =
                    "DROP TABLE IF EXISTS "
                    + extra.map { "`" + $0.replacing("`", with: "``") + "`" }.joined(separator: ", ")
            }
            do {
                _ = try query(statement)
            } catch {
                throw DeliveryError(.databaseRestoreFailed, error.message)
            }
        }
        let result = try withCredentials { (arguments, environment) throws(DeliveryError) in
            switch connection.family {
            case .postgres:
                try recorder.run(
                    command(
                        try program("pg_restore"),
                        [
                            "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                            "--exit-on-error", "--dbname=\(connection.name)",
                        ], environment, input: snapshot.file))
            case .mysql:
                try recorder.run(
                    command(
                        try program("mariadb", "mysql"),
                        arguments + ["--default-character-set=utf8mb4", connection.name], environment,
                        input: snapshot.file))
            }
        }
        guard result.succeeded else {
            throw DeliveryError(
                .databaseRestoreFailed, "restoring the database snapshot failed: \(MoodleCLI.lastLines(result))")
        }
    }

    /// Removes all but the newest `keep` snapshots of `directory` (never `protecting`).
    static func prune(_ directory: String, keep: Int, protecting: String?) -> [String] {
        guard let entries = try? System.listDirectory(directory) else { return [] }
        let dumps = entries.map(\.name).filter { $0.hasSuffix(".pgdump") || $0.hasSuffix(".sql") }
            .compactMap { name -> (String, Int)? in
                guard let status = try? System.lstatus("\(directory)/\(name)") else { return nil }
                return (name, status.modificationSeconds)
            }
            .sorted { $0.1 > $1.1 }
        var removed: [String] = []
        for (name, _) in dumps.dropFirst(max(keep, 1)) where "\(directory)/\(name)" != protecting {
            try? System.unlink("\(directory)/\(name)")
            try? System.unlink("\(directory)/\(name).tables")
            removed.append(name)
        }
        return removed
    }
}
