import Foundation
import Testing

@testable import DeliveryCore

@Suite("secure --security refreshes the backup and the security copies at the same time")
struct BothCopiesTests {
    @Test("one file changed: both copies exact, put in place backup first, nothing left pending")
    func oneFileChanged() throws {
        let site = try FixtureSite()
        try site.perform(.secure, security: true)
        try "<?php // FIXTURE changed for the two copies\n".write(
            toFile: "\(site.production)/index.php", atomically: true, encoding: .utf8)
        let secured = try site.perform(.secure, security: true)
        #expect(secured.notices.map(\.code) == ["copy_made", "copy_made", "next_switch"])
        #expect(secured.notices.prefix(2).map { $0.values["tree"] } == [.tree(.backup), .tree(.security)])
        #expect(secured.notices.prefix(2).map { $0.values["copied"] } == [.count(1), .count(1)])
        #expect(TreeSnapshot(site.backup) == TreeSnapshot(site.production))
        #expect(TreeSnapshot(site.security) == TreeSnapshot(site.production))
        let state = try site.engine.store.read()
        #expect(state.pendingSwap == nil)
        #expect(state.copies[.backup]?.complete == true && state.copies[.security]?.complete == true)
        #expect(state.copies[.backup]?.fingerprint != nil)
        #expect(state.copies[.backup]?.fingerprint == state.copies[.security]?.fingerprint)

        let again = try site.perform(.secure, security: true)
        #expect(again.notices.map(\.code) == ["copy_identical", "copy_identical", "next_switch"])
        site.checkInvariants(after: .secure)
    }
}
