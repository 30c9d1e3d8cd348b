import DeliveryCore
import Foundation
import Testing

@Suite("Privileges: PHP as the web user, VCS as the code owner")
struct PrivilegeTests {
    @Test(
        "upgrade.php runs as the web user, git as the code owner, and the web user cannot write code or state",
        .enabled(if: getuid() == 0, "needs root to run commands as other users"))
    func separateUsers() throws {
        let web = try UserIdentity.lookup("nobody")
        let site = try FixtureSite(webUser: web.name)
        try site.publishRevision2()
        try site.perform(.runAll)
        // Maintenance check, on, upgrade (Moodle's upgrade purges the caches itself; maintenance is
        // lifted by the web user removing its flag file).
        #expect(site.moodleCalls.count == 3, "\(site.moodleCalls)")
        #expect(site.moodleCalls.allSatisfy { $0.contains("uid=\(web.uid)") }, "\(site.moodleCalls)")
        let record = try #require(try site.engine.history().first)
        let php = record.commands.filter { $0.command.hasPrefix("/usr/bin/php") }
        let git = record.commands.filter { $0.command.hasPrefix("/usr/bin/git") }
        #expect(!php.isEmpty && php.allSatisfy { $0.user == web.name })
        let lift = record.commands.filter { $0.command.contains("climaintenance.html") }
        #expect(lift.count == 1 && lift.allSatisfy { $0.user == web.name }, "\(lift)")
        #expect(!git.isEmpty && git.allSatisfy { $0.user == "root" })
        // The web user can write none of the trees, the state or the audit log.
        for path in ["\(site.production)/x", "\(site.backup)/x", "\(site.root)/state/x", "\(site.siteRoot)/current-x"] {
            let attempt = try ChildProcess.run(Command("/usr/bin/touch", [path], user: web))
            #expect(!attempt.succeeded, "\(path) is writable by the web user")
        }
        let append = try ChildProcess.run(
            Command("/bin/sh", ["-c", "echo forged >> \(site.root)/state/audit.log"], user: web))
        #expect(!append.succeeded)
    }
}
