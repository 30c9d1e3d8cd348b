import DeliveryCore
import Foundation
import Testing

/// The state machine is written once, and the README shows it as it is.
@Suite("state machine")
struct StateMachineTests {
    static let begin = "<!-- states:begin (generated from StateMachine.markdownTable(); a test checks it) -->\n"
    static let end = "<!-- states:end -->"

    @Test("the README's States table is the library's")
    func readmeTable() throws {
        let readme = try String(contentsOfFile: "\(projectRoot)/README.md", encoding: .utf8)
        let table = StateMachine.markdownTable()
        let start = try #require(readme.range(of: Self.begin), "README.md lacks the states:begin marker")
        let stop = try #require(readme.range(of: Self.end, range: start.upperBound..<readme.endIndex))
        let shown = String(readme[start.upperBound..<stop.lowerBound])
        #expect(shown == table, "replace the README's table by:\n\(table)")
    }

    @Test("every operation but recover has a transition, from phases that exist, to a phase")
    func everyOperation() {
        let covered = Set(StateMachine.transitions.map(\.operation))
        #expect(covered == Set(Operation.allCases).subtracting([.recover]))
        // Every step leaves a phase; a rehearsal leaves the phase it found (it changes nothing).
        #expect(
            StateMachine.transitions.allSatisfy {
                !$0.from.isEmpty && ($0.leaves != nil) != ($0.operation == .rehearse)
            })
    }

    @Test("what each phase allows, for each thing served and each set of copies")
    func allowedByPhase() {
        // Production serving, both copies complete.
        let ready = { (phase: DeliveryPhase) in
            StateMachine.allowed(phase, productionServed: true, backupComplete: true, copyToServe: true).map(\.rawValue)
        }
        #expect(ready(.idle) == ["secure", "run-all", "rollback", "rehearse"])
        #expect(ready(.secured) == ["secure", "switch", "run-all", "cancel", "rollback", "rehearse"])
        #expect(ready(.restoring) == ["restore", "cancel", "rollback"])
        // A copy serving.
        let delivering = { (phase: DeliveryPhase) in
            StateMachine.allowed(phase, productionServed: false, backupComplete: true, copyToServe: true).map(
                \.rawValue)
        }
        #expect(delivering(.delivering) == ["update", "restore", "cancel", "rollback", "rehearse"])
        #expect(delivering(.updated) == ["update", "restore", "cancel", "rollback", "rehearse"])
        #expect(delivering(.rolledBack) == ["update", "restore", "cancel", "rollback"])
        #expect(delivering(.idle) == ["cancel", "rollback", "rehearse"])
        // No complete copy: no switch, no rollback.
        #expect(
            StateMachine.allowed(.secured, productionServed: true, backupComplete: false, copyToServe: false).map(
                \.rawValue) == ["secure", "run-all", "cancel", "rehearse"])
    }
}
