#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// The upstream watch and the report of a delivery: reading, nothing of the site changes.
extension DeliveryEngine {
    /// The last upstream check, kept in the state directory (`upstream.json`).
    var upstreamStore: JSONFileStore<UpstreamPreview?> {
        JSONFileStore(
            file: "\(configuration.stateDirectory)/upstream.json",
            mutexFile: "\(configuration.stateDirectory)/upstream.lock", mode: 0o640, what: "the last upstream check"
        ) { nil }
    }

    func upstreamWatch(_ recorder: CommandRecorder) throws(DeliveryError) -> UpstreamWatch {
        UpstreamWatch(
            production: layout.path(of: .production), vcs: try versionControl(recorder), recorder: recorder,
            php: configuration.php, webUser: try UserIdentity.lookup(configuration.webUser),
            scratchDirectory: configuration.stateDirectory, snapshots: configuration.snapshotSettings.enabled)
    }

    /// Looks at the upstream as the code owner without touching any working tree, computes what
    /// a delivery would bring and the checks that can run on it, and keeps the answer for the
    /// status. Refused while an operation runs (it would read a working copy being changed).
    /// - Parameter onLine: receives the commands' lines (`deliveryctl check-upstream --verbose`).
    public func checkUpstream(onLine: @escaping (String) -> Void = { _ in }) throws(DeliveryError)
        -> UpstreamPreview
    {
        if DeliveryLock.isHeld(in: configuration.stateDirectory) {
            let holder = DeliveryLock.currentHolder(in: configuration.stateDirectory) ?? nil
            throw DeliveryError(.lockHeld, DeliveryLock.describeHeld(holder))
        }
        let recorder = CommandRecorder(onLine: onLine)
        let current = try versionControl(recorder).revision(of: layout.path(of: .production), recorder: recorder)
        let preview = try upstreamWatch(recorder).preview(current: current)
        try upstreamStore.update { (kept: inout UpstreamPreview?) throws(DeliveryError) in kept = preview }
        return preview
    }

    /// The last upstream check, when one ran.
    public func lastUpstreamCheck() -> UpstreamPreview? {
        (try? upstreamStore.read()) ?? nil
    }

    /// One delivery, from the audit records that carry its id.
    /// - Throws: `DeliveryError` `.notFound` when no record does.
    public func report(deliveryId: String) throws(DeliveryError) -> DeliveryReport {
        guard OperationIdentifier.isValid(deliveryId) else {
            throw DeliveryError(.badRequest, "'\(deliveryId.prefix(40))' is not a delivery id")
        }
        guard var report = DeliveryReport(records: try audit.records(ofDelivery: deliveryId)) else {
            throw DeliveryError(.notFound, "no delivery \(deliveryId) in the audit log")
        }
        if report.rehearsal == nil, let delivered = report.revisionTo {
            // A rehearsal from idle belongs to no delivery: the last one of the revision delivered.
            report.rehearsal =
                (try? audit.read(limit: 500))?.first {
                    $0.operation == .rehearse && $0.rehearsal?.revision.id == delivered.id
                        && $0.time <= report.finishedAt
                }?.rehearsal
        }
        return report
    }
}
