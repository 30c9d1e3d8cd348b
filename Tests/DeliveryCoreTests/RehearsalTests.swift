import Foundation
import Testing

@testable import DeliveryCore

@Suite("The rehearsal's rules: its tree, its names, its settings, reading Moodle's answers")
struct RehearsalTests {
    @Test(
        "each VCS brings a copy of production to the upstream's revision, production untouched",
        arguments: VersionControlKind.allCases)
    func treeBroughtForward(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        try site.publishRevision2()
        let before = TreeSnapshot(site.production, includeTimes: true)
        let recorder = CommandRecorder(onLine: { _ in })
        let control = try site.engine.versionControl(recorder)
        let changes = try control.upstreamChanges(of: site.production, target: nil, recorder: recorder)
        let copy = "\(site.root)/rehearsal-copy"
        _ = try TreeCopier().synchronize(source: site.production, target: copy, preserving: ["config.php"])
        try control.applyUpstream(changes, from: site.production, onto: copy, recorder: recorder)
        // What the author committed, VCS metadata and the site's own config.php aside.
        let author = TreeSnapshot("\(site.root)/author")
        let brought = TreeSnapshot(copy)
        let ignored = { (line: String) in
            let path = String(line.prefix { $0 != ":" })
            return path.hasPrefix(".git") || path.contains(".svn") || path.contains("CVS") || path == "config.php"
                || path.hasPrefix(".delivery") || path.hasPrefix("theme/default")
        }
        #expect(brought.difference(from: author).filter { !ignored($0) } == [])
        #expect(!FileManager.default.fileExists(atPath: "\(copy)/mod/assign/old.php"))
        #expect(TreeSnapshot(site.production, includeTimes: true) == before)
    }

    @Test("the schema diff: tables and columns added, dropped, changed; a new table's columns once")
    func schemaDiff() {
        let before = [
            SchemaColumn(table: "mdl_a", column: "id", definition: "bigint not null"),
            SchemaColumn(table: "mdl_a", column: "old", definition: "text"),
            SchemaColumn(table: "mdl_a", column: "size", definition: "integer"),
            SchemaColumn(table: "mdl_gone", column: "id", definition: "bigint not null"),
        ]
        let after = [
            SchemaColumn(table: "mdl_a", column: "id", definition: "bigint not null"),
            SchemaColumn(table: "mdl_a", column: "size", definition: "bigint not null default 0"),
            SchemaColumn(table: "mdl_a", column: "rating", definition: "integer"),
            SchemaColumn(table: "mdl_new", column: "id", definition: "bigint not null"),
            SchemaColumn(table: "mdl_new", column: "name", definition: "character varying(100)"),
        ]
        let diff = SchemaDiff.between(before, after)
        #expect(diff.addedTables == ["mdl_new"])
        #expect(diff.droppedTables == ["mdl_gone"])
        #expect(diff.addedColumns == ["mdl_a.rating integer"])
        #expect(diff.droppedColumns == ["mdl_a.old text"])
        #expect(
            diff.changedColumns == [
                .init(column: "mdl_a.size", before: "integer", after: "bigint not null default 0")
            ])
        #expect(SchemaDiff.between(before, before).isEmpty)
    }

    @Test("Moodle's upgrade output: the component that did not end, and Moodle's message")
    func failureParsing() {
        let output = """
            -->System
            ++ Success (1.20 seconds) ++
            -->mod_forum
            ++ Success (0.10 seconds) ++
            -->local_assessmentreport
            \u{1B}[31mDefault exception handler: Coding error detected: step 2 fails Debug: x
            Error code: codingerror
            !!! Coding error detected, it must be fixed by a programmer: step 2 fails !!!
            """
        let failure = RehearsalFailure.parse(output, exitDescription: "exit status 1")
        #expect(failure.component == "local_assessmentreport")
        #expect(failure.message == "Coding error detected, it must be fixed by a programmer: step 2 fails")
        let core = RehearsalFailure.parse("-->System\nDefault exception handler: broken\n", exitDescription: "x")
        #expect(core.component == "core" && core.message == "broken")
        let silent = RehearsalFailure.parse("", exitDescription: "exit status 255")
        #expect(silent.component == nil && silent.message == "exit status 255")
    }

    @Test("the copy's name comes from the site's database and the rehearsal's id; only such names are dropped")
    func copyNames() {
        let id = "20261204T101500Z-1a2b3c4d"
        let name = Rehearsal.databaseName(site: "Moodle-Prod.2026_with_a_long_name", id: id)
        #expect(name == "moodleprod2026_with__rehearsal_20261204t101500z_1a2b3c4d")
        #expect(name.utf8.count <= 63)
        #expect(Rehearsal.isCopyName(name))
        for other in ["moodle", "moodle_rehearsal_", "moodle_rehearsal_20261204t101500z_1a2b3c4g", "x_rehearsal_1"] {
            #expect(!Rehearsal.isCopyName(other), "\(other)")
        }
    }

    @Test("config.php must load lib/setup.php relatively to itself for the rehearsal to step in")
    func setupLoadedRelatively() {
        #expect(RehearsalPHP.loadsSetupRelatively("<?php\n$CFG->x = 1;\nrequire_once(__DIR__ . '/lib/setup.php');\n"))
        #expect(RehearsalPHP.loadsSetupRelatively("<?php\nrequire_once(dirname(__FILE__) . '/lib/setup.php');"))
        #expect(RehearsalPHP.loadsSetupRelatively("<?php\nrequire_once(__DIR__ . '/public/lib/setup.php');"))
        #expect(!RehearsalPHP.loadsSetupRelatively("<?php\nrequire_once('/var/www/moodle/lib/setup.php');"))
        #expect(!RehearsalPHP.loadsSetupRelatively("<?php\n$CFG->dbname = 'x';\n"))
    }

    @Test("the settings stub points Moodle at the copies and stops mail, outgoing HTTP, caches elsewhere")
    func settingsStub() throws {
        let stub = RehearsalPHP.setupStub(database: "it's_copy", dataroot: "/d", treeSetup: "/t/lib/setup.php")
        #expect(stub.contains("$CFG->dbname = 'it\\'s_copy';"))
        #expect(stub.contains("$CFG->noemailever = true;"))
        #expect(stub.contains("$CFG->proxyhost = '127.0.0.1';"))
        #expect(stub.hasSuffix("require('/t/lib/setup.php');\n"))
        // The stub, run by PHP on settings like a real site's: what it removes and keeps.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("stub-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "<?php echo json_encode(get_object_vars($CFG));\n".write(
            toFile: "\(folder)/dump.php", atomically: true, encoding: .utf8)
        try RehearsalPHP.setupStub(database: "copy", dataroot: "/scratch", treeSetup: "\(folder)/dump.php").write(
            toFile: "\(folder)/stub.php", atomically: true, encoding: .utf8)
        let script = """
            $CFG = new stdClass(); $CFG->dbname = 'moodle'; $CFG->dbuser = 'u'; $CFG->admin = 'admin';
            $CFG->dataroot = '/var/moodledata'; $CFG->localcachedir = '/var/cache/moodle'; $CFG->tempdir = '/t';
            $CFG->session_handler_class = '\\\\core\\\\session\\\\redis'; $CFG->session_redis_host = 'r';
            $CFG->alternative_component_cache = '/c.php'; $CFG->prefix = 'mdl_';
            require('\(folder)/stub.php');
            """
        let result = try sh("/usr/bin/php", ["-r", script])
        let settings = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
        #expect(settings?["dbname"] as? String == "copy")
        #expect(settings?["dataroot"] as? String == "/scratch")
        #expect(settings?["dbuser"] as? String == "u" && settings?["prefix"] as? String == "mdl_")
        #expect(settings?["admin"] as? String == "admin")
        #expect(settings?["session_handler_class"] as? String == "\\core\\session\\file")
        for removed in ["localcachedir", "tempdir", "session_redis_host", "alternative_component_cache"] {
            #expect(settings?[removed] == nil, "\(removed)")
        }
    }

    @Test("a rehearsal is current while the upstream has what it tried, or production holds it")
    func currentness() {
        let base = Revision(id: "a", label: "main @ a")
        let tried = Revision(id: "b", label: "main @ b")
        var state = DeliveryState()
        state.productionRevision = base
        state.rehearsal = Rehearsal(
            id: "20261204T101500Z-1a2b3c4d", startedAt: Date(), finishedAt: Date(), revision: tried, base: base,
            updatedProduction: false, passed: true, upgradeSeconds: 1, totalSeconds: 2, databaseCopyBytes: 1,
            databaseCopySeconds: 1)
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: nil) == true)
        var upstream = UpstreamPreview(
            checkedAt: Date(), current: base, upstream: tried, waiting: true, commits: [], commitCount: 1, added: [],
            changed: [], removed: [], fileCount: 1, versionChanges: [], upgrade: .plugins)
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: upstream) == true)
        upstream.upstream = Revision(id: "c", label: "main @ c")
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: upstream) == false)
        // Nothing waits any more (the upstream went back to production's revision): nothing to say.
        var quiet = upstream
        quiet.waiting = false
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: quiet) == nil)
        state.phase = .updated
        state.productionRevision = tried
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: upstream) == true)
        // Delivered: production is at the revision it tried.
        state.phase = .idle
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: upstream) == nil)
        // Production moved on past the revision it started from (another delivery): it no longer
        // applies, and Update brings the upstream's newest (seen on the real site: the page said
        // Update would bring the rehearsed revision).
        state.productionRevision = Revision(id: "z", label: "main @ z")
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: upstream) == nil)
        state.phase = .updated
        state.rehearsal = nil
        #expect(DeliveryEngine.rehearsalCurrent(state, upstream: upstream) == nil)
    }
}
