import Foundation
import SmeltFormats

/// The tokenizer half of `smelt export` (GGUF → Hugging Face folder): writes the HF tokenizer files
/// for a GGUF file's `tokenizer.*` metadata so that `HFVocabConverter` (llama.cpp's converter)
/// turns the folder back into the same metadata.
///
/// - `gpt2` (byte-level BPE): `tokenizer.json` (BPE vocab + merges, added tokens, a pre-tokenizer
///   equivalent to the GGUF `pre`, BOS/EOS template, ByteLevel decoder).
/// - `llama` (SentencePiece): `tokenizer.model` (ModelProto written by `SentencePieceWriter`) and a
///   `tokenizer.json` in the shape transformers writes for Llama (byte-fallback BPE, merges derived
///   from the pieces' scores).
/// - both: `tokenizer_config.json` and `special_tokens_map.json`; `vocab_size` and special token
///   ids the converter can only read from `config.json` are added to an existing `config.json`
///   (see `configEntries(metadata:)`).
public enum HFTokenizerExport {
    /// What `export` wrote and what a re-import will need.
    public struct Report: Sendable {
        /// File names written into the folder (including `config.json` when keys were added to it).
        public var files: [String]
        /// For BPE: the `pre` name `HFVocabConverter` detects from the written tokenizer.json by its
        /// fingerprint, nil when it is not recognized.
        public var detectedPre: String?
        /// For BPE: the GGUF `pre` name. When `detectedPre` differs, re-importing needs `--pre NAME`.
        public var pre: String?
        /// True when converting the folder back needs `--pre <pre>` (BPE fingerprint not recognized).
        public var needsForcedPre: Bool { pre != nil && detectedPre != pre }
        /// Metadata that cannot be reproduced by re-importing the folder, one line each with the reason.
        public var notes: [String]
    }

    /// Writes the tokenizer files for GGUF tokenizer metadata into `folder` (created if needed) and
    /// returns the names of the files written.
    @discardableResult
    public static func write(metadata: MetaEntries, to folder: URL, updateConfig: Bool = true) throws -> [String] {
        try export(metadata: metadata, to: folder, updateConfig: updateConfig).files
    }

    /// Same as `write(metadata:to:)` for a GGUF file's metadata.
    @discardableResult
    public static func write(gguf: GGUFMetadata, to folder: URL, updateConfig: Bool = true) throws -> [String] {
        try export(metadata: metaEntries(gguf), to: folder, updateConfig: updateConfig).files
    }

    /// The `tokenizer.*` entries of GGUF metadata as `MetaEntries` (unsigned integers → `.uint32`,
    /// signed → `.int32`, arrays of integers → `.int32Array`).
    public static func metaEntries(_ gguf: GGUFMetadata) -> MetaEntries {
        func scalar(_ v: GGUFValue) -> MetaValue? {
            switch v {
            case let .uint8(x): return .uint32(UInt32(x))
            case let .uint16(x): return .uint32(UInt32(x))
            case let .uint32(x): return .uint32(x)
            case let .uint64(x): return .uint32(UInt32(truncatingIfNeeded: x))
            case let .int8(x): return .int32(Int32(x))
            case let .int16(x): return .int32(Int32(x))
            case let .int32(x): return .int32(x)
            case let .int64(x): return .int32(Int32(truncatingIfNeeded: x))
            case let .float32(x): return .float32(x)
            case let .float64(x): return .float32(Float(x))
            case let .bool(x): return .bool(x)
            case let .string(x): return .string(x)
            case .array: return nil
            }
        }
        var out: MetaEntries = []
        for (k, v) in gguf where k.hasPrefix("tokenizer.") {
            if case let .array(t, items) = v {
                switch t {
                case .string: out.append((k, .stringArray(items.compactMap { $0.stringValue })))
                case .float32, .float64: out.append((k, .float32Array(items.compactMap { $0.doubleValue.map { Float($0) } })))
                default: out.append((k, .int32Array(items.compactMap { $0.intValue.map { Int32(truncatingIfNeeded: $0) } })))
                }
            } else if let s = scalar(v) {
                out.append((k, s))
            }
        }
        return out
    }

    // MARK: special tokens

    /// (HF name, GGUF key) of the special token ids gguf-py's SpecialVocab reads and writes.
    static let specialKinds: [(typ: String, key: String)] = [
        ("bos", "tokenizer.ggml.bos_token_id"), ("eos", "tokenizer.ggml.eos_token_id"),
        ("unk", "tokenizer.ggml.unknown_token_id"), ("sep", "tokenizer.ggml.seperator_token_id"),
        ("pad", "tokenizer.ggml.padding_token_id"), ("mask", "tokenizer.ggml.mask_token_id"),
    ]

    /// Keys `export` adds to an existing config.json (never replacing one already there): `vocab_size`
    /// (the converter pads the vocabulary to it with `[PAD{i}]` tokens) and the special token ids
    /// the converter cannot resolve from the tokenizer files (those whose token is not an added,
    /// i.e. control / user-defined / unknown, token).
    public static func configEntries(metadata: MetaEntries) throws -> [(key: String, value: Int)] {
        let m = try Parsed(metadata)
        var out: [(key: String, value: Int)] = [("vocab_size", m.tokens.count)]
        for (typ, key) in specialKinds {
            guard let id = m.int(key), id >= 0, id < m.tokens.count else { continue }
            // added tokens are resolved through tokenizer.json's added_tokens, unless the GGUF's key
            // order shows the original converter took the id from config.json
            if m.isAdded(id) && !m.fromConfig.contains(typ) { continue }
            out.append(("\(typ)_token_id", id))
        }
        return out
    }

    // MARK: export

    /// Writes the tokenizer files (see the type's documentation) and reports what a re-import will
    /// and will not reproduce. With `updateConfig`, keys from `configEntries` missing from an
    /// existing `config.json` in the folder are added to it.
    public static func export(metadata: MetaEntries, to folder: URL, updateConfig: Bool = true) throws -> Report {
        let m = try Parsed(metadata)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var files: [String] = []
        var notes: [String] = []
        var detected: String? = nil
        if m.isBPE {
            try writeFile(folder, "tokenizer.json", bpeTokenizerJSON(m, &notes))
            files.append("tokenizer.json")
            detected = try? HFVocabConverter.detectPre(modelDir: folder)
            if detected != m.pre {
                notes.append("tokenizer.ggml.pre: the written tokenizer.json's fingerprint is "
                             + (detected.map { "detected as '\($0)'" } ?? "not in llama.cpp's table")
                             + "; convert back with --pre \(m.pre)")
            }
        } else {
            let spm = sentencePieceModel(m, &notes)
            try spm.write(to: folder.appendingPathComponent("tokenizer.model"))
            files.append("tokenizer.model")
            try writeFile(folder, "tokenizer.json", sentencePieceTokenizerJSON(m, spm))
            files.append("tokenizer.json")
        }
        try writeFile(folder, "tokenizer_config.json", tokenizerConfig(m, &notes))
        files.append("tokenizer_config.json")
        try writeFile(folder, "special_tokens_map.json", specialTokensMap(m))
        files.append("special_tokens_map.json")
        let cfgURL = folder.appendingPathComponent("config.json")
        if updateConfig, FileManager.default.fileExists(atPath: cfgURL.path) {
            var cfg = try JSONValue.parse(contentsOf: cfgURL).objectValue ?? []
            var changed = false
            for (k, v) in try configEntries(metadata: metadata) {
                if let old = cfg.first(where: { $0.0 == k })?.1 {
                    if old.intValue != v { notes.append("config.json: \(k) is \(old.serialized()), the GGUF says \(v)") }
                    continue
                }
                cfg.append((k, .int(Int64(v))))
                changed = true
            }
            if changed {
                try writeFile(folder, "config.json", .object(cfg))
                files.append("config.json")
            }
        } else {
            let entries = try configEntries(metadata: metadata)
            notes.append("config.json not updated: it needs " + entries.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", "))
        }
        // files of another tokenizer the converter would read instead of (or on top of) these
        var stale = ["added_tokens.json", "chat_template.jinja", "chat_template.json"]
        if m.isBPE { stale.append("tokenizer.model") }
        for f in stale where FileManager.default.fileExists(atPath: folder.appendingPathComponent(f).path) {
            notes.append("\(f) was already in the folder: llama.cpp's converter will read it too")
        }
        notes += m.unsupportedKeys()
        return Report(files: files, detectedPre: m.isBPE ? detected : nil, pre: m.isBPE ? m.pre : nil, notes: notes)
    }

    static func writeFile(_ folder: URL, _ name: String, _ json: JSONValue) throws {
        let text = json.serialized(pretty: true) + "\n"
        do { try Data(text.utf8).write(to: folder.appendingPathComponent(name), options: .atomic) } catch {
            throw SmeltError("cannot write \(folder.appendingPathComponent(name).path): \(error.localizedDescription)")
        }
    }

    // MARK: parsed metadata

    struct Parsed {
        let d: [String: MetaValue]
        let keys: [String]
        let model: String
        let pre: String
        let tokens: [String]
        let types: [Int32]
        let scores: [Float]?
        let merges: [String]

        /// Special token kinds whose id the original converter read from config.json: SpecialVocab
        /// writes tokenizer_config-resolved ids first, then config.json ones, each group in kind order
        /// (bos, eos, unk, sep, pad, mask); ids after the first break of that order are from config.json.
        let fromConfig: Set<String>

        var isBPE: Bool { model == "gpt2" }

        init(_ meta: MetaEntries) throws {
            var d: [String: MetaValue] = [:]
            for (k, v) in meta where d[k] == nil { d[k] = v }
            self.d = d
            keys = meta.map { $0.key }
            guard let model = d["tokenizer.ggml.model"]?.stringValue else { throw SmeltError("GGUF has no tokenizer.ggml.model") }
            guard model == "gpt2" || model == "llama" else {
                throw SmeltError("exporting tokenizer model '\(model)' is not supported (only 'llama' SentencePiece and 'gpt2' BPE)")
            }
            guard case let .stringArray(tokens)? = d["tokenizer.ggml.tokens"] else { throw SmeltError("GGUF has no tokenizer.ggml.tokens") }
            self.model = model
            self.tokens = tokens
            pre = d["tokenizer.ggml.pre"]?.stringValue ?? "default"
            if case let .int32Array(t)? = d["tokenizer.ggml.token_type"], t.count == tokens.count { types = t } else {
                types = [Int32](repeating: TokenType.normal.rawValue, count: tokens.count)
            }
            if case let .float32Array(s)? = d["tokenizer.ggml.scores"], s.count == tokens.count { scores = s } else { scores = nil }
            if case let .stringArray(mg)? = d["tokenizer.ggml.merges"] { merges = mg } else { merges = [] }
            if model == "gpt2" && merges.isEmpty { throw SmeltError("BPE vocabulary without tokenizer.ggml.merges") }
            let rank = Dictionary(uniqueKeysWithValues: HFTokenizerExport.specialKinds.enumerated().map { ($1.key, ($0, $1.typ)) })
            var fromConfig = Set<String>(), last = -1, broken = false
            for k in keys {
                guard let (r, typ) = rank[k] else { continue }
                if r < last { broken = true }
                if broken { fromConfig.insert(typ) }
                last = r
            }
            self.fromConfig = fromConfig
        }

        func int(_ k: String) -> Int? { d[k]?.intValue }
        func bool(_ k: String) -> Bool? { d[k]?.boolValue }
        func type(_ i: Int) -> TokenType { TokenType(rawValue: types[i]) ?? .undefined }
        func score(_ i: Int) -> Float { scores?[i] ?? 0 }

        /// The converter's filler for ids without a token (`[PAD{i}]`, unused, score -10000 for SPM).
        func isPadFiller(_ i: Int) -> Bool {
            type(i) == .unused && tokens[i] == "[PAD\(i)]" && (isBPE || score(i) == -10000)
        }

        /// Tokens that go into tokenizer.json's added_tokens (HF added tokens): control, user-defined, unknown.
        func isAdded(_ i: Int) -> Bool {
            let t = type(i)
            return t == .control || t == .userDefined || t == .unknown
        }

        /// Keys this export does not write anything for.
        func unsupportedKeys() -> [String] {
            let handled = Set<String>([
                "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.add_bos_token",
                "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_sep_token", "tokenizer.ggml.add_space_prefix",
                "tokenizer.chat_template", "tokenizer.chat_templates",
            ]).union(HFTokenizerExport.specialKinds.map { $0.key })
            return keys.filter { !handled.contains($0) && !$0.hasPrefix("tokenizer.chat_template.") }.map { k in
                switch k {
                case "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id", "tokenizer.ggml.prefix_token_id",
                     "tokenizer.ggml.suffix_token_id", "tokenizer.ggml.middle_token_id", "tokenizer.ggml.fsep_token_id":
                    return "\(k): not written (llama.cpp's converter sets it only for specific model classes or post-processors)"
                default:
                    return "\(k): not written (no Hugging Face equivalent handled by the export)"
                }
            }
        }
    }

    static func addedToken(_ content: String, special: Bool, id: Int? = nil) -> JSONValue {
        var o: [(String, JSONValue)] = []
        if let id = id { o.append(("id", .int(Int64(id)))) }
        o += [("content", .string(content)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
              ("rstrip", .bool(false)), ("normalized", .bool(!special)), ("special", .bool(special))]
        return .object(o)
    }

    // MARK: BPE tokenizer.json

    /// Hugging Face's original split regexes for the pre-tokenizer families llama.cpp hard-codes.
    static let llama3Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let qwen2Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let qwen35Regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let gpt2Regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

    static let llama3Family: Set<String> = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                                            "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe", "glm4", "chatglm-bpe"]
    /// Where llama.cpp's BPE ignores merges for words that are whole tokens (HF `ignore_merges`).
    static let ignoreMergesFamily: Set<String> = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                                                  "midm-2.0", "lfm2", "jina-v5-nano"]
    static let qwen2Family: Set<String> = ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan",
                                           "solar-open", "megrez", "grok-2"]
    static let smollmFamily: Set<String> = ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                                            "minerva-7b", "mellum2"]
    static let gpt2Family: Set<String> = ["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                                          "a.x-4.0", "mellum", "modern-bert", "exaone4", "jina-v1-en", "jina-v2-code",
                                          "roberta-bpe", "mpt", "olmo", "jais", "trillion", "granite-docling"]
    /// Split rules (applied one after the other, as llama.cpp does) for some other pre names.
    static let otherSplits: [String: [String]] = [
        "default": ["[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2Regex, "\\p{N}+", "[0-9][0-9][0-9]"],
        "falcon": ["[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2Regex, "[0-9][0-9][0-9]"],
        "deepseek-coder": ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"],
        "laguna": ["[^\\n]+|[\\n]+", qwen2Regex],
        "bloom": [" ?[^(\\s|.,!?…。，、।۔،)]+"], "poro-chat": [" ?[^(\\s|.,!?…。，、।۔،)]+"],
        "gpt3-finnish": [" ?[^(\\s|.,!?…。，、।۔،)]+"], "viking": [" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"],
    ]

    static func byteLevel(useRegex: Bool, trimOffsets: Bool, prefixSpace: Bool = false) -> JSONValue {
        .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(prefixSpace)), ("trim_offsets", .bool(trimOffsets)),
                 ("use_regex", .bool(useRegex))])
    }

    static func split(_ regex: String) -> JSONValue {
        .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(regex))])),
                 ("behavior", .string("Isolated")), ("invert", .bool(false))])
    }

    /// The HF pre-tokenizer equivalent to a llama.cpp pre name; nil when there is no known one.
    static func preTokenizer(_ pre: String, prefixSpace: Bool = false) -> JSONValue? {
        func byteLevel(useRegex: Bool, trimOffsets: Bool) -> JSONValue {
            HFTokenizerExport.byteLevel(useRegex: useRegex, trimOffsets: trimOffsets, prefixSpace: prefixSpace)
        }
        func seq(_ items: [JSONValue]) -> JSONValue { .object([("type", .string("Sequence")), ("pretokenizers", .array(items))]) }
        if gpt2Family.contains(pre) { return byteLevel(useRegex: true, trimOffsets: true) }
        if smollmFamily.contains(pre) {
            return seq([.object([("type", .string("Digits")), ("individual_digits", .bool(true))]),
                        byteLevel(useRegex: true, trimOffsets: true)])
        }
        if llama3Family.contains(pre) { return seq([split(llama3Regex), byteLevel(useRegex: false, trimOffsets: false)]) }
        if qwen2Family.contains(pre) { return seq([split(qwen2Regex), byteLevel(useRegex: false, trimOffsets: false)]) }
        if pre == "qwen35" { return seq([split(qwen35Regex), byteLevel(useRegex: false, trimOffsets: false)]) }
        if let rs = otherSplits[pre] { return seq(rs.map(split) + [byteLevel(useRegex: false, trimOffsets: false)]) }
        return nil
    }

    static func bpeTokenizerJSON(_ m: Parsed, _ notes: inout [String]) throws -> JSONValue {
        var vocab: [(String, JSONValue)] = []
        vocab.reserveCapacity(m.tokens.count)
        var seen = Set<String>()
        var added: [JSONValue] = []
        var otherUnused = 0, userSpecial: [String] = [], undefined = 0
        for (i, t) in m.tokens.enumerated() {
            if m.isPadFiller(i) { continue }
            guard seen.insert(t).inserted else {
                notes.append("token \(i) '\(t)': duplicate text, tokenizer.json maps it to the first id only")
                continue
            }
            vocab.append((t, .int(Int64(i))))
            switch m.type(i) {
            case .control, .unknown:
                if m.type(i) == .unknown { notes.append("token \(i) '\(t)': unknown type comes back as control") }
                added.append(addedToken(t, special: true, id: i))
            case .userDefined:
                if HFVocabConverter.looksSpecial(t) { userSpecial.append(t) }
                added.append(addedToken(t, special: false, id: i))
            case .unused: otherUnused += 1
            case .undefined: undefined += 1
            default: break
            }
        }
        if otherUnused > 0 { notes.append("\(otherUnused) unused tokens other than [PAD{id}] come back as normal") }
        if undefined > 0 { notes.append("\(undefined) tokens of undefined type come back as normal") }
        if !userSpecial.isEmpty {
            notes.append("user-defined tokens that look special come back as control: " + userSpecial.prefix(5).joined(separator: ", "))
        }
        for mg in m.merges where mg.split(separator: " ", omittingEmptySubsequences: false).count != 2 {
            throw SmeltError("BPE merge '\(mg)' does not have exactly one space")
        }
        let prefixSpace = m.bool("tokenizer.ggml.add_space_prefix") ?? false
        var pre = preTokenizer(m.pre, prefixSpace: prefixSpace)
        if pre == nil {
            notes.append("tokenizer.ggml.pre '\(m.pre)': no Hugging Face pre-tokenizer known, plain ByteLevel written")
            pre = byteLevel(useRegex: true, trimOffsets: true, prefixSpace: prefixSpace)
        }
        var post: JSONValue = .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                       ("trim_offsets", .bool(false)), ("use_regex", .bool(true))])
        if let template = templateProcessing(m) {
            post = .object([("type", .string("Sequence")), ("processors", .array([post, template]))])
        }
        let model: JSONValue = .object([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
            ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
            ("ignore_merges", .bool(ignoreMergesFamily.contains(m.pre))),
            ("vocab", .object(vocab)), ("merges", .array(m.merges.map { .string($0) })),
        ])
        return .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", .null), ("pre_tokenizer", pre!), ("post_processor", post),
            ("decoder", .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                 ("trim_offsets", .bool(true)), ("use_regex", .bool(true))])),
            ("model", model),
        ])
    }

    /// A TemplateProcessing post-processor adding BOS/EOS as the GGUF's add_bos/add_eos say, or nil.
    /// gguf-py's SpecialVocab derives add_bos/add_eos from it, and add_sep from its pair template
    /// when that has a token between the two sequences: such a pair is written only when the GGUF
    /// has add_sep_token before add_eos_token (where the original converter took it from the
    /// post-processor), otherwise one BOS/EOS encloses both sequences and no add_sep appears.
    static func templateProcessing(_ m: Parsed) -> JSONValue? {
        func valid(_ k: String) -> Int? { m.int(k).flatMap { $0 >= 0 && $0 < m.tokens.count ? $0 : nil } }
        let useBos = m.bool("tokenizer.ggml.add_bos_token") == true ? valid("tokenizer.ggml.bos_token_id") : nil
        let useEos = m.bool("tokenizer.ggml.add_eos_token") == true ? valid("tokenizer.ggml.eos_token_id") : nil
        guard useBos != nil || useEos != nil else { return nil }
        var sepFromPost = false
        if let s = m.keys.firstIndex(of: "tokenizer.ggml.add_sep_token") {
            sepFromPost = s < (m.keys.firstIndex(of: "tokenizer.ggml.add_eos_token") ?? Int.max)
        }
        func special(_ id: Int?, _ type: Int) -> [JSONValue] {
            guard let id = id else { return [] }
            return [.object([("SpecialToken", .object([("id", .string(m.tokens[id])), ("type_id", .int(Int64(type)))]))])]
        }
        func seq(_ s: String, _ type: Int) -> JSONValue { .object([("Sequence", .object([("id", .string(s)), ("type_id", .int(Int64(type)))]))]) }
        let single = special(useBos, 0) + [seq("A", 0)] + special(useEos, 0)
        let pair = sepFromPost
            ? single + special(useBos, 1) + [seq("B", 1)] + special(useEos, 1)
            : special(useBos, 0) + [seq("A", 0), seq("B", 1)] + special(useEos, 1)
        var specials: [(String, JSONValue)] = []
        for id in [useBos, useEos].compactMap({ $0 }) where !specials.contains(where: { $0.0 == m.tokens[id] }) {
            specials.append((m.tokens[id], .object([("id", .string(m.tokens[id])), ("ids", .array([.int(Int64(id))])),
                                                    ("tokens", .array([.string(m.tokens[id])]))])))
        }
        return .object([("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)),
                        ("special_tokens", .object(specials))])
    }

    /// Tokens that are HF added tokens: control, unknown and user-defined ones.
    static func addedTokensJSON(_ m: Parsed) -> [JSONValue] {
        m.tokens.indices.filter { !m.isPadFiller($0) && m.isAdded($0) }.map { i in
            addedToken(m.tokens[i], special: m.type(i) != .userDefined, id: i)
        }
    }

    // MARK: SentencePiece tokenizer.json

    /// The merges transformers' SentencePiece converter derives from a BPE model's pieces: every split
    /// of a piece into two pieces, ordered by the piece's score (then longer left, longer right part;
    /// within a piece by the parts' ids). Scores are the GGUF's (-1000 for added special tokens).
    static func sentencePieceMerges(_ pieces: [SentencePieceModel.Piece]) -> [String] {
        var ids: [String: Int] = [:]
        for (i, p) in pieces.enumerated() { ids[p.piece] = i }
        var scoreOf: [String: Float] = [:]
        var order: [String] = []
        for p in pieces {
            if scoreOf[p.piece] == nil { order.append(p.piece) }
            scoreOf[p.piece] = p.score
        }
        struct M { let l: String, r: String, score: Float, nl: Int, nr: Int, seq: Int }
        var all: [M] = []
        for text in order {
            let sc = Array(text.unicodeScalars)
            guard sc.count > 1 else { continue }
            var local: [(String, String, Int, Int)] = []
            for k in 1..<sc.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: sc[..<k]); r.append(contentsOf: sc[k...])
                let ls = String(l), rs = String(r)
                if let a = ids[ls], let b = ids[rs] { local.append((ls, rs, a, b)) }
            }
            local.sort { ($0.2, $0.3) < ($1.2, $1.3) }
            for (ls, rs, _, _) in local {
                all.append(M(l: ls, r: rs, score: scoreOf[text]!, nl: ls.unicodeScalars.count, nr: rs.unicodeScalars.count, seq: all.count))
            }
        }
        all.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.nl != b.nl { return a.nl > b.nl }
            if a.nr != b.nr { return a.nr > b.nr }
            return a.seq < b.seq
        }
        return all.map { $0.l + " " + $0.r }
    }

    /// A tokenizer.json for a SentencePiece BPE model in the shape transformers' Llama converter
    /// writes (byte-fallback BPE over the whole text, ▁ for spaces). llama.cpp's converter reads only
    /// its added tokens (special token ids) and post-processor (add_bos/add_eos/add_sep) when
    /// tokenizer.model is there; Hugging Face's fast tokenizer uses all of it.
    static func sentencePieceTokenizerJSON(_ m: Parsed, _ w: SentencePieceWriter) -> JSONValue {
        let dummy = w.addDummyPrefix
        func replace(_ a: String, _ b: String) -> JSONValue {
            .object([("type", .string("Replace")), ("pattern", .object([("String", .string(a))])), ("content", .string(b))])
        }
        let normalizer: JSONValue = dummy
            ? .object([("type", .string("Sequence")), ("normalizers", .array([
                .object([("type", .string("Prepend")), ("prepend", .string("\u{2581}"))]), replace(" ", "\u{2581}")]))])
            : replace(" ", "\u{2581}")
        var decoders: [JSONValue] = [replace("\u{2581}", " "), .object([("type", .string("ByteFallback"))]),
                                     .object([("type", .string("Fuse"))])]
        if dummy {
            decoders.append(.object([("type", .string("Strip")), ("content", .string(" ")), ("start", .int(1)), ("stop", .int(0))]))
        }
        var vocab: [(String, JSONValue)] = []
        var seen = Set<String>()
        for (i, p) in w.pieces.enumerated() where seen.insert(p.piece).inserted { vocab.append((p.piece, .int(Int64(i)))) }
        let unk = w.pieces.indices.contains(w.unkId) && w.pieces[w.unkId].type == .unknown ? JSONValue.string(w.pieces[w.unkId].piece) : .null
        let model: JSONValue = .object([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", unk), ("continuing_subword_prefix", .null),
            ("end_of_word_suffix", .null), ("fuse_unk", .bool(true)), ("byte_fallback", .bool(w.byteFallback)),
            ("ignore_merges", .bool(false)), ("vocab", .object(vocab)),
            ("merges", .array(sentencePieceMerges(w.pieces).map { .string($0) })),
        ])
        return .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(addedTokensJSON(m))),
            ("normalizer", normalizer), ("pre_tokenizer", .null), ("post_processor", templateProcessing(m) ?? .null),
            ("decoder", .object([("type", .string("Sequence")), ("decoders", .array(decoders))])), ("model", model),
        ])
    }

    // MARK: SentencePiece tokenizer.model

    /// SentencePiece ids whose GGUF type the converter restores from tokenizer_config's
    /// added_tokens_decoder (control/user-defined with score -1000), with their `special` flag.
    static func spmDecoderEntries(_ m: Parsed) -> [(id: Int, special: Bool)] {
        var out: [(id: Int, special: Bool)] = []
        for i in m.tokens.indices where !m.isPadFiller(i) && m.score(i) == -1000 {
            switch m.type(i) {
            case .control: out.append((i, true))
            case .userDefined: out.append((i, false))
            default: break
            }
        }
        return out
    }

    /// The id whose piece is written as UNKNOWN: the token of type unknown, else the GGUF unk id when
    /// its token is a control token restored by added_tokens_decoder (SentencePiece needs one UNKNOWN piece).
    static func spmUnknownId(_ m: Parsed) -> Int? {
        if let i = m.types.firstIndex(of: TokenType.unknown.rawValue) { return i }
        if let u = m.int("tokenizer.ggml.unknown_token_id"), u >= 0, u < m.tokens.count, m.type(u) == .control,
           m.score(u) == -1000 { return u }
        return nil
    }

    static func sentencePieceModel(_ m: Parsed, _ notes: inout [String]) -> SentencePieceWriter {
        var n = m.tokens.count
        while n > 0 && m.isPadFiller(n - 1) { n -= 1 }
        let unk = spmUnknownId(m)
        if unk == nil { notes.append("no unknown token: the tokenizer.model has no UNKNOWN piece (the sentencepiece library will refuse it)") }
        let decoder = Set(spmDecoderEntries(m).map { $0.id })
        var pieces: [SentencePieceModel.Piece] = []
        pieces.reserveCapacity(n)
        var byteCount = 0, lost: [String] = []
        for i in 0..<n {
            var text = m.tokens[i]
            var t: SentencePieceModel.PieceType
            switch m.type(i) {
            case .normal: t = .normal
            case .unknown: t = .unknown
            case .control: t = .control
            case .userDefined:
                t = .userDefined
                text = text.replacingOccurrences(of: " ", with: "\u{2581}")
                if !decoder.contains(i) { lost.append("\(i) '\(m.tokens[i])' (user-defined, score \(m.score(i)) ≠ -1000: comes back normal)") }
                else if HFVocabConverter.looksSpecial(m.tokens[i]) { lost.append("\(i) '\(m.tokens[i])' (user-defined but looks special: comes back control)") }
            case .unused: t = .unused
            case .byte: t = .byte; byteCount += 1
            case .undefined: t = .normal; lost.append("\(i) '\(m.tokens[i])' (undefined type: comes back normal)")
            }
            if i == unk { t = .unknown }
            pieces.append(SentencePieceModel.Piece(piece: text, score: m.score(i), type: t))
        }
        if !lost.isEmpty { notes.append("tokens whose type does not round-trip: " + lost.prefix(5).joined(separator: "; ")
                                        + (lost.count > 5 ? " (\(lost.count) in all)" : "")) }
        if byteCount > 0 && byteCount != 256 { notes.append("\(byteCount) byte tokens (the sentencepiece library wants all 256)") }
        var w = SentencePieceWriter(pieces: pieces)
        w.byteFallback = byteCount > 0
        w.unkId = unk ?? 0
        func id(_ k: String) -> Int { m.int(k).flatMap { $0 < n ? $0 : nil } ?? -1 }
        w.bosId = id("tokenizer.ggml.bos_token_id")
        w.eosId = id("tokenizer.ggml.eos_token_id")
        w.padId = id("tokenizer.ggml.padding_token_id")
        w.addDummyPrefix = m.bool("tokenizer.ggml.add_space_prefix") ?? true
        return w
    }

    // MARK: tokenizer_config.json, special_tokens_map.json

    static func tokenizerConfig(_ m: Parsed, _ notes: inout [String]) -> JSONValue {
        var o: [(String, JSONValue)] = []
        if let b = m.bool("tokenizer.ggml.add_bos_token") { o.append(("add_bos_token", .bool(b))) }
        if let b = m.bool("tokenizer.ggml.add_eos_token") { o.append(("add_eos_token", .bool(b))) }
        if let b = m.bool("tokenizer.ggml.add_sep_token") { o.append(("add_sep_token", .bool(b))) }
        // LlamaModel.set_vocab reads add_prefix_space; write it only where the GGUF has the key.
        if let b = m.bool("tokenizer.ggml.add_space_prefix") { o.append(("add_prefix_space", .bool(b))) }
        var decoder: [(String, JSONValue)] = []
        func entry(_ i: Int, special: Bool) {
            decoder.append((String(i), .object([("content", .string(m.tokens[i])), ("lstrip", .bool(false)),
                                                ("normalized", .bool(!special)), ("rstrip", .bool(false)),
                                                ("single_word", .bool(false)), ("special", .bool(special))])))
        }
        if m.isBPE {
            for i in m.tokens.indices where !m.isPadFiller(i) && m.isAdded(i) { entry(i, special: m.type(i) != .userDefined) }
        } else {
            for (i, s) in spmDecoderEntries(m) { entry(i, special: s) }
        }
        o.append(("added_tokens_decoder", .object(decoder)))
        for (typ, key) in specialKinds {
            guard let id = m.int(key), id >= 0, id < m.tokens.count else { continue }
            o.append(("\(typ)_token", m.fromConfig.contains(typ) ? .null : .string(m.tokens[id])))
        }
        if case let .stringArray(names)? = m.d["tokenizer.chat_templates"], !names.isEmpty {
            var list: [JSONValue] = []
            if let def = m.d["tokenizer.chat_template"]?.stringValue {
                list.append(.object([("name", .string("default")), ("template", .string(def))]))
            }
            for n in names {
                guard let t = m.d["tokenizer.chat_template.\(n)"]?.stringValue else { continue }
                list.append(.object([("name", .string(n)), ("template", .string(t))]))
            }
            o.append(("chat_template", .array(list)))
        } else if let ct = m.d["tokenizer.chat_template"]?.stringValue {
            o.append(("chat_template", .string(ct)))
        }
        o.append(("clean_up_tokenization_spaces", .bool(false)))
        if m.isBPE {
            o.append(("tokenizer_class", .string("PreTrainedTokenizerFast")))
        } else {
            o.append(("legacy", .bool(true)))   // llama.cpp adds the ▁ prefix after special tokens too
            o.append(("sp_model_kwargs", .object([])))
            o.append(("spaces_between_special_tokens", .bool(false)))
            o.append(("tokenizer_class", .string("LlamaTokenizer")))
        }
        return .object(o)
    }

    static func specialTokensMap(_ m: Parsed) -> JSONValue {
        var o: [(String, JSONValue)] = []
        for (typ, key) in specialKinds {
            guard let id = m.int(key), id >= 0, id < m.tokens.count else { continue }
            o.append(("\(typ)_token", .object([("content", .string(m.tokens[id])), ("lstrip", .bool(false)),
                                               ("normalized", .bool(false)), ("rstrip", .bool(false)),
                                               ("single_word", .bool(false))])))
        }
        return .object(o)
    }
}
