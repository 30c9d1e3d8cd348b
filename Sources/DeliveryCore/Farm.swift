import Foundation

/// A web farm: the other web nodes of the site, which the node an admin talks to (the coordinator)
/// reaches over OpenSSH (`farm` in the site's configuration). On each node, a dedicated account
/// accepts the coordinator's key for one forced command only (`deliveryctl follow`), and the
/// coordinator pins each node's host key: no shell on the far side, no trust on first use.
public struct FarmSettings: Sendable, Codable, Equatable {
    /// The dedicated account: on every node it runs `deliveryctl follow`; on the coordinator it
    /// runs `ssh` (its private key is that account's own).
    public var account: String
    /// The coordinator's private key (the account's, mode 0600).
    public var identityFile: String
    /// The nodes' pinned host keys, one line per node name (OpenSSH's `known_hosts` format).
    public var knownHostsFile: String
    /// The other nodes of the farm.
    public var nodes: [FarmNode]
    /// Seconds to wait for a node's SSH connection (default 5).
    public var connectTimeoutSeconds: Int?

    /// Makes the settings.
    public init(
        account: String = "moodle-farm", identityFile: String, knownHostsFile: String, nodes: [FarmNode],
        connectTimeoutSeconds: Int? = nil
    ) {
        self.account = account
        self.identityFile = identityFile
        self.knownHostsFile = knownHostsFile
        self.nodes = nodes
        self.connectTimeoutSeconds = connectTimeoutSeconds
    }

    /// Checks what `ssh`'s command line is made of: nothing can become an option of its own.
    public func validate() throws(DeliveryError) {
        guard SiteDirectory.isName(account) else {
            throw DeliveryError(.configuration, "farm.account '\(account)' is not a user name")
        }
        for (name, value) in [("farm.identityFile", identityFile), ("farm.knownHostsFile", knownHostsFile)] {
            guard value.hasPrefix("/"), !value.contains(where: { $0.isWhitespace || $0 == "\0" }) else {
                throw DeliveryError(.configuration, "\(name) must be an absolute path without spaces")
            }
        }
        guard !nodes.isEmpty else { throw DeliveryError(.configuration, "farm.nodes is empty") }
        var seen: Set<String> = []
        for node in nodes {
            try node.validate()
            guard seen.insert(node.name).inserted else {
                throw DeliveryError(.configuration, "farm.nodes: the name '\(node.name)' is given twice")
            }
        }
        if let seconds = connectTimeoutSeconds, !(1...120).contains(seconds) {
            throw DeliveryError(.configuration, "farm.connectTimeoutSeconds must be 1 to 120")
        }
    }
}

/// One other node of a farm.
public struct FarmNode: Sendable, Codable, Equatable {
    /// Its name: in messages, and the name its host key is pinned under.
    public var name: String
    /// Its address on the farm's network (a host name or an IP address).
    public var address: String
    /// Its SSH port (default 22).
    public var port: Int?

    /// Makes a node.
    public init(name: String, address: String, port: Int? = nil) {
        self.name = name
        self.address = address
        self.port = port
    }

    /// The port `ssh` connects to.
    public var sshPort: Int { port ?? 22 }

    func validate() throws(DeliveryError) {
        guard SiteDirectory.isName(name) else {
            throw DeliveryError(
                .configuration,
                "farm.nodes: '\(name)' is not a node name (1 to 64 lower-case letters, digits, '-', '_' or '.', not starting with '.' or '-')"
            )
        }
        let allowed = address.utf8.allSatisfy {
            ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || [45, 46, 58].contains($0)
        }
        guard allowed, !address.isEmpty, address.utf8.count <= 253, !address.hasPrefix("-") else {
            throw DeliveryError(
                .configuration, "farm.nodes: the address '\(address)' of \(name) is not a host name or an IP address")
        }
        if let port, !(1...65535).contains(port) {
            throw DeliveryError(.configuration, "farm.nodes: the port \(port) of \(name) is not a port")
        }
    }
}

/// What the coordinator asks a node, one JSON object on `deliveryctl follow`'s standard input.
public struct FarmRequest: Sendable, Codable, Equatable {
    /// The protocol's version (1).
    public var version: Int
    /// What is asked: `hello` (the node's site and programs' version), `status` or `preflight`
    /// (the node helper's `GET /status`, `GET /preflight`) or `operation` (`call` started on the
    /// node's helper, waited for).
    public var request: String
    /// The farm delivery this request belongs to (`operation`: required; it goes into the node's
    /// audit log).
    public var farmDelivery: String?
    /// The body of the node helper's `POST /operations`, as JSON text (`operation`).
    public var call: String?

    /// Makes a request.
    public init(version: Int = 1, request: String, farmDelivery: String? = nil, call: String? = nil) {
        self.version = version
        self.request = request
        self.farmDelivery = farmDelivery
        self.call = call
    }
}

/// A node's answer, one JSON object on `deliveryctl follow`'s standard output.
public struct FarmReply: Sendable, Codable, Equatable {
    /// The protocol's version (1).
    public var version: Int
    /// The node's site name (`hello`).
    public var site: String?
    /// The node's moodle-delivery version (`hello`).
    public var product: String?
    /// The node helper's HTTP status (`status`, `operation`).
    public var status: Int?
    /// The node helper's answer, as JSON text (`status`: the site's status; `operation`: the
    /// finished job, or the helper's refusal).
    public var answer: String?
    /// Why the node refused, as a code and the node's own words.
    public var error: FarmError?

    /// Makes a reply.
    public init(
        version: Int = 1, site: String? = nil, product: String? = nil, status: Int? = nil, answer: String? = nil,
        error: FarmError? = nil
    ) {
        self.version = version
        self.site = site
        self.product = product
        self.status = status
        self.answer = answer
        self.error = error
    }
}

/// A node's refusal.
public struct FarmError: Error, Sendable, Codable, Equatable {
    /// What kind: `bad_request`, `unknown_request`, `unsupported_version`, `command_given`,
    /// `not_following` (the node's helper has no farm socket), `helper_unreachable`.
    public var code: String
    /// The reason, in English.
    public var message: String

    /// Makes a refusal.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}
