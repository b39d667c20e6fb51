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
            for (k, v) in o { if let id = v.intValue { vocab.append((k, id)) } }
        }
        merges = []
        for m in model["merges"]?.arrayValue ?? [] {
            if let s = m.stringValue { merges.append(s) }
            else if let p = m.arrayValue, p.count == 2, let a = p[0].stringValue, let b = p[1].stringValue { merges.append(a + " " + b) }
            else { throw SmeltError("\(path): unknown merges format") }
        }
        addedTokens = (j["added_tokens"]?.arrayValue ?? []).compactMap { a in
            guard let id = a["id"]?.intValue, let c = a["content"]?.stringValue else { return nil }
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

    static let hfRegexToPre: [String: String] = [
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "llama-bpe",
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "qwen2",
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": "qwen35",
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+": "gpt-2",
    ]

    /// The llama.cpp splitter equivalent to this tokenizer.json's pre-tokenizer, if there is one.
    func equivalentPre() throws -> (pre: String, prefixSpace: Bool) {
        guard modelType == "BPE" else { throw SmeltError("model type \(modelType) is not byte-level BPE") }
        guard let p = preTokenizer else { throw SmeltError("no pre_tokenizer") }
        var items: [JSONValue] = []
        if p["type"]?.stringValue == "Sequence" { items = p["pretokenizers"]?.arrayValue ?? [] } else { items = [p] }
        var digitsIndividual = false
        var split: String? = nil
        var byteLevelRegex = false
        var prefixSpace = false
        var sawByteLevel = false
        for it in items {
            switch it["type"]?.stringValue {
            case "ByteLevel":
                sawByteLevel = true
                byteLevelRegex = it["use_regex"]?.boolValue ?? true
                prefixSpace = it["add_prefix_space"]?.boolValue ?? false
            case "Digits":
                guard it["individual_digits"]?.boolValue == true, split == nil else { throw SmeltError("unsupported Digits pre-tokenizer") }
                digitsIndividual = true
            case "Split":
                guard split == nil, it["behavior"]?.stringValue == "Isolated", !(it["invert"]?.boolValue ?? false),
                      let r = it["pattern"]?["Regex"]?.stringValue, let name = HFTokenizerJSON.hfRegexToPre[r] else {
                    throw SmeltError("unsupported Split pre-tokenizer \(it.serialized())")
                }
                split = name
            default:
                throw SmeltError("unsupported pre-tokenizer \(it["type"]?.stringValue ?? "?")")
            }
        }
        guard sawByteLevel else { throw SmeltError("pre-tokenizer has no ByteLevel step") }
        switch (split, byteLevelRegex, digitsIndividual) {
        case (nil, true, false): return ("gpt-2", prefixSpace)
        case (nil, true, true): return ("smollm", prefixSpace)
        case (let s?, false, false): return (s, prefixSpace)
        default: throw SmeltError("unsupported pre-tokenizer combination")
        }
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
                        out.append(contentsOf: (specialIds ?? [full[sid]].compactMap { $0 }).map { Int32($0) })
                    }
                    ids = out
                case "RobertaProcessing", "BertProcessing":
                    let cls = proc["cls"]?.arrayValue?[1].intValue, sep = proc["sep"]?.arrayValue?[1].intValue
                    if let c = cls { ids.insert(Int32(c), at: 0) }
                    if let s = sep { ids.append(Int32(s)) }
                default:
                    throw SmeltError("unsupported post-processor \(proc["type"]?.stringValue ?? "?")")
                }
            }
        }
        return ids
    }
}
