/// One of the three code trees of a site.
public enum TreeName: String, Sendable, Codable, CaseIterable, CodingKeyRepresentable {
    /// The VCS working copy, updated by step 3 and served outside deliveries.
    case production
    /// The copy that serves the site during a delivery.
    case backup
    /// The copy kept untouched for emergency rollback.
    case security
}

/// The site layout on disk.
///
/// ```
/// <siteRoot>/current            -> releases/production   (symlink the web server serves)
/// <siteRoot>/releases/production  the VCS working copy
/// <siteRoot>/releases/backup      serves during a delivery
/// <siteRoot>/releases/security    kept for emergency rollback
/// ```
/// With Moodle 5.1+'s layout the web root is `current/public` and the CLI scripts live under
/// `public/admin/cli`.
public struct SiteLayout: Sendable, Equatable {
    /// The site root.
    public let root: String
    /// True for Moodle 5.1+'s `public/` layout.
    public let publicLayout: Bool
    /// The Moodle admin directory name (`$CFG->admin`).
    public let adminDirectory: String

    /// Makes a layout.
    public init(root: String, publicLayout: Bool, adminDirectory: String = "admin") {
        self.root = root
        self.publicLayout = publicLayout
        self.adminDirectory = adminDirectory
    }

    /// The symlink the web server serves.
    public var current: String { "\(root)/current" }
    /// The folder holding the trees.
    public var releases: String { "\(root)/releases" }

    /// The path of a tree.
    public func path(of tree: TreeName) -> String { "\(releases)/\(tree.rawValue)" }

    /// The symlink target that serves a tree (relative, so the site root can move).
    func linkTarget(of tree: TreeName) -> String { "releases/\(tree.rawValue)" }

    /// The folder of a tree that holds the web root and components (`public/` on 5.1+).
    public func codeRoot(of tree: TreeName) -> String {
        publicLayout ? "\(path(of: tree))/public" : path(of: tree)
    }

    /// The path of one of Moodle's CLI scripts in a tree (`admin/cli/upgrade.php`).
    public func cliScript(_ name: String, in tree: TreeName) -> String {
        "\(codeRoot(of: tree))/\(adminDirectory)/cli/\(name)"
    }

    /// The tree the site serves now, read from the `current` symlink (the only source of truth).
    /// - Returns: nil when `current` is missing or points elsewhere.
    public func servedTree() -> TreeName? {
        guard let target = try? System.readLink(current) else { return nil }
        return TreeName.allCases.first { linkTarget(of: $0) == target || path(of: $0) == target }
    }

    /// Maps a validated component path to the tree-relative path (prefixing `public/` on 5.1+).
    public func treeRelative(_ component: ComponentPath) -> String {
        publicLayout ? "public/\(component.value)" : component.value
    }
}

/// A relative component path such as `mod` or `local/foo`, checked so that it can name nothing
/// outside the tree.
///
/// Accepted: 1 to 255 bytes of letters, digits, `_`, `-` and `.`, separated by single `/`; no
/// component `.` or `..`, nothing absolute, no leading `-`, no NUL, no VCS metadata folder.
public struct ComponentPath: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The normalised path (no trailing slash).
    public let value: String

    /// Validates a path given by a person or a request.
    /// - Throws: `DeliveryError` `.badPath` with the reason.
    public init(_ raw: String) throws(DeliveryError) {
        var text = raw
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        guard !text.isEmpty else { throw DeliveryError(.badPath, "the component path is empty") }
        guard !text.utf8.contains(0) else {
            throw DeliveryError(.badPath, "the component path holds a NUL byte")
        }
        guard text.utf8.count <= 255 else {
            throw DeliveryError(.badPath, "the component path is longer than 255 bytes")
        }
        guard !text.hasPrefix("/") else {
            throw DeliveryError(.badPath, "the component path '\(text)' is absolute; give it relative to the code root")
        }
        guard !text.hasPrefix("-") else {
            throw DeliveryError(.badPath, "the component path '\(text)' starts with '-'")
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./")
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
            if [".git", ".svn", "CVS"].contains(String(part)) {
                throw DeliveryError(.badPath, "the component path '\(text)' names version control metadata")
            }
        }
        value = text
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
