import DeliveryCore
import Foundation
import Testing

/// A request is parsed once at each boundary: built through the checks, and decoded (by the
/// monitor) through the same checks, so that whoever holds one holds a valid one.
@Suite("operation requests")
struct OperationRequestTests {
    static let actor = Actor(name: "tester", source: "cli")

    @Test("decoding checks what building checks: a path, a comment, an actor's name")
    func decodingChecks() throws {
        let valid = try OperationRequest(
            .runAll, actor: Self.actor, securePath: try ComponentPath("mod"),
            updatePath: try ComponentPath("local/foo/"),
            comment: "a\tcomment\n")
        let data = try JSONEncoder().encode(valid)
        #expect(try JSONDecoder().decode(OperationRequest.self, from: data) == valid)
        #expect(String(data: data, encoding: .utf8)?.contains(#""updatePath":"local\/foo""#) == true)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for (member, value) in [
            ("securePath", "../etc" as Any), ("updatePath", "/etc"), ("updatePath", "mod/.git"),
            ("comment", String(repeating: "c", count: OperationRequest.commentLimit + 1)), ("comment", "bell\u{7}"),
            ("actor", ["name": "", "source": "cli"]), ("actor", ["name": "a\u{1b}[2J", "source": "cli"]),
        ] {
            var forged = object
            forged[member] = value
            let forgedData = try JSONSerialization.data(withJSONObject: forged)
            #expect(throws: DecodingError.self, "\(member)") {
                try JSONDecoder().decode(OperationRequest.self, from: forgedData)
            }
        }
    }

    @Test("a refusal while parsing is audited once, as the operation and actor without the options")
    func parseRefusalAudited() {
        var audited: [(OperationRequest, DeliveryError)] = []
        #expect(throws: DeliveryError.self) {
            try OperationRequest.parse(.update, actor: Self.actor, updatePath: "../x", comment: "c") {
                audited.append(($0, $1))
            }
        }
        #expect(audited.count == 1)
        #expect(audited.first?.0 == (try? OperationRequest(.update, actor: Self.actor)))
        #expect(audited.first?.1.code == .badPath)
        let parsed = try? OperationRequest.parse(.update, actor: Self.actor, updatePath: "mod/forum") { _, _ in
            Issue.record("audited a valid request")
        }
        #expect(parsed?.updatePath?.value == "mod/forum")
    }

    @Test("one id format for jobs and deliveryctl's operations")
    func identifiers() {
        let id = OperationIdentifier.make()
        #expect(OperationIdentifier.isValid(id), "\(id)")
        #expect(id != OperationIdentifier.make())
        for bad in [
            "", "job-1", "../../etc", "20261125T153000Z-1a2b3c4", "20261125T153000Z-1A2B3C4D",
            "20261125X153000Z-1a2b3c4d",
        ] {
            #expect(!OperationIdentifier.isValid(bad), "\(bad)")
        }
    }

    @Test("the refusal codes are those raised before anything changes")
    func refusalCodes() {
        #expect(DeliveryError.Code.lockHeld.isRefusal && DeliveryError.Code.badPath.isRefusal)
        #expect(!DeliveryError.Code.io.isRefusal && !DeliveryError.Code.preempted.isRefusal)
        #expect(!DeliveryError.Code.webServerStale.isRefusal && !DeliveryError.Code.upgradeFailed.isRefusal)
    }
}
