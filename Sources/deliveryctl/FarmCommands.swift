import ArgumentParser
import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif

/// A node's end of the farm's SSH channel: the forced command of the node's farm account.
struct Follow: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A farm node's end of the coordinator's SSH channel (the farm account's forced command).",
        discussion: """
            Not run by hand: sshd runs it for the coordinator's key, as authorized_keys says
            (restrict,command="deliveryctl follow --site NAME"). It reads requests on standard
            input, one JSON object per line, and answers each with one JSON line, until its input
            ends (one connection serves a whole farm operation); a command the client asked for is
            refused. Exit 0 when every request was answered, 2 after a refusal.
            """)

    @Option(name: .long, help: "The site this node serves, as authorized_keys names it.")
    var site: String

    @Option(name: .long, help: "The helper's farm socket (default /run/deliveryd/SITE-farm.sock).")
    var farmSocket: String?

    @Option(name: .long, help: "The farm's key (default /etc/moodle-delivery/sites/SITE/farm.key).")
    var farmKey: String?

    func run() throws {
        var input = System.LineReader(limit: FarmFollower.requestLimit)
        let answeredAll = FarmFollower.serve(
            next: { try input.next() }, write: { System.writeStandard(String(decoding: $0, as: UTF8.self)) },
            site: site, originalCommand: System.environmentValue("SSH_ORIGINAL_COMMAND"), helper: helper())
        if !answeredAll { throw ExitCode(2) }
    }

    /// The node's helper, through its farm socket, with the farm's key (readable by this account).
    private func helper() -> Result<HelperClient, FarmError> {
        do throws(DeliveryError) {
            try SiteDirectory.checkName(site)
            let key = try RequestSignature.key(fromFile: farmKey ?? SiteDirectory.farmKeyPath(ofSite: site))
            return .success(
                HelperClient(
                    socketPath: farmSocket ?? SiteDirectory.farmSocketPath(ofSite: site), key: key,
                    userName: "farm coordinator"))
        } catch {
            return .failure(
                FarmError(
                    code: "not_following",
                    message:
                        "this node's helper takes no farm requests (\(error.message)); run moodle-delivery-setup --farm-coordinator-key on it"
                ))
        }
    }
}

/// The coordinator's view of its farm.
struct Farm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The site's web farm: the other nodes, reached over OpenSSH.",
        subcommands: [
            FarmCheck.self, FarmStatusCommand.self, FarmRunAll.self, FarmRestore.self, FarmCancel.self,
            FarmRollback.self, FarmRecover.self,
        ])
}

/// Asks every node of the farm who it is, over its pinned SSH channel.
struct FarmCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Ask every node of the farm over SSH: reachable, its host key the pinned one, the same site and version.",
        discussion: """
            Each node is asked at the same time, by ssh run as the farm account with the farm key,
            its host key checked against the one pinned under its name. Exit 0 when every node
            answers for the same site with this node's version, 2 when one cannot be reached (no
            connection, another host key, the key refused), 3 when one answers otherwise.
            """)
    @OptionGroup var options: GlobalOptions

    func run() throws {
        var mismatched = false
        options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
            let path = try options.configurationPath()
            let checks = try engine.checkFarm(site: options.site ?? SiteDirectory.name(ofConfiguration: path))
            mismatched = checks.contains { !$0.matches }
            if options.json {
                printJSON(checks)
                return
            }
            for check in checks { FileOutput.standardOutput(check.summary + "\n") }
        }
        if mismatched { throw ExitCode(3) }
    }
}

/// Every node's state, asked of its helper over the farm channel.
struct FarmStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract:
            "Every node's delivery state, served copy and revision: this node's, then each other node's, asked of its helper over SSH.",
        discussion: """
            Each other node is asked at the same time, through its farm account's forced command,
            which passes the question to that node's helper (its farm socket). A node at rest whose
            production is not at this node's revision (this node at rest too) says so: farm recover
            brings it in line. Exit 0 when every node answered, 2 when one could not be asked (it is
            listed with the reason).
            """)
    @OptionGroup var options: GlobalOptions

    func run() throws {
        var unanswered = false
        options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
            let nodes = [FarmNodeStatus(coordinator: try engine.status())] + (try engine.farmStatus())
            unanswered = nodes.contains { $0.problem != nil }
            if options.json {
                printJSON(nodes)
                return
            }
            for node in nodes { FileOutput.standardOutput(terminalSafe(node.summary) + "\n") }
        }
        if unanswered { throw ExitCode(2) }
    }
}

/// A delivery on every node of the farm, in lock-step.
struct FarmRunAll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run-all",
        abstract: "Secure, switch, update and restore on every node of the farm, each step everywhere before the next.",
        discussion: """
            This node coordinates: every node must answer with the same site and version and be at
            rest, else nothing starts. Each step runs on all nodes at once; the update brings every
            other node to exactly the commit this node reached. Every node's preflight runs before
            any node restores (a blocker anywhere, and every node cancels). Without a Moodle
            upgrade every node restores at once. With one, the restore is the lock-step upgrade:
            maintenance mode and the database snapshot once, on this node; every node serves
            production; upgrade.php once, on this node; its health check; maintenance mode off;
            every other node's health check (its own page). When a step fails on a node, every node
            is brought back to the code all of them served before (cancel, or, once a restore began,
            rollback: the other nodes first, then this node with the database snapshot), and the
            error says where the farm stands. Exit 0 when every node serves the new revision, 2
            when refused before anything changed, 1 when a step failed.
            """)
    @Flag(name: .long, help: "Also refresh each node's security copy.")
    var security = false
    @Option(name: .long, help: "A comment recorded with the delivery on every node.")
    var comment: String?
    @OptionGroup var options: GlobalOptions

    func run() throws {
        options.runOnFarm { engine, site, say throws(DeliveryError) in
            try engine.runFarmDelivery(
                site: site, actor: options.actor, comment: comment, securityCopy: security, say: say)
        }
    }
}

/// The delivery cancelled on every node of the farm.
struct FarmCancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel the delivery on every node of the farm (production at the revision before it, served).",
        discussion: """
            Each node that is not at rest serving production cancels, all at once (a node's cancel:
            production back at the revision before the delivery, served, when its code matches the
            database). One farm-wide operation at a time. Exit 0 when every node serves production,
            1 when a node's cancel failed or it could not be asked (named, with where each node
            stands; the others cancelled).
            """)
    @OptionGroup var options: GlobalOptions

    func run() throws {
        options.runOnFarm { engine, site, say throws(DeliveryError) in
            try engine.cancelFarm(site: site, actor: options.actor, say: say)
        }
    }
}

/// The emergency rollback of every node of the farm.
struct FarmRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract:
            "Emergency rollback of every node of the farm: the other nodes first, then this node with the database.",
        discussion: """
            Every other node serves its rollback copy, all at once; then this node does, restoring
            the database snapshot first when Moodle's upgrade changed the database (under the
            maintenance mode it holds, lifted once the code of every node matches). It does not
            wait for a farm delivery that runs. A node that cannot be reached is named, and the
            others are rolled back all the same. Exit 0 when every node serves its copy, 1 otherwise.
            """)
    @Flag(name: .long, help: "Confirm that the database snapshot may be restored although the site was open since.")
    var restoreDatabase = false
    @OptionGroup var options: GlobalOptions

    func run() throws {
        options.runOnFarm { engine, site, say throws(DeliveryError) in
            try engine.rollBackFarm(
                site: site, actor: options.actor, confirmDatabaseRestore: restoreDatabase ? true : nil, say: say)
        }
    }
}

/// The restore of every node, ending a farm delivery that stopped before its end.
struct FarmRestore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore production on every node of the farm (a farm delivery that stopped before its end).",
        discussion: """
            Every node must be in a delivery a restore may end (delivering, updated, restoring or
            rolled back) with production at this node's revision, else nothing starts. Then every
            node's preflight, and the restore of farm run-all: every node at once, or the lock-step
            upgrade when Moodle reports one. Exit 0 when every node serves production, 2 when
            refused before anything changed, 1 when a node failed (every node brought back).
            """)
    @OptionGroup var options: GlobalOptions

    func run() throws {
        options.runOnFarm { engine, site, say throws(DeliveryError) in
            try engine.restoreFarm(site: site, actor: options.actor, say: say)
        }
    }
}

/// Every node brought in line with this one.
struct FarmRecover: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Bring every node in line with this one (a node that was unreachable or interrupted).",
        discussion: """
            A node whose operation was interrupted is recovered first. Then, with this node at rest
            serving production: a node in a delivery of its own cancels it, and a node whose
            production is not at this node's revision is delivered exactly that revision (secure,
            switch, update to the commit, restore); with this node rolled back, a node that was not
            is rolled back. Nothing starts when a node cannot be asked or runs an operation, or
            when this node stands in a delivery (farm restore, cancel or rollback first). Exit 0
            when every node is in line, 2 when refused before anything changed, 1 when a node's
            step failed (named, with where each node stands).
            """)
    @OptionGroup var options: GlobalOptions

    func run() throws {
        options.runOnFarm { engine, site, say throws(DeliveryError) in
            try engine.recoverFarm(site: site, actor: options.actor, say: say)
        }
    }
}

extension GlobalOptions {
    /// Runs a farm-wide command of this node (the coordinator): its lines as they come, or its
    /// outcome in JSON with `--json`; a refusal or failure is reported as any command's.
    func runOnFarm<Outcome: Encodable>(
        _ body: (DeliveryEngine, String, @escaping @Sendable (String) -> Void) throws(DeliveryError) -> Outcome
    ) {
        let json = self.json
        withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
            let path = try configurationPath()
            let name = site ?? SiteDirectory.name(ofConfiguration: path)
            let outcome = try body(
                engine, name, { line in if !json { FileOutput.standardOutput(terminalSafe(line) + "\n") } })
            if json { printJSON(outcome) }
        }
    }
}
