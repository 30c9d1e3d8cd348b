import DeliveryCore
import Foundation
import Testing

/// The rules the plugin applies before it asks the helper (which operations take which options,
/// the steps, the comment's length, the component-path rule, the refusal codes) live once, in
/// this library; the plugin reads them from `moodle-plugin/classes/local/helper_rules.php`,
/// generated here from the library's values and compared with the committed file.
/// `UPDATE_PLUGIN_RULES=1 swift test --filter PluginRules` rewrites it after a change.
@Suite("the plugin's rules")
struct PluginRulesTests {
    static let path = "\(projectRoot)/moodle-plugin/classes/local/helper_rules.php"

    @Test("moodle-plugin/classes/local/helper_rules.php is what the library's rules generate")
    func generatedFileIsCurrent() throws {
        let generated = PluginRules.php()
        if ProcessInfo.processInfo.environment["UPDATE_PLUGIN_RULES"] == "1" {
            try generated.write(toFile: Self.path, atomically: true, encoding: .utf8)
        }
        let committed = try String(contentsOfFile: Self.path, encoding: .utf8)
        #expect(
            committed == generated,
            "helper_rules.php differs from the library's rules: run UPDATE_PLUGIN_RULES=1 swift test --filter PluginRules"
        )
    }

    @Test("the PHP path rule takes exactly the paths ComponentPath takes")
    func phpPathRuleAgrees() throws {
        let corpus = [
            "mod", "mod/forum", "local/foo_bar", "theme/boost/scss", "a.b", "x-y", "mod/", "mod//", "v1.2/x", "CVSx",
            ".gitignore", "", "/", "/etc", "../x", "mod/../x", "mod/./x", ".", "..", "-rf", "mod/-x", "mod//forum",
            "mod/*", "mod forum", "mod/forum/.git", ".svn", "CVS", "mod/CVS", "é", "mod\\forum", "mod\nx", "mod\u{0}x",
            String(repeating: "a", count: 255), String(repeating: "a", count: 256),
            "a/" + String(repeating: "b", count: 253),
        ]
        let script = """
            require('\(Self.path)');
            foreach (json_decode($argv[1]) as $path) {
                echo \\tool_delivery\\local\\helper_rules::is_component_path($path) ? '1' : '0';
            }
            """
        let input = String(data: try JSONSerialization.data(withJSONObject: corpus), encoding: .utf8)!
        let result = try sh("php", ["-r", script, input])
        #expect(result.succeeded, "\(result.standardError)")
        let answers = Array(result.standardOutput)
        #expect(answers.count == corpus.count, "\(result.standardOutput)")
        // The form's pattern is only a hint, but it must never stop a path the helper takes (the
        // browser checks it anchored, as ^(?:PATTERN)$).
        let characters = PluginRules.characterClass(ComponentPath.partCharacters)
        let hint = try NSRegularExpression(pattern: "^(?:[\(characters)]+(/[\(characters)]+)*/*)$")
        for (path, answer) in zip(corpus, answers) {
            let swift = (try? ComponentPath(path)) != nil
            #expect((answer == "1") == swift, "'\(path)': PHP says \(answer), the library \(swift)")
            if swift {
                let range = NSRange(path.startIndex..., in: path)
                #expect(hint.firstMatch(in: path, range: range) != nil, "the form's pattern stops '\(path)'")
            }
        }
        #expect(PluginRules.php().contains("PATH_HTML_PATTERN = '[\(characters)]+(/[\(characters)]+)*/*'"))
    }

    @Test("each notice code is documented, has a sentence, and keys only of the documented kinds")
    func noticesAreDocumented() throws {
        let protocolText = try String(contentsOfFile: "\(projectRoot)/docs/protocol.md", encoding: .utf8)
        for code in NoticeCode.allCases {
            // Its row in docs/protocol.md (*Notices*) gives its keys and the catalogue's English.
            let keys = code.keys.isEmpty ? "—" : code.keys.joined(separator: ", ")
            let row = "| `\(code.rawValue)` | \(keys) | \(code.template.replacingOccurrences(of: "|", with: "\\|")) |"
            #expect(
                protocolText.contains(row), "docs/protocol.md lacks or has another row for \(code.rawValue): \(row)")
            #expect(!code.template.isEmpty)
            // Every key is named in the English sentence; a notice given all of them leaves no `?`.
            var values: [String: NoticeValue] = [:]
            for key in code.keys { values[key] = key.hasSuffix("Bytes") || key.hasSuffix("Seconds") ? 5 : "x" }
            #expect(!Notice(code, values).english.contains("{"), "\(code.rawValue)")
            let questions = { (text: String) in text.filter { $0 == "?" }.count }
            #expect(questions(Notice(code, values).english) == questions(code.template), "\(code.rawValue)")
        }
        #expect(Set(NoticeCode.allCases.map(\.rawValue)).isDisjoint(with: DeliveryError.Code.allCases.map(\.rawValue)))
    }

    @Test("each refusal code is documented as one, and no other")
    func refusalsAreDocumented() throws {
        let protocolText = try String(contentsOfFile: "\(projectRoot)/docs/protocol.md", encoding: .utf8)
        for code in DeliveryError.Code.allCases {
            #expect(protocolText.contains("`\(code.rawValue)`"), "docs/protocol.md does not name \(code.rawValue)")
        }
        let refusals = PluginRules.php().components(separatedBy: "REFUSALS = [")[1].components(separatedBy: "];")[0]
        #expect(refusals.contains("'lock_held'"))
        #expect(!refusals.contains("'io'"))
    }
}

/// Writes the plugin's rules as PHP from the library's values.
enum PluginRules {
    static func php() -> String {
        let operations = Operation.allCases.map { operation in
            "        '\(operation.rawValue)' => [\(operation.requestMembers.map { "'\($0)'" }.joined(separator: ", "))],"
        }
        let refusals = DeliveryError.Code.allCases.filter(\.isRefusal).map { "'\($0.rawValue)'" }
        let errorCodes = DeliveryError.Code.allCases.map { "'\($0.rawValue)'" }
        let notices = NoticeCode.allCases.map { code in
            let keys = code.keys.map { "'\($0)'" }.joined(separator: ", ")
            let line = "        '\(code.rawValue)' => [\(keys)],"
            // Moodle's coding style keeps lines within 132 characters.
            return line.count <= 132 ? line : "        '\(code.rawValue)' => [\n            \(keys),\n        ],"
        }
        let characters = characterClass(ComponentPath.partCharacters)
        let refused = ComponentPath.refusedParts.map(pcreEscaped).joined(separator: "|")
        let part = "(?!-)(?!(?:\(refused))$)[\(characters)]+"
        return """
            <?php
            // This file is part of Moodle - https://moodle.org/
            //
            // Moodle is free software: you can redistribute it and/or modify
            // it under the terms of the GNU General Public License as published by
            // the Free Software Foundation, either version 3 of the License, or
            // (at your option) any later version.
            //
            // Moodle is distributed in the hope that it will be useful,
            // but WITHOUT ANY WARRANTY; without even the implied warranty of
            // MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
            // GNU General Public License for more details.
            //
            // You should have received a copy of the GNU General Public License
            // along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

            /**
             * The helper's rules, as the plugin applies them before it asks.
             *
             * Generated from the helper's library (DeliveryCore) by
             * Tests/DeliveryCoreTests/PluginRulesTests.swift: do not edit by hand; after a change of the
             * rules there, run `UPDATE_PLUGIN_RULES=1 swift test --filter PluginRules`.
             *
             * @package    tool_delivery
             * @copyright  2026 moodle-delivery contributors
             * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
             */

            namespace tool_delivery\\local;

            /**
             * The helper's rules, as the plugin applies them before it asks (generated, see above).
             *
             * @package    tool_delivery
             * @copyright  2026 moodle-delivery contributors
             * @license    https://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
             */
            final class helper_rules {
                /** @var array Operation => the options it takes (Operation.requestMembers). */
                public const OPERATIONS = [
            \(operations.joined(separator: "\n"))
                ];

                /** @var string[] The four steps of a delivery, in order (Operation.steps). */
                public const STEPS = [\(Operation.steps.map { "'\($0.rawValue)'" }.joined(separator: ", "))];

                /** @var int The longest comment the helper takes, in characters (OperationRequest.commentLimit). */
                public const COMMENT_MAX_CHARACTERS = \(OperationRequest.commentLimit);

                /**
                 * @var string[] The error codes of a refusal: the operation stopped before it changed anything
                 *      (DeliveryError.Code.isRefusal; docs/protocol.md, *Errors*).
                 */
                public const REFUSALS = [
            \(refusals.map { "        \($0)," }.joined(separator: "\n"))
                ];

                /** @var string[] Every error code of the helper (DeliveryError.Code; docs/protocol.md, *Errors*). */
                public const ERROR_CODES = [
            \(errorCodes.map { "        \($0)," }.joined(separator: "\n"))
                ];

                /**
                 * @var array Notice code => the keys of the values its sentence names (NoticeCode; the
                 *      plugin's string `notice:<code>` names the same keys; docs/protocol.md, *Notices*).
                 */
                public const NOTICES = [
            \(notices.joined(separator: "\n"))
                ];

                /** @var int The longest component path, in bytes (ComponentPath.maxBytes). */
                public const PATH_MAX_BYTES = \(ComponentPath.maxBytes);

                /** @var string One part of a component path, as a PCRE (ComponentPath). */
                public const PATH_PART_REGEX = '/^\(part)$/D';

                /** @var string The pattern of a path field in a form: a hint, the checks above decide. */
                public const PATH_HTML_PATTERN = '[\(characters)]+(/[\(characters)]+)*/*';

                /**
                 * Whether a text is a component path the helper takes (`mod`, `local/foo`): the same rule
                 * as ComponentPath, which the helper applies again.
                 *
                 * @param string $path The text, as typed (trailing slashes are dropped).
                 * @return bool True when the helper would take it.
                 */
                public static function is_component_path(string $path): bool {
                    $path = strlen($path) > 1 ? rtrim($path, '/') : $path;
                    if ($path === '' || strlen($path) > self::PATH_MAX_BYTES) {
                        return false;
                    }
                    foreach (explode('/', $path) as $part) {
                        if (!preg_match(self::PATH_PART_REGEX, $part)) {
                            return false;
                        }
                    }
                    return true;
                }
            }

            """
    }

    /// A PCRE character class listing `characters`, runs of three or more written as ranges.
    static func characterClass(_ characters: String) -> String {
        let scalars = Set(characters.unicodeScalars.map(\.value)).sorted()
        var result = ""
        var index = 0
        while index < scalars.count {
            var end = index
            while end + 1 < scalars.count && scalars[end + 1] == scalars[end] + 1 { end += 1 }
            let first = Unicode.Scalar(scalars[index])!
            let last = Unicode.Scalar(scalars[end])!
            if end - index >= 2 {
                result += "\(classEscaped(first))-\(classEscaped(last))"
            } else {
                for value in scalars[index...end] { result += classEscaped(Unicode.Scalar(value)!) }
            }
            index = end + 1
        }
        return result
    }

    private static func classEscaped(_ scalar: Unicode.Scalar) -> String {
        "\\-]^[/".unicodeScalars.contains(scalar) ? "\\\(scalar)" : "\(scalar)"
    }

    private static func pcreEscaped(_ text: String) -> String {
        text.unicodeScalars.map { ".\\+*?[^]$(){}=!<>|:-#/".unicodeScalars.contains($0) ? "\\\($0)" : "\($0)" }
            .joined()
    }
}
