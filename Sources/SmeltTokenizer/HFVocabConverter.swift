import Foundation
import SmeltFormats

/// Builds the GGUF tokenizer metadata (`tokenizer.ggml.*`, `tokenizer.chat_template`) from a Hugging
/// Face checkpoint folder exactly as llama.cpp's convert_hf_to_gguf.py does (`_set_vocab_gpt2` /
/// `get_vocab_base`, `_set_vocab_sentencepiece`, the Llama / Qwen / Gemma `set_vocab` variants and
/// gguf-py's `SpecialVocab`), without Python.
public enum HFVocabConverter {
    /// Which `set_vocab` of llama.cpp's converter applies (it depends on the model class).
    public enum Recipe: String, Sendable {
        /// LlamaModel: add_prefix_space from tokenizer_config, then SentencePiece, else byte-level BPE.
        case llama
        /// Qwen2Model / Qwen3Model: SentencePiece if tokenizer.model exists, else byte-level BPE.
        case sentencePieceOrGPT2
        /// Gemma3Model: SentencePiece (+ add_space_prefix = false), else byte-level BPE.
        case gemma3
        /// GemmaModel / Gemma2Model: SentencePiece, CodeGemma EOT id, add_space_prefix = false.
        case gemma
        /// TextModel's default: byte-level BPE (`_set_vocab_gpt2`).
        case gpt2
        /// Plain `_set_vocab_sentencepiece`.
        case sentencePiece
    }

    /// The recipe llama.cpp's converter uses for an HF `architectures[0]` name.
    public static func recipe(forArchitecture arch: String) -> Recipe {
        switch arch {
        case "LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM", "MixtralForCausalLM", "LlavaForConditionalGeneration",
             "VLlama3ForCausalLM", "LlamaModel", "VoxtralForConditionalGeneration", "LlamaForCausalLMEagle3",
             "ArceeForCausalLM", "SmolLM3ForCausalLM", "GraniteForCausalLM", "ApertusForCausalLM":
            return .llama
        case "Qwen2ForCausalLM", "Qwen2Model", "Qwen3ForCausalLM", "Qwen3Model", "Qwen2AudioForConditionalGeneration":
            return .sentencePieceOrGPT2
        case "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration", "Gemma3TextModel":
            return .gemma3
        case "GemmaForCausalLM", "Gemma2ForCausalLM":
            return .gemma
        default:
            return .gpt2
        }
    }

    /// The tokenizer metadata keys in the order the converter writes them. `forcedPre` replaces the
    /// hash-detected BPE pre-tokenizer name (the `--pre NAME` option).
    public static func metadata(modelDir: URL, recipe: Recipe, forcedPre: String? = nil) throws -> MetaEntries {
        var meta = OrderedMeta()
        let config = try? JSONValue.parse(contentsOf: modelDir.appendingPathComponent("config.json"))
        let hasSPM = FileManager.default.fileExists(atPath: modelDir.appendingPathComponent("tokenizer.model").path)
        switch recipe {
        case .llama:
            if let tc = try? JSONValue.parse(contentsOf: modelDir.appendingPathComponent("tokenizer_config.json")),
               let p = tc["add_prefix_space"]?.boolValue {
                meta.set("tokenizer.ggml.add_space_prefix", .bool(p))
            }
            if hasSPM {
                try setVocabSentencePiece(modelDir, config, &meta)
            } else {
                if let tj = try? JSONValue.parse(contentsOf: modelDir.appendingPathComponent("tokenizer.json")),
                   tj["model"]?["type"]?.stringValue == "BPE", tj["model"]?["byte_fallback"]?.boolValue == true,
                   tj["decoder"]?["type"]?.stringValue == "Sequence" {
                    try setVocabLlamaHF(modelDir, tj, &meta)
                } else {
                    try setVocabGPT2(modelDir, config, forcedPre: forcedPre, &meta)
                }
            }
            let vs = hparamInt(config, "vocab_size") ?? 32000
            if vs == 32016 {
                var sv = try SpecialVocab(dir: modelDir, specialTokenTypes: ["prefix", "suffix", "middle", "eot"])
                try sv.setSpecialToken("prefix", 32007)
                try sv.setSpecialToken("suffix", 32008)
                try sv.setSpecialToken("middle", 32009)
                try sv.setSpecialToken("eot", 32010)
                sv.add(to: &meta)
            }
            if vs == 49152 { meta.set("tokenizer.ggml.add_bos_token", .bool(false)) }
        case .sentencePieceOrGPT2:
            if hasSPM { try setVocabSentencePiece(modelDir, config, &meta) } else {
                try setVocabGPT2(modelDir, config, forcedPre: forcedPre, &meta)
            }
        case .gemma3:
            if hasSPM {
                try setVocabSentencePiece(modelDir, config, &meta)
                meta.set("tokenizer.ggml.add_space_prefix", .bool(false))
            } else {
                try setVocabGPT2(modelDir, config, forcedPre: forcedPre, &meta)
            }
        case .gemma:
            try setVocabSentencePiece(modelDir, config, &meta)
            var sv = try SpecialVocab(dir: modelDir, specialTokenTypes: ["prefix", "suffix", "middle", "fsep", "eot"])
            try sv.setSpecialToken("prefix", 67)
            try sv.setSpecialToken("suffix", 69)
            try sv.setSpecialToken("middle", 68)
            try sv.setSpecialToken("fsep", 70)
            try sv.setSpecialToken("eot", 107)
            sv.chatTemplate = nil
            sv.add(to: &meta)
            meta.set("tokenizer.ggml.add_space_prefix", .bool(false))
        case .gpt2:
            try setVocabGPT2(modelDir, config, forcedPre: forcedPre, &meta)
        case .sentencePiece:
            try setVocabSentencePiece(modelDir, config, &meta)
        }
        return meta.entries
    }

    /// Convenience: the metadata for the checkpoint's own architecture (config.json `architectures[0]`).
    public static func metadata(modelDir: URL, forcedPre: String? = nil) throws -> MetaEntries {
        let config = try JSONValue.parse(contentsOf: modelDir.appendingPathComponent("config.json"))
        let arch = config["architectures"]?.arrayValue?.first?.stringValue ?? ""
        return try metadata(modelDir: modelDir, recipe: recipe(forArchitecture: arch), forcedPre: forcedPre)
    }

    /// A hyperparameter as TextModel sees it: text_config's keys override the root's.
    static func hparamInt(_ config: JSONValue?, _ key: String) -> Int? {
        if let tc = config?["text_config"], let v = tc[key], !v.isNull { return v.intValue }
        return config?[key]?.intValue
    }

    // MARK: SentencePiece (_create_vocab_sentencepiece + _set_vocab_sentencepiece)

    static func setVocabSentencePiece(_ dir: URL, _ config: JSONValue?, _ meta: inout OrderedMeta) throws {
        let spm = try SentencePieceModel(contentsOf: dir.appendingPathComponent("tokenizer.model"))
        let vocabSize = hparamInt(config, "vocab_size_per_layer_input") ?? hparamInt(config, "vocab_size") ?? spm.pieces.count
        var tokens = (0..<vocabSize).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: vocabSize)
        var types = [Int32](repeating: TokenType.unused.rawValue, count: vocabSize)
        for (i, p) in spm.pieces.enumerated() {
            if i >= vocabSize { break }
            var t = TokenType.normal
            switch p.type {
            case .unknown: t = .unknown
            case .control: t = .control
            case .unused: t = .unused
            case .byte: t = .byte
            default: t = .normal
            }
            tokens[i] = p.piece
            scores[i] = p.score
            types[i] = t.rawValue
        }
        let addedFile = dir.appendingPathComponent("added_tokens.json")
        if FileManager.default.fileExists(atPath: addedFile.path) {
            for (key, v) in try JSONValue.parse(contentsOf: addedFile).objectValue ?? [] {
                guard let id = v.intValue, id >= 0, id < vocabSize else { continue }
                tokens[id] = key; scores[id] = -1000; types[id] = TokenType.userDefined.rawValue
            }
        }
        let tcFile = dir.appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: tcFile.path) {
            let tc = try JSONValue.parse(contentsOf: tcFile)
            for (k, data) in tc["added_tokens_decoder"]?.objectValue ?? [] {
                guard let id = Int(k), id >= 0, id < vocabSize, var token = data["content"]?.stringValue else { continue }
                if SpecialVocab.truthy(data["special"]) || looksSpecial(token) {
                    types[id] = TokenType.control.rawValue
                } else {
                    token = token.replacingOccurrences(of: "\u{2581}", with: " ")
                    types[id] = TokenType.userDefined.rawValue
                }
                scores[id] = -1000
                tokens[id] = token
            }
        }
        meta.set("tokenizer.ggml.model", .string("llama"))
        meta.set("tokenizer.ggml.pre", .string("default"))
        meta.set("tokenizer.ggml.tokens", .stringArray(tokens))
        meta.set("tokenizer.ggml.scores", .float32Array(scores))
        meta.set("tokenizer.ggml.token_type", .int32Array(types))
        try SpecialVocab(dir: dir, nVocab: tokens.count).add(to: &meta)
    }

    /// The converter's `does_token_look_special`.
    static func looksSpecial(_ t: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t) { return true }
        if t.hasPrefix("<|") && t.hasSuffix("|>") { return true }
        if t.hasPrefix("<｜") && t.hasSuffix("｜>") { return true }
        if t.hasPrefix("<unused") && t.hasSuffix(">") { return true }
        return false
    }

    // MARK: SentencePiece-style tokenizer.json (gguf-py LlamaHfVocab + _set_vocab_llama_hf)

    static func setVocabLlamaHF(_ dir: URL, _ tj: JSONValue, _ meta: inout OrderedMeta) throws {
        let hf = try HFTokenizerJSON(json: tj, path: dir.appendingPathComponent("tokenizer.json").path)
        let full = hf.fullVocab()
        let baseSize = hf.vocab.count
        var reverse: [Int: String] = [:]
        for (t, id) in full { reverse[id] = t }
        let added = hf.addedTokens.sorted { $0.id < $1.id }.filter { $0.id >= baseSize }
        // transformers' all_special_tokens: the named special tokens and additional_special_tokens
        var named: [String: JSONValue] = [:]
        for f in ["tokenizer_config.json", "special_tokens_map.json"] {
            let u = dir.appendingPathComponent(f)
            guard FileManager.default.fileExists(atPath: u.path) else { continue }
            for (k, v) in try JSONValue.parse(contentsOf: u).objectValue ?? [] { named[k] = v }
        }
        func content(_ v: JSONValue?) -> String? { v?.stringValue ?? v?["content"]?.stringValue }
        var specialTexts: [String] = []
        for k in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
            if let c = content(named[k]) { specialTexts.append(c) }
        }
        for x in named["additional_special_tokens"]?.arrayValue ?? [] { if let c = content(x) { specialTexts.append(c) } }
        var specials: [String: Int] = [:]
        for t in specialTexts { if let id = full[t] { specials[t] = id } }
        let specialIds = Set(specials.values)
        func isByteToken(_ t: String) -> Bool {
            let b = Array(t.utf8)
            guard b.count == 6, b[0] == 0x3C, b[1] == 0x30, b[2] == 0x78, b[5] == 0x3E else { return false }
            return b[3...4].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) || ($0 >= 0x61 && $0 <= 0x66) }
        }
        let addedIds = Set(added.map { $0.id })
        var tokens: [String] = [], scores: [Float] = [], types: [Int32] = []
        for id in 0..<baseSize where !addedIds.contains(id) {
            guard let t = reverse[id] else { throw SmeltError("tokenizer.json has no token with id \(id)") }
            tokens.append(t)
            scores.append(-1000)
            types.append(isByteToken(t) ? TokenType.byte.rawValue
                         : specialIds.contains(id) ? TokenType.control.rawValue : TokenType.normal.rawValue)
        }
        for a in added {
            tokens.append(a.content)
            scores.append(-1000)
            types.append(specials[a.content] != nil ? TokenType.control.rawValue : TokenType.userDefined.rawValue)
        }
        meta.set("tokenizer.ggml.model", .string("llama"))
        meta.set("tokenizer.ggml.pre", .string("default"))
        meta.set("tokenizer.ggml.tokens", .stringArray(tokens))
        meta.set("tokenizer.ggml.scores", .float32Array(scores))
        meta.set("tokenizer.ggml.token_type", .int32Array(types))
        try SpecialVocab(dir: dir, nVocab: tokens.count).add(to: &meta)
    }

    // MARK: byte-level BPE (get_vocab_base + _set_vocab_gpt2)

    static func setVocabGPT2(_ dir: URL, _ config: JSONValue?, forcedPre: String?, _ meta: inout OrderedMeta) throws {
        let hf = try HFTokenizerJSON(contentsOf: dir.appendingPathComponent("tokenizer.json"))
        let full = hf.fullVocab()
        let vocabSize = hparamInt(config, "vocab_size") ?? full.count
        let maxId = full.values.max() ?? -1
        guard maxId < vocabSize else {
            throw SmeltError("tokenizer has token id \(maxId) but config.json vocab_size is \(vocabSize)")
        }
        let pre: String
        if let f = forcedPre { pre = f } else { pre = try detectPre(hf) }
        var reverse: [Int: String] = [:]
        for (t, id) in full { reverse[id] = t }
        var added: [String: HFTokenizerJSON.AddedToken] = [:]
        for a in hf.addedTokens { added[a.content] = a }
        var addedById: [Int: HFTokenizerJSON.AddedToken] = [:]
        for a in hf.addedTokens { addedById[a.id] = a }
        var tokens: [String] = []
        var types: [Int32] = []
        tokens.reserveCapacity(vocabSize)
        for i in 0..<vocabSize {
            guard var token = reverse[i] else {
                tokens.append("[PAD\(i)]"); types.append(TokenType.unused.rawValue); continue
            }
            if added[token] != nil {
                let dec = addedById[i]
                if (dec?.special ?? false) || looksSpecial(token) {
                    types.append(TokenType.control.rawValue)
                } else {
                    token = token.replacingOccurrences(of: "\u{2581}", with: " ")
                    types.append(TokenType.userDefined.rawValue)
                }
            } else {
                types.append(TokenType.normal.rawValue)
            }
            tokens.append(token)
        }
        meta.set("tokenizer.ggml.model", .string("gpt2"))
        meta.set("tokenizer.ggml.pre", .string(pre))
        meta.set("tokenizer.ggml.tokens", .stringArray(tokens))
        meta.set("tokenizer.ggml.token_type", .int32Array(types))
        try SpecialVocab(dir: dir, loadMerges: true).add(to: &meta)
    }

    // MARK: pre-tokenizer detection (get_vocab_base_pre)

    /// llama.cpp's fixed check text (`chktxt` in convert_hf_to_gguf.py).
    public static let checkText = "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n\u{1F680} (normal) \u{1F636}\u{200D}\u{1F32B}\u{FE0F} (multiple emojis concatenated) \u{2705} \u{1F999}\u{1F999} 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 \u{1780}\u{17B6}\u{1793}\u{17CB}\u{178F}\u{17C2}\u{1796}\u{17B7}\u{179F}\u{17C1}\u{179F}\u{17A2}\u{17B6}\u{1785}\u{1F601} ?\u{6211}\u{60F3}\u{5728}apple\u{5DE5}\u{4F5C}1314151\u{5929}\u{FF5E} ------======= \u{043D}\u{0435}\u{0449}\u{043E} \u{043D}\u{0430} \u{0411}\u{044A}\u{043B}\u{0433}\u{0430}\u{0440}\u{0441}\u{043A}\u{0438} ''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"

    /// The known fingerprints: hash → pre-tokenizer name.
    public static var knownPreHashes: [String: String] { PreHashTable.entries.mapValues { $0.name } }

    /// sha256 of `str(ids)` for the check text encoded with the checkpoint's HF tokenizer.
    public static func preFingerprint(modelDir: URL) throws -> String {
        try preFingerprint(HFTokenizerJSON(contentsOf: modelDir.appendingPathComponent("tokenizer.json")))
    }

    static func preFingerprint(_ hf: HFTokenizerJSON) throws -> String {
        let ids = try hf.referenceEncode(checkText)
        let s = "[" + ids.map(String.init).joined(separator: ", ") + "]"
        return SHA256.hex(Array(s.utf8))
    }

    /// The `tokenizer.ggml.pre` name for a checkpoint, from its fingerprint.
    public static func detectPre(modelDir: URL) throws -> String {
        try detectPre(HFTokenizerJSON(contentsOf: modelDir.appendingPathComponent("tokenizer.json")))
    }

    static func detectPre(_ hf: HFTokenizerJSON) throws -> String {
        let names = Set(PreHashTable.entries.values.map { $0.name }).sorted().joined(separator: ", ")
        let hash: String
        do { hash = try preFingerprint(hf) } catch let e as SmeltError {
            throw SmeltError("cannot fingerprint the BPE pre-tokenizer (\(e.message)); pass --pre NAME, one of: \(names)")
        }
        guard let hit = PreHashTable.entries[hash] else {
            throw SmeltError("BPE pre-tokenizer not recognized (chkhsh \(hash)); pass --pre NAME with the name of the "
                             + "tokenizer it was derived from, one of: \(names)")
        }
        return hit.name
    }
}
