import Foundation
import Testing

@testable import DeliveryCore

@Suite("Several sites on one server")
struct SiteDirectoryTests {
    func write(_ path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "{}".write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test("the configuration acted on: --config, --site, $DELIVERY_CONFIG, else the only site")
    func resolution() throws {
        let directory = TemporaryDirectory()
        let base = directory.path
        #expect(try SiteDirectory.resolve(config: nil, site: nil, environment: nil, base: base) == "\(base)/site.json")
        try write("\(base)/site.json")
        #expect(try SiteDirectory.resolve(config: nil, site: nil, environment: nil, base: base) == "\(base)/site.json")
        try write("\(base)/sites/school/site.json")
        try write("\(base)/sites/college/site.json")
        #expect(SiteDirectory.sites(base: base).map(\.name) == ["default", "college", "school"])
        let several = #expect(throws: DeliveryError.self) {
            try SiteDirectory.resolve(config: nil, site: nil, environment: nil, base: base)
        }
        #expect(
            several?.message.contains("several sites: name one with --site (sites: default, college, school)") == true)
        #expect(
            try SiteDirectory.resolve(config: nil, site: "school", environment: "/x.json", base: base)
                == "\(base)/sites/school/site.json")
        #expect(
            try SiteDirectory.resolve(config: nil, site: "default", environment: nil, base: base) == "\(base)/site.json"
        )
        #expect(try SiteDirectory.resolve(config: "/c.json", site: "school", environment: nil, base: base) == "/c.json")
        #expect(try SiteDirectory.resolve(config: nil, site: nil, environment: "/e.json", base: base) == "/e.json")
        let missing = #expect(throws: DeliveryError.self) {
            try SiteDirectory.resolve(config: nil, site: "other", environment: nil, base: base)
        }
        #expect(missing?.message == "no site 'other' on this server (sites: default, college, school)")
    }

    @Test("the PHP-FPM pool: the only one, or none; several are never guessed between")
    func pools() throws {
        let directory = TemporaryDirectory()
        #expect(try SiteAdoption.detectPHPFPMSockets(in: directory.path) == [])
        try write("\(directory.path)/php8.2-fpm.sock")
        #expect(try SiteAdoption.detectPHPFPMSockets(in: directory.path) == ["\(directory.path)/php8.2-fpm.sock"])
        try write("\(directory.path)/school.sock")
        let error = #expect(throws: DeliveryError.self) { try SiteAdoption.detectPHPFPMSockets(in: directory.path) }
        #expect(error?.message.contains("say which one serves this site with --php-fpm-socket") == true)
    }

    @Test(
        "a site's name is a plain file name",
        arguments: ["", "../etc", "a/b", ".hidden", "-x", "UPPER", String(repeating: "a", count: 65)])
    func badNames(_ name: String) {
        #expect(throws: DeliveryError.self) { try SiteDirectory.configurationPath(ofSite: name) }
    }

    @Test("a configuration's site name: its folder under sites/, else the one-site layout's")
    func nameOfConfiguration() {
        #expect(SiteDirectory.name(ofConfiguration: "/etc/moodle-delivery/sites/school/site.json") == "school")
        #expect(SiteDirectory.name(ofConfiguration: "/etc/moodle-delivery/site.json") == "default")
        #expect(SiteDirectory.name(ofConfiguration: "/tmp/x/sites/-bad/site.json") == "default")
    }
}
