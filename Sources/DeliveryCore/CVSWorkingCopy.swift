#if canImport(Glibc)
    import Glibc
#endif
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Production as a CVS working copy.
struct CVSWorkingCopy: VersionControl {
    let context: VersionControlContext

    func cvs(_ arguments: [String], _ tree: String, _ recorder: CommandRecorder, echo: Bool = true)
        throws(DeliveryError) -> CommandResult
    {
        try recorder.run(context.command("cvs", ["-f", "-q"] + arguments, in: tree), echo: echo)
    }

    /// CVS has no tree revision: the fingerprint of every `CVS/Entries` file stands for it, and the
    /// time it was read is what cancel goes back to (`update -D`).
    func revision(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> Revision {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func visit(_ directory: String) {
            let entries = (try? System.listDirectory(directory))?.sorted { $0.name < $1.name } ?? []
            if let bytes = try? System.readFile("\(directory)/CVS/Entries", limit: 64 << 20) {
                for byte in bytes {
                    hash ^= UInt64(byte)
                    hash = hash &* 0x100_0000_01b3
                }
            }
            for entry in entries where entry.kind == .directory && entry.name != "CVS" {
                visit("\(directory)/\(entry.name)")
            }
        }
        visit(tree)
        let now = Date()
        let id = String(hash, radix: 16)
        return Revision(id: id, label: "cvs \(id.prefix(10)) at \(Self.cvsDate(now))", readAt: now)
    }

    /// A date CVS reads back exactly (`2026-11-25 15:00:00 +0000`).
    static func cvsDate(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }

    func untrackedAndMissing(in tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> (untracked: [String], missing: [String])
    {
        let ignores = context.ignoredFiles.flatMap { ["-I", $0] }
        let status = try cvs(["-n", "update"] + ignores, tree, recorder, echo: false)
        let untracked = status.standardOutput.split(whereSeparator: \.isNewline).map(String.init)
            .filter { $0.hasPrefix("? ") }.map { String($0.dropFirst(2)) }
        // cvs says "cvs update: warning: `path' was lost" for a tracked file deleted by hand.
        let missing = status.standardError.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            guard let start = line.firstIndex(of: "`"), let end = line.lastIndex(of: "'"), start < end,
                line.contains("was lost")
            else { return nil }
            return String(line[line.index(after: start)..<end])
        }
        return (untracked, missing)
    }

    /// Files changed locally: each `cvs -n update` line and its path.
    func modifications(of tree: String, recorder: CommandRecorder) throws(DeliveryError)
        -> [(line: String, path: String)]
    {
        let status = try cvs(["-n", "update"], tree, recorder, echo: false)
        return status.standardOutput.split(whereSeparator: \.isNewline).map(String.init).filter {
            $0.hasPrefix("M ") || $0.hasPrefix("A ") || $0.hasPrefix("R ") || $0.hasPrefix("C ")
        }.map { ($0, String($0.dropFirst(2))) }
    }

    /// `cvs status` says "Needs Patch" or "Needs Merge" for a file the repository has newer.
    func upstreamChangesToLocalFiles(of tree: String, recorder: CommandRecorder) throws(DeliveryError) -> [String] {
        var touched: [String] = []
        for file in context.localFiles where (try? System.lstatus("\(tree)/\(file)")) != nil {
            let status = try cvs(["status", "--", file], tree, recorder, echo: false)
            let text = status.standardOutput
            if ["Needs Patch", "Needs Merge", "Needs Checkout", "Unresolved Conflict"].contains(where: text.contains) {
                touched.append(file)
            }
        }
        return touched
    }

    func upstreamAddress(of tree: String, recorder: CommandRecorder) -> String? {
        (try? System.readFile("\(tree)/CVS/Root", limit: 4096)).map { String(decoding: $0, as: UTF8.self) }?
            .trimmingWhitespace()
    }

    func checkUpstream(of tree: String, recorder: CommandRecorder) throws(DeliveryError) {
        // A dry run of the update (-n): it asks the server and changes nothing.
        let dryRun = try cvs(["-n", "update", "-A", "-d", "-P"], tree, recorder)
        guard dryRun.succeeded else { throw failure("cvs", "update -n", dryRun) }
    }

    func update(tree: String, path: String?, target: String?, recorder: CommandRecorder) throws(DeliveryError) {
        let touched = try upstreamChangesToLocalFiles(of: tree, recorder: recorder)
        if !touched.isEmpty { throw context.localFilesChangedUpstream(touched) }
        var arguments = ["update", "-A", "-d", "-P"]
        if let path { arguments.append(path) }
        let update = try cvs(arguments, tree, recorder)
        let conflicts = update.standardOutput.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("C ") }
        if !conflicts.isEmpty {
            throw DeliveryError(
                .vcsFailed, "cvs update failed: conflict in \(conflicts.prefix(3).joined(separator: ", "))")
        }
        guard update.succeeded else { throw failure("cvs", "update", update) }
    }

    func reset(tree: String, to revision: Revision, recorder: CommandRecorder) throws(DeliveryError) {
        // Every change is discarded (-C) but the site-local files' (the revision has the same file).
        let changes = try modifications(of: tree, recorder: recorder)
        var clean = ["-C"]
        if changes.contains(where: { context.isLocal($0.path) }) {
            clean = []
            let others = changes.map(\.path).filter { !context.isLocal($0) }
            if !others.isEmpty {
                let discard = try cvs(["update", "-C", "--"] + others, tree, recorder)
                guard discard.succeeded else { throw failure("cvs", "discarding of the update's changes", discard) }
            }
        }
        let update = try cvs(["update"] + clean + ["-d", "-P", "-D", Self.cvsDate(revision.readAt)], tree, recorder)
        guard update.succeeded else { throw failure("cvs", "return to \(revision.label)", update) }
    }
}
