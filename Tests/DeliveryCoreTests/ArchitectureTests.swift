import Foundation
import Testing

/// What ARCHITECTURE.md says each part must never import, checked on the sources; and no Swift
/// file over 500 lines unless its header says why.
@Suite("the architecture")
struct ArchitectureTests {
    /// Target => modules it must never import.
    static let forbidden: [String: Set<String>] = [
        "DeliveryCore": ["DeliveryServer", "CFastCGI", "ArgumentParser"],
        "deliveryctl": ["DeliveryServer", "CFastCGI"],
        "DeliveryServer": ["ArgumentParser"],
        "deliveryd": ["DeliveryCore", "CFastCGI"],
        "delivery-copy": ["DeliveryServer", "CFastCGI", "ArgumentParser"],
    ]

    static func swiftFiles(_ target: String) throws -> [String] {
        let folder = "\(projectRoot)/Sources/\(target)"
        return try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".swift") }.sorted()
            .map { "\(folder)/\($0)" }
    }

    @Test("no part imports what ARCHITECTURE.md says it must never import")
    func imports() throws {
        var checked = 0
        for (target, modules) in Self.forbidden {
            for file in try Self.swiftFiles(target) {
                checked += 1
                for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
                    let words = line.split(separator: " ").map(String.init)
                    guard let index = words.firstIndex(of: "import"), index + 1 < words.count else { continue }
                    guard words[..<index].allSatisfy({ $0.hasPrefix("@") }) else { continue }
                    #expect(!modules.contains(words[index + 1]), "\(file) imports \(words[index + 1])")
                }
            }
        }
        #expect(checked > 40)
    }

    @Test("no Swift file is over 500 lines unless its header says why")
    func fileSizes() throws {
        let enumerator = FileManager.default.enumerator(atPath: "\(projectRoot)/Sources")
        var checked = 0
        while let relative = enumerator?.nextObject() as? String {
            guard relative.hasSuffix(".swift") else { continue }
            checked += 1
            let text = try String(contentsOfFile: "\(projectRoot)/Sources/\(relative)", encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).count
            let header = text.split(separator: "\n").prefix(20).joined(separator: "\n")
            #expect(lines <= 500 || header.contains("over 500 lines because"), "Sources/\(relative): \(lines) lines")
        }
        #expect(checked > 50)
    }
}
