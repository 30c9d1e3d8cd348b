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
