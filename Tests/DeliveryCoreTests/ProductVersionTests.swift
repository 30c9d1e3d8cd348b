import DeliveryCore
import Foundation
import Testing

/// One version for the programs, the plugin's release and the Debian package's changelog.
@Suite("the product's version")
struct ProductVersionTests {
    @Test("the plugin's release and the package changelog's first entry name ProductVersion.number")
    func inStep() throws {
        let number = ProductVersion.number
        #expect(number.split(separator: ".").count == 3 && number.allSatisfy { $0.isNumber || $0 == "." })
        let plugin = try String(contentsOfFile: "\(projectRoot)/moodle-plugin/version.php", encoding: .utf8)
        #expect(plugin.contains("$plugin->release = '\(number)';"), "moodle-plugin/version.php's release")
        let changelog = try String(contentsOfFile: "\(projectRoot)/packaging/changelog", encoding: .utf8)
        #expect(changelog.hasPrefix("moodle-delivery (\(number)) "), "packaging/changelog's first entry")
    }
}
