import Foundation
import Testing

@testable import DeliveryCore

@Suite("The snapshot as the server's own copy: its names, its setting, when it can still be swapped in")
struct DatabaseCopyTests {
    let id = "20261204T101500Z-1a2b3c4d"

    @Test("a copy's name holds the site's database, a digest of its whole name, the kind and the operation")
    func names() throws {
        let site = "Moodle-Prod.2026_with_a_long_name"
        let snapshot = DatabaseCopyName.make(.snapshot, site: site, id: id)
        #expect(snapshot.hasPrefix("moodleprod2026_with__"))
        #expect(snapshot.hasSuffix("_snapshot_20261204t101500z_1a2b3c4d"))
        #expect(snapshot.utf8.count <= 63)
        let parsed = try #require(DatabaseCopyName.parse(snapshot, site: site))
        #expect(parsed.kind == .snapshot && parsed.id == id)
        let replaced = try #require(DatabaseCopyName.replaced(for: snapshot, site: site))
        #expect(replaced == DatabaseCopyName.make(.replaced, site: site, id: id))
        #expect(DatabaseCopyName.parse(replaced, site: site)?.kind == .replaced)
        #expect(DatabaseCopyName.replaced(for: replaced, site: site) == nil)
    }

    @Test("two sites whose names start alike never take each other's copies; other names are never taken")
    func foreignNames() {
        let first = "moodle_university_production"
        let second = "moodle_university_productio2"
        let mine = DatabaseCopyName.make(.snapshot, site: first, id: id)
        #expect(DatabaseCopyName.parse(mine, site: first) != nil)
        #expect(DatabaseCopyName.parse(mine, site: second) == nil)
        let stem = DatabaseCopyName.stem(site: first)
        for other in [
            first, "moodle", "\(stem)_snapshot_", "\(stem)_snapshot_20261204t101500z_1a2b3c4g",
            "\(stem)_rehearsal_20261204t101500z_1a2b3c4d", "\(stem)_snapshot_20261204t101500z_1a2b3c4d_x",
            Rehearsal.databaseName(site: first, id: id),
        ] {
            #expect(DatabaseCopyName.parse(other, site: first) == nil, "\(other)")
        }
    }

    @Test("database.method: auto by default, dump or copy when set, anything else refused with the value")
    func method() throws {
        #expect(SnapshotSettings().method == .auto)
        let copy = try JSONCoding.decode(SnapshotSettings.self, from: Array(#"{"method": "copy"}"#.utf8))
        #expect(copy == SnapshotSettings(method: .copy))
        let directory = TemporaryDirectory()
        let file = "\(directory.path)/site.json"
        var configuration = SiteConfiguration(
            siteRoot: "/srv/site", stateDirectory: "/var/lib/moodle-delivery/site", webUser: "www-data",
            codeOwner: "moodle-code", upstream: UpstreamConfiguration(kind: .git, branch: "main"),
            moodle: MoodleSettings(wwwroot: "https://moodle.example.edu", dataroot: "/srv/moodledata"))
        configuration.database = SnapshotSettings(method: .dump)
        var text = String(decoding: try JSONCoding.encode(configuration), as: UTF8.self)
        #expect(text.contains(#""method" : "dump""#))
        text = text.replacing(#""method" : "dump""#, with: #""method" : "sometimes""#)
        try System.writeFileAtomically(file, Array(text.utf8), mode: 0o600)
        #expect {
            _ = try SiteConfiguration.load(from: file)
        } throws: { error in
            (error as? DeliveryError)?.code == .configuration && "\(error)".contains("sometimes")
        }
    }

    @Test("a copy can be swapped in once; a dump while its file is there")
    func availability() throws {
        let directory = TemporaryDirectory()
        var snapshot = DatabaseSnapshot(
            id: id, file: "", databaseType: "pgsql", database: "moodle", tableCount: 400, takenAt: Date(),
            sizeBytes: 1, seconds: 1, codeRevision: nil,
            copyDatabase: DatabaseCopyName.make(.snapshot, site: "moodle", id: id))
        #expect(snapshot.isAvailable)
        snapshot.replacedDatabase = DatabaseCopyName.make(.replaced, site: "moodle", id: id)
        #expect(!snapshot.isAvailable)
        var dump = snapshot
        dump.copyDatabase = nil
        dump.replacedDatabase = nil
        dump.file = "\(directory.path)/\(id).pgdump"
        #expect(!dump.isAvailable)
        try System.writeFileAtomically(dump.file, [1], mode: 0o600)
        #expect(dump.isAvailable)
    }
}
