import Crypto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How a site's database snapshot is taken (`database.method` in the configuration).
public enum SnapshotMethod: String, Sendable, Codable, Equatable, CaseIterable {
    /// The server's own copy where it can serve (`copyObstacle` finds none), a dump otherwise.
    case auto
    /// Always a dump of Moodle's tables (`pg_dump`, `mariadb-dump`).
    case dump
    /// Always the server's own copy: a restore that cannot make one is refused, and nothing changes.
    case copy
}

/// The names of the databases the helper makes as snapshots and keeps after a rollback:
/// `<stem>_snapshot_<operation id>` and `<stem>_replaced_<operation id>`, where the stem is the
/// site database's name (its first 20 letters) and 6 hex digits of its digest, so that two sites
/// on one server whose names start alike never take each other's. At most 62 bytes (PostgreSQL
/// allows 63). Only names of this shape, owned by the site's role, are ever dropped or renamed.
enum DatabaseCopyName {
    enum Kind: String { case snapshot, replaced }

    static func stem(site: String) -> String {
        "\(Rehearsal.databaseStem(site: site))_\(hexString(SHA256.hash(data: Array(site.utf8))).prefix(6))"
    }

    /// The name of a copy of `kind` made by operation `id`.
    static func make(_ kind: Kind, site: String, id: String) -> String {
        "\(stem(site: site))_\(kind.rawValue)_\(OperationIdentifier.databaseForm(id))"
    }

    /// The kind and the operation id of a name `make` made for `site`, or nil for any other name.
    static func parse(_ name: String, site: String) -> (kind: Kind, id: String)? {
        let stem = stem(site: site) + "_"
        guard name.hasPrefix(stem) else { return nil }
        let rest = name.dropFirst(stem.count)
        for kind in [Kind.snapshot, .replaced] where rest.hasPrefix(kind.rawValue + "_") {
            return OperationIdentifier.fromDatabaseForm(rest.dropFirst(kind.rawValue.count + 1)).map { (kind, $0) }
        }
        return nil
    }

    /// The name the site's database takes when a rollback swaps `snapshot` in.
    static func replaced(for snapshot: String, site: String) -> String? {
        parse(snapshot, site: site).flatMap { $0.kind == .snapshot ? make(.replaced, site: site, id: $0.id) : nil }
    }
}

/// The snapshot as the database server's own copy (PostgreSQL's `CREATE DATABASE … TEMPLATE`),
/// and the rollback as two renames: seconds where a dump and a restore take minutes on a site
/// with years of logs (bench/snapshot). Every statement runs as the site's own database role,
/// from the server's maintenance database (a database cannot be copied or renamed by a session
/// on it).
extension DatabaseTool {
    /// Why the server's own copy cannot be this site's snapshot, in a sentence, or nil when it
    /// can: PostgreSQL, a role that may create databases and owns the site's, a database holding
    /// nothing but Moodle's tables (a rollback swaps the whole database: anything else in it would
    /// go back in time too), and a maintenance database the role may reach.
    /// - Returns: the obstacle, and otherwise the tool on the maintenance database and the
    ///   server's version (`server_version_num`), which the copy needs.
    func copyObstacle() -> (obstacle: String?, outside: DatabaseTool?, serverVersion: Int) {
        guard connection.family == .postgres else {
            return ("only PostgreSQL copies a database by itself", nil, 0)
        }
        let facts: [String]
        do {
            facts =
                (try query(
                    """
                    SELECT current_setting('server_version_num') || chr(31) \
                    || (SELECT (rolcreatedb OR rolsuper)::text FROM pg_roles WHERE rolname = current_user) || chr(31) \
                    || pg_has_role(d.datdba, 'MEMBER')::text || chr(31) \
                    || (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
                    AND NOT (n.nspname = current_schema() AND c.relname LIKE '\(likePattern)'))::text \
                    FROM pg_database d WHERE d.datname = current_database()
                    """
                ).first ?? "").split(separator: "\u{1F}").map(String.init)
        } catch {
            return ("the database did not say what the role may do: \(error.message)", nil, 0)
        }
        guard facts.count == 4 else { return ("the database did not say what the role may do", nil, 0) }
        let role = connection.user
        let obstacle: String? =
            if facts[1] != "true" {
                "the role \(role) may not create databases (as PostgreSQL's superuser: ALTER ROLE \(Self.identifier(role, .postgres)) CREATEDB;)"
            } else if facts[2] != "true" {
                "the role \(role) does not own the database \(connection.name)"
            } else if facts[3] != "0" {
                "the database \(connection.name) holds \(facts[3]) tables or views besides Moodle's (prefix '\(connection.prefix)')"
            } else { nil }
        if let obstacle { return (obstacle, nil, 0) }
        guard let outside = maintenanceTool() else {
            return ("the role \(role) may not connect to the maintenance database (postgres or template1)", nil, 0)
        }
        return (nil, outside, Int(facts[0]) ?? 0)
    }

    /// The tool on a database of the server other than the site's (`postgres`, else
    /// `template1`) that the role may connect to, or nil.
    func maintenanceTool() -> DatabaseTool? {
        for name in ["postgres", "template1"] where name != connection.name {
            let outside = on(name)
            if (try? outside.query("SELECT 1")) == ["1"] { return outside }
        }
        return nil
    }

    /// Copies the site's database into `name`, a database nobody may connect to: first the
    /// sessions of the site's own role still on it are ended (maintenance mode holds users out;
    /// what remains is a cron task or an idle pooled connection, whose transaction is rolled back
    /// and which Moodle runs again); sessions of other roles make it fail. Run on the maintenance
    /// database's tool (`copyObstacle`).
    /// - Parameters:
    ///   - site: the site's database.
    ///   - large: file by file (FILE_COPY: the fastest for gigabytes, bench/snapshot) rather than
    ///     through the write-ahead log (the fastest for small ones: no checkpoint).
    ///   - serverVersion: `copyObstacle`'s (a strategy is chosen from PostgreSQL 15 on).
    /// - Returns: how many sessions were ended.
    func copyDatabase(_ site: String, into name: String, large: Bool, serverVersion: Int) throws(DeliveryError)
        -> Int
    {
        precondition(DatabaseCopyName.parse(name, site: site)?.kind == .snapshot)
        let strategy = serverVersion >= 150000 ? (large ? " STRATEGY FILE_COPY" : " STRATEGY WAL_LOG") : ""
        var attempt = 0
        while true {
            attempt += 1
            // The server waits 5 s for them and fails: said at once instead.
            let others = try query(
                "SELECT usename FROM pg_stat_activity WHERE datname = \(Self.literal(site)) AND usename <> current_user ORDER BY 1"
            )
            guard others.isEmpty else {
                throw DeliveryError(
                    .snapshotFailed,
                    "the server could not copy the database \(site): other roles have \(others.count) session\(others.count == 1 ? "" : "s") on it (\(Set(others).sorted().joined(separator: ", "))), and the helper ends only those of Moodle's role"
                )
            }
            do {
                let ended = try query(
                    endSessionsStatement(on: site),
                    then: [
                        "CREATE DATABASE \(Self.identifier(name, .postgres)) TEMPLATE \(Self.identifier(site, .postgres))\(strategy)",
                        "ALTER DATABASE \(Self.identifier(name, .postgres)) ALLOW_CONNECTIONS false",
                    ])
                return Int(ended.first ?? "") ?? 0
            } catch {
                _ = try? query("DROP DATABASE IF EXISTS \(Self.identifier(name, .postgres))")
                // A session that came between the end of the others and the copy (a cron run
                // that starts, sees maintenance mode and stops) is ended on a second try.
                guard attempt < 2, error.message.contains("being accessed by other users") else {
                    throw DeliveryError(
                        .snapshotFailed, "the server could not copy the database \(site): \(error.message)")
                }
            }
        }
    }

    /// Ends the sessions of the role on database `name`, but never this one; answers how many.
    private func endSessionsStatement(on name: String) -> String {
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = \(Self.literal(name)) AND usename = current_user AND pid <> pg_backend_pid()"
    }

    /// The size of a database on the server, in bytes (0 when it does not say).
    func databaseSize(_ name: String) -> Int64 {
        Int64((try? query("SELECT pg_database_size(\(Self.literal(name)))"))?.first ?? "") ?? 0
    }

    /// Puts the snapshot copy in the site database's place by two renames, the site's database
    /// kept under `DatabaseCopyName.replaced` (not connectable, so nothing writes it; dropped by
    /// `pruneCopies` like the snapshots). Before the first rename the copy gets the site
    /// database's owner, grants, database-wide settings and connection limit. Run again after an
    /// interruption, it finishes what was left: the second rename when the first was done, nothing
    /// when both were. Run on the maintenance database's tool.
    /// - Parameter between: called between the two renames (the site has no database then).
    /// - Returns: the name the replaced database has now.
    func swapIn(_ snapshot: String, for site: String, between: () -> Void) throws(DeliveryError) -> String {
        guard let replaced = DatabaseCopyName.replaced(for: snapshot, site: site) else {
            throw DeliveryError(.databaseRestoreFailed, "\(snapshot) is not a snapshot of \(site)")
        }
        let (siteName, snapshotName, replacedName) = (
            Self.identifier(site, .postgres), Self.identifier(snapshot, .postgres), Self.identifier(replaced, .postgres)
        )
        let present = Set(
            try query(
                "SELECT datname FROM pg_database WHERE datname IN (\(Self.literal(site)), \(Self.literal(snapshot)), \(Self.literal(replaced)))"
            ))
        guard present.contains(snapshot) else {
            guard present.contains(site), present.contains(replaced) else {
                throw DeliveryError(.databaseRestoreFailed, "the snapshot database \(snapshot) is missing")
            }
            // Both renames were done before an interruption.
            _ = try query("ALTER DATABASE \(siteName) ALLOW_CONNECTIONS true")
            return replaced
        }
        if present.contains(site) {
            guard !present.contains(replaced) else {
                throw DeliveryError(
                    .databaseRestoreFailed, "\(replaced) already exists: the snapshot \(snapshot) was swapped in before"
                )
            }
            let carried = try query(carryStatements(from: site, to: snapshot))
            _ = try query(
                endSessionsStatement(on: site),
                then: carried + [
                    "ALTER DATABASE \(siteName) RENAME TO \(replacedName)",
                    "ALTER DATABASE \(replacedName) ALLOW_CONNECTIONS false",
                ])
            between()
        } else if !present.contains(replaced) {
            throw DeliveryError(.databaseRestoreFailed, "the site's database \(site) is missing")
        }
        _ = try query(
            "ALTER DATABASE \(snapshotName) RENAME TO \(siteName)",
            then: ["ALTER DATABASE \(siteName) ALLOW_CONNECTIONS true"])
        return replaced
    }

    /// A query whose rows are the statements that give database `to` what is set on database
    /// `from` itself (owner, grants, database-wide settings, connection limit); PostgreSQL writes
    /// every name and value into them (`format` with %I and %L).
    private func carryStatements(from: String, to: String) -> String {
        let (source, target) = (Self.literal(from), Self.literal(to))
        return """
            SELECT s FROM (\
            SELECT 1 AS o, format('ALTER DATABASE %I OWNER TO %I', \(target), pg_get_userbyid(datdba)) AS s FROM pg_database WHERE datname = \(source) \
            UNION ALL SELECT 2, format('REVOKE ALL ON DATABASE %I FROM PUBLIC', \(target)) FROM pg_database WHERE datname = \(source) AND datacl IS NOT NULL \
            UNION ALL SELECT 3, format('GRANT %s ON DATABASE %I TO %s%s', a.privilege_type, \(target), \
            CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END, \
            CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = \(source) \
            UNION ALL SELECT 4, format('ALTER DATABASE %I SET %I TO %L', \(target), split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)) \
            FROM pg_db_role_setting r JOIN pg_database d ON r.setdatabase = d.oid, unnest(r.setconfig) c WHERE r.setrole = 0 AND d.datname = \(source) \
            UNION ALL SELECT 5, format('ALTER DATABASE %I CONNECTION LIMIT %s', \(target), datconnlimit) FROM pg_database WHERE datname = \(source) AND datconnlimit <> -1\
            ) t ORDER BY o
            """
    }

    /// Drops all but the newest `keep` snapshot copies, and all but the newest `keep` replaced
    /// databases, of the site (never one of `protecting`). Run on the maintenance database's tool.
    /// - Returns: the names dropped.
    func pruneCopies(of site: String, keep: Int, protecting: Set<String>) -> [String] {
        let pattern = DatabaseCopyName.stem(site: site).replacing("_", with: "\\_") + "\\_%"
        guard
            let names = try? query(
                "SELECT datname FROM pg_database WHERE datname LIKE \(Self.literal(pattern)) AND pg_has_role(datdba, 'MEMBER')"
            )
        else { return [] }
        var dropped: [String] = []
        for kind in [DatabaseCopyName.Kind.snapshot, .replaced] {
            let ofKind = names.compactMap { name -> (String, String)? in
                guard let parsed = DatabaseCopyName.parse(name, site: site), parsed.kind == kind else { return nil }
                return (name, parsed.id)
            }
            // Operation ids begin with their UTC time: the newest sort last.
            for (name, _) in ofKind.sorted(by: { $0.1 > $1.1 }).dropFirst(max(keep, 1))
            where !protecting.contains(name) {
                if (try? query("DROP DATABASE IF EXISTS \(Self.identifier(name, .postgres))")) != nil {
                    dropped.append(name)
                }
            }
        }
        return dropped
    }
}
