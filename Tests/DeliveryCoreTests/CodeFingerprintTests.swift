import Foundation
import Testing

@testable import DeliveryCore

/// Moodle's answers about a tree are asked once per code fingerprint (issue 20: secure's PHP).
@Suite("Code fingerprint: one PHP question per tree content")
struct CodeFingerprintTests {
    func write(_ text: String, _ path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test("contents of ordinary files do not count; names, version.php and subplugins.json do")
    func whatCounts() throws {
        let directory = TemporaryDirectory()
        let tree = directory.path
        try FileManager.default.createDirectory(atPath: "\(tree)/mod/forum/db", withIntermediateDirectories: true)
        try write("<?php $plugin->version = 1;\n", "\(tree)/mod/forum/version.php")
        try write("<?php // lib\n", "\(tree)/mod/forum/lib.php")
        try write("{}", "\(tree)/mod/forum/db/subplugins.json")
        try FileManager.default.createDirectory(atPath: "\(tree)/.git", withIntermediateDirectories: true)
        let first = try #require(CodeFingerprint.of(tree))
        #expect(first.count == 64)

        try write("<?php // lib, changed\n", "\(tree)/mod/forum/lib.php")
        try write("ref: refs/heads/x\n", "\(tree)/.git/HEAD")
        try write("<?php $cache = 'this tree';\n", "\(tree)/.delivery-component-cache.php")
        #expect(CodeFingerprint.of(tree, leavingOut: [".delivery-component-cache.php"]) == first)
        #expect(CodeFingerprint.of(tree) != first, "a file the cache leaves out counts for others")

        try write("<?php $plugin->version = 2;\n", "\(tree)/mod/forum/version.php")
        let bumped = try #require(CodeFingerprint.of(tree))
        #expect(bumped != first)
        try write("{\"subplugintypes\": {}}", "\(tree)/mod/forum/db/subplugins.json")
        let subplugins = try #require(CodeFingerprint.of(tree))
        #expect(subplugins != bumped)
        try write("<?php\n", "\(tree)/mod/forum/classes.php")
        #expect(CodeFingerprint.of(tree) != subplugins, "a new name counts")
        try FileManager.default.createSymbolicLink(atPath: "\(tree)/link", withDestinationPath: "mod")
        let linked = try #require(CodeFingerprint.of(tree))
        try FileManager.default.removeItem(atPath: "\(tree)/link")
        try FileManager.default.createSymbolicLink(atPath: "\(tree)/link", withDestinationPath: "lib")
        #expect(CodeFingerprint.of(tree) != linked, "a link's target counts")
        #expect(CodeFingerprint.of("\(tree)/missing") == nil)
    }

    @Test("the component cache's digest: a plugin's version does not count; core's version and renamed classes do")
    func componentCacheDigest() throws {
        let directory = TemporaryDirectory()
        let tree = directory.path
        try FileManager.default.createDirectory(atPath: "\(tree)/mod/forum/db", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "\(tree)/lib", withIntermediateDirectories: true)
        try write("<?php $version = 2024100700.00;\n", "\(tree)/version.php")
        try write("<?php $plugin->version = 1;\n", "\(tree)/mod/forum/version.php")
        try write("{}", "\(tree)/lib/apis.json")
        try write("<?php $renamedclasses = [];\n", "\(tree)/mod/forum/db/renamedclasses.php")
        let first = try #require(CodeFingerprint.digests(of: tree))
        #expect(first.answers == CodeFingerprint.of(tree))

        try write("<?php $plugin->version = 2;\n", "\(tree)/mod/forum/version.php")
        let bumped = try #require(CodeFingerprint.digests(of: tree))
        #expect(bumped.componentCache == first.componentCache, "a plugin's version bump keeps the component cache")
        #expect(bumped.answers != first.answers, "but Moodle's answer about the database is asked again")

        var previous = bumped
        for (path, text) in [
            ("version.php", "<?php $version = 2024100800.00;\n"),
            ("lib/apis.json", "{\"x\": {}}"),
            ("mod/forum/db/renamedclasses.php", "<?php $renamedclasses = ['a' => 'b'];\n"),
        ] {
            try write(text, "\(tree)/\(path)")
            let next = try #require(CodeFingerprint.digests(of: tree))
            #expect(next.componentCache != previous.componentCache, "\(path) counts for the component cache")
            previous = next
        }
    }

    @Test("a generation refilled with code of the same fingerprint keeps its component cache; a new name rebuilds it")
    func componentCacheKept() throws {
        let site = try ComponentCacheTests().site()
        func buildsIn(_ record: AuditRecord?) -> Int {
            record?.commands.filter { $0.command.contains("alternative_component_cache.php") }.count ?? -1
        }
        func changeOneFile(_ text: String) throws {
            try write("<?php // \(text)\n", "\(site.production)/mod/assign/lib.php")
        }
        try site.perform(.secure)  // .backup.a: first copy, its cache built
        try changeOneFile("first change")
        try site.perform(.secure)  // .backup.b: a new folder, its cache built
        #expect(buildsIn(try site.engine.history().first) == 1)
        try changeOneFile("second change")
        try site.perform(.secure)  // .backup.a again, same names and versions: kept
        #expect(buildsIn(try site.engine.history().first) == 0)
        let backup = try FileManager.default.destinationOfSymbolicLink(atPath: site.backup)
        let backupRoot = "\(site.siteRoot)/releases/\(backup)"
        #expect(try String(contentsOfFile: "\(backupRoot)/mod/assign/lib.php", encoding: .utf8).contains("second"))
        let cache = try String(contentsOfFile: "\(backupRoot)/.delivery-component-cache.php", encoding: .utf8)
        #expect(cache.contains("'dirroot' => '\(backupRoot)'"), "the kept cache is this folder's: \(cache)")
        // The fixture's index.php dies like Moodle on a missing or foreign cache.
        let page = try sh("/usr/bin/php", ["-d", "display_errors=0", "\(backupRoot)/index.php"])
        #expect(page.standardOutput.hasPrefix("fixture-site"), "\(page.standardOutput)")

        // A plugin's version bump (.backup.b again): its component cache is current too.
        let forum = try String(contentsOfFile: "\(site.production)/mod/forum/version.php", encoding: .utf8)
        try write(forum + "// bumped\n", "\(site.production)/mod/forum/version.php")
        try site.perform(.secure)
        #expect(buildsIn(try site.engine.history().first) == 0)

        // A new file (a class, a plugin): the names change, the cache is rebuilt.
        try write("<?php\n", "\(site.production)/mod/assign/newclass.php")
        try site.perform(.secure)
        #expect(buildsIn(try site.engine.history().first) == 1)
        // Its record carries the fingerprint the rollback plan's answers are keyed by.
        let fingerprint = try #require(try site.engine.store.read().copies[.backup]?.fingerprint)
        #expect(
            fingerprint
                == CodeFingerprint.of(site.backup + "/", leavingOut: [".delivery-component-cache.php"]))
    }
}
