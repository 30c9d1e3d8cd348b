#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Room for the database snapshot.
public struct SnapshotSpace: Sendable, Codable, Equatable {
    /// The snapshot folder.
    public var directory: String
    /// Free bytes there.
    public var availableBytes: Int64
    /// What Moodle's tables take in the database (an upper bound of the dump).
    public var databaseBytes: Int64
    /// True when the snapshot can be taken: the dump fits, or the server's own copy serves.
    public var enough: Bool
    /// The server's own copy of the database that will be the snapshot (`database.method`),
    /// when it can be one; nil when the snapshot is a dump.
    public var serverCopyOf: String?

    /// What the preflight says of the snapshot to come: the room for a dump, and whether the
    /// server's own copy will be the snapshot instead (`database.method`).
    static func measure(_ configuration: SiteConfiguration, layout: SiteLayout, recorder: CommandRecorder)
        throws(DeliveryError) -> SnapshotSpace
    {
        let webUser = try UserIdentity.lookup(configuration.webUser)
        let connection = try DatabaseConnection.read(
            php: configuration.php, codeRoot: layout.codeRoot(of: .production), webUser: webUser)
        let tool = DatabaseTool(connection: connection, webUser: webUser, recorder: recorder, timeout: 120)
        let size = try tool.estimatedSize()
        let directory = configuration.snapshotDirectory
        let existing = (try? System.lstatus(directory)) != nil ? directory : configuration.stateDirectory
        let available = (try? System.availableBytes(existing)) ?? 0
        let copies = configuration.snapshotSettings.method != .dump && tool.copyObstacle().obstacle == nil
        return SnapshotSpace(
            directory: directory, availableBytes: available, databaseBytes: size,
            enough: copies || available > size + (16 << 20),
            serverCopyOf: copies ? connection.name : nil)
    }
}
