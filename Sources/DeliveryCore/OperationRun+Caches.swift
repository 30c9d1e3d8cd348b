#if canImport(Glibc)
    import Glibc
#endif

// Moodle's caches after a restore that ran no upgrade: only what the change needs purged.
extension OperationRun {
    /// Purges what production's changes need (`CachePurge`), all of it when `caches.purge` is
    /// `always`, when production was served before with other code in this delivery, or when the
    /// changes are not known (a restore taken up again after the helper stopped).
    /// - Parameters:
    ///   - differences: production against the copy that served, from this restore's preflight.
    ///   - previouslyServed: production's changes already served earlier in this delivery.
    /// - Returns: what the step says of the caches.
    func purgeAfterCodeChange(
        _ moodle: MoodleCLI, differences: PreflightReport?, previouslyServed: [String]
    ) throws(DeliveryError) -> Notice {
        let purge: CachePurge
        if engine.configuration.cacheSettings.purge == .always {
            purge = .all("caches.purge is always")
        } else if let differences, previouslyServed.isEmpty {
            purge = cachePurge(for: differences)
        } else {
            purge = .all("production served other code earlier in this delivery")
        }
        if purge.isNothing {
            let count =
                (differences?.added.count ?? 0) + (differences?.changed.count ?? 0)
                + (differences?.removed.count ?? 0)
            let notice = Notice(.cachesKeptCode, ["files": .count(count)])
            note(notice.english)
            return notice
        }
        if let reason = purge.reason {
            note("Purging every cache: \(reason).")
        } else {
            note("Purging Moodle's caches: \(purge.arguments.joined(separator: " ")).")
        }
        try moodle.purgeCaches(purge.arguments, in: .production)
        return purge.everything
            ? Notice(.cachesPurged)
            : Notice(.cachesPurgedParts, ["parts": .list(purge.parts.sorted().map(\.rawValue))])
    }

    /// The rule applied to production's tree: its plugins (a folder with `version.php`) and their
    /// own caches (`db/caches.php`) are looked up through descriptors that follow no link.
    func cachePurge(for differences: PreflightReport) -> CachePurge {
        let changes =
            differences.added.map { (path: $0, change: CachePurge.Change.added) }
            + differences.changed.map { (path: $0, change: CachePurge.Change.changed) }
            + differences.removed.map { (path: $0, change: CachePurge.Change.removed) }
        let root = try? System.openDirectory(at: AT_FDCWD, layout.path(of: .production))
        defer { if let root { System.close(root) } }
        let prefix = layout.publicLayout ? "public/" : ""
        // A file is there, or not; anything else (a link on the way, an error) counts as there:
        // the rule then purges more, never less.
        func holds(_ folder: String, _ file: String) -> Bool {
            guard let root else { return true }
            let path = "\(prefix)\(folder)/\(file)"
            let slash = path.lastIndex(of: "/")!
            let parent = String(path[..<slash])
            let folderDescriptor: Int32
            do {
                folderDescriptor = try System.openDirectory(at: root, parent)
            } catch {
                return error.errno != ENOENT
            }
            defer { System.close(folderDescriptor) }
            do {
                return try System.lstatusIfExists(at: folderDescriptor, String(path[path.index(after: slash)...]))
                    != nil
            } catch {
                return true
            }
        }
        return CachePurge.needed(
            changes, publicLayout: layout.publicLayout, declaresCaches: { holds($0, "db/caches.php") },
            isComponentRoot: { holds($0, "version.php") })
    }
}
