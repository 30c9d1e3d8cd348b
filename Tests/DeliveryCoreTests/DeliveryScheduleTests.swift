import DeliveryCore
import Foundation
import Testing

@Suite("Deliver later: a Run all of the waiting revision at a chosen time, kept by the helper")
struct DeliveryScheduleTests {
    static let ada = Actor(name: "Ada Admin", source: "moodle", moodleUserId: 2)

    static func request(_ preview: UpstreamPreview, at: Date, gated: Bool = true) throws -> ScheduleRequest {
        try ScheduleRequest(
            at: at, revision: preview.upstream.id, onlyIfPreflightPasses: gated, comment: "tonight", actor: ada)
    }

    @Test(
        "set, refused twice, cancelled; only the revision waiting, only in range",
        arguments: [VersionControlKind.git, .svn])
    func setAndCancel(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        try site.publishRevision2()
        let now = Date()
        #expect(throws: DeliveryError.self) {  // no upstream check yet: nothing is known to be waiting
            try site.engine.setSchedule(try ScheduleRequest(at: now + 3600, revision: "1", actor: Self.ada), now: now)
        }
        let preview = try site.engine.checkUpstream()
        #expect(throws: DeliveryError.self) {
            try site.engine.setSchedule(try Self.request(preview, at: now + 10), now: now)
        }
        let stale = try ScheduleRequest(at: now + 3600, revision: "12345", actor: Self.ada)
        #expect(
            (try? site.engine.setSchedule(stale, now: now)) == nil)
        let schedule = try site.engine.setSchedule(try Self.request(preview, at: now + 3600), now: now)
        #expect(schedule.revision.id == preview.upstream.id)
        #expect(try site.engine.status().schedule?.id == schedule.id)
        let second = #expect(throws: DeliveryError.self) {
            try site.engine.setSchedule(try Self.request(preview, at: now + 7200), now: now)
        }
        #expect(second?.code == .scheduleExists)
        // Not due yet: nothing runs.
        #expect(try site.engine.runDueSchedule(now: now + 3599) == nil)
        #expect(try site.engine.cancelSchedule(actor: Self.ada).id == schedule.id)
        #expect(try site.engine.status().schedule == nil)
        #expect(throws: DeliveryError.self) { try site.engine.cancelSchedule(actor: Self.ada) }
        #expect(try site.engine.runDueSchedule(now: now + 3601) == nil)
        let results = site.auditLines.compactMap {
            $0.contains("\"scheduled\"") || $0.contains("\"unscheduled\"") ? $0 : nil
        }
        #expect(results.count == 2)
    }

    @Test(
        "at its time it delivers exactly the scheduled revision, not a newer one",
        arguments: [VersionControlKind.git, .svn])
    func runsScheduledRevision(vcs: VersionControlKind) throws {
        let site = try FixtureSite(vcs: vcs)
        try site.publishRevision2()
        let now = Date()
        let preview = try site.engine.checkUpstream()
        _ = try site.engine.setSchedule(try Self.request(preview, at: now + 60), now: now)
        try site.commitUpstream(["local/foo/later.php": "<?php // later\n"], message: "revision 3")
        _ = try site.engine.checkUpstream()
        let outcome = try #require(try site.engine.runDueSchedule(now: now + 61))
        #expect(outcome.operation == .runAll)
        #expect(outcome.notices.first?.code == "scheduled_run_started")
        #expect(outcome.notices.contains { $0.code == "newer_upstream_left" })
        #expect(site.servedVersion.contains("2024100800.00"))
        #expect(!FileManager.default.fileExists(atPath: "\(site.current)/local/foo/later.php"))
        #expect(try site.engine.status().schedule == nil)
        let report = try site.engine.report(deliveryId: outcome.id)
        #expect(report.scheduled)
        #expect(report.actor.name == "Ada Admin")
        #expect(report.outcome == .delivered)
        // It ran once: the schedule is gone.
        #expect(try site.engine.runDueSchedule(now: now + 120) == nil)
        // What it delivered waits no more: scheduling it again is refused until a check finds more.
        let again = #expect(throws: DeliveryError.self) {
            try site.engine.setSchedule(try Self.request(preview, at: Date() + 3600), now: Date())
        }
        #expect(again?.code == .scheduleStale)
    }

    @Test(
        "skipped when the preflight of the scheduled revision blocks at its time, or the helper is too late; nothing changed"
    )
    func skipped() throws {
        let site = try FixtureSite(vcs: .git)
        try site.commitUpstream(["local/foo/broken.php": "<?php\n$x = ;\n"], message: "broken")
        let now = Date()
        let preview = try site.engine.checkUpstream()
        #expect(preview.blocking)
        _ = try site.engine.setSchedule(try Self.request(preview, at: now + 60), now: now)
        let before = site.diskSnapshot
        let blocked = #expect(throws: DeliveryError.self) { try site.engine.runDueSchedule(now: now + 61) }
        #expect(blocked?.code == .scheduleSkipped)
        #expect(blocked?.notices.first?.code == "schedule_skipped_preflight")
        #expect(site.diskSnapshot.difference(from: before).filter { !$0.hasPrefix("state/") } == [])
        #expect(try site.engine.status().phase == .idle)
        #expect(site.auditLines.last?.contains("\"schedule_skipped\"") == true)

        _ = try site.engine.setSchedule(try Self.request(preview, at: now + 60, gated: false), now: now)
        let late = #expect(throws: DeliveryError.self) { try site.engine.runDueSchedule(now: now + 60 + 31 * 60) }
        #expect(late?.notices.first?.code == "schedule_skipped_late")
        #expect(site.diskSnapshot.difference(from: before).filter { !$0.hasPrefix("state/") } == [])
    }
}
