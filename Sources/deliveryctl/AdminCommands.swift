import ArgumentParser
import DeliveryCore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension DeliveryCtl {
    /// `deliveryctl admin …`: the administrators whose second factor the helper asks for before a
    /// destructive operation requested through the plugin (docs/SECURITY.md).
    struct Admin: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol, list and revoke the administrators' second factor (TOTP).",
            discussion: """
                Requested through the Moodle plugin, a database restore outside the delivery window \
                needs the code of an enrolled administrator's authenticator app: the web server holds \
                the plugin's key, but not their phone. Run as root on the server.
                """,
            subcommands: [EnrolTOTP.self, List.self, Revoke.self])

        struct EnrolTOTP: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "enrol-totp",
                abstract: "Give a Moodle administrator an authenticator secret (shown once).")
            @Argument(help: "The Moodle user id (the delivery screen shows the command with yours).")
            var moodleUserId: Int
            @Option(name: .long, help: "A label for people, such as the administrator's name.")
            var name = ""
            @Flag(name: .long, help: "Replace an existing secret (the old one stops working).")
            var replace = false
            @OptionGroup var options: GlobalOptions

            func run() throws {
                options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                    let enrolment = try engine.secondFactor.enrol(
                        moodleUserId: moodleUserId, name: name, replace: replace)
                    if options.json {
                        printJSON(enrolment)
                        return
                    }
                    FileOutput.standardOutput(
                        """
                        Enrolled Moodle user \(moodleUserId) (\(enrolment.administrator.name)).
                        Add this account to their authenticator app, now: the secret is not shown again.
                          URI (turn it into a QR code with: qrencode -t ANSIUTF8 'URI'):
                            \(enrolment.uri)
                          or type the secret: \(enrolment.secret)  (time-based, SHA-1, 6 digits, 30 s)
                        The delivery screen then asks this administrator for a code before a database
                        restore outside the delivery window.

                        """)
                }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the enrolled administrators.")
            @OptionGroup var options: GlobalOptions

            func run() throws {
                options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                    let administrators = try engine.secondFactor.list()
                    if options.json {
                        printJSON(administrators)
                        return
                    }
                    if administrators.isEmpty {
                        FileOutput.standardOutput(
                            "No administrator is enrolled: enrol one with 'deliveryctl admin enrol-totp MOODLE_USER_ID'.\n"
                        )
                    }
                    for administrator in administrators {
                        let used =
                            administrator.lastUsedAt.map { "last used \($0.formatted(.iso8601))" } ?? "never used"
                        FileOutput.standardOutput(
                            "\(administrator.moodleUserId)  \(administrator.name)  enrolled \(administrator.enrolledAt.formatted(.iso8601))  \(used)\n"
                        )
                    }
                }
            }
        }

        struct Revoke: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove an administrator's secret.")
            @Argument(help: "The Moodle user id.")
            var moodleUserId: Int
            @OptionGroup var options: GlobalOptions

            func run() throws {
                options.withEngine { (engine: DeliveryEngine) throws(DeliveryError) in
                    guard try engine.secondFactor.revoke(moodleUserId: moodleUserId) else {
                        throw DeliveryError(.badRequest, "Moodle user \(moodleUserId) is not enrolled")
                    }
                    if options.json {
                        printJSON(["revoked": moodleUserId])
                    } else {
                        FileOutput.standardOutput("Revoked the second factor of Moodle user \(moodleUserId).\n")
                    }
                }
            }
        }
    }
}
