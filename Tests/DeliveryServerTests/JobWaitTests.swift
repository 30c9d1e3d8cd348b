import Foundation
import Testing

/// `GET /jobs/{id}?wait=N` (a farm node's follower asks so), against the real `deliveryd`.
@Suite("deliveryd: a job's end waited for", .serialized)
struct JobWaitTests {
    @Test(
        "wait=N answers when the job ends, or after N seconds while it runs: a job is followed in a few questions, not hundreds",
        .enabled(if: getuid() == 0, "the engine runs git as the code owner with setpriv"))
    func waitsForTheEnd() throws {
        // Enough files that the secure runs for a while.
        let server = try TestServer(productionFiles: 12000)
        try server.start()
        let started = try server.post("/operations", ["operation": "secure"])
        #expect(started.status == 202, "\(started.text)")
        let id = try #require(started.json["job"] as? String)
        let since = Date()
        var questions = 0
        var state = "running"
        while state == "running" && Date().timeIntervalSince(since) < 120 {
            let asked = Date()
            let view = try server.signed("GET", "/jobs/\(id)", query: "wait=1")
            questions += 1
            #expect(view.status == 200, "\(view.text)")
            state = view.json["state"] as? String ?? "?"
            // A running job's answer came after the wait, not at once.
            if state == "running" { #expect(Date().timeIntervalSince(asked) >= 0.9, "answered at once: \(questions)") }
        }
        #expect(state == "succeeded")
        let seconds = Date().timeIntervalSince(since)
        #expect(Double(questions) <= seconds + 2, "\(questions) questions in \(seconds) s")
        // An ended job is answered at once.
        let asked = Date()
        #expect(try server.signed("GET", "/jobs/\(id)", query: "wait=2").json["state"] as? String == "succeeded")
        #expect(Date().timeIntervalSince(asked) < 1)
    }

    @Test("wait must be a whole number of seconds from 0 to 2: anything else is refused (bad_request)")
    func badWaits() throws {
        let server = try TestServer()
        try server.start()
        let started = try server.post("/operations", ["operation": "secure"])
        let id = try #require(started.json["job"] as? String)
        for wait in ["3", "-1", "x", "1.5", ""] {
            let answer = try server.signed("GET", "/jobs/\(id)", query: "wait=\(wait)")
            #expect(answer.status == 400 && answer.errorCode == "bad_request", "wait=\(wait): \(answer.text)")
        }
        _ = try server.follow(job: id)
    }
}
