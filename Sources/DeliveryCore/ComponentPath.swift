#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A relative component path such as `mod` or `local/foo`, checked so that it can name nothing
/// outside the tree.
///
/// Accepted: 1 to 255 bytes of letters, digits, `_`, `-` and `.`, separated by single `/`; no
/// component `.` or `..`, nothing absolute, no leading `-`, no NUL, no VCS metadata folder.
public struct ComponentPath: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The normalised path (no trailing slash).
    public let value: String

    /// The longest path accepted, in bytes.
    public static let maxBytes = 255
    /// The characters a part may hold (besides the `/` between parts).
    public static let partCharacters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
    /// Parts refused whatever else: the relative folders, and the version control metadata.
    public static let refusedParts = [".", "..", ".git", ".svn", "CVS"]

    /// Validates a path given by a person or a request.
    /// - Throws: `DeliveryError` `.badPath` with the reason.
    public init(_ raw: String) throws(DeliveryError) {
        var text = raw
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        guard !text.isEmpty else { throw DeliveryError(.badPath, "the component path is empty") }
        guard !text.utf8.contains(0) else {
            throw DeliveryError(.badPath, "the component path holds a NUL byte")
        }
        guard text.utf8.count <= Self.maxBytes else {
            throw DeliveryError(.badPath, "the component path is longer than \(Self.maxBytes) bytes")
        }
        guard !text.hasPrefix("/") else {
            throw DeliveryError(.badPath, "the component path '\(text)' is absolute; give it relative to the code root")
        }
        guard !text.hasPrefix("-") else {
            throw DeliveryError(.badPath, "the component path '\(text)' starts with '-'")
        }
        let allowed = Set(Self.partCharacters + "/")
        guard text.allSatisfy({ allowed.contains($0) }) else {
            throw DeliveryError(
                .badPath,
                "the component path '\(Self.printable(text))' holds characters other than letters, digits, _ - . and /")
        }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        for part in parts {
            if part.isEmpty { throw DeliveryError(.badPath, "the component path '\(text)' has an empty part") }
            if part == "." || part == ".." {
                throw DeliveryError(.badPath, "the component path '\(text)' contains '\(part)'")
            }
            if part.hasPrefix("-") {
                throw DeliveryError(.badPath, "the component path '\(text)' has a part starting with '-'")
            }
            if Self.refusedParts.contains(String(part)) {
                throw DeliveryError(.badPath, "the component path '\(text)' names version control metadata")
            }
        }
        value = text
    }

    /// Validates an optional path: nil stays nil.
    /// - Throws: `DeliveryError` `.badPath` with the reason.
    public static func parse(_ raw: String?) throws(DeliveryError) -> ComponentPath? {
        guard let raw else { return nil }
        return try ComponentPath(raw)
    }

    /// Decodes a path from its text, through the same checks (the monitor decodes what the
    /// request side sent).
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    /// Encodes the path as its text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    /// The path as given.
    public var description: String { value }

    private static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? "?" : Character($0) }.prefix(80))
    }

    /// Checks that the path stays inside `treeRoot` on disk: every existing part is a real folder
    /// or (for the last part) a regular file, never a symlink.
    /// - Parameter mustExist: refuse when the path does not exist; otherwise its parent must exist.
    /// - Throws: `DeliveryError` `.badPath`.
    public func checkInside(tree treeRoot: String, relative: String, mustExist: Bool) throws(DeliveryError) {
        let parts = relative.split(separator: "/").map(String.init)
        var path = treeRoot
        for (index, part) in parts.enumerated() {
            path += "/" + part
            let isLast = index == parts.count - 1
            let status: FileStatus?
            do {
                status = try System.lstatusIfExists(path)
            } catch {
                throw DeliveryError(.badPath, "cannot check the component path '\(value)': \(error)")
            }
            guard let status else {
                if isLast && !mustExist { return }
                throw DeliveryError(.badPath, "the component path '\(value)' does not exist in the production tree")
            }
            if status.kind == .symlink {
                throw DeliveryError(.badPath, "the component path '\(value)' goes through a symlink ('\(part)')")
            }
            if !isLast && status.kind != .directory {
                throw DeliveryError(.badPath, "the component path '\(value)': '\(part)' is not a folder")
            }
            if isLast && status.kind != .directory && status.kind != .regular {
                throw DeliveryError(.badPath, "the component path '\(value)' is neither a folder nor a file")
            }
        }
    }
}
