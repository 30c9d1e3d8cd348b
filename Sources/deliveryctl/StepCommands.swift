import ArgumentParser
import DeliveryCore

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The operations: the four steps, run-all, cancel, rollback, recover (each through `runOperation`).
extension DeliveryCtl {
    struct Secure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step 1: mirror production into the backup copy (and the security copy with --security).")
        @Flag(name: .long, help: "Also refresh the security copy.")
        var security = false
        @Option(name: .long, help: "Refresh only this component path (e.g. mod) of the complete copies.")
        var path: String?
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .secure, securePath: path, securityCopy: security)
        }
    }

    struct Switch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step 2: serve the site from the backup copy (delivery mode).")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .switchToDelivery)
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Step 3: update the production tree (or one path) from the configured upstream.")
        @Option(name: .long, help: "Update only this path.")
        var path: String?
        @Option(name: .long, help: "A comment recorded with the delivery.")
        var comment: String?
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .update, updatePath: path, comment: comment)
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Step 4: serve production again, run Moodle's upgrade (maintenance only when needed), purge caches.")
        @Flag(name: .long, help: "Restore production although the rehearsal of its revision failed (recorded).")
        var confirmFailedRehearsal = false
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .restore, confirmFailedRehearsal: confirmFailedRehearsal ? true : nil)
        }
    }

    struct RunAll: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run-all", abstract: "Steps 1 to 4, stopping at the first failure.")
        @Flag(name: .long, help: "Also refresh the security copy.")
        var security = false
        @Option(name: .long, help: "Secure only this component path.")
        var securePath: String?
        @Option(name: .long, help: "Update only this path.")
        var path: String?
        @Option(name: .long, help: "A comment recorded with the delivery.")
        var comment: String?
        @Flag(name: .long, help: "Deliver although the rehearsal of the waiting revision failed (recorded).")
        var confirmFailedRehearsal = false
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(
                options, .runAll, securePath: securePath, updatePath: path, securityCopy: security, comment: comment,
                confirmFailedRehearsal: confirmFailedRehearsal ? true : nil)
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Go back to the pre-delivery state: production at its recorded revision, served.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .cancel)
        }
    }

    struct Rollback: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Emergency: serve a copy whose code matches the database (security, else backup) at once, from any state.",
            discussion: """
                When Moodle's upgrade changed the database, the rollback also restores the database \
                snapshot taken just before it, under maintenance mode. Inside the delivery's own \
                window that needs nothing more; once the site has been open to users, what they \
                wrote since the snapshot would be lost, so the rollback is refused until confirmed \
                with --restore-database. 'deliveryctl status' says which kind of rollback happens.
                """)
        @Flag(name: .long, help: "Confirm that the database snapshot may be restored although the site was open since.")
        var restoreDatabase = false
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .rollback, confirmDatabaseRestore: restoreDatabase)
        }
    }

    struct Rehearse: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Try Moodle's upgrade of the next revision on a private copy of the database while production serves.",
            discussion: """
                Copies production's code and brings the copy to the upstream's revision (or takes \
                production as updated, in state 'updated'), copies Moodle's tables into a database of \
                its own, runs upgrade.php and Moodle's checks against the copies, reports the time, the \
                plugins upgraded and the schema changes, and removes the copies. A failed rehearsal \
                blocks Restore production of that revision (--confirm-failed-rehearsal overrides it); a \
                passed one is the revision Update brings. Exit 0 passed, 1 failed, 2 refused.
                """)
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .rehearse)
        }
    }

    struct Recover: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record an operation whose process died, clean its leftovers and release the site.")
        @OptionGroup var options: GlobalOptions

        func run() throws {
            try runOperation(options, .recover)
        }
    }
}
