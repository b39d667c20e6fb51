import Foundation
import SmeltFormats
import Yams

/// YAML from strangers (model cards, recipes) read within limits: the text size, the nesting
/// depth (Yams composes recursively: a deep document would overflow the stack) and the size of
/// the document once aliases are expanded (an "alias bomb" of a few lines expands to billions
/// of nodes). Errors name the source and, where known, the line.
public enum SafeYAML {
    /// Largest text accepted (bytes).
    public static let maxBytes = 4 << 20
    /// Deepest nesting of collections accepted.
    public static let maxDepth = 128
    /// Most nodes once aliases are expanded.
    public static let maxNodes = 1_000_000

    /// Composes `text` into a node tree, or throws `source: …` when a limit is passed
    /// (YAML syntax errors are Yams' own, for the caller to report).
    public static func compose(_ text: String, source: String) throws -> Node? {
        try precheck(text, source: source)
        guard let root = try Yams.compose(yaml: text) else { return nil }
        var budget = maxNodes
        guard count(root, budget: &budget, depth: 0) else {
            throw SmeltError("\(source): YAML expands to more than \(maxNodes) nodes or nests deeper than \(maxDepth) (alias expansion is limited)")
        }
        return root
    }

    /// `compose`, with Yams' syntax errors turned into one `source:line: invalid YAML: …` line
    /// (recipes and sweep files).
    public static func composeReportingLine(_ text: String, source: String) throws -> Node? {
        do { return try compose(text, source: source) } catch let e as YamlError {
            var line = 1
            switch e {
            case .scanner(_, _, let m, _), .parser(_, _, let m, _), .composer(_, _, let m, _): line = m.line
            default: break
            }
            throw SmeltError("\(source):\(line): invalid YAML: \(String(describing: e).split(separator: "\n").first ?? "")")
        }
    }

    /// `Yams.load` after the same checks: plain Swift values (`[String: Any]`, `[Any]`, scalars).
    public static func load(_ text: String, source: String) throws -> Any? {
        guard try compose(text, source: source) != nil else { return nil }
        return try Yams.load(yaml: text)
    }

    /// Text-level limits checked before Yams sees the text: size, and an upper bound on the
    /// nesting (flow brackets, and block indentation plus `- ` entries on a line).
    static func precheck(_ text: String, source: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.count <= maxBytes else { throw SmeltError("\(source): YAML text of \(bytes.count) bytes (at most \(maxBytes))") }
        // a bracket opens a flow collection where a value can start: after the line's start,
        // `:`, `,`, `-`, `?` or another bracket (inside a plain or quoted scalar it is text)
        var flow = 0, line = 1, indent = 0, dashes = 0, lineStart = true
        var previous: UInt8 = 0x0A
        for c in bytes {
            if c == 0x0A {
                line += 1; indent = 0; dashes = 0; lineStart = true; previous = c
                continue
            }
            if lineStart {
                if c == 0x20 { indent += 1; continue }
                if c == UInt8(ascii: "-") || c == UInt8(ascii: "?") { dashes += 1; previous = c; continue }
                lineStart = false
            }
            if c == 0x20 || c == 0x09 { continue }
            let valueStart = previous == 0x0A || previous == UInt8(ascii: ":") || previous == UInt8(ascii: ",")
                || previous == UInt8(ascii: "-") || previous == UInt8(ascii: "?")
                || previous == UInt8(ascii: "[") || previous == UInt8(ascii: "{")
            if valueStart && (c == UInt8(ascii: "[") || c == UInt8(ascii: "{")) { flow += 1 }
            if flow > 0 && (c == UInt8(ascii: "]") || c == UInt8(ascii: "}")) { flow -= 1 }
            previous = c
            if flow + dashes > maxDepth || indent > 8 * maxDepth {
                throw SmeltError("\(source):\(line): YAML nested deeper than \(maxDepth) levels")
            }
        }
    }

    /// Counts nodes (aliases expanded) until the budget runs out; false when it does.
    static func count(_ n: Node, budget: inout Int, depth: Int) -> Bool {
        budget -= 1
        guard budget >= 0, depth <= maxDepth else { return false }
        switch n {
        case .scalar: return true
        case .sequence(let s):
            for x in s where !count(x, budget: &budget, depth: depth + 1) { return false }
            return true
        case .mapping(let m):
            for (k, v) in m {
                guard count(k, budget: &budget, depth: depth + 1), count(v, budget: &budget, depth: depth + 1) else { return false }
            }
            return true
        }
    }
}
