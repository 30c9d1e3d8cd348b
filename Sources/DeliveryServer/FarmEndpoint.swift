import DeliveryCore

/// The farm's socket of a node's helper (`farm` in `deliveryd.json`): `deliveryctl follow`, run by
/// sshd as the farm account for the coordinator's key, passes the coordinator's requests on to it.
/// Its peers (the farm account), group and key are not the web socket's: the web user cannot use
/// it, the farm account cannot use the web socket, and neither key opens the other socket. There is
/// no emergency console on it.
struct FarmEndpoint: Sendable {
    /// Its listening socket.
    let listener: Listener
    /// Checks signatures with the farm's key.
    let authenticator: Authenticator

    /// The query member that carries the farm delivery's id (`FarmFollower` sends it).
    static let deliveryMember = FarmFollower.deliveryQueryMember

    /// The farm's socket, when the configuration has one: made at its path, the farm account's
    /// group, mode 0660 (never passed by systemd: that socket is the web one).
    static func openListener(_ configuration: ServerConfiguration) throws(ServerStartError) -> Listener? {
        guard let farm = configuration.farm else { return nil }
        return try Listener.open(path: farm.socketPath, group: farm.socketGroup)
    }

    /// What a request on the farm socket is: from the farm (source `farm`), not from the plugin's
    /// key. The farm delivery's id (`farmDelivery` in the signed query) goes into the actor and out
    /// of the query the routes see; an operation (`POST`) must name it, so that every node's audit
    /// log ties the operation to the farm delivery.
    /// - Throws: `APIError` `bad_request` when the id is missing from a `POST`, or malformed.
    static func mark(_ actor: inout Actor, method: String, query: inout [String: String]) throws(APIError) {
        let id = query.removeValue(forKey: deliveryMember)
        guard id.map(FarmFollower.isDeliveryId) ?? (method != "POST") else {
            throw APIError.badRequest(
                "an operation on the farm socket names its farm delivery (\(deliveryMember): 8 to 64 letters, digits, '-' or '_')"
            )
        }
        actor.source = Actor.farmSource
        actor.claimed = true
        actor.farmDelivery = id
    }
}
