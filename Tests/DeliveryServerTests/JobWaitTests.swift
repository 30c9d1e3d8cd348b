import DeliveryCore
import Foundation
import Logging
import Synchronization
import Testing

@testable import DeliveryServer

/// `GET /jobs/{id}?wait=N`, the farm node's follower's question, on the API itself: a job the
/// test ends when it chooses. (The follower asks so through the real farm socket in
/// FarmSocketTests and the farm suites.)
@Suite("deliveryd: a job's end waited for")
struct JobWaitTests {
    /// An API over a site's engine with `workers` request threads, and a job it registered that
    /// nothing runs: the test finishes it.
    static func apiWithJob(workers: Int = 4) throws -> (api: API, job: Job, server: TestServer) {
        let server = try TestServer()
        let engine = try DeliveryEngine(configuration: SiteConfiguration.load(from: "\(server.directory)/site.json"))
        let jobs = JobRegistry(retained: 4, maxLines: 100)
        let api = API(
            engine: engine, jobs: jobs, limits: ServerLimits(), logger: Logger(label: "test"), workers: workers)
        guard case .started(let job) = jobs.start(try OperationRequest(.secure, actor: Actor(name: "t", source: "cli")))
        else { throw ClientError("no job") }
        return (api, job, server)
    }

    static let farm = Actor(name: "farm coordinator", source: Actor.farmSource)
    static let page = Actor(name: "Ada", source: "moodle", moodleUserId: 2, claimed: true)

    /// Asks for the job; its answer's status and state, and the seconds it took.
    static func ask(_ api: API, _ job: Job, wait: String, as actor: Actor = farm) -> (
        status: Int, state: String?, seconds: Double
    ) {
        let started = System.monotonicSeconds()
        let answer = api.handle(
            APIRequest(method: "GET", path: "/jobs/\(job.id)", query: ["wait": wait], body: [], actor: actor))
        let view = (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any]
        return (answer.status, view?["state"] as? String, System.monotonicSeconds() - started)
    }

    @Test("a running job's answer comes when it ends, or after the wait; an ended job's at once")
    func waitsForTheEnd() throws {
        let (api, job, _) = try Self.apiWithJob()
        let running = Self.ask(api, job, wait: "1")
        #expect(running.status == 200 && running.state == "running" && running.seconds >= 0.9, "\(running)")
        let ender = try System.startThread {
            System.sleep(seconds: 0.3)
            job.finish(.failure(DeliveryError(.io, "ended by the test")))
        }
        let ended = Self.ask(api, job, wait: "2")
        System.join(ender)
        #expect(ended.status == 200 && ended.state == "failed", "\(ended)")
        #expect(ended.seconds < 1.9, "answered at its end, not after the wait: \(ended.seconds) s")
        let again = Self.ask(api, job, wait: "2")
        #expect(again.state == "failed" && again.seconds < 1, "\(again)")
    }

    @Test(
        "wait is the farm socket's only, a whole number of seconds from 0 to 2: anything else is refused (bad_request)")
    func refusals() throws {
        let (api, job, _) = try Self.apiWithJob()
        let fromPage = Self.ask(api, job, wait: "1", as: Self.page)
        #expect(fromPage.status == 400 && fromPage.seconds < 0.5, "\(fromPage)")
        #expect(Self.ask(api, job, wait: "0", as: Self.page).status == 200)
        for wait in ["3", "-1", "x", "1.5", ""] {
            #expect(Self.ask(api, job, wait: wait).status == 400, "wait=\(wait)")
        }
    }

    @Test("at most half the workers wait at once: with two, a second waiting question is answered at once")
    func halfTheWorkersAtMost() throws {
        let (api, job, _) = try Self.apiWithJob(workers: 2)
        let answers = Mutex<[Double]>([])
        let threads = try (0..<2).map { _ in
            try System.startThread {
                let answer = Self.ask(api, job, wait: "1")
                answers.withLock { $0.append(answer.seconds) }
            }
        }
        for thread in threads { System.join(thread) }
        let seconds = answers.withLock { $0 }.sorted()
        #expect(seconds.count == 2 && seconds[0] < 0.5 && seconds[1] >= 0.9, "\(seconds)")
        // Once the first waiter is gone, the next one waits again.
        #expect(Self.ask(api, job, wait: "1").seconds >= 0.9)
    }
}
