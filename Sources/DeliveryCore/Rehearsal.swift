#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One column of one of Moodle's tables, as the database describes it.
public struct SchemaColumn: Sendable, Codable, Equatable, Hashable {
    public var table: String
    public var column: String
    /// The type, nullability and default in the database's own words (`bigint not null`).
    public var definition: String

    public init(table: String, column: String, definition: String) {
        self.table = table
        self.column = column
        self.definition = definition
    }
}

/// What Moodle's upgrade changed in the schema of the database copy: tables and columns added,
/// dropped or changed (type, nullability, default).
public struct SchemaDiff: Sendable, Codable, Equatable {
    public struct ColumnChange: Sendable, Codable, Equatable {
        /// `table.column`.
        public var column: String
        public var before: String
        public var after: String
    }

    public var addedTables: [String] = []
    public var droppedTables: [String] = []
    /// `table.column definition`.
    public var addedColumns: [String] = []
    public var droppedColumns: [String] = []
    public var changedColumns: [ColumnChange] = []

    public init() {}

    /// True when the upgrade left the schema as it was.
    public var isEmpty: Bool {
        addedTables.isEmpty && droppedTables.isEmpty && addedColumns.isEmpty && droppedColumns.isEmpty
            && changedColumns.isEmpty
    }

    /// The difference between two readings of the schema. The columns of a table added (or
    /// dropped) are listed with it, not again one by one.
    public static func between(_ before: [SchemaColumn], _ after: [SchemaColumn]) -> SchemaDiff {
        var diff = SchemaDiff()
        let tablesBefore = Set(before.map(\.table))
        let tablesAfter = Set(after.map(\.table))
        diff.addedTables = tablesAfter.subtracting(tablesBefore).sorted()
        diff.droppedTables = tablesBefore.subtracting(tablesAfter).sorted()
        let old = Dictionary(
            before.map { ("\($0.table).\($0.column)", $0) }, uniquingKeysWith: { first, _ in first })
        let new = Dictionary(
            after.map { ("\($0.table).\($0.column)", $0) }, uniquingKeysWith: { first, _ in first })
        for (key, column) in new.sorted(by: { $0.key < $1.key }) {
            if let was = old[key] {
                if was.definition != column.definition {
                    diff.changedColumns.append(
                        ColumnChange(column: key, before: was.definition, after: column.definition))
                }
            } else if tablesBefore.contains(column.table) {
                diff.addedColumns.append("\(key) \(column.definition)")
            }
        }
        for (key, column) in old.sorted(by: { $0.key < $1.key }) where new[key] == nil {
            if tablesAfter.contains(column.table) { diff.droppedColumns.append("\(key) \(column.definition)") }
        }
        return diff
    }
}

/// A component whose version the upgrade changed in the database copy (`core` for Moodle itself).
public struct ComponentUpgrade: Sendable, Codable, Equatable {
    public var component: String
    /// nil: newly installed.
    public var from: String?
    /// nil: uninstalled.
    public var to: String?
}

/// Where Moodle's upgrade stopped on the copy, and why.
public struct RehearsalFailure: Sendable, Codable, Equatable {
    /// The component whose upgrade was running (`core` for Moodle itself), when the output says.
    public var component: String?
    /// The version that component had reached in the copy (its last upgrade savepoint).
    public var reachedVersion: String?
    /// Moodle's message.
    public var message: String

    /// Reads Moodle's CLI upgrade output: each component's upgrade starts with a heading
    /// (`-->local_foo`, `-->System`) and ends with `++ Success … ++`; an error is printed between
    /// `!!!` marks, or by the default exception handler. The failing component is the last one
    /// started and not ended.
    static func parse(_ output: String, exitDescription: String) -> RehearsalFailure {
        var running: String?
        var message: String?
        var handler: String?
        for rawLine in output.split(whereSeparator: \.isNewline) {
            let line = terminalSafe(String(rawLine)).trimmingWhitespace()
            if line.hasPrefix("-->") {
                let name = String(line.dropFirst(3)).trimmingWhitespace()
                running = name == "System" || name.isEmpty ? "core" : name
            } else if line.hasPrefix("++") && line.hasSuffix("++") {
                running = nil
            } else if message == nil, line.hasPrefix("!!!"), line.hasSuffix("!!!"), line.count > 6 {
                message = String(line.dropFirst(3).dropLast(3)).trimmingWhitespace()
            } else if handler == nil, line.hasPrefix("Default exception handler:") {
                handler = String(line.dropFirst("Default exception handler:".count)).trimmingWhitespace()
            }
        }
        let tail = output.split(whereSeparator: \.isNewline).suffix(3).map { terminalSafe(String($0)) }
            .joined(separator: " | ")
        let text = message ?? handler ?? (tail.isEmpty ? exitDescription : tail)
        return RehearsalFailure(component: running, message: String(text.prefix(2000)))
    }
}

/// The result of one rehearsal: Moodle's upgrade of one exact revision, run on a private copy of
/// the site's database while production kept serving (docs/protocol.md, *Rehearsal*).
public struct Rehearsal: Sendable, Codable, Equatable {
    /// The rehearsal's operation id (its database copy's name derives from it).
    public var id: String
    public var startedAt: Date
    public var finishedAt: Date
    /// The exact revision rehearsed: what Update brings when it follows this rehearsal.
    public var revision: Revision
    /// Production's revision the rehearsal started from (before the delivery).
    public var base: Revision
    /// True when it tried production's own tree, already updated (state `updated`); false when
    /// it tried the upstream's revision on a copy of production (production unchanged).
    public var updatedProduction: Bool
    public var passed: Bool
    /// How long `upgrade.php` ran on the copy: the prediction of the upgrade's part of the
    /// maintenance window. nil when no upgrade was pending.
    public var upgradeSeconds: Double?
    /// The whole rehearsal, copies and cleanup included.
    public var totalSeconds: Double
    /// The database copy: what Moodle's tables take in the database, and how long copying took.
    public var databaseCopyBytes: Int64
    public var databaseCopySeconds: Double
    public var upgraded: [ComponentUpgrade] = []
    public var schema = SchemaDiff()
    public var failure: RehearsalFailure?
    /// Critical results of Moodle's checks on the upgraded copy that it did not have before.
    public var newCriticalChecks: [String] = []
    /// Critical results that were there before the upgrade as well.
    public var knownCriticalChecks: [String] = []
    /// What was not checked and why (no room figure from the database server, say).
    public var remarks: [String] = []
    /// Said to people: the outcome, in notices.
    public var notices: [Notice] = []

    /// The name of a rehearsal's database copy: the site's database name (its first 20
    /// characters of `[a-z0-9_]`), `_rehearsal_`, then the rehearsal's id (`20261204t101500z_1a2b3c4d`):
    /// 56 characters at most, within PostgreSQL's and MariaDB's limits. `isCopyName` recognises it.
    static func databaseName(site: String, id: String) -> String {
        "\(databaseStem(site: site))_rehearsal_\(OperationIdentifier.databaseForm(id))"
    }

    /// The part of a copy's name that comes from the site's database name.
    static func databaseStem(site: String) -> String {
        let stem = String(
            site.lowercased().unicodeScalars.filter {
                ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "_"
            }
            .prefix(20).map(Character.init))
        return stem.isEmpty ? "moodle" : stem
    }

    /// True for a name `databaseName` makes: the only databases the helper ever drops.
    static func isCopyName(_ name: String) -> Bool {
        guard name.utf8.count <= 63, let range = name.range(of: "_rehearsal_", options: .backwards) else {
            return false
        }
        return OperationIdentifier.fromDatabaseForm(name[range.upperBound...]) != nil
    }
}

/// The rehearsal options of a site (`rehearsal` in the configuration).
public struct RehearsalOptions: Sendable, Codable, Equatable {
    /// Run all rehearses first when the upstream brings a version change and no passed
    /// rehearsal of that revision exists; a failed rehearsal stops it before anything changed.
    public var beforeRunAll: Bool

    public init(beforeRunAll: Bool = false) {
        self.beforeRunAll = beforeRunAll
    }

    private enum CodingKeys: String, CodingKey { case beforeRunAll }

    /// Reads the options; a member left out keeps its default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        beforeRunAll = try container.decodeIfPresent(Bool.self, forKey: .beforeRunAll) ?? false
    }
}

/// What a rehearsal under way has made, written before it makes anything: the next rehearsal
/// and `recover` remove what a rehearsal killed on its way left (its database, its folder, its
/// upgrade still running).
struct RehearsalLeftovers: Sendable, Codable, Equatable {
    var id: String
    var database: String?
    var folder: String
    var upgradeProcessGroup: Int32?

    static func file(in stateDirectory: String) -> String { "\(stateDirectory)/rehearsal-running.json" }
}

/// The settings of a site whose rehearsal runs: `config.php` of the site, run unchanged from a
/// private folder whose `lib/setup.php` first points `$CFG` at the copies, then loads Moodle's
/// own bootstrap from the rehearsal's tree.
enum RehearsalPHP {
    /// `$CFG` members removed before the rehearsal's own are set: every folder and file of the
    /// site (its caches, temp, sessions, the component cache), and whatever sends a request or
    /// keeps state elsewhere (sessions and caches in Redis or Memcached, a file system in the
    /// cloud, the test sites' switches).
    static let removedPattern = "/(dir|root|path)$|^(session_|behat_|phpunit_|alternative_|redis|memcache|altcache)/i"

    /// True when `config.php` loads Moodle's bootstrap relative to itself (`__DIR__` or
    /// `dirname(__FILE__)`), the way Moodle writes it: only then can the rehearsal put its own
    /// `lib/setup.php` in between. A `config.php` naming an absolute path would load the site's
    /// own bootstrap with the site's own database.
    static func loadsSetupRelatively(_ text: String) -> Bool {
        var rest = text[...]
        var found = false
        while let range = rest.range(of: "setup.php") {
            found = true
            let before = rest[..<range.lowerBound].suffix(80)
            let statement = before.split(separator: ";").last.map(String.init) ?? String(before)
            guard statement.contains("__DIR__") || statement.contains("dirname(__FILE__)") else { return false }
            rest = rest[range.upperBound...]
        }
        return found
    }

    /// A PHP single-quoted string.
    static func quoted(_ text: String) -> String {
        "'" + text.replacing("\\", with: "\\\\").replacing("'", with: "\\'") + "'"
    }

    /// The tree's `config.php`: loads the site's settings from the private folder.
    static func treeConfig(settingsFolder: String) -> String {
        """
        <?php
        // Written by moodle-delivery for a rehearsal of Moodle's upgrade on a database copy. The
        // site's own config.php runs from the folder below; its lib/setup.php points $CFG at the
        // copies, then loads Moodle's bootstrap from this tree.
        require(\(quoted(settingsFolder + "/config.php")));

        """
    }

    /// The private folder's `lib/setup.php` (and `public/lib/setup.php`, Moodle 5.1's layout).
    static func setupStub(
        database: String, dataroot: String, treeSetup: String
    ) -> String {
        """
        <?php
        // moodle-delivery rehearsal: the site's config.php has set $CFG; point it at the copies
        // (the database copy, a scratch dataroot), with mail, outgoing HTTP and cron off.
        define('MOODLE_DELIVERY_REHEARSAL', true);
        foreach (array_keys(get_object_vars($CFG)) as $name) {
            if (preg_match(\(quoted(removedPattern)), $name) && $name !== 'admin') {
                unset($CFG->$name);
            }
        }
        $CFG->dbname = \(quoted(database));
        $CFG->dataroot = \(quoted(dataroot));
        $CFG->wwwroot = 'https://rehearsal.invalid';
        $CFG->noemailever = true;
        $CFG->smtphosts = '';
        $CFG->proxyhost = '127.0.0.1';
        $CFG->proxyport = 9;
        $CFG->proxytype = 'HTTP';
        $CFG->proxybypass = '';
        $CFG->cron_enabled = false;
        $CFG->disableupdatenotifications = true;
        $CFG->site_is_public = false;
        $CFG->session_handler_class = '\\core\\session\\file';
        require(\(quoted(treeSetup)));

        """
    }
}

extension DeliveryEngine {
    /// Whether the last rehearsal tried what a delivery would bring now: production's updated
    /// code (state `updated`), else the revision the last upstream check found waiting (a newer
    /// one since needs a rehearsal of its own). nil without a rehearsal, once production is at the
    /// revision it tried (delivered), and once production has left the revision it started from
    /// (it no longer applies: Update brings the upstream's newest revision, not the one tried).
    static func rehearsalCurrent(_ state: DeliveryState, upstream: UpstreamPreview?) -> Bool? {
        guard let rehearsal = state.rehearsal else { return nil }
        if state.phase == .updated || state.phase == .restoring {
            return rehearsal.revision.id == state.productionRevision?.id
        }
        // Delivered (production is at what it tried): nothing left to say of it.
        if rehearsal.revision.id == state.productionRevision?.id { return nil }
        guard rehearsal.base.id == state.productionRevision?.id || state.productionRevision == nil else { return nil }
        guard let upstream else { return true }
        // Nothing waits upstream (production is at its revision): nothing newer to rehearse.
        if !upstream.waiting { return nil }
        return upstream.upstream.id == rehearsal.revision.id
    }
}
