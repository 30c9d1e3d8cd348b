import Foundation
import Testing

/// The routes of the upstream watch, the reports and the schedule, against the real `deliveryd`.
@Suite("deliveryd: upstream checks, reports, schedule", .serialized)
struct UpstreamRoutesTests {
    @Test("POST /upstream-checks says what is waiting; the status keeps it")
    func upstreamChecks() throws {
        let server = try TestServer(withUpstream: true)
        try server.start()
        let quiet = try server.signed("POST", "/upstream-checks", body: Array("{}".utf8))
        #expect(quiet.status == 200, "\(quiet.text)")
        #expect(quiet.json["waiting"] as? Bool == false)
        try server.pushUpstream("mod/forum/lib.php", "<?php\n$x = ;\n", message: "Broken forum")
        let waiting = try server.signed("POST", "/upstream-checks")
        #expect(waiting.status == 200, "\(waiting.text)")
        #expect(waiting.json["waiting"] as? Bool == true)
        #expect((waiting.json["commits"] as? [[String: Any]])?.first?["subject"] as? String == "Broken forum")
        #expect((waiting.json["added"] as? [String]) == ["mod/forum/lib.php"])
        #expect(waiting.json["blocking"] as? Bool == true)
        let status = try server.signed("GET", "/status")
        let upstream = (status.json["site"] as? [String: Any])?["upstream"] as? [String: Any]
        #expect(upstream?["waiting"] as? Bool == true)
        // Not an empty object: refused.
        #expect(try server.signed("POST", "/upstream-checks", body: Array(#"{"x":1}"#.utf8)).status == 400)
        #expect(try server.signed("GET", "/upstream-checks").status == 405)
    }

    @Test("PUT /schedule checks its body, never replaces a schedule, and DELETE cancels it")
    func schedule() throws {
        let server = try TestServer(withUpstream: true)
        try server.start()
        try server.pushUpstream("local/x.php", "<?php // x\n", message: "Add x")
        let check = try server.signed("POST", "/upstream-checks")
        let revision = try #require((check.json["upstream"] as? [String: Any])?["id"] as? String)
        let at = Date().addingTimeInterval(3600).formatted(.iso8601)
        func put(_ object: [String: Any]) throws -> ClientResponse {
            try server.signed("PUT", "/schedule", body: Array(try JSONSerialization.data(withJSONObject: object)))
        }
        for bad: [String: Any] in [
            ["at": "tomorrow", "revision": revision], ["at": at], ["at": at, "revision": revision, "extra": 1],
            ["at": Date().addingTimeInterval(5).formatted(.iso8601), "revision": revision],
            ["at": at, "revision": "--upload-pack=touch /tmp/x"],
        ] {
            #expect(try put(bad).status == 400, "\(bad)")
        }
        #expect(try put(["at": at, "revision": "0123456789abcdef"]).json.description.contains("schedule_stale"))
        let set = try put(["at": at, "revision": revision, "comment": "tonight", "onlyIfPreflightPasses": true])
        #expect(set.status == 201, "\(set.text)")
        #expect((set.json["actor"] as? [String: Any])?["moodleUserId"] != nil)
        let again = try put(["at": at, "revision": revision])
        #expect(again.status == 409)
        #expect(again.text.contains("schedule_exists"))
        let status = try server.signed("GET", "/status")
        #expect(
            ((status.json["site"] as? [String: Any])?["schedule"] as? [String: Any])?["comment"] as? String == "tonight"
        )
        #expect(try server.signed("DELETE", "/schedule").status == 200)
        #expect(try server.signed("DELETE", "/schedule").status == 404)
        #expect(try server.signed("GET", "/reports/..%2Fetc").status == 400)
        #expect(try server.signed("GET", "/reports/20990101T000000Z-00000000").status == 404)
        #expect(try server.signed("POST", "/reports/20990101T000000Z-00000000").status == 405)
    }
}
