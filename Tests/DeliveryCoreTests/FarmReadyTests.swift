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
    static let coordinatorActor = Actor(name: "ada", source: "cli", farmDelivery: Self.delivery)

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

    @Test("the coordinator's own readied restore purges the farm's shared caches, once")
    func coordinatorPurges() throws {
        let site = try Self.updatedSite()
        _ = try site.engine.perform(OperationRequest(.restore, actor: Self.coordinatorActor, farmStage: .ready))
        let callsBefore = site.allMoodleCalls.count
        let served = try site.engine.perform(OperationRequest(.restore, actor: Self.coordinatorActor))
        #expect(served.phase == .idle && served.served == .production)
        let after = site.allMoodleCalls.dropFirst(callsBefore)
        #expect(after.filter { $0.contains("purge_caches.php") }.count == 1, "\(after)")
        #expect(!after.contains { $0.contains("--is-maintenance-required") }, "\(after)")
        #expect(!served.notices.contains { $0.code == "farm_caches_purged_by_coordinator" })
    }

    @Test(
        "ready is refused when the revision brings a Moodle upgrade (the farm's lock-step restore runs it), and changes nothing"
    )
    func readyRefusesAnUpgrade() throws {
        let site = try FixtureSite()
        try site.perform(.secure)
        try site.perform(.switchToDelivery)
        try site.publishRevision2()
        try site.perform(.update)
        #expect(throws: DeliveryError.self) {
            try site.engine.perform(OperationRequest(.restore, actor: Self.farmActor(), farmStage: .ready))
        }
        let state = try site.engine.store.read()
        #expect(state.readiedRestore == nil && state.phase == .updated)
        #expect(try site.engine.status().served == .backup)
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
