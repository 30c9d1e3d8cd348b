#if canImport(Glibc)
    import Glibc
#endif

// The preflight: production against the copy that served, before production is served again.
extension DeliveryEngine {
    /// Checks production against the backup copy (the pre-delivery code) before it is served
    /// again: what the update added, changed and removed, PHP syntax (`php -l`) and conflict
    /// markers in what it brought, `version.php` changes and versions going backwards, and the
    /// VCS's local modifications; and, as a warning, whether the next update could run (the
    /// upstream answers the code owner and changes no site-local file). Changes no tree (git
    /// fetches into its remote-tracking branch); `restore` runs the comparison first and refuses
    /// when it blocks.
    public func plan() throws(DeliveryError) -> PreflightReport {
        let recorder = CommandRecorder(onLine: { _ in })
        var report = try preflight(recorder)
        // Fail before acting: what would make the next update refuse, said before anything switches.
        let production = layout.path(of: .production)
        do throws(DeliveryError) {
            let vcs = try versionControl(recorder)
            try vcs.checkUpdatable(of: production, recorder: recorder)
        } catch {
            report.warn(Notice(.warningNextUpdateFails), detail: error.message)
        }
        return report
    }

    func preflighter(_ recorder: CommandRecorder) throws(DeliveryError) -> Preflight {
        let state = try store.read()
        guard copyStatuses(state)[.backup]?.complete == true else {
            throw DeliveryError(
                .copyMissing, "there is no complete backup copy to compare production with; secure first")
        }
        return Preflight(
            production: (try? System.realPath(layout.path(of: .production))) ?? layout.path(of: .production),
            before: (try? System.realPath(layout.path(of: .backup))) ?? layout.path(of: .backup),
            php: configuration.php, user: try UserIdentity.lookup(configuration.webUser), recorder: recorder,
            ignored: configuration.componentCacheFile.map { [$0] } ?? [])
    }

    func preflight(_ recorder: CommandRecorder) throws(DeliveryError) -> PreflightReport {
        let preflight = try preflighter(recorder)
        let vcs = try versionControl(recorder)
        let production = layout.path(of: .production)
        let moodleCLI = Result { () throws(DeliveryError) in try self.moodle(recorder) }
        // Three independent questions at once: the trees compared (files, then `php -l` of what
        // changed) on one side; the VCS's view of production, then Moodle's of the new code, on
        // the other (each a child process that mostly waits on the disk or PHP's bootstrap).
        let (compared, asked) = concurrently(
            { Result { () throws(DeliveryError) in try preflight.run(localModifications: []) } },
            {
                (
                    vcs: Result { () throws(DeliveryError) in
                        let state = try vcs.treeState(of: production, recorder: recorder)
                        return (
                            modifications: vcs.context.split(state.modifications).refusing,
                            health: (untracked: state.untracked, missing: state.missing)
                        )
                    },
                    need: Result { () throws(DeliveryError) in try moodleCLI.get().upgradeNeed(in: .production) }
                )
            })
        var report = try compared.get()
        let (modifications, health) = try asked.vcs.get()
        report.localModifications = modifications
        report.untrackedFiles = health.untracked
        report.missingFiles = health.missing
        if !health.untracked.isEmpty {
            report.warn(
                Notice(
                    .warningUntracked, ["count": .count(health.untracked.count), "first": .text(health.untracked[0])]))
        }
        report.inconsistentComponents = preflight.componentProblems(report)
        report.phpVersion = preflight.phpVersionCheck()
        report.maintenanceModeOn =
            (try? System.lstatus("\(configuration.moodle.dataroot)/climaintenance.html")) != nil
        let snapshots = configuration.snapshotSettings.enabled
        do {
            let need = try asked.need.get()
            report.upgrade = UpgradeForecast(
                pending: need != .none, maintenanceRequired: need == .withMaintenance,
                snapshot: need != .none && snapshots)
        } catch {
            report.warn(Notice(.warningUpgradeUnknown), detail: error.message)
        }
        if snapshots && report.upgrade?.pending != false {
            do {
                report.snapshotSpace = try SnapshotSpace.measure(configuration, layout: layout, recorder: recorder)
            } catch {
                report.warn(Notice(.warningSnapshotUnprepared), detail: error.message)
            }
        }
        return report
    }
}
