import Foundation
import SmeltFormats

/// A Hugging Face `tokenizer.json` (tokenizers library format): model vocab and merges (either the
/// "a b" string form or the ["a", "b"] pair form), added tokens, normalizer, pre-tokenizer and
/// post-processor configuration.
public struct HFTokenizerJSON: Sendable {
    /// One entry of `added_tokens`.
    public struct AddedToken: Sendable, Equatable {
        public var id: Int
        public var content: String
        public var special: Bool
        public var normalized: Bool
    }

    /// `model.type` ("BPE", "Unigram", "WordPiece", ...).
    public var modelType: String
    /// `model.vocab` as (token, id) in file order.
    public var vocab: [(String, Int)]
    /// `model.merges` as "left right" strings (pair-form parts containing spaces keep them).
    public var merges: [String]
    public var addedTokens: [AddedToken]
    public var ignoreMerges: Bool
    public var byteFallback: Bool
    public var normalizer: JSONValue?
    public var preTokenizer: JSONValue?
    public var postProcessor: JSONValue?
    public var decoder: JSONValue?

    /// Token ids above this are refused (llama.cpp's token ids are int32; no vocabulary comes close).
    public static let maxTokenID = 1 << 24

    public init(contentsOf url: URL) throws {
        let j = try JSONValue.parse(contentsOf: url)
        try self.init(json: j, path: url.path)
    }

    public init(json j: JSONValue, path: String = "tokenizer.json") throws {
        guard let model = j["model"] else { throw SmeltError("\(path): no 'model'") }
        modelType = model["type"]?.stringValue ?? "BPE"
        vocab = []
        if let o = model["vocab"]?.objectValue {
            vocab.reserveCapacity(o.count)
            for (k, v) in o {
                guard let id = v.intValue else { continue }
                guard id >= 0, id < HFTokenizerJSON.maxTokenID else {
                    throw SmeltError("\(path): model.vocab token '\(k.prefix(40))' has id \(id) (ids are 0..<\(HFTokenizerJSON.maxTokenID))")
                }
                vocab.append((k, id))
            }
        }
        merges = []
        for m in model["merges"]?.arrayValue ?? [] {
            if let s = m.stringValue { merges.append(s) }
            else if let p = m.arrayValue, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue { merges.append(a + " " + b) }
            else { throw SmeltError("\(path): unknown merges format") }
        }
        addedTokens = try (j["added_tokens"]?.arrayValue ?? []).enumerated().compactMap { (k, a) in
            guard let id = a["id"]?.intValue, let c = a["content"]?.stringValue else { return nil }
            guard id >= 0, id < HFTokenizerJSON.maxTokenID else {
                throw SmeltError("\(path): added_tokens[\(k)] '\(c.prefix(40))' has id \(id) (ids are 0..<\(HFTokenizerJSON.maxTokenID))")
            }
            return AddedToken(id: id, content: c, special: a["special"]?.boolValue ?? false,
                              normalized: a["normalized"]?.boolValue ?? false)
        }
        ignoreMerges = model["ignore_merges"]?.boolValue ?? false
        byteFallback = model["byte_fallback"]?.boolValue ?? false
        normalizer = j["normalizer"].flatMap { $0.isNull ? nil : $0 }
        preTokenizer = j["pre_tokenizer"].flatMap { $0.isNull ? nil : $0 }
        postProcessor = j["post_processor"].flatMap { $0.isNull ? nil : $0 }
        decoder = j["decoder"].flatMap { $0.isNull ? nil : $0 }
    }

    /// The vocabulary with added tokens (transformers' `tokenizer.vocab`).
    public func fullVocab() -> [String: Int] {
        var d: [String: Int] = [:]
        for (t, id) in vocab { d[t] = id }
        for a in addedTokens { d[a.content] = a.id }
        return d
    }

    // MARK: reference encoding (for the pre-tokenizer fingerprint)

    /// tokenizer.json pre-tokenizer steps (Split regexes, "<digits>" for Digits(individual_digits))
    /// before the final ByteLevel, mapped to the llama.cpp splitter that reproduces them. The regexes
    /// are the originals quoted in llama.cpp's src/llama-vocab.cpp.
    static let hfStepsToPre: [[String]: String] = [
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "llama-bpe",
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "qwen2",
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "qwen35",
        ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"]: "gpt-2",
        ["[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "gpt-4o",
        ["[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "tekken",
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\r\n]+|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"]: "seed-coder",
        ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "seed-coder",
        ["'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"]: "bailingmoe",
        ["\\p{N}{1,3}", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "minicpm5",
        ["\\p{N}{1,3}", "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
         "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"]: "deepseek-v3",
        ["\\p{N}{1,3}", "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
         "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"]: "deepseek-v3",
    ]

    /// The llama.cpp splitter equivalent to this tokenizer.json's pre-tokenizer, if there is one.
    func equivalentPre() throws -> (pre: String, prefixSpace: Bool) {
        guard modelType == "BPE" else { throw SmeltError("model type \(modelType) is not byte-level BPE") }
        guard let p = preTokenizer else { throw SmeltError("no pre_tokenizer") }
        var items: [JSONValue] = []
        if p["type"]?.stringValue == "Sequence" { items = p["pretokenizers"]?.arrayValue ?? [] } else { items = [p] }
        guard let last = items.last, last["type"]?.stringValue == "ByteLevel" else {
            throw SmeltError("pre-tokenizer does not end with ByteLevel")
        }
        let byteLevelRegex = last["use_regex"]?.boolValue ?? true
        let prefixSpace = last["add_prefix_space"]?.boolValue ?? false
        var steps: [String] = []
        for it in items.dropLast() {
            switch it["type"]?.stringValue {
            case "Digits":
                guard it["individual_digits"]?.boolValue == true else { throw SmeltError("unsupported Digits pre-tokenizer") }
                steps.append("<digits>")
            case "Split":
                guard it["behavior"]?.stringValue == "Isolated", !(it["invert"]?.boolValue ?? false),
                      let r = it["pattern"]?["Regex"]?.stringValue else {
                    throw SmeltError("unsupported Split pre-tokenizer \(it.serialized())")
                }
                steps.append(r)
            default:
                throw SmeltError("unsupported pre-tokenizer \(it["type"]?.stringValue ?? "?")")
            }
        }
        if byteLevelRegex {
            if steps.isEmpty { return ("gpt-2", prefixSpace) }
            if steps == ["<digits>"] { return ("smollm", prefixSpace) }
        } else if let name = HFTokenizerJSON.hfStepsToPre[steps] {
            return (name, prefixSpace)
        }
        throw SmeltError("no llama.cpp splitter known for pre-tokenizer \(p.serialized().prefix(300))")
    }

    /// Encodes text the way the HF tokenizer does with `add_special_tokens=True`, for the
    /// configurations llama.cpp has an equivalent splitter for (throws otherwise).
    func referenceEncode(_ text: String) throws -> [Int32] {
        let (pre, prefixSpace) = try equivalentPre()
        var t = text
        if let n = normalizer {
            var norms: [JSONValue] = []
            if n["type"]?.stringValue == "Sequence" { norms = n["normalizers"]?.arrayValue ?? [] } else { norms = [n] }
            for x in norms {
                switch x["type"]?.stringValue {
                case "NFC": t = t.precomposedStringWithCanonicalMapping
                default: throw SmeltError("unsupported normalizer \(x["type"]?.stringValue ?? "?")")
                }
            }
        }
        if prefixSpace && !t.hasPrefix(" ") { t = " " + t }
        let full = fullVocab()
        let n = (full.values.max() ?? -1) + 1
        var tokens = [String](repeating: "", count: n)
        var types = [Int32](repeating: TokenType.unused.rawValue, count: n)
        for (s, id) in full { tokens[id] = s; types[id] = TokenType.normal.rawValue }
        for (i, s) in tokens.enumerated() where s.isEmpty { tokens[i] = "[PAD\(i)]" }
        for a in addedTokens { types[a.id] = a.special ? TokenType.control.rawValue : TokenType.userDefined.rawValue }
        var v = TokenizerVocab(model: "gpt2", pre: pre, tokens: tokens, tokenTypes: types, merges: merges.map { m in
            m  // pair-form merges with spaces inside a part are not supported by this reference path
        })
        v.addBosToken = false
        v.addEosToken = false
        let tok = try Tokenizer(vocab: v, ignoreMergesOverride: ignoreMerges)
        var ids = tok.encode(t, addSpecial: false, parseSpecial: true)
        // post-processor
        if let pp = postProcessor {
            let procs = pp["type"]?.stringValue == "Sequence" ? (pp["processors"]?.arrayValue ?? []) : [pp]
            for proc in procs {
                switch proc["type"]?.stringValue {
                case "ByteLevel": break
                case "TemplateProcessing":
                    var out: [Int32] = []
                    for item in proc["single"]?.arrayValue ?? [] {
                        if item["Sequence"] != nil { out.append(contentsOf: ids); continue }
                        guard let sid = item["SpecialToken"]?["id"]?.stringValue else { continue }
                        let specialIds = proc["special_tokens"]?[sid]?["ids"]?.arrayValue?.compactMap { $0.intValue }
                        out.append(contentsOf: (specialIds ?? [full[sid]].compactMap { $0 }).compactMap { Int32(exactly: $0) })
                    }
                    ids = out
                case "RobertaProcessing", "BertProcessing":
                    func second(_ k: String) -> Int32? {
                        guard let a = proc[k]?.arrayValue, a.count > 1, let v = a[1].intValue else { return nil }
                        return Int32(exactly: v)
                    }
                    if let c = second("cls") { ids.insert(c, at: 0) }
                    if let s = second("sep") { ids.append(s) }
                default:
                    throw SmeltError("unsupported post-processor \(proc["type"]?.stringValue ?? "?")")
                }
            }
        }
        return ids
    }
}
