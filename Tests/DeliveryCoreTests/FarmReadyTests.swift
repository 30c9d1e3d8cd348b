import Foundation
import Testing

@testable import DeliveryCore

/// A farm node's restore in two steps (`FarmStage.ready`, then the restore that serves at once),
/// on the fixture site with the real engine.
@Suite("A farm node's readied restore")
struct FarmReadyTests {
    static let delivery = "F20261205T120000Z-0a1b2c3d"

    /// The coordinator's request as a node receives it (through the farm socket).
    static func farmActor(_ delivery: String = Self.delivery) -> Actor {
        Actor(name: "farm coordinator", source: "farm", farmDelivery: delivery)
    }

    /// The coordinator's own request on itself (an admin's, with the farm delivery's id).
    static func coordinatorActor(_ delivery: String = Self.delivery) -> Actor {
        Actor(name: "ada", source: "cli", farmDelivery: delivery)
    }

    /// A site in a delivery whose update brought a code-only change (no Moodle upgrade) that
    /// needs Moodle's caches purged (core code under lib/).
    static func updatedSite() throws -> FixtureSite {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publish(["lib/readied.php": "<?php\n// the readied change\n"])
        try site.perform(.update)
        return site
    }

    @Test(
        "ready: the preflight and OPcache while the copy serves, nothing switched; the restore of the same farm delivery then serves at once, without a second preflight"
    )
    func readyThenServe() throws {
        let site = try Self.updatedSite()
        let ready = try site.engine.perform(OperationRequest(.restore, actor: Self.farmActor(), farmStage: .ready))
        #expect(ready.notices.contains { $0.code == "farm_production_readied" })
        var state = try site.engine.store.read()
        #expect(state.phase == .updated)
        #expect(try site.engine.status().served == .backup)
        #expect(site.served == site.revision1, "the copy serves until the restore that follows")
        let readied = try #require(state.readiedRestore)
        #expect(readied.farmDelivery == Self.delivery && readied.phase == .updated && readied.served == .backup)
        #expect(readied.changedScripts == ["lib/readied.php"])
        #expect(site.allMoodleCalls.contains { $0.contains("upgrade.php --is-maintenance-required") })

        let callsBefore = site.allMoodleCalls.count
        let served = try site.engine.perform(OperationRequest(.restore, actor: Self.farmActor()))
        #expect(served.phase == .idle && served.served == .production)
        #expect(FileManager.default.fileExists(atPath: "\(site.current)/lib/readied.php"))
        let after = site.allMoodleCalls.dropFirst(callsBefore)
        #expect(!after.contains { $0.contains("--is-maintenance-required") }, "no second forecast: \(after)")
        // The caches are the farm's, shared: the coordinator purges them, not this node.
        #expect(!after.contains { $0.contains("purge_caches.php") }, "\(after)")
        #expect(served.notices.contains { $0.code == "farm_caches_purged_by_coordinator" })
        state = try site.engine.store.read()
        #expect(state.readiedRestore == nil)
    }

    @Test("a cancel after ready forgets what was readied")
    func cancelForgetsReadied() throws {
        let site = try Self.updatedSite()
        _ = try site.engine.perform(OperationRequest(.restore, actor: Self.farmActor(), farmStage: .ready))
        #expect(try site.engine.store.read().readiedRestore != nil)
        _ = try site.engine.perform(OperationRequest(.cancel, actor: Self.farmActor()))
        let state = try site.engine.store.read()
        #expect(state.readiedRestore == nil && state.phase == .idle)
    }

    @Test("the coordinator's own readied restore purges the farm's shared caches, once")
    func coordinatorPurges() throws {
        let site = try Self.updatedSite()
        _ = try site.engine.perform(OperationRequest(.restore, actor: Self.coordinatorActor(), farmStage: .ready))
        let callsBefore = site.allMoodleCalls.count
        let served = try site.engine.perform(OperationRequest(.restore, actor: Self.coordinatorActor()))
        #expect(served.phase == .idle && served.served == .production)
        let after = site.allMoodleCalls.dropFirst(callsBefore)
        #expect(after.filter { $0.contains("purge_caches.php") }.count == 1, "\(after)")
        #expect(!after.contains { $0.contains("--is-maintenance-required") }, "\(after)")
        #expect(!served.notices.contains { $0.code == "farm_caches_purged_by_coordinator" })
    }

    @Test(
        "ready readies nothing when the revision brings a Moodle upgrade (the farm's lock-step restore runs it): it says so, and changes nothing"
    )
    func readyLeavesAnUpgradeToTheLockStep() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        let before = try site.engine.store.read()
        let ready = try site.engine.perform(OperationRequest(.restore, actor: Self.farmActor(), farmStage: .ready))
        #expect(ready.notices.map(\.code) == ["farm_upgrade_in_lock_step"])
        let state = try site.engine.store.read()
        #expect(state.readiedRestore == nil && state.phase == .updated)
        #expect(state.criticalChecksBefore == before.criticalChecksBefore && !state.maintenanceEnabled)
        #expect(try site.engine.status().served == .backup)
        #expect(!site.moodleCalls.contains { $0.contains("upgrade.php --non-interactive") })
        // The restore of the same farm delivery without a stage still refuses the upgrade.
        #expect(throws: DeliveryError.self) {
            try site.engine.perform(OperationRequest(.restore, actor: Self.farmActor()))
        }
    }

    @Test(
        "a farm delivery's switch, update and restore keep Moodle's answers about the copies that its secure asked; a restore that ran the upgrade, and any other operation, ask again"
    )
    func farmStepsKeepCopiesMatchingDatabase() throws {
        let site = try FixtureSite()
        func asked(_ body: () throws -> Void) throws -> Int {
            let before = site.allMoodleCalls.count
            try body()
            return site.allMoodleCalls.dropFirst(before).filter { $0.contains("upgrade.php --is-pending") }.count
        }
        func perform(_ operation: DeliveryCore.Operation, _ actor: Actor, _ stage: FarmStage? = nil) throws {
            _ = try site.engine.perform(OperationRequest(operation, actor: actor, farmStage: stage))
        }
        #expect(try asked { try perform(.secure, Self.farmActor()) } > 0, "the secure asks")
        let answers = try #require(try site.engine.store.read().copiesMatchingDatabase)
        #expect(try site.engine.store.read().copiesMatchingDatabaseFarmDelivery == Self.delivery)
        #expect(try asked { try perform(.switchToDelivery, Self.farmActor()) } == 0)
        try site.publish(["lib/kept.php": "<?php\n// a code-only change\n"])
        #expect(try asked { try perform(.update, Self.farmActor()) } == 0)
        #expect(try asked { try perform(.restore, Self.farmActor(), .ready) } == 0)
        #expect(try asked { try perform(.restore, Self.farmActor()) } == 0)
        #expect(try site.engine.store.read().copiesMatchingDatabase == answers)

        // Moodle's upgrade in the farm's lock-step restore: the restore asks.
        let upgrading = "F20261205T140000Z-0a1b2c3d"
        try perform(.secure, Self.coordinatorActor(upgrading))
        try perform(.switchToDelivery, Self.coordinatorActor(upgrading))
        try site.publishRevision2()
        try perform(.update, Self.coordinatorActor(upgrading))
        let hooks = FarmRestoreHooks(serveEverywhere: {}, finishEverywhere: {})
        #expect(
            try asked {
                _ = try site.engine.perform(
                    OperationRequest(.restore, actor: Self.coordinatorActor(upgrading)), progress: { _ in },
                    farmHooks: hooks)
            } > 0, "the restore that ran the upgrade asks")
        #expect(site.moodleCalls.contains { $0.contains("upgrade.php --non-interactive") })

        // Another farm delivery, or none: every operation asks.
        #expect(try asked { try perform(.secure, Actor(name: "ada", source: "cli")) } > 0)
        #expect(try site.engine.store.read().copiesMatchingDatabaseFarmDelivery == nil)
        #expect(try asked { try perform(.switchToDelivery, Self.farmActor()) } > 0)
        #expect(try asked { try perform(.cancel, Actor(name: "ada", source: "cli")) } > 0)
        #expect(try asked { try perform(.secure, Self.farmActor()) } > 0)
        #expect(try asked { try perform(.switchToDelivery, Self.farmActor("F20261205T130000Z-99999999")) } > 0)
        try perform(.cancel, Actor(name: "ada", source: "cli"))

        // Another node of the coordinator's upgrade: its stages of it ask (the database changes there).
        let following = "F20261205T150000Z-0a1b2c3d"
        try perform(.secure, Self.farmActor(following))
        try perform(.switchToDelivery, Self.farmActor(following))
        let version = try String(contentsOfFile: "\(site.current)/version.php", encoding: .utf8)
        try site.publish(["version.php": version.replacingOccurrences(of: "2024100800.00", with: "2024100900.00")])
        try perform(.update, Self.farmActor(following))
        #expect(try asked { try perform(.restore, Self.farmActor(following), .serve) } > 0)
    }

    @Test(
        "what was readied serves only the restore of the same farm delivery, with nothing changed on the node since"
    )
    func readiedMatchesOnlyItsRestore() throws {
        var state = DeliveryState()
        state.phase = .updated
        state.deliveryId = "D1"
        state.productionRevision = Revision(id: "abc", label: "main @ abc", branch: "main", readAt: Date())
        let readied = ReadiedRestore(
            farmDelivery: Self.delivery, deliveryId: "D1", phase: .updated, revisionId: "abc", served: .backup,
            changedScripts: [], differences: nil, readiedAt: Date())
        let restore = try OperationRequest(.restore, actor: Self.farmActor())
        #expect(readied.readies(restore, state: state, served: .backup))
        #expect(
            !readied.readies(
                try OperationRequest(.restore, actor: Self.farmActor("F20261205T130000Z-99999999")), state: state,
                served: .backup))
        #expect(
            !readied.readies(
                try OperationRequest(.restore, actor: Actor(name: "ada", source: "cli")), state: state, served: .backup)
        )
        #expect(
            !readied.readies(
                try OperationRequest(.restore, actor: Self.farmActor(), farmStage: .ready), state: state,
                served: .backup))
        #expect(!readied.readies(restore, state: state, served: .production))
        var changed = state
        changed.productionRevision?.id = "def"
        #expect(!readied.readies(restore, state: changed, served: .backup))
        changed = state
        changed.phase = .delivering
        #expect(!readied.readies(restore, state: changed, served: .backup))
        changed = state
        changed.deliveryId = "D2"
        #expect(!readied.readies(restore, state: changed, served: .backup))
    }
}
