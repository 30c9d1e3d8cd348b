#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What a farm node's restore found in its `ready` stage (`FarmStage.ready`), kept in the state
/// until the restore of the same farm delivery serves production: that restore skips what was
/// done (the preflight, the health check's baseline, OPcache) and switches at once, so that every
/// node of the farm switches within a few milliseconds of the others.
public struct ReadiedRestore: Sendable, Codable, Equatable {
    /// The farm delivery whose restore was readied.
    public var farmDelivery: String
    /// The node's delivery when it was readied.
    public var deliveryId: String?
    /// The phase of the node then.
    public var phase: DeliveryPhase
    /// Production's revision then.
    public var revisionId: String?
    /// The tree that served then.
    public var served: TreeName?
    /// Production's scripts the update added, changed or removed (what the restore drops from
    /// OPcache, and what caches it purges depend on).
    public var changedScripts: [String]
    /// The preflight's report, when it ran (not when a restore had already begun).
    public var differences: PreflightReport?
    /// When it was readied.
    public var readiedAt: Date

    /// True when `request` is the restore this was readied for, and nothing changed since on the
    /// node: the same farm delivery, delivery, phase, revision and served tree.
    func readies(_ request: OperationRequest, state: DeliveryState, served: TreeName?) -> Bool {
        request.operation == .restore && request.farmStage == nil && request.actor.farmDelivery == farmDelivery
            && state.deliveryId == deliveryId && state.phase == phase && state.productionRevision?.id == revisionId
            && served == self.served
    }
}

extension OperationRun {
    /// The end of a farm node's `ready` stage: production's changed scripts dropped from OPcache,
    /// OPcache warmed with production's code while the copy serves, and what the restore found
    /// recorded for the restore that serves production.
    func finishReadying(
        _ state: DeliveryState, changedScripts: [String], changedOrServed: [String], differences: PreflightReport?
    ) throws(DeliveryError) -> [Notice] {
        try dropFromOPcache(changedOrServed)
        try readyProductionForServing(warm: !(try store.read()).maintenanceEnabled)
        let readied = ReadiedRestore(
            farmDelivery: request.actor.farmDelivery ?? "", deliveryId: state.deliveryId, phase: state.phase,
            revisionId: state.productionRevision?.id, served: layout.servedTree(), changedScripts: changedScripts,
            differences: differences, readiedAt: Date())
        try change { (state: inout DeliveryState) throws(DeliveryError) in state.readiedRestore = readied }
        note(
            "Production is ready to be served on this node; the \((layout.servedTree() ?? .backup).rawValue) copy serves until every node of the farm is ready."
        )
        return [Notice(.farmProductionReadied, ["revision": .revision(revisionAfter)])]
    }
}
