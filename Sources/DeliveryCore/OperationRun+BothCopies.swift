import Synchronization

// Step 1, secure: the backup and the security copies refreshed at the same time.
extension OperationRun {
    /// Refreshes the backup and the security copies at the same time (each walk is a process of
    /// its own, and a machine has two cores or more), then puts them in place one after the other,
    /// backup first, as one at a time would: a copy that failed fails the step after the other
    /// one is in place (the failed one's generation is not served, and is refilled next time).
    func refreshBothCopies(revision: Revision) throws(DeliveryError) -> [Notice] {
        // What each copy would do first, done once before they start.
        mutated = true
        try removeLeftoverStaging()
        let shares = Mutex<[Double]>([0, 0])
        let progress = self.progress
        let report = { @Sendable (index: Int, share: Double) in
            let both = shares.withLock { shares -> Double in
                shares[index] = max(shares[index], share)
                return shares[0] + shares[1]
            }
            progress(.fraction(.secure, both / 2 * 0.98))
        }
        let (backup, security) = concurrently(
            {
                Result { () throws(DeliveryError) in
                    try self.prepareCopy(.backup, revision: revision, component: nil, settingUp: false) {
                        report(0, $0)
                    }
                }
            },
            {
                Result { () throws(DeliveryError) in
                    try self.prepareCopy(.security, revision: revision, component: nil, settingUp: false) {
                        report(1, $0)
                    }
                }
            })
        var notices: [Notice] = []
        for outcome in [backup, security] { notices.append(try finish(try outcome.get())) }
        return notices
    }

    /// A copy refilled in its tree's other generation, for `installCopy` to put in place.
    struct PreparedCopy: Sendable {
        let tree: TreeName
        let inactive: String
        let record: CopyRecord
        let statistics: CopyStatistics
        let relative: String?
        let started: Double
    }

    /// What `prepareCopy` found or made.
    enum CopyPreparation: Sendable {
        /// The complete copy is already exact: nothing to put in place.
        case identical(Notice)
        case prepared(PreparedCopy)
    }
}
