#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension DatabaseConnection {
    /// The same server, user and prefix, another database.
    func named(_ database: String) -> DatabaseConnection {
        DatabaseConnection(
            type: type, family: family, host: host, port: port, socket: socket, name: database, user: user,
            password: password, prefix: prefix)
    }

    /// True when the server runs on this machine (its socket, or a loopback host).
    var isLocal: Bool { ["", "localhost", "127.0.0.1", "::1"].contains(host) || (socket ?? "").hasPrefix("/") }
}

/// The database side of a rehearsal: a private copy of Moodle's tables in a database of its own,
/// made, read and dropped with the site's own database user (the copy is never made or dropped
/// with more rights than Moodle has). The copy's name is always one `Rehearsal.databaseName`
/// made; nothing else is ever dropped.
extension DatabaseTool {
    /// The same tool on another database of the same server.
    func on(_ database: String) -> DatabaseTool {
        DatabaseTool(connection: connection.named(database), webUser: webUser, recorder: recorder, timeout: timeout)
    }

    static func identifier(_ name: String, _ family: DatabaseConnection.Family) -> String {
        family == .postgres
            ? "\"" + name.replacing("\"", with: "\"\"") + "\"" : "`" + name.replacing("`", with: "``") + "`"
    }

    static func literal(_ text: String) -> String { "'" + text.replacing("'", with: "''") + "'" }

    /// Creates the copy's database with the site database's encoding and collation.
    func createDatabase(_ name: String) throws(DeliveryError) {
        precondition(Rehearsal.isCopyName(name))
        let statement: String
        do {
            switch connection.family {
            case .postgres:
                let fields =
                    (try query(
                        "SELECT pg_encoding_to_char(encoding) || chr(31) || datcollate || chr(31) || datctype FROM pg_database WHERE datname = current_database()"
                    ).first ?? "").split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
                let options =
                    fields.count == 3
                    ? " TEMPLATE template0 ENCODING \(Self.literal(fields[0])) LC_COLLATE \(Self.literal(fields[1])) LC_CTYPE \(Self.literal(fields[2]))"
                    : ""
                statement = "CREATE DATABASE \(Self.identifier(name, .postgres))\(options)"
            case .mysql:
                let fields =
                    (try query(
                        "SELECT CONCAT(default_character_set_name, CHAR(31), default_collation_name) FROM information_schema.schemata WHERE schema_name = DATABASE()"
                    ).first ?? "").split(separator: "\u{1F}").map(String.init)
                let options = fields.count == 2 ? " CHARACTER SET \(fields[0]) COLLATE \(fields[1])" : ""
                statement = "CREATE DATABASE \(Self.identifier(name, .mysql))\(options)"
            }
        } catch {
            throw DeliveryError(.cannotRehearse, "cannot read the site database's encoding: \(error.message)")
        }
        do {
            _ = try query(statement)
        } catch {
            let lowered = error.message.lowercased()
            guard lowered.contains("permission denied") || lowered.contains("access denied") else {
                throw DeliveryError(.cannotRehearse, "cannot create the rehearsal's database \(name): \(error.message)")
            }
            throw DeliveryError(.cannotRehearse, "\(connection.user) may not create databases: \(grantAdvice)")
        }
    }

    /// What a database administrator runs once so that the site's user may make (and drop) the
    /// rehearsal's copies, and nothing more.
    var grantAdvice: String {
        switch connection.family {
        case .postgres:
            "a rehearsal copies Moodle's tables into a database of its own, made by Moodle's database user; as PostgreSQL's superuser, run: ALTER ROLE \(Self.identifier(connection.user, .postgres)) CREATEDB;"
        case .mysql:
            "a rehearsal copies Moodle's tables into a database of its own, made by Moodle's database user; as MariaDB's root, run: GRANT ALL PRIVILEGES ON `\(Rehearsal.databaseStem(site: connection.name).replacing("_", with: "\\_"))\\_rehearsal\\_%`.* TO '\(connection.user)'@'\(connection.isLocal ? "localhost" : "%")'; (the host part as Moodle's user has it)"
        }
    }

    /// Drops a copy's database (and, on PostgreSQL, the sessions still on it).
    func dropDatabase(_ name: String) throws(DeliveryError) {
        guard Rehearsal.isCopyName(name), name != connection.name else {
            throw DeliveryError(.cannotRehearse, "refusing to drop \(name): not a rehearsal's copy")
        }
        switch connection.family {
        case .postgres: _ = try query("DROP DATABASE IF EXISTS \(Self.identifier(name, .postgres)) WITH (FORCE)")
        case .mysql: _ = try query("DROP DATABASE IF EXISTS \(Self.identifier(name, .mysql))")
        }
    }

    /// True when the server has a database of that name.
    func databaseExists(_ name: String) throws(DeliveryError) -> Bool {
        switch connection.family {
        case .postgres: !(try query("SELECT 1 FROM pg_database WHERE datname = \(Self.literal(name))")).isEmpty
        case .mysql:
            !(try query("SELECT 1 FROM information_schema.schemata WHERE schema_name = \(Self.literal(name))")).isEmpty
        }
    }

    /// Loads a dump `dump(into:tables:)` wrote into this tool's database.
    func load(_ file: String) throws(DeliveryError) {
        let result = try withCredentials { (arguments, environment) throws(DeliveryError) in
            switch connection.family {
            case .postgres:
                var command = command(
                    try program("pg_restore"),
                    ["--no-owner", "--no-privileges", "--exit-on-error", "--dbname=\(connection.name)"], environment,
                    input: file)
                command.lowPriority = true
                return try recorder.run(command, echo: false)
            case .mysql:
                var command = command(
                    try program("mariadb", "mysql"),
                    arguments + ["--default-character-set=utf8mb4", connection.name], environment, input: file)
                command.lowPriority = true
                return try recorder.run(command, echo: false)
            }
        }
        guard result.succeeded else {
            throw DeliveryError(
                .cannotRehearse, "loading Moodle's tables into the copy failed: \(MoodleCLI.lastLines(result))")
        }
    }

    /// The most bytes a reading of the schema or the versions may take (Moodle 4.5's is about 300 kB).
    static let schemaLimit = 64 << 20

    /// The columns of Moodle's tables (the prefix's).
    func columns() throws(DeliveryError) -> [SchemaColumn] {
        let lines: [String]
        switch connection.family {
        case .postgres:
            lines = try query(
                "SELECT table_name || chr(31) || column_name || chr(31) || data_type || coalesce('(' || character_maximum_length || ')', '') || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END || coalesce(' default ' || column_default, '') FROM information_schema.columns WHERE table_schema = current_schema() AND table_name LIKE '\(likePattern)' ORDER BY 1",
                outputLimit: Self.schemaLimit
            )
        case .mysql:
            lines = try query(
                "SELECT CONCAT(table_name, CHAR(31), column_name, CHAR(31), column_type, IF(is_nullable = 'NO', ' not null', ''), IFNULL(CONCAT(' default ', column_default), '')) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name LIKE '\(likePattern)' ORDER BY 1",
                outputLimit: Self.schemaLimit
            )
        }
        return lines.compactMap { line in
            let fields = line.split(separator: "\u{1F}", maxSplits: 2, omittingEmptySubsequences: false).map(
                String.init)
            return fields.count == 3 ? SchemaColumn(table: fields[0], column: fields[1], definition: fields[2]) : nil
        }
    }

    /// The versions Moodle keeps: the core's (`config`) and each plugin's (`config_plugins`).
    func componentVersions() throws(DeliveryError) -> [String: String] {
        let joiner = connection.family == .postgres ? "|| chr(31) ||" : ", CHAR(31),"
        let wrap = { (inner: String) in connection.family == .postgres ? inner : "CONCAT(\(inner))" }
        var versions: [String: String] = [:]
        for line in try query(
            "SELECT \(wrap("'core' \(joiner) value")) FROM \(connection.prefix)config WHERE name = 'version'")
        {
            let fields = line.split(separator: "\u{1F}").map(String.init)
            if fields.count == 2 { versions[fields[0]] = fields[1] }
        }
        let plugins =
            (try? query(
                "SELECT \(wrap("plugin \(joiner) value")) FROM \(connection.prefix)config_plugins WHERE name = 'version'",
                outputLimit: Self.schemaLimit))
            ?? []
        for line in plugins {
            let fields = line.split(separator: "\u{1F}").map(String.init)
            if fields.count == 2 { versions[fields[0]] = fields[1] }
        }
        return versions
    }

    /// The free bytes of the database server's data folder, when the server is on this machine
    /// and tells its folder to Moodle's user (MariaDB always does; PostgreSQL to a superuser or a
    /// member of `pg_read_all_settings`); nil otherwise.
    func serverFreeBytes() -> Int64? {
        guard connection.isLocal else { return nil }
        let statement = connection.family == .postgres ? "SHOW data_directory" : "SELECT @@datadir"
        guard let folder = (try? query(statement))?.first?.trimmingWhitespace(), folder.hasPrefix("/") else {
            return nil
        }
        return try? System.availableBytes(folder)
    }

    /// The versions that differ between two readings, as component upgrades.
    static func upgrades(from before: [String: String], to after: [String: String]) -> [ComponentUpgrade] {
        Set(before.keys).union(after.keys).sorted().compactMap { component in
            before[component] == after[component]
                ? nil : ComponentUpgrade(component: component, from: before[component], to: after[component])
        }
    }
}
