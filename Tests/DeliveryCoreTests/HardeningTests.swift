import Foundation
import Testing

@testable import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

/// The rules of docs/SECURITY.md at the level of the operating system layer and the engine.
@Suite("Hardening: guarded paths, children, output, JSON")
struct HardeningTests {
    @Test("below a guarded folder no symlink is followed on the way, whatever the call")
    func guardedPaths() throws {
        let directory = TemporaryDirectory()
        let guarded = "\(directory.path)/releases"
        let outside = "\(directory.path)/victim"
        try FileManager.default.createDirectory(atPath: "\(guarded)/tree/mod", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "secret".write(toFile: "\(outside)/file", atomically: true, encoding: .utf8)
        try "code".write(toFile: "\(guarded)/tree/mod/file", atomically: true, encoding: .utf8)
        // The attacker's swap: a folder of the tree becomes a symlink out of it.
        try FileManager.default.createSymbolicLink(atPath: "\(guarded)/tree/evil", withDestinationPath: outside)
        System.guardPaths(below: [guarded])
        #expect(try System.readFile("\(guarded)/tree/mod/file", limit: 100) == Array("code".utf8))
        #expect(throws: SystemCallError.self) { try System.readFile("\(guarded)/tree/evil/file", limit: 100) }
        #expect(throws: SystemCallError.self) { try System.lstatus("\(guarded)/tree/evil/file") }
        #expect(throws: SystemCallError.self) { try System.unlink("\(guarded)/tree/evil/file") }
        #expect(throws: SystemCallError.self) { try System.changeMode("\(guarded)/tree/evil/file", 0o777) }
        #expect(throws: SystemCallError.self) {
            try System.writeFileAtomically("\(guarded)/tree/evil/new", Array("x".utf8), mode: 0o644)
        }
        #expect(throws: SystemCallError.self) { try System.listDirectory("\(guarded)/tree/evil") }
        // A final symlink is not followed by an open either (a version.php swapped for a link).
        try FileManager.default.createSymbolicLink(
            atPath: "\(guarded)/tree/version.php", withDestinationPath: "\(outside)/file")
        #expect(throws: SystemCallError.self) { try System.readFile("\(guarded)/tree/version.php", limit: 100) }
        // Nothing outside changed.
        #expect(try String(contentsOfFile: "\(outside)/file", encoding: .utf8) == "secret")
        #expect(!FileManager.default.fileExists(atPath: "\(outside)/new"))
        #expect(try FileManager.default.attributesOfItem(atPath: "\(outside)/file")[.posixPermissions] as? Int != 0o777)
        // A tree's own name that links to a sibling is followed (releases/backup -> .backup.a).
        try FileManager.default.createSymbolicLink(atPath: "\(guarded)/alias", withDestinationPath: "tree")
        #expect(try System.readFile("\(guarded)/alias/mod/file", limit: 100) == Array("code".utf8))
        // But not one that leaves the folder.
        try FileManager.default.createSymbolicLink(atPath: "\(guarded)/away", withDestinationPath: outside)
        #expect(throws: SystemCallError.self) { try System.readFile("\(guarded)/away/file", limit: 100) }
    }

    @Test("a removal whose folder is swapped for a symlink removes nothing elsewhere")
    func removalThroughSymlink() throws {
        let directory = TemporaryDirectory()
        let victim = "\(directory.path)/victim"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        try "keep".write(toFile: "\(victim)/keep", atomically: true, encoding: .utf8)
        let tree = "\(directory.path)/tree"
        try FileManager.default.createDirectory(atPath: "\(tree)/sub", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(tree)/link", withDestinationPath: victim)
        try TreeCopier.removeTree(tree)
        #expect(!FileManager.default.fileExists(atPath: tree))
        #expect(try String(contentsOfFile: "\(victim)/keep", encoding: .utf8) == "keep")
    }

    @Test("a child that closes its pipes and runs on is still stopped at its time limit")
    func timeoutAfterClosedPipes() throws {
        let started = Date()
        let result = try ChildProcess.run(
            Command("/bin/sh", ["-c", "exec >/dev/null 2>&1; sleep 30"], timeoutSeconds: 1))
        #expect(result.timedOut)
        #expect(!result.succeeded)
        #expect(Date().timeIntervalSince(started) < 20)
    }

    @Test("a child runs in a session of its own, without a controlling terminal")
    func newSession() throws {
        // Field 6 of /proc/PID/stat is the session id; 7 the controlling terminal (0: none).
        let result = try ChildProcess.run(
            Command("/bin/sh", ["-c", "echo $$; cut -d' ' -f6,7 /proc/$$/stat"], timeoutSeconds: 10))
        let lines = result.standardOutput.split(whereSeparator: \.isNewline).map { String($0).trimmingWhitespace() }
        #expect(
            lines.count == 2 && lines[1] == "\(lines[0]) 0", "not a session of its own without a terminal: \(lines)")
    }

    @Test("escape sequences and control characters never reach a terminal")
    func terminalOutput() {
        #expect(terminalSafe("\u{1B}[0;31mred\u{1B}[0m text") == "red text")
        #expect(terminalSafe("a\u{07}b\u{08}c\u{7F}d\u{9B}e\r") == "abcde")
        #expect(terminalSafe("line\n\ttab") == "line\n\ttab")
        #expect(terminalSafe("\u{1B}]0;title\u{07}x").contains("\u{1B}") == false)
    }

    @Test("JSON with a key twice is refused, however the key is escaped")
    func duplicateKeys() throws {
        struct Body: Decodable { var operation: String }
        #expect(throws: (any Error).self) {
            try JSONCoding.decode(Body.self, from: Array(#"{"operation":"secure","operation":"rollback"}"#.utf8))
        }
        #expect(throws: (any Error).self) {
            try JSONCoding.decode(Body.self, from: Array(#"{"operation":"secure","\u006fperation":"rollback"}"#.utf8))
        }
        #expect(
            try JSONCoding.decode(Body.self, from: Array(#"{"operation":"secure","x":{"operation":1}}"#.utf8))
                .operation == "secure")
    }

    @Test(
        "the engine refuses a site root that another user can change",
        .enabled(if: getuid() == 0, "needs root to give the folder away"))
    func siteRootOwnedByAnother() throws {
        let site = try FixtureSite()
        let nobody = try UserIdentity.lookup("nobody")
        #expect(chown(site.siteRoot, nobody.uid, nobody.gid) == 0)
        #expect(throws: DeliveryError.self) { try DeliveryEngine(configuration: site.engine.configuration) }
        #expect(chown(site.siteRoot, 0, 0) == 0)
        #expect(chmod("\(site.siteRoot)/releases", 0o777) == 0)
        let error = #expect(throws: DeliveryError.self) { try DeliveryEngine(configuration: site.engine.configuration) }
        #expect(error?.code == .privileges)
        #expect(chmod("\(site.siteRoot)/releases", 0o755) == 0)
        #expect(throws: Never.self) { try DeliveryEngine(configuration: site.engine.configuration) }
    }
}
