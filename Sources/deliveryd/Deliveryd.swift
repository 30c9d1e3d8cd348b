// deliveryd: the FastCGI responder of moodle-delivery (see docs/protocol.md); started as root, it
// splits into a root monitor and an unprivileged request side (SeparatedServer).
import ArgumentParser
import DeliveryServer
import Logging

@main
struct Deliveryd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveryd",
        abstract: "The FastCGI helper of moodle-delivery: a root monitor and an unprivileged request side.",
        discussion: "Start it as root; it stays in the foreground and logs to standard error.",
        version: DeliveryServer.version)

    @Option(name: .long, help: "The helper's configuration.")
    var config = ServerConfiguration.defaultPath

    @Option(name: .long, help: "A file the helper writes its process id into, and removes when it stops.")
    var pidFile: String?

    /// Why the helper did not start or stopped with an error: printed as `Error: …`, exit status 1.
    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "deliveryd")
        let status: Int32
        do {
            let configuration = try ServerConfiguration.load(from: config)
            status = try SeparatedServer.run(configuration: configuration, logger: logger, pidFile: pidFile)
        } catch {
            throw StartFailure(description: "\(error)")
        }
        if status != 0 { throw ExitCode(status) }
    }
}
