import Foundation
import SmeltFormats
import SmeltModel
import SmeltQuantize
import Yams

/// A sweep file: the base model, the evaluation text and context, the reference, the
/// importance-matrix variants and the quants to make (cross product and/or explicit list).
/// Paths are relative to the sweep file's folder. Every error names `file:line`.
public struct SweepFile: Sendable {
    /// How a quant is chosen: a llama-quantize preset, a recipe (built-in name or YAML file), or a budget.
    public enum Variant: Sendable, Equatable, Hashable {
        case preset(String)
        case recipe(String)
        case targetBPW(Double)

        /// A short name for ids and file names (`Q4_K_M`, `Q4_K_XL`, `bpw4.5`).
        public var label: String {
            switch self {
            case .preset(let p): return p
            case .recipe(let r): return URL(fileURLWithPath: r).deletingPathExtension().lastPathComponent
            case .targetBPW(let b): return "bpw" + String(format: "%g", b)
            }
        }
    }

    /// An importance matrix: a file, or computed by `smelt imatrix` on a calibration text.
    public struct Imatrix: Sendable, Equatable {
        public var name: String
        public var file: String?
        public var text: String?
        public var chunks: Int?
    }

    /// One quant to make: a variant with an imatrix name (nil: none).
    public struct Quant: Sendable, Equatable, Hashable {
        public var variant: Variant
        public var imatrix: String?
    }

    public var source: String
    public var folder: URL
    public var name: String
    public var model: String
    public var text: String
    public var context: Int
    public var chunks: Int?
    /// The model whose logits are the reference (default: `model`).
    public var reference: String
    /// An existing KL-divergence base file (then no base job runs).
    public var kldBase: String?
    /// Where outputs go (default: the sweep file's name, next to it).
    public var output: String
    public var imatrices: [Imatrix]
    public var quants: [Quant]

    /// Resolves a path of the file against its folder.
    public func path(_ p: String) -> String {
        p.hasPrefix("/") ? p : folder.appendingPathComponent(p).standardizedFileURL.path
    }

    public static func load(_ url: URL) throws -> SweepFile {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SmeltError("\(url.path): cannot read the sweep file (\(error.localizedDescription))")
        }
        return try SweepFile(yaml: text, source: url.path, folder: url.deletingLastPathComponent())
    }

    public init(yaml: String, source: String, folder: URL) throws {
        self.source = source
        self.folder = folder
        func fail(_ line: Int, _ m: String) -> SmeltError { SmeltError("\(source):\(line): \(m)") }
        guard yaml.utf8.count <= 1 << 20 else { throw fail(1, "sweep file larger than 1 MiB") }
        let root: Node?
        // SafeYAML: size, depth and alias-expansion limits (docs/RELIABILITY.md).
        root = try SafeYAML.composeReportingLine(yaml, source: source)
        guard let root, case .mapping(let top) = root else { throw fail(1, "a sweep file is a mapping (model:, text:, variants: …)") }
        func line(_ n: Node) -> Int { n.mark?.line ?? 1 }
        func scalar(_ n: Node, _ what: String) throws -> String {
            guard case .scalar(let s) = n else { throw fail(line(n), "\(what) must be a single value") }
            return s.string
        }
        func int(_ n: Node, _ what: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let v = Int(try scalar(n, what)), range.contains(v) else {
                throw fail(line(n), "\(what) must be an integer in \(range.lowerBound)…\(range.upperBound)")
            }
            return v
        }
        func list(_ n: Node) -> [Node] {
            if case .sequence(let s) = n { return Array(s) }
            return [n]
        }
        var name: String?, model: String?, evalText: String?, context = 512, chunks: Int?, reference: String?
        var kldBase: String?, output: String?
        var imatrices: [Imatrix] = []
        var presets: [(String, Int)] = [], recipes: [(String, Int)] = [], budgets: [(Double, Int)] = []
        var crossImatrix: [(String?, Int)] = [(nil, 1)]
        var explicit: [(Quant, Int)] = []
        var seen = Set<String>()
        for (k, v) in top {
            let key = try scalar(k, "a key")
            guard seen.insert(key).inserted else { throw fail(line(k), "duplicate key '\(key)'") }
            switch key {
            case "name": name = try scalar(v, "name")
            case "model", "base": model = try scalar(v, key)
            case "text": evalText = try scalar(v, "text")
            case "context": context = try int(v, "context", 16...1_048_576)
            case "chunks": chunks = try int(v, "chunks", 1...1_000_000)
            case "reference": reference = try scalar(v, "reference")
            case "kld_base": kldBase = try scalar(v, "kld_base")
            case "output": output = try scalar(v, "output")
            case "imatrix":
                guard case .mapping(let m) = v else { throw fail(line(v), "imatrix: maps names to {file: F} or {text: T, chunks: N}") }
                for (ik, iv) in m {
                    let iname = try scalar(ik, "an imatrix name")
                    guard iname != "none", iname.range(of: #"^[A-Za-z0-9_.-]+$"#, options: .regularExpression) != nil else {
                        throw fail(line(ik), "imatrix name '\(iname)': letters, digits, '_', '.', '-' only, and not 'none'")
                    }
                    guard case .mapping(let fields) = iv else { throw fail(line(iv), "imatrix \(iname): {file: F} or {text: T, chunks: N}") }
                    var im = Imatrix(name: iname)
                    for (fk, fv) in fields {
                        switch try scalar(fk, "a key") {
                        case "file": im.file = try scalar(fv, "file")
                        case "text": im.text = try scalar(fv, "text")
                        case "chunks": im.chunks = try int(fv, "chunks", 1...1_000_000)
                        case let other: throw fail(line(fk), "unknown key '\(other)' in imatrix \(iname) (known: file, text, chunks)")
                        }
                    }
                    guard (im.file == nil) != (im.text == nil) else { throw fail(line(iv), "imatrix \(iname): give file or text (and not both)") }
                    imatrices.append(im)
                }
            case "variants":
                guard case .mapping(let m) = v else { throw fail(line(v), "variants: a mapping (presets:, recipes:, target_bpw:, imatrix:)") }
                for (vk, vv) in m {
                    switch try scalar(vk, "a key") {
                    case "presets": presets = try list(vv).map { (try scalar($0, "a preset"), line($0)) }
                    case "recipes": recipes = try list(vv).map { (try scalar($0, "a recipe"), line($0)) }
                    case "target_bpw":
                        budgets = try list(vv).map { n in
                            guard let b = Double(try scalar(n, "target_bpw")), b > 0.5, b <= 32 else {
                                throw fail(line(n), "target_bpw must be a number of bits per weight in (0.5, 32]")
                            }
                            return (b, line(n))
                        }
                    case "imatrix":
                        crossImatrix = try list(vv).map { n in let s = try scalar(n, "an imatrix name"); return (s == "none" ? nil : s, line(n)) }
                    case let other: throw fail(line(vk), "unknown key '\(other)' in variants (known: presets, recipes, target_bpw, imatrix)")
                    }
                }
            case "jobs":
                guard case .sequence(let seq) = v else { throw fail(line(v), "jobs: a list of {preset|recipe|target_bpw, imatrix}") }
                for j in seq {
                    guard case .mapping(let fields) = j else { throw fail(line(j), "a job is a mapping {preset: Q4_K_M, imatrix: NAME}") }
                    var variant: Variant?, im: String?
                    for (fk, fv) in fields {
                        let fkey = try scalar(fk, "a key")
                        switch fkey {
                        case "preset": variant = .preset(try scalar(fv, "preset"))
                        case "recipe": variant = .recipe(try scalar(fv, "recipe"))
                        case "target_bpw":
                            guard let b = Double(try scalar(fv, "target_bpw")), b > 0.5, b <= 32 else {
                                throw fail(line(fv), "target_bpw must be a number of bits per weight in (0.5, 32]")
                            }
                            variant = .targetBPW(b)
                        case "imatrix": let s = try scalar(fv, "imatrix"); im = s == "none" ? nil : s
                        default: throw fail(line(fk), "unknown key '\(fkey)' in a job (known: preset, recipe, target_bpw, imatrix)")
                        }
                    }
                    guard let variant else { throw fail(line(j), "a job needs preset:, recipe: or target_bpw:") }
                    explicit.append((Quant(variant: variant, imatrix: im), line(j)))
                }
            default:
                throw fail(line(k), "unknown key '\(key)' (known: name, model, text, context, chunks, reference, kld_base, output, imatrix, variants, jobs)")
            }
        }
        guard let model else { throw fail(1, "missing model: (the base model, a GGUF file or an HF folder)") }
        guard let evalText else { throw fail(1, "missing text: (the evaluation text)") }
        self.name = name ?? URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        self.model = model
        self.text = evalText
        self.context = context
        self.chunks = chunks
        self.reference = reference ?? model
        self.kldBase = kldBase
        self.output = output ?? self.name
        self.imatrices = imatrices
        let names = Set(imatrices.map(\.name))
        var quants: [(Quant, Int)] = []
        var cross: [(Variant, Int)] = presets.map { (.preset($0.0), $0.1) } + recipes.map { (.recipe($0.0), $0.1) }
        cross += budgets.map { (.targetBPW($0.0), $0.1) }
        for (v, l) in cross { for (im, _) in crossImatrix { quants.append((Quant(variant: v, imatrix: im), l)) } }
        quants += explicit
        var unique: [Quant] = []
        var have = Set<Quant>()
        for (q, l) in quants {
            if let im = q.imatrix, !names.contains(im) {
                throw fail(l, "unknown imatrix '\(im)' (defined: \(names.sorted().joined(separator: ", ")); or none)")
            }
            switch q.variant {
            case .preset(let p):
                guard LlamaPreset(parsing: p) != nil else {
                    if BuiltinRecipes.text(named: p) != nil { throw fail(l, "'\(p)' is a recipe, not a llama-quantize preset: list it under recipes") }
                    throw fail(l, "unknown preset '\(p)' (\(LlamaPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
            case .recipe(let r):
                if BuiltinRecipes.text(named: r) == nil && !FileManager.default.fileExists(atPath: folder.appendingPathComponent(r).path)
                    && !FileManager.default.fileExists(atPath: r) {
                    throw fail(l, "unknown recipe '\(r)' (a built-in name such as Q4_K_XL, or a YAML file)")
                }
            case .targetBPW: break
            }
            if have.insert(q).inserted { unique.append(q) }
        }
        guard !unique.isEmpty else { throw fail(1, "no quants to make: give variants: (presets, recipes, target_bpw) or jobs:") }
        self.quants = unique
    }
}
