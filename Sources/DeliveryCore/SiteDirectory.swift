/// Where the sites of a server keep their configuration: one folder per site,
/// `/etc/moodle-delivery/sites/<name>/` (its `site.json`, `deliveryd.json` and key), so that a
/// second Moodle on the same server never shares the first one's configuration, key, socket or
/// state. A server installed before sites had names keeps `/etc/moodle-delivery/site.json`, listed
/// as the site `default`.
public enum SiteDirectory {
    /// The folder of every site's configuration.
    public static let base = "/etc/moodle-delivery"

    /// The name given to the configuration of the one-site layout (`<base>/site.json`).
    public static let legacyName = "default"

    /// True for a name of the kind sites, farm nodes and the farm's account take: 1 to 64
    /// lower-case letters, digits, `-`, `_` or `.`, not starting with `.` or `-`.
    public static func isName(_ name: String) -> Bool {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        return allowed && !name.isEmpty && name.utf8.count <= 64 && name.first != "." && name.first != "-"
    }

    /// The name of the site whose configuration is `path` (`<base>/sites/NAME/site.json`), or
    /// `legacyName` for the one-site layout.
    public static func name(ofConfiguration path: String) -> String {
        let parts = path.split(separator: "/").map(String.init)
        guard parts.count >= 3, parts[parts.count - 3] == "sites", isName(parts[parts.count - 2]) else {
            return legacyName
        }
        return parts[parts.count - 2]
    }

    /// Checks a site's name: what `scripts/install --site` and `deliveryctl --site` take.
    public static func checkName(_ name: String) throws(DeliveryError) {
        guard isName(name) else {
            throw DeliveryError(
                .configuration,
                "'\(name)' is not a site name: use 1 to 64 lower-case letters, digits, '-', '_' or '.', not starting with '.' or '-'"
            )
        }
    }

    /// The configuration file of the site `name`.
    public static func configurationPath(ofSite name: String, base: String = base) throws(DeliveryError) -> String {
        try checkName(name)
        return "\(base)/sites/\(name)/site.json"
    }

    /// The farm socket of a site's helper, on a node that follows a coordinator (`farm` in its
    /// `deliveryd.json`): outside the web socket's folder, which the farm account cannot enter.
    public static func farmSocketPath(ofSite name: String) -> String {
        "/run/deliveryd/\(name)-farm.sock"
    }

    /// The key `deliveryctl follow` signs with on that socket (root, the farm account's group, 0640).
    public static func farmKeyPath(ofSite name: String, base: String = base) -> String {
        name == legacyName ? "\(base)/farm.key" : "\(base)/sites/\(name)/farm.key"
    }

    /// The sites configured on this server, by name, with their configuration files.
    public static func sites(base: String = base) -> [(name: String, path: String)] {
        var found: [(name: String, path: String)] = []
        if (try? System.lstatus("\(base)/site.json"))?.kind == .regular {
            found.append((legacyName, "\(base)/site.json"))
        }
        for entry in ((try? System.listDirectory("\(base)/sites")) ?? []).sorted(by: { $0.name < $1.name })
        where entry.kind == .directory && (try? checkName(entry.name)) != nil
            && !found.contains(where: { $0.name == entry.name })
        {
            let path = "\(base)/sites/\(entry.name)/site.json"
            if (try? System.lstatus(path))?.kind == .regular { found.append((entry.name, path)) }
        }
        return found
    }

    /// The configuration a command acts on: `--config`, else `--site`, else `$DELIVERY_CONFIG`,
    /// else the server's only site. Several sites and none named is refused, listing them.
    public static func resolve(config: String?, site: String?, environment: String?, base: String = base)
        throws(DeliveryError) -> String
    {
        if let config { return config }
        if let site {
            let configured = sites(base: base)
            if let match = configured.first(where: { $0.name == site }) { return match.path }
            try checkName(site)
            throw DeliveryError(
                .configuration,
                "no site '\(site)' on this server (\(describe(configured)))")
        }
        if let environment, !environment.isEmpty { return environment }
        let configured = sites(base: base)
        switch configured.count {
        case 1: return configured[0].path
        case 0: return "\(base)/site.json"
        default:
            throw DeliveryError(
                .configuration, "this server has several sites: name one with --site (\(describe(configured)))")
        }
    }

    private static func describe(_ sites: [(name: String, path: String)]) -> String {
        sites.isEmpty
            ? "none is configured: scripts/install --moodle DIR adopts one"
            : "sites: " + sites.map(\.name).joined(separator: ", ")
    }
}
