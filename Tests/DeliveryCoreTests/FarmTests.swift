import Foundation
import Testing

@testable import DeliveryCore

@Suite("A web farm's settings and the two ends of its SSH channel")
struct FarmTests {
    func settings(_ nodes: [FarmNode]) -> FarmSettings {
        FarmSettings(
            identityFile: "/etc/moodle-delivery/sites/a/farm_ed25519",
            knownHostsFile: "/etc/moodle-delivery/sites/a/farm_known_hosts", nodes: nodes)
    }

    @Test("nothing in the settings can become an option of ssh's, and each refusal names what is wrong")
    func validation() throws {
        try settings([
            FarmNode(name: "web2", address: "10.0.0.2"),
            FarmNode(name: "web3", address: "web3.example.org", port: 2222),
        ]).validate()
        let refused: [(FarmSettings, String)] = [
            (settings([FarmNode(name: "web2", address: "-oProxyCommand=sh")]), "is not a host name"),
            (settings([FarmNode(name: "web2", address: "10.0.0.2 -v")]), "is not a host name"),
            (settings([FarmNode(name: "-web", address: "10.0.0.2")]), "is not a node name"),
            (settings([FarmNode(name: "web2", address: "a"), FarmNode(name: "web2", address: "b")]), "given twice"),
            (settings([FarmNode(name: "web2", address: "a", port: 70000)]), "is not a port"),
            (settings([]), "farm.nodes is empty"),
            (
                FarmSettings(
                    account: "root -x", identityFile: "/k", knownHostsFile: "/h",
                    nodes: [FarmNode(name: "a", address: "a")]), "is not a user name"
            ),
            (
                FarmSettings(identityFile: "k", knownHostsFile: "/h", nodes: [FarmNode(name: "a", address: "a")]),
                "farm.identityFile"
            ),
        ]
        for (value, expected) in refused {
            let error = #expect(throws: DeliveryError.self) { try value.validate() }
            #expect(
                error?.code == .configuration && error?.message.contains(expected) == true,
                "\(String(describing: error))")
        }
    }

    @Test("ssh reads no configuration, checks the pinned key under the node's name, and runs no command of ours")
    func sshArguments() {
        let node = FarmNode(name: "web2", address: "10.0.0.2", port: 2222)
        let arguments = FarmChannel(settings: settings([node])).arguments(for: node)
        #expect(Array(arguments.prefix(5)) == ["-F", "/dev/null", "-T", "-p", "2222"])
        for option in [
            "StrictHostKeyChecking=yes", "HostKeyAlias=web2", "GlobalKnownHostsFile=/dev/null", "IdentitiesOnly=yes",
            "IdentityAgent=none", "ClearAllForwardings=yes", "ForwardAgent=no", "RequestTTY=no", "BatchMode=yes",
        ] {
            #expect(arguments.contains(option), "\(option)")
        }
        // The destination is the last argument, after "--", and nothing follows it (no command).
        #expect(Array(arguments.suffix(2)) == ["--", "moodle-farm@10.0.0.2"])
    }

    @Test("follow answers hello, and refuses a command, another version, an unknown request or bad JSON")
    func follower() {
        let hello = FarmFollower.answer(
            Array(#"{"version":1,"request":"hello"}"#.utf8), site: "school", originalCommand: nil)
        #expect(hello == FarmReply(site: "school", product: ProductVersion.number))
        let cases: [(String, String?, String)] = [
            (#"{"version":1,"request":"hello"}"#, "id; cat /etc/shadow", "command_given"),
            (#"{"version":2,"request":"hello"}"#, nil, "unsupported_version"),
            (#"{"version":1,"request":"shell"}"#, nil, "unknown_request"),
            (#"{"version":1,"request":"preflight","farmDelivery":"F20261204-abcdefgh"}"#, nil, "unknown_request"),
            (#"{"version":1,"request":"hello","request":"x"}"#, nil, "bad_request"),
            ("not json", nil, "bad_request"),
        ]
        for (input, command, code) in cases {
            let reply = FarmFollower.answer(Array(input.utf8), site: "school", originalCommand: command)
            #expect(reply.error?.code == code && reply.site == nil, "\(input): \(reply)")
        }
    }

    @Test("one connection: follow answers each request line in order until its input ends; a command asked for ends it")
    func followerConnection() {
        func serve(_ lines: [String], command: String? = nil) -> (answers: [FarmReply], answeredAll: Bool) {
            var input = lines.map { Array($0.utf8) }[...]
            var written: [FarmReply] = []
            let answeredAll = FarmFollower.serve(
                next: { input.popFirst() },
                write: { line in
                    #expect(line.last == 10 && line.dropLast().allSatisfy { $0 != 10 })
                    written.append(try! JSONCoding.decode(FarmReply.self, from: Array(line.dropLast())))
                }, site: "school", originalCommand: command,
                helper: .failure(FarmError(code: "not_following", message: "no farm socket")))
            return (written, answeredAll)
        }
        let hello = #"{"version":1,"request":"hello"}"#
        let three = serve([hello, #"{"version":1,"request":"status"}"#, hello])
        #expect(three.answers.map(\.site) == ["school", nil, "school"] && !three.answeredAll)
        #expect(three.answers[1].error?.code == "not_following")
        let two = serve([hello, hello])
        #expect(two.answers.count == 2 && two.answeredAll)
        let none = serve([])
        #expect(none.answers.map(\.error?.code) == ["bad_request"] && !none.answeredAll)
        let commanded = serve([hello, hello], command: "sh")
        #expect(commanded.answers.map(\.error?.code) == ["command_given"])
    }

    @Test(
        "a conversation with a child: a line each way, in order; a child that leaves or does not answer in time ends it with what it said"
    )
    func conversation() throws {
        let echo = try ChildConversation(Command("/usr/bin/cat", [], timeoutSeconds: 0))
        for text in ["one", String(repeating: "x", count: 200_000), "three"] {
            #expect(try echo.exchange(Array(text.utf8), seconds: 5) == Array(text.utf8))
        }
        echo.close()
        #expect(throws: ChildConversation.Ended.self) { try echo.exchange(Array("again".utf8), seconds: 5) }

        let leaving = try ChildConversation(
            Command("/bin/sh", ["-c", "read line; echo \"no: $line\" >&2; exit 3"], timeoutSeconds: 0))
        do {
            _ = try leaving.exchange(Array("hello".utf8), seconds: 5)
            Issue.record("a child that left answered")
        } catch {
            #expect(error.result.exitCode == 3 && error.result.standardError == "no: hello\n" && !error.result.timedOut)
        }

        let silent = try ChildConversation(Command("/bin/sh", ["-c", "sleep 30"], timeoutSeconds: 0))
        let started = Date()
        do {
            _ = try silent.exchange(Array("hello".utf8), seconds: 0.3)
            Issue.record("a silent child answered")
        } catch {
            #expect(error.result.timedOut && error.result.exitCode == nil)
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test(
        "follow refuses a malformed farm delivery id, and status or an operation when the node's helper has no farm socket"
    )
    func followerRefusals() {
        let badId = FarmFollower.answer(
            Array(#"{"version":1,"request":"status","farmDelivery":"x;rm -rf"}"#.utf8), site: "school",
            originalCommand: nil)
        #expect(badId.error?.code == "bad_request")
        for request in ["status", "operation"] {
            let reply = FarmFollower.answer(
                Array(#"{"version":1,"request":"\#(request)","farmDelivery":"F20261204-abcdefgh"}"#.utf8),
                site: "school", originalCommand: nil,
                helper: .failure(FarmError(code: "not_following", message: "no farm socket")))
            #expect(reply.error?.code == "not_following", "\(request)")
        }
        #expect(FarmFollower.isDeliveryId("F20261204T101500Z-1a2b3c4d"))
        #expect(
            !FarmFollower.isDeliveryId("short") && !FarmFollower.isDeliveryId("F2026 1204")
                && !FarmFollower.isDeliveryId("-"))
    }

    @Test(
        "a node's answer to a farm step: a succeeded job passes; a failed job, a refusal or no answer keeps the node's own reason"
    )
    func nodeJobResults() {
        let succeeded = FarmReply(status: 200, answer: #"{"state":"succeeded","id":"x"}"#)
        #expect((try? FarmDelivery.jobResult(.success(succeeded)).get()) != nil)
        let failed = FarmReply(
            status: 200, answer: #"{"state":"failed","error":{"code":"vcs_failed","message":"git: no such revision"}}"#)
        guard case .failure(let error) = FarmDelivery.jobResult(.success(failed)) else {
            Issue.record("a failed job passed")
            return
        }
        #expect(error.code == .vcsFailed && error.message == "git: no such revision")
        let refused = FarmReply(status: 409, answer: #"{"error":{"code":"lock_held","message":"held by ada"}}"#)
        guard case .failure(let held) = FarmDelivery.jobResult(.success(refused)) else {
            Issue.record("a refusal passed")
            return
        }
        #expect(held.code == .lockHeld && held.message == "held by ada")
        let follower = FarmReply(error: FarmError(code: "not_following", message: "no farm socket"))
        guard case .failure(let notFollowing) = FarmDelivery.jobResult(.success(follower)) else {
            Issue.record("a follower's refusal passed")
            return
        }
        #expect(notFollowing.message.contains("not_following"))
        guard
            case .failure(let unreachable) = FarmDelivery.jobResult(
                .failure(DeliveryError(.farmUnreachable, "cut off"))),
            case .failure = FarmDelivery.jobResult(nil)
        else {
            Issue.record("no answer passed")
            return
        }
        #expect(unreachable.code == .farmUnreachable)
    }

    @Test("a node's message reads as a clause of the farm's sentence")
    func clauses() {
        #expect(
            FarmDelivery.clause("  git: the upstream has no revision 'abc'  The site still serves.. ")
                == "git: the upstream has no revision 'abc' The site still serves")
    }

    @Test("an error's parts read as sentences: the empty ones left out, a full stop after each but the last")
    func sentences() {
        #expect(
            DeliveryError.sentences(
                [
                    "", "git: production is not behind abc; nothing to deliver there",
                    "The site still serves the backup copy.",
                ])
                == "git: production is not behind abc; nothing to deliver there. The site still serves the backup copy."
        )
        #expect(DeliveryError.sentences(["Refused!", " copy (exit 1) ", "Done", ""]) == "Refused! copy (exit 1). Done")
    }
}
