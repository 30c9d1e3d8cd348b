/// When the caches are purged after a restore without an upgrade (`caches.purge` in the site's
/// configuration).
public enum CachePurgePolicy: String, Sendable, Codable, Equatable, CaseIterable {
    /// Only the caches the change can have left stale (`CachePurge.needed`), none when it changed
    /// only PHP code that Moodle builds no cache from.
    case whenNeeded
    /// Every cache after every code change, as Moodle's `purge_caches.php` without options does.
    case always
}

/// The cache settings of a site (`caches` in the configuration).
public struct CacheSettings: Sendable, Codable, Equatable {
    /// When the caches are purged (default `whenNeeded`).
    public var purge: CachePurgePolicy

    /// Makes the settings.
    public init(purge: CachePurgePolicy = .whenNeeded) {
        self.purge = purge
    }

    enum CodingKeys: String, CodingKey { case purge }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        purge = try container.decodeIfPresent(CachePurgePolicy.self, forKey: .purge) ?? .whenNeeded
    }
}

/// Which of Moodle's caches a code change can have left stale: the one rule for the purge after a
/// restore that ran no upgrade (an upgrade purges everything itself). A purge empties caches that
/// every request then rebuilds at once (on a real 4.5 site the health check after a full purge takes
/// 1.2 s against 0.5 s, and the first pages rebuild the theme's CSS), so a change only purges what
/// it touches. Whatever the rule cannot vouch for purges everything.
///
/// Per changed file, relative to the tree's code root (the first match decides):
/// - test code (a `tests` folder), documentation (`.md`, `.txt`, `README…`), `amd/src` (Moodle
///   serves `amd/build`): nothing;
/// - under a `lang` folder: the language strings (`--lang`);
/// - templates (`.mustache`): everything (their revision is bumped only by the full purge);
/// - JavaScript (`.js`, `.map`): `--js`; styles (`.css`, `.scss`, `.less`), images and fonts
///   (`pix`, `pix_plugins`, `fonts`, image files): the theme (`--theme`);
/// - PHP, added or removed: everything (Moodle's lists of classes, callbacks, tasks, routes);
/// - PHP, changed: everything when Moodle builds caches from it — `db/` files, `lib.php`,
///   `version.php`, `settings.php`, core's `lib/`, `cache/`, `course/` and `question/` (with
///   their plugins), the class folders Moodle scans (`classes/route`, `classes/hook`,
///   `classes/analytics`), icon systems, and any file of a plugin that declares caches of its own
///   (`db/caches.php`): their entries may hold objects of the changed code; the theme under
///   `theme/`, `--filter` under `filter/`; else nothing (a page, a class of a plugin without
///   caches);
/// - anything else: everything.
public struct CachePurge: Sendable, Equatable {
    /// One of Moodle's partial purges (`admin/cli/purge_caches.php --<part>`).
    public enum Part: String, Sendable, CaseIterable, Comparable {
        case lang, js, theme, filter

        public static func < (left: Part, right: Part) -> Bool { left.rawValue < right.rawValue }
    }

    /// True for every cache (the script without options).
    public var everything: Bool
    /// The partial purges, when not everything.
    public var parts: Set<Part>
    /// The first file that asked for everything, and why (for the log).
    public var reason: String?

    /// No purge at all.
    public static let nothing = CachePurge(everything: false, parts: [], reason: nil)

    /// Every cache, for a reason.
    public static func all(_ reason: String) -> CachePurge { CachePurge(everything: true, parts: [], reason: reason) }

    /// True when no cache needs purging.
    public var isNothing: Bool { !everything && parts.isEmpty }

    /// The arguments of `purge_caches.php`: none for everything.
    public var arguments: [String] { everything ? [] : parts.sorted().map { "--\($0.rawValue)" } }

    /// A file's kind of change.
    public enum Change: Sendable { case added, changed, removed }

    /// What the changes need.
    /// - Parameters:
    ///   - changes: each changed file (relative to the tree's root) with its kind of change.
    ///   - publicLayout: Moodle 5.1+'s layout, where the code root is `public/`.
    ///   - declaresCaches: whether a folder of the tree (relative) holds `db/caches.php`; asked
    ///     for the plugins of changed PHP files.
    ///   - isComponentRoot: whether a folder of the tree (relative) holds a `version.php`.
    public static func needed(
        _ changes: [(path: String, change: Change)], publicLayout: Bool = false,
        declaresCaches: (String) -> Bool, isComponentRoot: (String) -> Bool
    ) -> CachePurge {
        var result = CachePurge.nothing
        for (path, change) in changes.sorted(by: { $0.path < $1.path }) {
            var relative = path
            if publicLayout && relative.hasPrefix("public/") { relative.removeFirst("public/".count) }
            switch need(relative, change, declaresCaches: declaresCaches, isComponentRoot: isComponentRoot) {
            case .nothing: continue
            case .part(let part): result.parts.insert(part)
            case .everything(let why): return .all("\(path): \(why)")
            }
        }
        return result
    }

    enum Need: Equatable {
        case nothing
        case part(Part)
        case everything(String)
    }

    static let imageExtensions: Set<String> = ["svg", "png", "gif", "jpg", "jpeg", "ico", "webp"]
    static let fontExtensions: Set<String> = ["woff", "woff2", "ttf", "otf", "eot"]
    /// Core folders whose code builds Moodle's own caches (course and module information, question
    /// data, the cache definitions, the theme).
    static let coreFoldersWithCaches: Set<String> = ["lib", "cache", "course", "question"]
    /// Class folders Moodle scans and caches the result of.
    static let scannedClassFolders: Set<String> = ["route", "hook", "analytics"]
    /// Files Moodle reads into caches or the database.
    static let filesWithCaches: Set<String> = ["lib.php", "version.php", "settings.php"]

    static func need(
        _ path: String, _ change: Change, declaresCaches: (String) -> Bool, isComponentRoot: (String) -> Bool
    ) -> Need {
        let parts = path.split(separator: "/").map(String.init)
        guard let name = parts.last else { return .nothing }
        let folders = Array(parts.dropLast())
        let dot = name.lastIndex(of: ".")
        let suffix = dot.map { String(name[name.index(after: $0)...]).lowercased() } ?? ""
        if folders.contains("tests") || ["md", "txt"].contains(suffix) || name.hasPrefix("README") {
            return .nothing
        }
        if let amd = folders.firstIndex(of: "amd"), amd + 1 < folders.count, folders[amd + 1] == "src" {
            return .nothing
        }
        if folders.contains("lang") { return .part(.lang) }
        switch suffix {
        case "mustache": return .everything("a template (Moodle bumps their revision only in a full purge)")
        case "js", "map": return .part(.js)
        case "css", "scss", "less": return .part(.theme)
        case "php": break
        default:
            if imageExtensions.contains(suffix) || fontExtensions.contains(suffix)
                || folders.contains(where: { ["pix", "pix_plugins", "fonts"].contains($0) })
            {
                return .part(.theme)
            }
            return .everything("a file the rule does not know")
        }
        guard change == .changed else {
            return .everything(
                "a PHP file \(change == .added ? "added" : "removed") (Moodle lists classes and callbacks)")
        }
        if filesWithCaches.contains(name) || folders.contains("db") {
            return .everything("Moodle reads \(name) into its caches")
        }
        if let top = folders.first, coreFoldersWithCaches.contains(top) {
            return .everything("code that builds Moodle's own caches (\(top)/)")
        }
        if let classes = folders.firstIndex(of: "classes"), classes + 1 < folders.count,
            scannedClassFolders.contains(folders[classes + 1])
        {
            return .everything("classes Moodle scans and caches (classes/\(folders[classes + 1]))")
        }
        if name.hasPrefix("icon_system") { return .everything("an icon system (Moodle caches the icon map)") }
        if let plugin = pluginRoot(folders, isComponentRoot) {
            if declaresCaches(plugin) { return .everything("\(plugin) keeps caches of its own (db/caches.php)") }
        }
        // A theme's PHP (its layouts, renderers, SCSS callbacks) shapes its CSS and templates.
        if folders.first == "theme" { return .part(.theme) }
        if folders.first == "filter" { return .part(.filter) }
        return .nothing
    }

    /// The nearest folder above a file that holds a `version.php`, other than the tree's root.
    static func pluginRoot(_ folders: [String], _ isComponentRoot: (String) -> Bool) -> String? {
        var depth = folders.count
        while depth > 0 {
            let folder = folders.prefix(depth).joined(separator: "/")
            if isComponentRoot(folder) { return folder }
            depth -= 1
        }
        return nil
    }
}
