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

/// Prints progress for people: step headers, log lines, a percentage every 10 %.
final class ProgressPrinter: @unchecked Sendable {
    private var lastTenth: [Operation: Int] = [:]
    private let quiet: Bool
    /// A step's header waits for its first line: a refusal then prints only its one error line.
    private var pendingHeader: Operation?
    private var printedHeader = false

    init(quiet: Bool) { self.quiet = quiet }

    private func flushHeader() {
        if let operation = pendingHeader {
            FileOutput.standardOutput("==> \(Self.title(operation))\n")
            pendingHeader = nil
            printedHeader = true
        }
    }

    func handle(_ event: ProgressEvent) {
        if quiet { return }
        switch event {
        case .stepStarted(let operation):
            pendingHeader = operation
            printedHeader = false
        case .line(let line):
            flushHeader()
            FileOutput.standardOutput("    \(line)\n")
        case .fraction(let operation, let value):
            let tenth = Int(value * 10)
            if tenth > (lastTenth[operation] ?? 0) && tenth < 10 {
                flushHeader()
                lastTenth[operation] = tenth
                FileOutput.standardOutput("    … \(tenth * 10) %\n")
            }
        case .stepFinished(let operation, let succeeded, let notices):
            if succeeded {
                flushHeader()
                FileOutput.standardOutput("ok: \(Self.title(operation)): \(notices.english)\n")
            } else if printedHeader {
                FileOutput.standardOutput("FAILED: \(Self.title(operation))\n")
            }
            pendingHeader = nil
        }
    }

    static func title(_ operation: Operation) -> String {
        switch operation {
        case .secure: "1. Secure"
        case .switchToDelivery: "2. Switch to delivery"
        case .update: "3. Update sources"
        case .restore: "4. Restore production"
        case .runAll: "Run all"
        case .cancel: "Cancel"
        case .rollback: "Emergency rollback"
        case .recover: "Recover"
        case .rehearse: "Rehearse"
        }
    }
}

/// Runs one operation for a subcommand.
func runOperation(
    _ options: GlobalOptions, _ operation: DeliveryOperation, securePath: String? = nil, updatePath: String? = nil,
    securityCopy: Bool = false, comment: String? = nil, confirmDatabaseRestore: Bool? = nil,
    confirmFailedRehearsal: Bool? = nil
) throws {
    let printer = ProgressPrinter(quiet: options.json)
    let crashSeam = CrashSeam.fromEnvironment()
    options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
        let request = try OperationRequest.parse(
            operation, actor: options.actor, securePath: securePath, updatePath: updatePath, securityCopy: securityCopy,
            comment: comment, confirmDatabaseRestore: confirmDatabaseRestore,
            confirmFailedRehearsal: confirmFailedRehearsal, audit: engine.recordRefusal)
        let outcome = try engine.perform(request) { event in
            printer.handle(event)
            crashSeam.observe(event)
        }
        if options.json { printJSON(OutcomeDocument(ok: true, outcome: outcome)) }
    }
}
