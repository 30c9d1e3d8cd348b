#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The upstream watch on cvs: a dry run of the update (`cvs -n update`), each incoming file's
/// repository revision (`cvs status`) and log (`cvs log`), and its text (`cvs update -p`, which
/// writes nothing). cvs has no revision of a tree: the upstream's id is a digest of the incoming
/// files and their repository revisions, the same until someone commits again.
extension CVSWorkingCopy {
    /// The most incoming files whose revision and log are read.
    static let watchedFiles = 200

    func upstreamChanges(of tree: String, target: String?, recorder: CommandRecorder) throws(DeliveryError)
        -> UpstreamChanges
    {
        let dryRun = try cvs(["-n", "-q", "update", "-A", "-d", "-P"], tree, recorder, echo: false)
        guard dryRun.succeeded else { throw failure("cvs", "update -n", dryRun) }
        var added: [String] = []
        var changed: [String] = []
        var removed: [String] = []
        for line in dryRun.standardOutput.split(whereSeparator: \.isNewline).map(String.init)
        where line.hasPrefix("U ") || line.hasPrefix("P ") {
            let path = String(line.dropFirst(2))
            if (try? System.lstatus("\(tree)/\(path)")) != nil { changed.append(path) } else { added.append(path) }
        }
        for line in dryRun.standardError.split(whereSeparator: \.isNewline).map(String.init) {
            if line.hasSuffix("is no longer in the repository"), let path = Self.quoted(line) {
                removed.append(path)
            } else if line.contains("New directory"), let path = Self.quoted(line) {
                added.append("\(path)/")
            }
        }
        var digest: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ text: String) {
            for byte in text.utf8 {
                digest ^= UInt64(byte)
                digest = digest &* 0x100_0000_01b3
            }
        }
        var commits: [String: UpstreamCommit] = [:]
        for path in (added + changed).sorted().prefix(Self.watchedFiles) where !path.hasSuffix("/") {
            let log = try cvs(["-Q", "log", "-N", "--", path], tree, recorder, echo: false)
            let entries = log.succeeded ? Self.logEntries(log.standardOutput) : []
            let working = Self.workingRevision(of: path, in: tree)
            let workingDate = entries.first { $0.revision == working }?.date
            mix("\(path) \(entries.first?.revision ?? "?")\n")
            for entry in entries where workingDate == nil || entry.date > workingDate! {
                let key = entry.commitId ?? "\(entry.author)\n\(entry.message)"
                if commits[key] == nil {
                    commits[key] = UpstreamCommit(
                        id: entry.commitId ?? "\(path) \(entry.revision)", author: entry.author, subject: entry.message)
                }
            }
        }
        for path in removed.sorted() { mix("- \(path)\n") }
        for path in added.sorted() where path.hasSuffix("/") { mix("+ \(path)\n") }
        let waiting = !(added.isEmpty && changed.isEmpty && removed.isEmpty)
        let current = try revision(of: tree, recorder: recorder)
        let id = waiting ? "upstream-" + String(digest, radix: 16) : current.id
        if let target, target != id {
            throw DeliveryError(.vcsFailed, "cvs: the upstream changed since it was checked (it is now \(id))")
        }
        var changes = UpstreamChanges(revision: Revision(id: id, label: "cvs \(id.suffix(10))"))
        changes.added = added
        changes.changed = changed
        changes.removed = removed
        changes.commits = commits.values.sorted { $0.id > $1.id }
        changes.commitCount = commits.count
        return changes
    }

    func upstreamText(_ path: String, of tree: String, changes: UpstreamChanges, recorder: CommandRecorder) -> String? {
        context.fileText("cvs", ["-Q", "update", "-p", "--", path], in: tree, recorder: recorder)
    }

    /// The path between `` ` `` and `'` in a cvs message.
    static func quoted(_ line: String) -> String? {
        guard let open = line.firstIndex(of: "`"), let close = line[open...].firstIndex(of: "'") else { return nil }
        return String(line[line.index(after: open)..<close])
    }

    /// The file's revision in `CVS/Entries` (`/name/1.2/…`).
    static func workingRevision(of path: String, in tree: String) -> String? {
        let parts = path.split(separator: "/").map(String.init)
        let folder = ([tree] + parts.dropLast()).joined(separator: "/")
        guard let bytes = try? System.readFile("\(folder)/CVS/Entries", limit: 16 << 20) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let fields = line.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            if fields.count > 2, fields[0].isEmpty, fields[1] == parts.last { return fields[2] }
        }
        return nil
    }

    /// The revisions of `cvs log`'s text: `revision R`, `date: D;  author: A; … commitid: C;`, the message.
    static func logEntries(_ text: String)
        -> [(revision: String, date: String, author: String, commitId: String?, message: String)]
    {
        var entries: [(revision: String, date: String, author: String, commitId: String?, message: String)] = []
        for block in text.components(separatedBy: "\n----------------------------\n").dropFirst() {
            let lines = block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard lines.count >= 2, lines[0].hasPrefix("revision ") else { continue }
            var fields: [String: String] = [:]
            for field in lines[1].split(separator: ";") {
                let pair = field.split(separator: ":", maxSplits: 1).map { String($0).trimmingWhitespace() }
                if pair.count == 2 { fields[pair[0]] = pair[1] }
            }
            let message =
                lines.dropFirst(2).first { !$0.hasPrefix("branches:") && !$0.hasPrefix("=====") }?.trimmingWhitespace()
                ?? ""
            entries.append(
                (
                    String(lines[0].dropFirst("revision ".count)).trimmingWhitespace(), fields["date"] ?? "",
                    fields["author"] ?? "", fields["commitid"], message
                ))
        }
        return entries
    }
}
