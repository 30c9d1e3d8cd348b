import Foundation
import Testing

@testable import DeliveryCore

@Suite("Web servers: the tree that answers, Apache's Define file")
struct WebServerTests {
    @Test("the tree header is read from the last answer, whatever its case")
    func treeHeader() {
        let redirect = """
            HTTP/1.1 303 See Other\r
            X-Delivery-Tree: production\r
            Location: /login/\r
            \r
            HTTP/1.1 200 OK\r
            x-delivery-tree: .backup.a\r
            \r

            """
        #expect(WebServerSwitch.treeAnswer(headers: redirect, header: "X-Delivery-Tree") == .named(".backup.a"))
        let none = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\n\r\n"
        #expect(WebServerSwitch.treeAnswer(headers: none, header: "X-Delivery-Tree") == .unnamed("500"))
        let lost = "HTTP/1.1 302 Found\r\nX-Delivery-Tree: production\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"
        #expect(WebServerSwitch.treeAnswer(headers: lost, header: "X-Delivery-Tree") == .unnamed("200"))
    }

    @Test("Apache's Define file names the served web root and tree; paths Apache would misread are refused")
    func defineFile() throws {
        let directory = TemporaryDirectory()
        let settings = WebServerSettings(
            kind: .apache, defineFile: "\(directory.path)/apache-tree.conf",
            defineSuffix: WebServerSettings.suffix(forSiteRoot: "/var/www/moodle-delivery"))
        try settings.validate()
        #expect(settings.rootVariable == "MOODLE_DELIVERY_ROOT_var_www_moodle_delivery")
        try WebServerSwitch.writeDefineFile(
            "\(directory.path)/apache-tree.conf", settings: settings,
            roots: ("/srv/s/releases/.backup.b", "/srv/s/releases/.backup.b/public"))
        let text = try String(contentsOfFile: "\(directory.path)/apache-tree.conf", encoding: .utf8)
        #expect(
            text.contains("\nDefine MOODLE_DELIVERY_ROOT_var_www_moodle_delivery /srv/s/releases/.backup.b/public\n"))
        #expect(text.contains("\nDefine MOODLE_DELIVERY_TREE_var_www_moodle_delivery .backup.b\n"))
        let refused = #expect(throws: DeliveryError.self) {
            try WebServerSwitch.writeDefineFile(
                "\(directory.path)/other.conf", settings: settings, roots: ("/srv/my site", "/srv/my site"))
        }
        #expect(refused?.message.contains("Define") == true)
        #expect(!FileManager.default.fileExists(atPath: "\(directory.path)/other.conf"))
        var relative = settings
        relative.reloadCommands = [["apachectl", "graceful"]]
        #expect(throws: DeliveryError.self) { try relative.validate() }
    }
}
