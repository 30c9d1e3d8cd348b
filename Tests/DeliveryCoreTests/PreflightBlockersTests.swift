import Foundation
import Testing

@testable import DeliveryCore

@Suite("Preflight: what blocks, said as codes the clients word")
struct PreflightBlockersTests {
    @Test("each rule gives its blocker, in order; warnings, local changes and forward versions block nothing")
    func eachRule() throws {
        var report = PreflightReport()
        report.versionChanges = [
            VersionChange(component: "local/foo", before: nil, after: "2026112500", backwards: false)
        ]
        report.localModifications = [" M config-dist.php"]
        report.untrackedFiles = ["notes.txt"]
        report.warnings = ["something to read"]
        report.inconsistentComponents = [
            ComponentProblem(component: "local/bar", reason: "db/ changed", blocking: false)
        ]
        #expect(report.blockers.isEmpty && !report.blocking)

        report.lintErrors = [LintError(file: "a.php", line: 3, message: "Parse error")]
        report.conflictMarkers = ["a.php": 2, "b.php": 1]
        report.versionChanges.append(
            VersionChange(component: "mod/forum", before: "2024100700", after: "2024100600", backwards: true))
        report.missingFiles = ["x.php"]
        report.inconsistentComponents.append(
            ComponentProblem(component: "local/foo", reason: "needs a newer core", blocking: true))
        report.phpVersion = PHPVersionCheck(current: "8.0.30", required: "8.1.0", satisfied: false)
        report.snapshotSpace = SnapshotSpace(
            directory: "/var/lib/x", availableBytes: 1000, databaseBytes: 2000, enough: false)
        #expect(report.blocking)
        #expect(
            report.blockers.map(\.code) == [
                "lint", "conflicts", "backwards", "missing", "inconsistent", "php", "space",
            ])
        #expect(report.blockers[1].count == 2)
        #expect(report.blockers[2].component == "mod/forum" && report.blockers[2].after == "2024100600")
        #expect(report.blockers[4].detail == "needs a newer core")
        #expect(report.blockers[6].availableBytes == 1000 && report.blockers[6].databaseBytes == 2000)
    }

    @Test("the wire form holds the findings, blocking and the blockers")
    func wire() throws {
        var report = PreflightReport()
        report.missingFiles = ["x.php"]
        let json = try #require(
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(report.withVerdict)) as? [String: Any])
        #expect(json["missingFiles"] as? [String] == ["x.php"])
        #expect(json["blocking"] as? Bool == true)
        let blockers = try #require(json["blockers"] as? [[String: Any]])
        #expect(blockers.count == 1 && blockers[0]["code"] as? String == "missing" && blockers[0]["count"] as? Int == 1)
    }
}
