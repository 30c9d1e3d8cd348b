import Foundation
import Synchronization
import Testing

@testable import DeliveryCore

/// A farm coordinator's update names the revision it goes to before it changes production, so
/// that the other nodes update to exactly that revision at the same time
/// (`FarmDelivery.updateEverywhere`), on the fixture site with the real engine.
@Suite("A farm coordinator's update names its revision first")
struct FarmUpdateTests {
    /// The coordinator's update of `site`, with what its hook was told and production's
    /// `version.php` at that moment.
    static func update(
        _ site: FixtureSite, updatePath: String? = nil
    ) throws -> (told: [Revision], versionWhenTold: [String], outcome: OperationOutcome) {
        let told = Mutex<[(Revision, String)]>([])
        let production = site.production
        let request = try OperationRequest(
            .update, actor: FarmReadyTests.coordinatorActor(),
            updatePath: updatePath.map { try ComponentPath($0) })
        let outcome = try site.engine.perform(
            request, progress: { _ in }, farmHooks: nil,
            onUpdateTarget: { revision in
                let version = (try? String(contentsOfFile: "\(production)/version.php", encoding: .utf8)) ?? "?"
                told.withLock { $0.append((revision, version)) }
            })
        let calls = told.withLock { $0 }
        return (calls.map(\.0), calls.map(\.1), outcome)
    }

    @Test(
        "a whole update (git, svn) names its revision once, while production is still at the one before, and reaches it",
        arguments: [VersionControlKind.git, .svn])
    func wholeUpdateNamesItsRevision(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        let before = try #require(try site.engine.status().productionRevision)
        let versionBefore = try String(contentsOfFile: "\(site.production)/version.php", encoding: .utf8)
        try site.publishRevision2()
        let (told, versionWhenTold, outcome) = try Self.update(site)
        let after = try #require(try site.engine.status().productionRevision)
        #expect(outcome.phase == .updated)
        #expect(told.count == 1, "told once: \(told)")
        #expect(told.first?.id == after.id && after.id != before.id, "the revision it reached: \(told) \(after)")
        #expect(versionWhenTold == [versionBefore], "production had not changed yet when it was told")
        #expect(try String(contentsOfFile: "\(site.production)/version.php", encoding: .utf8) != versionBefore)
    }

    @Test("a component path's update names none: the other nodes follow once it ended")
    func pathUpdateNamesNone() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publish(["mod/forum/farm-path.php": "<?php\n// a component's change\n"])
        let (told, _, outcome) = try Self.update(site, updatePath: "mod/forum")
        #expect(outcome.phase == .updated)
        #expect(told.isEmpty, "\(told)")
    }

    @Test("a cvs update names none (its revisions are dates, not what a node can check out)")
    func cvsUpdateNamesNone() throws {
        let site = try FixtureSite(vcs: .cvs)
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        let (told, _, outcome) = try Self.update(site)
        #expect(outcome.phase == .updated)
        #expect(told.isEmpty, "\(told)")
    }

    @Test("the handoff: the first answer counts, every waiter gets it, and nil once the update ended without one")
    func handoff() throws {
        let revision = Revision(id: "abc123", label: "main @ abc123", branch: "main")
        let given = UpdateTargetHandoff()
        let waited = Mutex<[String?]>([])
        let threads = try (0..<3).map { _ in
            try System.startThread { waited.withLock { [value = given.wait()?.id] in $0.append(value) } }
        }
        given.give(revision)
        given.give(nil)
        for thread in threads { System.join(thread) }
        #expect(waited.withLock { $0 } == ["abc123", "abc123", "abc123"])
        #expect(given.wait()?.id == "abc123" && given.revision?.id == "abc123")

        let none = UpdateTargetHandoff()
        none.give(nil)
        none.give(revision)
        #expect(none.wait() == nil && none.revision == nil)
    }
}
