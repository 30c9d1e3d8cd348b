#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// Steps 2 and 3: switch to delivery, update production's sources.
extension OperationRun {
    // MARK: Step 2: switch to delivery

    func switchToDelivery() throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        try requireAllowed(.switchToDelivery, state)
        let vcs = try engine.versionControl(recorder)
        let revision = try vcs.revision(of: layout.path(of: .production), recorder: recorder)
        if let secured = state.copies[.backup]?.revision, secured.id != revision.id,
            engine.configuration.upstream.kind != .cvs
        {
            throw DeliveryError(
                .wrongState, .refusedProductionChanged,
                ["secured": .revision(secured), "revision": .revision(revision)])
        }
        revisionBefore = revision
        if request.operation == .switchToDelivery { try requireUpdatable() }
        warmByRequest(.backup)
        try switchServed(to: .backup)
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = .delivering
            state.revisionBeforeDelivery = revision
            state.productionRevision = revision
            state.updatedPaths = []
            state.comments = []
            state.upgradeRan = false
        }
        return [Notice(.switched)]
    }

    /// Fails before acting: the update after a switch must be able to run, or the site would be
    /// set aside for nothing. Production has no local modifications (site-local files aside), the
    /// upstream answers the code owner (`git ls-remote`, `svn info -r HEAD`, `cvs -n update`) and
    /// does not change a site-local file.
    func requireUpdatable() throws(DeliveryError) {
        let production = layout.path(of: .production)
        let vcs = try engine.versionControl(recorder)
        let modified = try vcs.localModifications(of: production, recorder: recorder)
        if !modified.isEmpty {
            throw DeliveryError(
                .notUpdatable, .refusedLocalModifications,
                ["operation": .text(request.operation.rawValue), "files": Self.firstFiles(modified)])
        }
        do throws(DeliveryError) {
            try vcs.checkUpdatable(of: production, recorder: recorder)
        } catch {
            // The upstream changing a site-local file is a refusal that says it all already.
            note("The update could not run: \(error.message)")
            throw DeliveryError(
                .notUpdatable, message: "\(request.operation.rawValue) refused: \(error.message)",
                notices: [Notice(.refusedUpstream, ["operation": .text(request.operation.rawValue)])] + error.notices)
        }
    }

    // MARK: Step 3: update

    func update() throws(DeliveryError) -> [Notice] {
        let state = try store.read()
        try requireAllowed(.update, state)
        let production = layout.path(of: .production)
        var relative: String?
        if let component = request.updatePath {
            let path = layout.treeRelative(component)
            try component.checkInside(tree: production, relative: path, mustExist: false)
            relative = path
        }
        let vcs = try engine.versionControl(recorder)
        let before = try vcs.revision(of: production, recorder: recorder)
        revisionBefore = before
        // One status of production answers both questions: local modifications refuse (site-local
        // files aside), site-local files changed on the site are kept.
        let (modified, kept) = vcs.context.split(try vcs.modifications(of: production, recorder: recorder))
        if state.updatedPaths.isEmpty {
            if !modified.isEmpty {
                throw DeliveryError(
                    .vcsFailed,
                    [
                        Notice(.refusedUpdateLocalModifications, ["files": Self.firstFiles(modified)]),
                        Notice(.stillServes, ["tree": .tree(layout.servedTree() ?? .backup)]),
                    ])
            }
        }
        note(
            "Updating \(relative.map { "'\($0)' of production" } ?? "production") with \(engine.configuration.upstream.kind.rawValue)…"
        )
        var rehearsedNotice: Notice?
        if !kept.isEmpty {
            note("Site-local files kept as this site has them: \(kept.joined(separator: ", ")).")
        }
        progress(.fraction(.update, 0.1))
        do throws(DeliveryError) {
            // A whole update goes to the revision whose changes it records (to the one asked, for
            // a scheduled Run all): what the report says it brought is what it brought.
            var target = request.targetRevision
            if target == nil, relative == nil, let rehearsal = state.rehearsal, rehearsal.passed,
                !rehearsal.updatedProduction, rehearsal.base.id == before.id, rehearsal.revision.id != before.id
            {
                // What was rehearsed is what is delivered: not a newer upstream revision.
                if engine.configuration.upstream.kind != .cvs { target = rehearsal.revision.id }
                rehearsedNotice = Notice(
                    .updateToRehearsed,
                    ["revision": .revision(rehearsal.revision), "rehearsedAt": .moment(rehearsal.finishedAt)])
                note(rehearsedNotice!.english)
            }
            if relative == nil {
                do throws(DeliveryError) {
                    let brought = try engine.upstreamWatch(recorder).changes(target: target)
                    if rehearsedNotice != nil, engine.configuration.upstream.kind == .cvs,
                        brought.revision.id != state.rehearsal?.revision.id
                    {
                        // cvs cannot go to an earlier state of the upstream: rehearse what it has now.
                        throw DeliveryError(
                            .blockedByRehearsal,
                            "cvs: the upstream changed since the rehearsal of \(state.rehearsal?.revision.label ?? "?"), and cvs cannot bring the state that was rehearsed; rehearse again"
                        )
                    }
                    upstreamChanges = brought
                    if engine.configuration.upstream.kind != .cvs {
                        target = brought.revision.id
                        onUpdateTarget?(brought.revision)
                    }
                } catch {
                    if target != nil { throw error }
                    note("What the upstream brings could not be read before the update: \(error.message)")
                }
            }
            try vcs.update(tree: production, path: relative, target: target, recorder: recorder)
        } catch {
            throw error.within([], after: [Notice(.stillServes, ["tree": .tree(layout.servedTree() ?? .backup)])])
        }
        let productionRoot = (try? System.realPath(production)) ?? production
        try buildComponentCacheUnlessCurrent(
            at: productionRoot,
            fingerprint: CodeFingerprint.digests(of: productionRoot, leavingOut: preservedFiles)?.componentCache)
        let after = try vcs.revision(of: production, recorder: recorder)
        revisionAfter = after
        try change { (state: inout DeliveryState) throws(DeliveryError) in
            state.phase = state.phase == .rolledBack ? .rolledBack : .updated
            state.productionRevision = after
            state.updatedPaths.append(relative ?? "")
            if let comment = request.comment, !comment.isEmpty { state.comments.append(comment) }
        }
        let updated: Notice
        switch (relative, before.id == after.id) {
        case (nil, true): updated = Notice(.productionUnchanged, ["revision": .revision(after)])
        case (nil, false):
            updated = Notice(.productionUpdated, ["before": .revision(before), "after": .revision(after)])
        case (let path?, true):
            updated = Notice(.productionPathUnchanged, ["path": .text(path), "revision": .revision(after)])
        case (let path?, false):
            updated = Notice(
                .productionPathUpdated, ["path": .text(path), "before": .revision(before), "after": .revision(after)])
        }
        return (rehearsedNotice.map { [$0] } ?? []) + [updated, Notice(.nextRestore)]
    }

    /// The first files of a list for a sentence (three, then `…`).
    static func firstFiles(_ files: [String]) -> NoticeValue {
        .list(Array(files.prefix(3)) + (files.count > 3 ? ["…"] : []))
    }
}
