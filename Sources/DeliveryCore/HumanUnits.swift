#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Bytes as lowercase hexadecimal digits, two per byte (ids, tokens, digests).
public func hexString<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}

/// A number with one decimal.
func format1(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(abs(tenths % 10))"
}

/// A size for people: `812 KB`, `39.2 MB`, `1.4 GB`.
func formatBytes(_ bytes: Int64) -> String {
    let value = Double(bytes)
    if value < 1_000_000 { return "\(Int((value / 1000).rounded())) KB" }
    if value < 1_000_000_000 { return "\(format1(value / 1_000_000)) MB" }
    return "\(format1(value / 1_000_000_000)) GB"
}

/// A duration for people: `40 s`, `12 min`, `2 h 5 min`, `3 days 4 h`.
func formatDuration(_ seconds: Double) -> String {
    let total = Int(seconds.rounded())
    if total < 60 { return "\(total) s" }
    if total < 3600 { return "\(total / 60) min" }
    if total < 86400 { return "\(total / 3600) h \((total % 3600) / 60) min" }
    return "\(total / 86400) day\(total / 86400 == 1 ? "" : "s") \((total % 86400) / 3600) h"
}

/// A moment for people: `2026-12-03 07:26:55 UTC (2 h 5 min ago)`.
func formatMoment(_ date: Date, now: Date = Date()) -> String {
    let stamp = date.formatted(.iso8601).replacingOccurrences(of: "T", with: " ")
        .replacingOccurrences(of: "Z", with: " UTC")
    let age = now.timeIntervalSince(date)
    return age >= 0 ? "\(stamp) (\(formatDuration(age)) ago)" : stamp
}
