#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The upstream watch on svn: `svn log` and `svn diff --summarize` from the working copy's BASE
/// to HEAD (or the target), and `svn cat` of a file at that revision; nothing is written.
extension SubversionWorkingCopy {
    func upstreamChanges(of tree: String, target: String?, recorder: CommandRecorder) throws(DeliveryError)
        -> UpstreamChanges
    {
        let base = try revision(of: tree, recorder: recorder)
        let head: String
        if let target {
            guard !target.isEmpty, target.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw DeliveryError(.badRequest, "svn: '\(target)' is not a revision number")
            }
            head = target
        } else if let pin = context.upstream.pin, !pin.isEmpty {
            head = pin
        } else {
            let info = try svn(
                ["info", "--revision", "HEAD", "--show-item", "revision", "--no-newline", "--", "."], tree, recorder,
                echo: false)
            guard info.succeeded else { throw failure("svn", "info of the repository", info) }
            head = info.standardOutput.trimmingWhitespace()
        }
        var changes = UpstreamChanges(revision: Revision(id: head, label: "r\(head)"))
        guard let from = Int(base.id), let to = Int(head), to > from else { return changes }
        let log = try svn(["log", "--revision", "\(to):\(from + 1)", "--", "."], tree, recorder, echo: false)
        guard log.succeeded else { throw failure("svn", "log", log) }
        changes.commits = Self.commits(inLog: log.standardOutput)
        changes.commitCount = changes.commits.count
        let diff = try svn(
            ["diff", "--summarize", "--xml", "--revision", "\(from):\(to)", "--", "."], tree, recorder, echo: false)
        guard diff.succeeded else { throw failure("svn", "diff --summarize", diff) }
        for entry in Self.summary(diff.standardOutput) where entry.kind == "file" || entry.item == "deleted" {
            switch entry.item {
            case "added": changes.added.append(entry.path)
            case "deleted": changes.removed.append(entry.path)
            case "modified", "replaced": changes.changed.append(entry.path)
            default: break
            }
        }
        return changes
    }

    func upstreamText(_ path: String, of tree: String, changes: UpstreamChanges, recorder: CommandRecorder) -> String? {
        // By URL (a file new upstream is not in the working copy); `@` ends it, so that a peg
        // revision never comes from the file's name.
        guard let base = upstreamAddress(of: tree, recorder: recorder) else { return nil }
        return context.fileText(
            "svn",
            ["--non-interactive", "cat", "--revision", changes.revision.id, "--", "\(base)/\(Self.urlPath(path))@"],
            in: tree, recorder: recorder)
    }

    /// A relative path as a URL's path: bytes other than letters, digits, `-._~/` percent-encoded.
    static func urlPath(_ path: String) -> String {
        var result = ""
        for byte in path.utf8 {
            let plain =
                (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || [45, 46, 95, 126, 47].contains(byte)
            if plain {
                result.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return result
    }

    /// The commits of `svn log`'s text, newest first: `rN | author | date | …`, a blank line, the message.
    static func commits(inLog text: String) -> [UpstreamCommit] {
        var commits: [UpstreamCommit] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var index = 0
        while index < lines.count {
            let fields = lines[index].components(separatedBy: " | ")
            if fields.count >= 4, fields[0].hasPrefix("r"), Int(fields[0].dropFirst()) != nil {
                var subject = ""
                var next = index + 1
                while next < lines.count, !lines[next].hasPrefix("-----") {
                    if subject.isEmpty { subject = lines[next].trimmingWhitespace() }
                    next += 1
                }
                commits.append(UpstreamCommit(id: String(fields[0].dropFirst()), author: fields[1], subject: subject))
                index = next
            } else {
                index += 1
            }
        }
        return commits
    }

    /// The entries of `svn diff --summarize --xml`: each `<path item=… kind=…>path</path>`.
    static func summary(_ xml: String) -> [(path: String, item: String, kind: String)] {
        var entries: [(path: String, item: String, kind: String)] = []
        for chunk in xml.components(separatedBy: "<path").dropFirst() {
            guard let close = chunk.firstIndex(of: ">"), let end = chunk.range(of: "</path>") else { continue }
            let attributes = String(chunk[..<close])
            func attribute(_ name: String) -> String {
                guard let start = attributes.range(of: "\(name)=\"") else { return "" }
                return String(attributes[start.upperBound...].prefix { $0 != "\"" })
            }
            let path = String(chunk[chunk.index(after: close)..<end.lowerBound])
                .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
                .replacingOccurrences(of: "&amp;", with: "&")
            guard path != "." else { continue }
            entries.append((path, attribute("item"), attribute("kind")))
        }
        return entries
    }
}
