import DeliveryCore
import Testing

@Suite("OPcache room for a site's five trees")
struct OPcacheRoomTests {
    /// An answer as the pool's script prints it.
    func report(keys: Int, setting: Int, files: Int, master: Int = 41, enabled: Int = 1, full: Int = 0) -> String {
        "enabled=\(enabled) max_accelerated_files=\(setting) max_cached_keys=\(keys) memory_mb=128 cache_full=\(full) oom_restarts=0 php_files=\(files) master=\(master)"
    }

    @Test("Debian's default (10000, 16229 keys) is too small for a Moodle 4.5 site: the warning gives the setting")
    func defaultIsTooSmall() throws {
        let room = try #require(
            OPcacheRoom(socket: "/run/php/a.sock", report: report(keys: 16229, setting: 10000, files: 17612)))
        #expect(room.keysNeeded == 88060)
        #expect(room.suggestedSetting == 90000)
        #expect(room.warnings.count == 1)
        #expect(room.warnings[0].contains("Set opcache.max_accelerated_files=90000"))
    }

    @Test("enough keys for the five trees: nothing to change")
    func enough() throws {
        let room = try #require(
            OPcacheRoom(socket: "/run/php/a.sock", report: report(keys: 130987, setting: 100000, files: 17612)))
        #expect(room.warnings.isEmpty)
    }

    @Test("sites whose pools share one master add up; other masters and the same pool do not")
    func sharing() throws {
        let one = try #require(
            OPcacheRoom(socket: "/a.sock", report: report(keys: 130987, setting: 100000, files: 17612)))
        let two = try #require(
            OPcacheRoom(socket: "/b.sock", report: report(keys: 130987, setting: 100000, files: 19870)))
        let elsewhere = try #require(
            OPcacheRoom(socket: "/c.sock", report: report(keys: 130987, setting: 100000, files: 19870, master: 99)))
        let same = try #require(OPcacheRoom(socket: "/a.sock", report: report(keys: 130987, setting: 100000, files: 1)))
        #expect(one.sharing(with: [("elsewhere", elsewhere), ("again", same)]).warnings.isEmpty)
        let shared = one.sharing(with: [("two", two), ("elsewhere", elsewhere)])
        #expect(shared.keysNeededWithSharing == 88060 + 99350)
        #expect(shared.warnings.count == 1)
        #expect(shared.warnings[0].contains("with two, whose pools share"))
        #expect(shared.suggestedSetting == 190000)
    }

    @Test("OPcache off, or full: said; a garbled answer is no report")
    func offFullGarbled() throws {
        let off = try #require(
            OPcacheRoom(socket: "/a.sock", report: report(keys: 0, setting: 0, files: 10, enabled: 0)))
        #expect(
            off.warnings == [
                "OPcache is off in the PHP-FPM pool at /a.sock: every request compiles Moodle afresh. Turn it on (opcache.enable=1) and restart PHP-FPM."
            ])
        let full = try #require(
            OPcacheRoom(socket: "/a.sock", report: report(keys: 130987, setting: 100000, files: 10, full: 1)))
        #expect(full.warnings.count == 1 && full.warnings[0].contains("is full"))
        #expect(OPcacheRoom(socket: "/a.sock", report: "error: no list") == nil)
    }
}
