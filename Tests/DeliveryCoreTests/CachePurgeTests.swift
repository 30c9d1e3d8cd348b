import Foundation
import Testing

@testable import DeliveryCore

@Suite("Moodle's caches after a code change: only what the change needs purged")
struct CachePurgeTests {
    /// The rule on one file, in a tree where `local/cached` declares caches and `local/plain`,
    /// `local/cached`, `filter/fancy`, `theme/fine` and `mod/forum` are plugins.
    func need(_ path: String, _ change: CachePurge.Change = .changed) -> CachePurge {
        let plugins: Set<String> = ["local/plain", "local/cached", "filter/fancy", "theme/fine", "mod/forum"]
        return CachePurge.needed(
            [(path: path, change: change)], declaresCaches: { $0 == "local/cached" },
            isComponentRoot: { plugins.contains($0) })
    }

    @Test("files Moodle builds no cache from purge nothing")
    func nothing() {
        for path in [
            "login/index.php", "index.php", "local/plain/view.php", "local/plain/classes/form/edit.php",
            "mod/forum/tests/lib_test.php", "local/plain/amd/src/app.js", "local/plain/README.md", "docs/notes.txt",
            "local/plain/tests/behat/edit.feature",
        ] {
            #expect(need(path).isNothing, "\(path)")
        }
        #expect(CachePurge.needed([], declaresCaches: { _ in true }, isComponentRoot: { _ in true }).isNothing)
    }

    @Test("strings, JavaScript, styles and images, filters: Moodle's partial purges")
    func parts() {
        #expect(need("mod/forum/lang/en/forum.php").arguments == ["--lang"])
        #expect(need("lang/en/moodle.php", .added).arguments == ["--lang"])
        #expect(need("local/plain/amd/build/app.min.js").arguments == ["--js"])
        #expect(need("local/plain/amd/build/app.min.js.map").arguments == ["--js"])
        #expect(need("local/plain/styles.css").arguments == ["--theme"])
        #expect(need("theme/fine/scss/post.scss").arguments == ["--theme"])
        #expect(need("theme/fine/classes/output/core_renderer.php").arguments == ["--theme"])
        #expect(need("local/plain/pix/icon.svg").arguments == ["--theme"])
        #expect(need("filter/fancy/classes/text_filter.php").arguments == ["--filter"])
        let several = CachePurge.needed(
            [
                (path: "mod/forum/lang/en/forum.php", change: .changed),
                (path: "local/plain/amd/build/app.min.js", change: .changed),
                (path: "login/index.php", change: .changed),
            ], declaresCaches: { _ in false }, isComponentRoot: { _ in false })
        #expect(several.arguments == ["--js", "--lang"])
        #expect(!several.everything)
    }

    @Test("anything the rule cannot vouch for purges everything, and says which file asked")
    func everything() {
        for (path, change, why) in [
            ("local/plain/templates/card.mustache", CachePurge.Change.changed, "template"),
            ("local/plain/view.php", .added, "added"),
            ("local/plain/old.php", .removed, "removed"),
            ("mod/forum/lib.php", .changed, "lib.php"),
            ("local/plain/settings.php", .changed, "settings.php"),
            ("mod/forum/db/events.php", .changed, "db"),
            ("lib/moodlelib.php", .changed, "lib/"),
            ("lib/editor/tiny/classes/editor.php", .changed, "lib/"),
            ("course/lib.php", .changed, "lib.php"),
            ("question/type/multichoice/questiontype.php", .changed, "question/"),
            ("local/plain/classes/route/api.php", .changed, "classes/route"),
            ("local/plain/classes/hook/after.php", .changed, "classes/hook"),
            ("lib/classes/output/icon_system_fontawesome.php", .changed, "lib/"),
            ("local/plain/classes/output/icon_system_plain.php", .changed, "icon"),
            ("local/cached/classes/helper.php", .changed, "caches of its own"),
            ("local/plain/thirdpartylibs.xml", .changed, "does not know"),
        ] {
            let purge = need(path, change)
            #expect(purge.everything && purge.arguments.isEmpty, "\(path)")
            #expect(purge.reason?.hasPrefix("\(path): ") == true, "\(purge.reason ?? "none")")
            #expect(purge.reason?.contains(why) == true, "\(path): \(purge.reason ?? "none")")
        }
        // One such file among harmless ones is enough.
        let mixed = CachePurge.needed(
            [(path: "login/index.php", change: .changed), (path: "mod/forum/version.php", change: .changed)],
            declaresCaches: { _ in false }, isComponentRoot: { _ in false })
        #expect(mixed.everything)
    }

    @Test("Moodle 5.1's public/ layout: the rule reads paths below the code root")
    func publicLayout() {
        let purge = CachePurge.needed(
            [(path: "public/lib/moodlelib.php", change: .changed), (path: "public/login/index.php", change: .changed)],
            publicLayout: true, declaresCaches: { _ in false }, isComponentRoot: { _ in false })
        #expect(purge.reason?.contains("lib/") == true)
    }

    @Test("caches.purge decodes, defaults to whenNeeded, and a bad value is refused with its name")
    func configuration() throws {
        let decoded = try JSONDecoder().decode(CacheSettings.self, from: Data(#"{"purge":"always"}"#.utf8))
        #expect(decoded.purge == .always)
        #expect(try JSONDecoder().decode(CacheSettings.self, from: Data("{}".utf8)).purge == .whenNeeded)
        let refused = #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(CacheSettings.self, from: Data(#"{"purge":"sometimes"}"#.utf8))
        }
        #expect(String(describing: refused).contains("purge"), "\(String(describing: refused))")
    }

    /// A fixture site through secure, switch and update of `files`, and its restore.
    func restore(_ files: [String: String], policy: CachePurgePolicy? = nil) throws -> (FixtureSite, OperationOutcome) {
        let site = try FixtureSite(adjust: { configuration in
            if let policy { configuration.caches = CacheSettings(purge: policy) }
        })
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publish(files)
        try site.perform(.update)
        let outcome = try site.perform(.restore)
        return (site, outcome)
    }

    func purges(_ site: FixtureSite) -> [String] {
        site.moodleCalls.filter { $0.contains("purge_caches.php") }.map {
            $0.split(separator: " ").dropFirst().joined(separator: " ").components(separatedBy: " uid=")[0]
        }
    }

    @Test("a restore purges what the change needs: nothing for a page, the strings for a string, all for a template")
    func restores() throws {
        let (page, pageOutcome) = try restore(["login/index.php": "<?php\n// a fix of the login page\n"])
        #expect(purges(page) == [])
        let kept = try #require(pageOutcome.notices.first { $0.code == "caches_kept_code" })
        #expect(kept.english == "Caches kept: none of the changed files (1) feeds Moodle's caches.")
        #expect(try page.engine.history().first?.notices?.contains { $0.code == "caches_kept_code" } == true)
        // git's view of production is asked once per step: the update's refusal and its site-local
        // files from one status, the preflight's modifications and untracked files from another.
        let records = try page.engine.history(limit: 2)
        for (record, step) in zip(records, ["restore", "update"]) {
            let statuses = record.commands.filter { $0.command.contains(" status ") }.map(\.command)
            #expect(statuses.count == 1, "\(step): \(statuses)")
        }

        let (strings, stringsOutcome) = try restore([
            "login/index.php": "<?php\n// fix\n", "mod/m1/lang/en/m1.php": "<?php\n$string['x'] = 'y';\n",
        ])
        #expect(purges(strings) == ["purge_caches.php --lang"])
        #expect(stringsOutcome.notices.contains { $0.code == "caches_purged_parts" && $0.english.contains("(lang)") })

        let (template, templateOutcome) = try restore(["mod/forum/templates/post.mustache": "<div>{{x}}</div>\n"])
        #expect(purges(template) == ["purge_caches.php"])
        #expect(templateOutcome.notices.map(\.code).contains("caches_purged"))
    }

    @Test("links planted in production's plugin folders are not followed: a lookup through one counts as there")
    func plantedLinks() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        let run = OperationRun(
            id: "test", request: try OperationRequest(.restore, actor: Actor(name: "test", source: "cli")),
            progress: { _ in }, engine: site.engine)
        func purge(_ changed: String) -> CachePurge {
            run.cachePurge(
                for: {
                    var report = PreflightReport(); report.changed = [changed]; return report
                }())
        }
        // The code owner's decoy: a plugin with no caches of its own, an empty db/ folder.
        let decoy = "\(site.root)/decoy"
        for folder in ["\(decoy)/plugin", "\(decoy)/db", "\(site.production)/local/foo"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        for plugin in ["\(decoy)/plugin", "\(site.production)/local/foo"] {
            try "<?php\n$plugin->version = 1;\n".write(
                toFile: "\(plugin)/version.php", atomically: false, encoding: .utf8)
        }
        // Without links: a page of a plugin without db/caches.php needs no purge.
        #expect(purge("local/foo/view.php").isNothing)
        // db/ swapped for a link to a folder without caches.php: followed, it would say "no caches".
        try FileManager.default.createSymbolicLink(
            atPath: "\(site.production)/local/foo/db", withDestinationPath: "\(decoy)/db")
        #expect(purge("local/foo/view.php").everything)
        // A plugin folder that is a link to a plugin without caches: followed, it would say the same.
        try FileManager.default.createSymbolicLink(
            atPath: "\(site.production)/local/linked", withDestinationPath: "\(decoy)/plugin")
        #expect(purge("local/linked/view.php").everything)
    }

    @Test("caches.purge = always purges every cache after a change of a page")
    func always() throws {
        let (site, outcome) = try restore(["login/index.php": "<?php\n// a fix\n"], policy: .always)
        #expect(purges(site) == ["purge_caches.php"])
        #expect(outcome.notices.map(\.code).contains("caches_purged"))
    }
}

@Suite("The restore's baseline of Moodle's checks, asked beside the preflight")
struct RestoreBaselineTests {
    func site() throws -> FixtureSite {
        let site = try FixtureSite(healthCheck: HealthCheckSettings(mode: .ask, moodleChecks: true))
        try "fixture_known\n".write(
            toFile: "\(site.dataroot)/fixture-critical-check-always", atomically: false, encoding: .utf8)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        return site
    }

    func recordedBaseline(_ site: FixtureSite) throws -> [String]? {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(site.root)/state/state.json"))
        let state = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return state["criticalChecksBefore"] as? [String]
    }

    @Test("a preflight that refuses leaves no baseline recorded; the served copy's checks were only read")
    func refused() throws {
        let site = try site()
        try site.publish(["login/index.php": "<?php\nfunction broken( {\n"])
        try site.perform(.update)
        let before = site.diskSnapshot
        #expect(site.refusal(.restore)?.code == .preflightFailed)
        #expect(try recordedBaseline(site) == nil)
        #expect(site.diskSnapshot.difference(from: before) == [])
        // The copy that serves is a generation of the backup copy (releases/backup is its symlink).
        #expect(
            site.allMoodleCalls.contains {
                $0.contains(" checks.php ") && $0.contains("dirroot=\(site.siteRoot)/releases/.backup.")
            }, "\(site.allMoodleCalls)")
    }

    @Test("a preflight that passes records the served copy's critical checks as the baseline")
    func recorded() throws {
        let site = try site()
        try site.publish(["login/index.php": "<?php\n// a fix\n"])
        try site.perform(.update)
        // The page check fails (the fixture has no web server): the maintenance mode stays, and the
        // baseline taken before production was served is in the state.
        _ = site.refusal(.restore)
        #expect(try recordedBaseline(site) == ["fixture_known"])
    }
}
