import Foundation
import SmeltFormats

/// A value in a recipe condition: integer, boolean or string.
public enum RecipeValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int), bool(Bool), string(String)
    public var description: String {
        switch self {
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return "\"\(s)\""
        }
    }
}

/// A parsed `when:` condition (C-like: `i < n/8 && n_gqa >= 4`, `use_more_bits(i, n)`,
/// `arch != "falcon"`, `ncols % 256 != 0`, `has_imatrix`). Integer division truncates
/// toward zero like C's.
public indirect enum RecipeExpr: Equatable, Sendable {
    case literal(RecipeValue)
    case variable(String)
    case unary(String, RecipeExpr)
    case binary(String, RecipeExpr, RecipeExpr)
    case call(String, [RecipeExpr])
    case conditional(RecipeExpr, RecipeExpr, RecipeExpr)

    /// The variables a condition may use, with their type (documented in docs/RECIPES.md).
    public static let variables: [String: String] = [
        "i": "int", "li": "int", "n": "int", "layer": "int", "n_layer": "int",
        "ncols": "int", "nrows": "int", "ne2": "int", "n_expert": "int", "n_gqa": "int",
        "n_head": "int", "n_head_kv": "int",
        "has_imatrix": "bool", "tied_embeddings": "bool", "is_70b": "bool", "is_expert": "bool",
        "arch": "string", "role": "string", "name": "string",
    ]
    /// Functions: name → argument count.
    public static let functions: [String: Int] = ["use_more_bits": 2, "min": 2, "max": 2]

    /// Longest condition text and deepest nesting accepted (docs/RELIABILITY.md).
    public static let maxLength = 4096
    public static let maxDepth = 64

    /// Parses `text`; errors name the column.
    public static func parse(_ text: String) throws -> RecipeExpr {
        guard text.count <= maxLength else { throw SmeltError("condition longer than \(maxLength) characters") }
        var p = ExprParser(text)
        let e = try p.parseTernary()
        p.skipSpace()
        guard p.atEnd else { throw SmeltError("unexpected '\(p.rest)' in condition '\(text)'") }
        try e.check()
        return e
    }

    /// Static check: known variables and functions, argument counts.
    func check() throws {
        switch self {
        case .literal: break
        case .variable(let v):
            guard RecipeExpr.variables[v] != nil else {
                throw SmeltError("unknown variable '\(v)' (known: \(RecipeExpr.variables.keys.sorted().joined(separator: ", ")))")
            }
        case .unary(_, let a): try a.check()
        case .binary(_, let a, let b): try a.check(); try b.check()
        case .conditional(let c, let a, let b): try c.check(); try a.check(); try b.check()
        case .call(let f, let args):
            guard let n = RecipeExpr.functions[f] else { throw SmeltError("unknown function '\(f)'") }
            guard n == args.count else { throw SmeltError("\(f) takes \(n) arguments, got \(args.count)") }
            for a in args { try a.check() }
        }
    }

    /// True when the expression uses no variable (it has the same value for every tensor).
    var isConstant: Bool {
        switch self {
        case .literal: return true
        case .variable: return false
        case .unary(_, let a): return a.isConstant
        case .binary(_, let a, let b): return a.isConstant && b.isConstant
        case .conditional(let c, let a, let b): return c.isConstant && a.isConstant && b.isConstant
        case .call(_, let args): return args.allSatisfy(\.isConstant)
        }
    }

    /// Evaluates with `env` giving the variables.
    public func evaluate(_ env: (String) -> RecipeValue) throws -> RecipeValue {
        switch self {
        case .literal(let v): return v
        case .variable(let v): return env(v)
        case .unary(let op, let a):
            let x = try a.evaluate(env)
            switch (op, x) {
            case ("!", .bool(let b)): return .bool(!b)
            case ("-", .int(let i)):
                guard i != Int.min else { throw SmeltError("integer overflow in -(\(i))") }
                return .int(-i)
            default: throw SmeltError("operator \(op) cannot apply to \(x)")
            }
        case .conditional(let c, let a, let b):
            return try c.evaluate(env).asBool() ? a.evaluate(env) : b.evaluate(env)
        case .call(let f, let args):
            let v = try args.map { try $0.evaluate(env).asInt() }
            switch f {
            case "use_more_bits":
                guard abs(v[0]) < 1 << 40, abs(v[1]) < 1 << 40 else { throw SmeltError("use_more_bits(\(v[0]), \(v[1])): arguments too large") }
                return .bool(LlamaPresets.useMoreBits(v[0], v[1]))
            case "min": return .int(Swift.min(v[0], v[1]))
            default: return .int(Swift.max(v[0], v[1]))
            }
        case .binary(let op, let a, let b):
            if op == "&&" { return .bool(try a.evaluate(env).asBool() && b.evaluate(env).asBool()) }
            if op == "||" { return .bool(try a.evaluate(env).asBool() || b.evaluate(env).asBool()) }
            let x = try a.evaluate(env), y = try b.evaluate(env)
            switch op {
            case "==": return .bool(x == y)
            case "!=": return .bool(x != y)
            default: break
            }
            let l = try x.asInt(), r = try y.asInt()
            switch op {
            case "+", "-", "*", "/", "%":
                if (op == "/" || op == "%") && r == 0 { throw SmeltError("division by zero") }
                let (v, o): (Int, Bool)
                switch op {
                case "+": (v, o) = l.addingReportingOverflow(r)
                case "-": (v, o) = l.subtractingReportingOverflow(r)
                case "*": (v, o) = l.multipliedReportingOverflow(by: r)
                case "/": (v, o) = l.dividedReportingOverflow(by: r)
                default: (v, o) = l.remainderReportingOverflow(dividingBy: r)
                }
                guard !o else { throw SmeltError("integer overflow in \(l) \(op) \(r)") }
                return .int(v)
            case "<": return .bool(l < r)
            case "<=": return .bool(l <= r)
            case ">": return .bool(l > r)
            case ">=": return .bool(l >= r)
            default: throw SmeltError("unknown operator \(op)")
            }
        }
    }
}

extension RecipeValue {
    func asBool() throws -> Bool {
        if case .bool(let b) = self { return b }
        throw SmeltError("expected a boolean, got \(self)")
    }
    func asInt() throws -> Int {
        if case .int(let i) = self { return i }
        throw SmeltError("expected an integer, got \(self)")
    }
}

/// Recursive-descent parser for `RecipeExpr` (C precedence).
struct ExprParser {
    let s: [Character]
    var p = 0
    /// Current nesting (parentheses, unary operators, `?:`), limited to `RecipeExpr.maxDepth`.
    var depth = 0
    init(_ text: String) { s = Array(text) }

    mutating func enter() throws {
        depth += 1
        guard depth <= RecipeExpr.maxDepth else { throw SmeltError("condition nested more than \(RecipeExpr.maxDepth) levels deep") }
    }
    var atEnd: Bool { p >= s.count }
    var rest: String { String(s[min(p, s.count)...]) }

    mutating func skipSpace() { while p < s.count, s[p].isWhitespace { p += 1 } }
    mutating func eat(_ tok: String) -> Bool {
        skipSpace()
        let t = Array(tok)
        guard p + t.count <= s.count, Array(s[p..<p + t.count]) == t else { return false }
        // `<`, `>` and `!` must not eat the first half of `<=`, `>=`, `!=`.
        if t.count == 1, "<>!".contains(t[0]), p + 1 < s.count, s[p + 1] == "=" { return false }
        p += t.count
        return true
    }

    mutating func parseTernary() throws -> RecipeExpr {
        try enter()
        defer { depth -= 1 }
        let c = try parseBinary(0)
        if eat("?") {
            let a = try parseTernary()
            guard eat(":") else { throw SmeltError("expected ':' in condition") }
            let b = try parseTernary()
            return .conditional(c, a, b)
        }
        return c
    }

    static let levels: [[String]] = [["||"], ["&&"], ["==", "!="], ["<=", ">=", "<", ">"], ["+", "-"], ["*", "/", "%"]]

    mutating func parseBinary(_ level: Int) throws -> RecipeExpr {
        if level == Self.levels.count { return try parseUnary() }
        var lhs = try parseBinary(level + 1)
        outer: while true {
            for op in Self.levels[level] where eat(op) {
                let rhs = try parseBinary(level + 1)
                lhs = .binary(op, lhs, rhs)
                continue outer
            }
            return lhs
        }
    }

    mutating func parseUnary() throws -> RecipeExpr {
        try enter()
        defer { depth -= 1 }
        if eat("!") { return .unary("!", try parseUnary()) }
        if eat("-") { return .unary("-", try parseUnary()) }
        return try parsePrimary()
    }

    mutating func parsePrimary() throws -> RecipeExpr {
        skipSpace()
        guard p < s.count else { throw SmeltError("condition ends too early") }
        let c = s[p]
        if c == "(" {
            p += 1
            let e = try parseTernary()
            guard eat(")") else { throw SmeltError("missing ')' in condition") }
            return e
        }
        if c == "\"" || c == "'" {
            p += 1
            var v = ""
            while p < s.count, s[p] != c { v.append(s[p]); p += 1 }
            guard p < s.count else { throw SmeltError("unterminated string in condition") }
            p += 1
            return .literal(.string(v))
        }
        if c.isNumber {
            var v = ""
            while p < s.count, s[p].isNumber { v.append(s[p]); p += 1 }
            guard let i = Int(v) else { throw SmeltError("bad number \(v)") }
            return .literal(.int(i))
        }
        if c.isLetter || c == "_" {
            var v = ""
            while p < s.count, s[p].isLetter || s[p].isNumber || s[p] == "_" { v.append(s[p]); p += 1 }
            if v == "true" { return .literal(.bool(true)) }
            if v == "false" { return .literal(.bool(false)) }
            if eat("(") {
                var args: [RecipeExpr] = []
                if !eat(")") {
                    repeat { args.append(try parseTernary()) } while eat(",")
                    guard eat(")") else { throw SmeltError("missing ')' after arguments of \(v)") }
                }
                return .call(v, args)
            }
            return .variable(v)
        }
        throw SmeltError("unexpected '\(c)' in condition")
    }
}
