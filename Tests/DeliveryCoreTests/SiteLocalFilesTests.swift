import Foundation
import Testing

@testable import DeliveryCore

@Suite("Site-local files: a tracked config.php changed on the site is the site's, never the delivery's problem")
struct SiteLocalFilesTests {
    /// Changes production's tracked config.php as a site does (its own settings), and returns it.
    func changeConfig(_ site: FixtureSite) throws -> Data {
        let path = "\(site.production)/config.php"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let local = text.replacingOccurrences(
            of: "$CFG->admin     = 'admin';", with: "$CFG->admin     = 'admin';\n$CFG->sitelocal = 'this site only';")
        #expect(local != text)
        try local.write(toFile: path, atomically: false, encoding: .utf8)
        return Data(local.utf8)
    }

    /// Commits a change of config.php upstream, as a developer would.
    func changeConfigUpstream(_ site: FixtureSite) throws {
        let author = "\(site.root)/author"
        let script: String
        switch site.vcs {
        case .git:
            script = """
                cd '\(author)' && echo '// upstream change' >> config.php && git -c user.name=t -c user.email=t@example.invalid commit -qam config && git push -q origin main
                """
        case .svn:
            script = """
                svn update -q '\(author)' && echo '// upstream change' >> '\(author)/config.php' && svn commit -q -m config '\(author)'
                """
        case .cvs:
            script = """
                cd '\(author)' && cvs -Q update && sleep 1 && echo '// upstream change' >> config.php && cvs -Q commit -m config
                """
        }
        let result = try sh("/bin/bash", ["-c", script])
        #expect(result.succeeded, "\(result.combinedOutput)")
    }

    func version(_ tree: String) -> String {
        ((try? String(contentsOfFile: "\(tree)/version.php", encoding: .utf8)) ?? "").split(separator: "\n")
            .first { $0.hasPrefix("$version") }.map(String.init) ?? "none"
    }

    @Test(
        "kept byte for byte in production and every copy through secure, switch, update, cancel, run all and rollback",
        arguments: VersionControlKind.allCases)
    func keptThroughEveryStep(_ vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        let local = try changeConfig(site)
        let revision1 = version(site.production)
        func expectLocal(_ when: String, sourceLocation: SourceLocation = #_sourceLocation) {
            for tree in [site.production, site.backup, site.security, site.current]
            where FileManager.default.fileExists(atPath: "\(tree)/config.php") {
                #expect(
                    FileManager.default.contents(atPath: "\(tree)/config.php") == local, "\(when): \(tree)",
                    sourceLocation: sourceLocation)
            }
        }
        try site.perform(.secure, security: true)
        expectLocal("secure")
        try site.perform(.switchToDelivery)
        expectLocal("switch")
        // After the switch: CVS has no tree revision, cancel goes back to the time it was read.
        try site.publishRevision2()
        try site.perform(.update)
        expectLocal("update")
        #expect(version(site.production) != revision1, "the update brought revision 2")
        try site.perform(.cancel)
        expectLocal("cancel")
        #expect(version(site.production) == revision1, "cancel went back to revision 1")
        try site.perform(.runAll)
        expectLocal("run all")
        #expect(version(site.production) != revision1)
        try site.perform(.rollback)
        expectLocal("rollback")
        #expect(try site.engine.status().served != .production)
        // The preflight and the switch's checks never counted it as a local modification.
        #expect(try site.engine.plan().localModifications.isEmpty)
    }

    @Test(
        "an upstream change to config.php is refused before anything changes",
        arguments: VersionControlKind.allCases)
    func upstreamChangeRefused(_ vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        let local = try changeConfig(site)
        try changeConfigUpstream(site)
        let before = TreeSnapshot(site.production)
        for operation in [DeliveryOperation.runAll, .switchToDelivery] {
            if operation == .switchToDelivery { try site.perform(.secure) }
            let refused = #expect(throws: DeliveryError.self) { try site.perform(operation) }
            #expect(refused?.code == .notUpdatable, "\(operation)")
            #expect(refused?.message.contains("the upstream changes config.php") == true, "\(refused?.message ?? "")")
            #expect(try site.engine.status().served == .production)
            #expect(FileManager.default.contents(atPath: "\(site.production)/config.php") == local)
            #expect(TreeSnapshot(site.production).difference(from: before).isEmpty)
        }
    }
}

@Suite("Site-local files in the configuration")
struct SiteLocalFilesConfigurationTests {
    @Test("config.php always, then --local-file's paths; a path outside the tree is refused")
    func configuration() throws {
        var configuration = SiteConfiguration(
            siteRoot: "/srv/site", stateDirectory: "/var/lib/moodle-delivery/site", webUser: "www-data",
            codeOwner: "moodle-code", upstream: UpstreamConfiguration(kind: .git, branch: "main"),
            moodle: MoodleSettings(wwwroot: "https://moodle.example.edu", dataroot: "/srv/moodledata"))
        #expect(configuration.siteLocalFiles == ["config.php"])
        configuration.localFiles = [".htaccess", "config.php", "theme/school/settings.local.php"]
        try configuration.validate()
        #expect(configuration.siteLocalFiles == ["config.php", ".htaccess", "theme/school/settings.local.php"])
        for bad in ["../etc/passwd", "/etc/passwd", "a//b", ""] {
            configuration.localFiles = [bad]
            #expect(throws: DeliveryError.self, "\(bad)") { try configuration.validate() }
        }
    }
}
