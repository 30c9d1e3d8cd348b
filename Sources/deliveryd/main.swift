// deliveryd: the FastCGI responder of moodle-delivery (see docs/protocol.md); started as root, it
// splits into a root monitor and an unprivileged request side (SeparatedServer).
import DeliveryCore
import DeliveryServer
import Logging

#if canImport(Glibc)
    import Glibc
#endif

LoggingSystem.bootstrap(StreamLogHandler.standardError)
let logger = Logger(label: "deliveryd")

var configurationPath = ServerConfiguration.defaultPath
var pidFile: String?
let usage = "usage: deliveryd [--config PATH] [--pid-file PATH]   (default \(ServerConfiguration.defaultPath))"
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--config":
        guard let value = arguments.popFirst() else {
            System.writeStandard("deliveryd: --config needs a path\n", toError: true)
            exit(64)
        }
        configurationPath = value
    case "--pid-file":
        guard let value = arguments.popFirst() else {
            System.writeStandard("deliveryd: --pid-file needs a path\n", toError: true)
            exit(64)
        }
        pidFile = value
    case "--help", "-h":
        print(usage)
        exit(0)
    default:
        System.writeStandard("deliveryd: unknown argument '\(argument)'; \(usage)\n", toError: true)
        exit(64)
    }
}

do {
    let configuration = try ServerConfiguration.load(from: configurationPath)
    exit(try SeparatedServer.run(configuration: configuration, logger: logger, pidFile: pidFile))
} catch {
    System.writeStandard("deliveryd: \(error)\n", toError: true)
    exit(1)
}
