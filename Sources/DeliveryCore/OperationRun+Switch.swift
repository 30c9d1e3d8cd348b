#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

// The switch of what is served: `current` renamed under the switch mutex, then the web server's part.
extension OperationRun {
    // MARK: Switching

    /// Points `current` at a tree with one rename(2) of a fresh symlink, under the switch mutex.
    /// Refuses when an emergency rollback took over since this operation started.
    func switchServed(to tree: TreeName, preempting: Bool = false) throws(DeliveryError) {
        if tree != .production {
            let state = try store.read()
            guard engine.copyStatuses(state)[tree]?.complete == true
            else {
                throw DeliveryError(
                    .copyMissing, "the \(tree.rawValue) copy is missing or incomplete; it cannot be served")
            }
            do {
                try flushCopies(state)
            } catch {
                guard preempting else { throw error }
                note("Warning: \(error.message); serving the \(tree.rawValue) copy anyway (emergency rollback).")
            }
            let copyRoot = (try? System.realPath(layout.path(of: tree))) ?? layout.path(of: tree)
            if lacksComponentCache(copyRoot) {
                // Moodle dies on a component cache file it cannot find: make it before serving.
                do {
                    try buildComponentCache(at: copyRoot)
                } catch {
                    guard preempting else { throw error }
                    note("Warning: \(error.message); serving the \(tree.rawValue) copy anyway (emergency rollback).")
                }
            }
        } else {
            guard (try? System.lstatus(layout.path(of: .production)))?.kind == .directory else {
                throw DeliveryError(.copyMissing, "the production tree is missing")
            }
        }
        try underSwitchMutex { () throws(DeliveryError) in
            if preempting {
                try change { (state: inout DeliveryState) throws(DeliveryError) in state.preemptedAt = Date() }
            }
            let previous = layout.servedTree()
            if previous == tree { return }
            mutated = true
            try pointCurrent(at: tree)
            note("The site now serves the \(tree.rawValue) tree.")
            let webServer = webServerSwitch()
            do throws(DeliveryError) {
                try webServer.tellWebServer(tree)
                try webServer.checkServed(tree)
            } catch {
                if preempting {
                    // An emergency rollback goes on (the database too, when its plan says so), so
                    // that the state says what current points at; it fails at its end.
                    note("Warning: \(error.message).")
                    webServerLag = DeliveryError(.webServerStale, .webServerLagging, ["tree": .tree(tree)])
                    note("Warning: \(webServerLag?.message ?? error.message)")
                    return
                }
                note("The web server did not follow: \(error.message).")
                guard let previous else {
                    throw DeliveryError(.webServerStale, .webServerLagging, ["tree": .tree(tree)])
                }
                // The web server did not follow: it serves the old tree, so current goes back to it.
                try pointCurrent(at: previous)
                try? webServer.tellWebServer(previous)
                throw DeliveryError(.webServerStale, .webServerSwitchUndone, ["tree": .tree(previous)])
            }
        }
    }

    /// One rename(2) of a freshly made symlink over `current`.
    func pointCurrent(at tree: TreeName) throws(DeliveryError) {
        let temporary =
            "\(layout.root)/.current.new-\(System.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        do throws(SystemCallError) {
            try System.replaceSymlink(layout.current, target: layout.linkTarget(of: tree), temporary: temporary)
        } catch {
            throw DeliveryError.io("cannot switch the site to the \(tree.rawValue) tree", error)
        }
    }

    /// The web server's part of a switch, with this site's settings.
    func webServerSwitch() -> WebServerSwitch {
        let configuration = engine.configuration
        return WebServerSwitch(
            settings: configuration.webServerSettings, layout: layout, wwwroot: configuration.moodle.wwwroot,
            healthSettings: configuration.healthCheckSettings,
            webUser: try? UserIdentity.lookup(configuration.webUser), recorder: recorder, note: { [self] in note($0) })
    }

    /// Flushes to disk the copies recorded before their data was (`unflushedBoot`): called before
    /// a copy is served. One `syncfs` covers them all; it waits only for what the kernel has not
    /// written back yet.
    func flushCopies(_ state: DeliveryState) throws(DeliveryError) {
        let boot = System.bootIdentifier
        let pending = state.copies.filter { boot != nil && $0.value.unflushedBoot == boot }
        guard !pending.isEmpty else { return }
        let started = System.monotonicSeconds()
        do {
            try System.syncFileSystem(layout.releases)
        } catch {
            throw DeliveryError.io("cannot flush the copies to disk", error)
        }
        try store.update { (state: inout DeliveryState) throws(DeliveryError) in
            for tree in pending.keys where state.copies[tree]?.unflushedBoot == boot {
                state.copies[tree]?.unflushedBoot = nil
            }
        }
        let seconds = System.monotonicSeconds() - started
        if seconds >= 0.05 { note("Flushed the copies to disk (\(format1(seconds)) s).") }
    }
}
