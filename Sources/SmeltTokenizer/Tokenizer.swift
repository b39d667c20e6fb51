import Foundation
import SmeltFormats

/// Per-token attributes, as llama.cpp's `llama_token_attr` bits.
public struct TokenAttr: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let unknown = TokenAttr(rawValue: 1 << 0)
    public static let unused = TokenAttr(rawValue: 1 << 1)
    public static let normal = TokenAttr(rawValue: 1 << 2)
    public static let control = TokenAttr(rawValue: 1 << 3)
    public static let userDefined = TokenAttr(rawValue: 1 << 4)
    public static let byte = TokenAttr(rawValue: 1 << 5)
    public static let lstrip = TokenAttr(rawValue: 1 << 7)
    public static let rstrip = TokenAttr(rawValue: 1 << 8)
}

/// A text ↔ token id converter that behaves exactly like llama.cpp's `llama_tokenize` /
/// `llama_detokenize` for SentencePiece ("llama") and byte-level BPE ("gpt2") vocabularies.
/// Immutable after creation; safe to share between threads.
public final class Tokenizer: @unchecked Sendable {
    /// Which algorithm the vocabulary uses.
    public enum Kind: Sendable { case sentencePiece, bpe }

    public let vocab: TokenizerVocab
    public let kind: Kind
    /// Attributes per token id.
    public let attrs: [TokenAttr]
    public let bosId: Int32?
    public let eosId: Int32?
    public let unknownId: Int32?
    public let addBos: Bool
    public let addEos: Bool
    public let addSpacePrefix: Bool
    /// llama.cpp's `clean_spaces` detokenization option for this vocabulary.
    public let cleanSpaces: Bool

    let texts: ByteTable               // interned texts: ids < nTokens are tokens (see textToToken)
    let textToToken: [Int32]           // interned text id → token id (last duplicate wins), -1 if none
    let tokenBytes: [[UInt8]]
    let scores: [Float]
    let pairs: [UInt64: UInt64]        // (leftText << 32 | rightText) → (rank << 32 | resultText)
    let pre: PreTokenizer?
    let ignoreMerges: Bool
    let specialTrieAll: SpecialTrie    // control / user-defined / unknown tokens, longest first
    let specialTrieUser: SpecialTrie   // the user-defined ones (parse_special = false)
    let byteTokenSPM: [Int32]          // <0xXX> ids (or -1)

    public var count: Int { tokenBytes.count }

    /// Builds a tokenizer from GGUF-style vocabulary data. Throws for an unsupported model or pre-tokenizer.
    public convenience init(vocab: TokenizerVocab) throws {
        try self.init(vocab: vocab, ignoreMergesOverride: nil)
    }

    init(vocab: TokenizerVocab, ignoreMergesOverride: Bool?) throws {
        self.vocab = vocab
        let n = vocab.tokens.count
        var bos: Int32?, eos: Int32?, unk: Int32?
        var addBos = false, addEos = false, addSpacePrefix = false, clean = false
        var ignoreMerges = false
        switch vocab.model {
        case "llama":
            kind = .sentencePiece
            bos = 1; eos = 2; unk = 0
            addBos = true; addEos = false; addSpacePrefix = true; clean = false
            pre = nil
        case "gpt2":
            kind = .bpe
            bos = 11; eos = 11; unk = nil
            clean = true
            let preName = vocab.pre ?? "default"
            guard let p = PreTokenizer.forPre(preName) else {
                throw SmeltError("pre-tokenizer '\(preName)' is not supported; supported: "
                                 + PreTokenizer.supportedNames.joined(separator: ", "))
            }
            pre = p
            switch preName {
            case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano",
                 "tekken":
                ignoreMerges = true; addBos = true
            case "glm4", "chatglm-bpe": bos = nil
            default: break
            }
            let noClean: Set<String> = ["deepseek-llm", "deepseek-coder", "deepseek-v3", "youtu", "command-r", "qwen2",
                                        "deepseek-r1-qwen", "kormo", "f2llmv2", "qwen35", "poro-chat", "viking",
                                        "tekken", "smollm", "chameleon", "gpt-4o", "llama4", "kanana2", "talkie",
                                        "granite-embed-multi-97m", "tiny_aya", "cohere2moe", "superbpe", "trillion",
                                        "granite-docling", "bailingmoe", "bailingmoe2", "llada-moe", "seed-coder",
                                        "hunyuan", "hunyuan-dense", "joyai-llm", "kimi-k2", "grok-2", "afmoe",
                                        "laguna", "minimax-m2", "solar-open"]
            if noClean.contains(preName) { clean = false }
        default:
            throw SmeltError("tokenizer model '\(vocab.model)' is not supported (only 'llama' and 'gpt2')")
        }
        self.ignoreMerges = ignoreMergesOverride ?? ignoreMerges
        if let v = vocab.addSpacePrefix { addSpacePrefix = v }
        if kind == .bpe { addSpacePrefix = vocab.addSpacePrefix ?? false }

        // tokens
        let table = ByteTable(capacity: n + (vocab.merges?.count ?? 0))
        var t2t: [Int32] = []
        var tb: [[UInt8]] = []
        tb.reserveCapacity(n)
        for (i, s) in vocab.tokens.enumerated() {
            var b = Array(s.utf8)
            if b.isEmpty { b = Array("[EMPTY_\(i)]".utf8) }
            tb.append(b)
            let id = table.insert(b)
            if id >= t2t.count { t2t.append(Int32(i)) } else { t2t[id] = Int32(i) }
        }
        tokenBytes = tb
        scores = vocab.scores ?? [Float](repeating: 0, count: n)
        guard scores.count >= n else { throw SmeltError("tokenizer has \(scores.count) scores for \(n) tokens") }

        var at = [TokenAttr](repeating: .normal, count: n)
        if let types = vocab.tokenTypes {
            guard types.count >= n else { throw SmeltError("tokenizer has \(types.count) token types for \(n) tokens") }
            for i in 0..<n {
                switch types[i] {
                case 1: at[i] = .normal
                case 2: at[i] = .unknown
                case 3: at[i] = .control
                case 4: at[i] = .userDefined
                case 5: at[i] = .unused
                case 6: at[i] = .byte
                default: at[i] = []
                }
            }
        }

        // merges
        var pairs: [UInt64: UInt64] = [:]
        if kind == .bpe {
            guard let merges = vocab.merges else { throw SmeltError("BPE tokenizer without merges") }
            pairs.reserveCapacity(merges.count)
            for (rank, m) in merges.enumerated() {
                let b = Array(m.utf8)
                var first: [UInt8] = [], second: [UInt8] = []
                if b.count > 1, let sp = b[1...].firstIndex(of: 0x20) {
                    first = Array(b[..<sp]); second = Array(b[(sp + 1)...])
                }
                let l = table.insert(first), r = table.insert(second), res = table.insert(first + second)
                while t2t.count < table.count { t2t.append(-1) }
                let key = UInt64(l) << 32 | UInt64(r)
                if pairs[key] == nil { pairs[key] = UInt64(rank) << 32 | UInt64(res) }
            }
        }
        self.pairs = pairs
        // byte-level single characters must be interned too so that words can start from them
        if kind == .bpe {
            for b in 0..<256 { table.insert(ByteLevel.byteToUTF8[b]) }
            while t2t.count < table.count { t2t.append(-1) }
        }
        texts = table
        textToToken = t2t

        // special ids from metadata
        func valid(_ v: UInt32?, _ def: Int32?) -> Int32? {
            var d = def
            if let x = d, x >= n { d = nil }
            if let v = v { return Int(v) < n ? Int32(v) : d }
            return d
        }
        bosId = valid(vocab.bosTokenId, bos)
        eosId = valid(vocab.eosTokenId, eos)
        unknownId = valid(vocab.unknownTokenId, unk)
        if let v = vocab.addBosToken { addBos = v }
        if let v = vocab.addEosToken { addEos = v }
        self.addBos = addBos
        self.addEos = addEos
        self.addSpacePrefix = addSpacePrefix
        cleanSpaces = clean

        // llama.cpp forces these texts to be control tokens (EOT/EOG/FIM detection in llama_vocab::load)
        let forcedControl: Set<String> = [
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
            "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>", "<|eom_id|>", "<|fim_prefix|>", "<fim-prefix>",
            "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>", "<|fim_suffix|>",
            "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
            "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>",
            "<|middle|>", "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>", "<|repo_name|>",
            "<fim-repo>", "<REPO>", "<reponame>", "<|file_sep|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
            "</s>", "[EOS]", "<eos>", "<turn|>", "<|tool_response>", "[e~[",
        ]
        for i in 0..<n where forcedControl.contains(vocab.tokens[i]) { at[i].insert(.control) }
        for i in 0..<n where at[i].contains(.control) && vocab.tokens[i].contains("unused") { at[i].insert(.unused) }
        for i in 0..<n where ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"].contains(vocab.tokens[i]) {
            at[i] = .userDefined
        }
        attrs = at

        var cache: [Int32] = []
        for i in 0..<n where !at[i].intersection([.control, .userDefined, .unknown]).isEmpty { cache.append(Int32(i)) }
        cache.sort { a, b in
            let la = tb[Int(a)].count, lb = tb[Int(b)].count
            return la != lb ? la > lb : a < b
        }
        specialTrieAll = SpecialTrie(cache, tb)
        specialTrieUser = SpecialTrie(cache.filter { at[Int($0)].intersection([.control, .unknown]).isEmpty }, tb)

        var bt = [Int32](repeating: -1, count: 256)
        if kind == .sentencePiece {
            let hex = Array("0123456789ABCDEF".utf8)
            for b in 0..<256 {
                let s: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]
                var id = table.find(s)
                if id < 0 { id = table.find([UInt8(b)]) }
                bt[b] = id >= 0 ? t2t[id] : -1
            }
        }
        byteTokenSPM = bt
    }

    /// The token id of an exact token text, or nil.
    public func tokenId(_ text: String) -> Int32? {
        let i = texts.find(text)
        guard i >= 0, textToToken[i] >= 0 else { return nil }
        return textToToken[i]
    }

    @inline(__always) func lookup(_ p: UnsafePointer<UInt8>, _ len: Int) -> Int32 {
        let i = texts.find(p, len)
        return i >= 0 ? textToToken[i] : -1
    }

    // MARK: encoding

    /// Encodes text as llama.cpp's `llama_tokenize(vocab, text, add_special, parse_special)`.
    /// `addSpecial` adds BOS/EOS as the vocabulary asks (add_bos/add_eos); `parseSpecial` lets
    /// control tokens written in the text (e.g. "<|im_start|>") become their ids (llama-tokenize's default).
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        encode(bytes: Array(text.utf8), addSpecial: addSpecial, parseSpecial: parseSpecial)
    }

    /// `encode` on raw UTF-8 bytes.
    public func encode(bytes: [UInt8], addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 3 + 4)
        let fragments = bytes.isEmpty ? [] : partition(bytes, parseSpecial: parseSpecial)
        switch kind {
        case .sentencePiece:
            if addSpecial && addBos, let b = bosId { out.append(b) }
            var prevSpecial = true
            var session = SPMSession(self)
            for f in fragments {
                switch f {
                case let .text(s, e):
                    var t: [UInt8] = []
                    t.reserveCapacity(e - s + 4)
                    if addSpacePrefix && prevSpecial { t.append(contentsOf: [0xE2, 0x96, 0x81]) }
                    for i in s..<e {
                        if bytes[i] == 0x20 { t.append(contentsOf: [0xE2, 0x96, 0x81]) } else { t.append(bytes[i]) }
                    }
                    session.tokenize(t, &out)
                    prevSpecial = false
                case let .token(id):
                    out.append(id); prevSpecial = true
                }
            }
            if addSpecial && addEos, let e = eosId { out.append(e) }
        case .bpe:
            if addSpecial && addBos, let b = bosId { out.append(b) }
            var session = BPESession(self)
            for f in fragments {
                switch f {
                case let .text(s, e): session.tokenize(bytes, s, e, &out)
                case let .token(id): out.append(id)
                }
            }
            if addSpecial && addEos, let e = eosId { out.append(e) }
        }
        return out
    }

    enum Fragment: Equatable { case text(Int, Int), token(Int32) }

    /// A byte trie over special token texts, to find which of them occur in a text in one pass.
    struct SpecialTrie {
        var children: [[UInt8: Int32]] = [[:]]
        var terminal: [Int32] = [-1]
        let ordered: [Int32]   // the tokens, longest first (partition order)

        init(_ ids: [Int32], _ bytes: [[UInt8]]) {
            ordered = ids
            for id in ids {
                var node = 0
                for b in bytes[Int(id)] {
                    if let nx = children[node][b] { node = Int(nx) } else {
                        children.append([:]); terminal.append(-1)
                        children[node][b] = Int32(children.count - 1)
                        node = children.count - 1
                    }
                }
                terminal[node] = id
            }
        }

        func present(in text: [UInt8]) -> Set<Int32> {
            var found = Set<Int32>()
            if ordered.isEmpty { return found }
            let root = children[0]
            for i in 0..<text.count {
                guard var node = root[text[i]].map(Int.init) else { continue }
                var j = i + 1
                while true {
                    if terminal[node] >= 0 { found.insert(terminal[node]) }
                    guard j < text.count, let nx = children[node][text[j]] else { break }
                    node = Int(nx); j += 1
                }
            }
            return found
        }
    }

    /// Splits out special tokens (llama.cpp's `tokenizer_st_partition`): for each special token,
    /// longest first, every occurrence in the remaining text fragments becomes a token fragment.
    func partition(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        var frags: [Fragment] = [.text(0, bytes.count)]
        let trie = parseSpecial ? specialTrieAll : specialTrieUser
        let present = trie.present(in: bytes)
        if present.isEmpty { return frags }
        for id in trie.ordered where present.contains(id) {
            let tok = tokenBytes[Int(id)]
            let attr = attrs[Int(id)]
            var next: [Fragment] = []
            next.reserveCapacity(frags.count + 4)
            for f in frags {
                guard case let .text(s0, e0) = f else { next.append(f); continue }
                var s = s0
                while true {
                    guard let m = find(tok, in: bytes, from: s, to: e0) else {
                        if s < e0 { next.append(.text(s, e0)) }
                        break
                    }
                    var leftEnd = m
                    if attr.contains(.lstrip) { while leftEnd > s && isCSpace(bytes[leftEnd - 1]) { leftEnd -= 1 } }
                    if leftEnd > s { next.append(.text(s, leftEnd)) }
                    next.append(.token(id))
                    var r = m + tok.count
                    if attr.contains(.rstrip) { while r < e0 && isCSpace(bytes[r]) { r += 1 } }
                    if r >= e0 { break }
                    s = r
                }
            }
            frags = next
        }
        return frags
    }

    @inline(__always) private func isCSpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    private func find(_ needle: [UInt8], in h: [UInt8], from: Int, to: Int) -> Int? {
        let n = needle.count
        guard n > 0, to - from >= n else { return nil }
        let first = needle[0]
        var i = from
        while i + n <= to {
            if h[i] == first {
                var k = 1
                while k < n && h[i + k] == needle[k] { k += 1 }
                if k == n { return i }
            }
            i += 1
        }
        return nil
    }

    // MARK: decoding

    /// The text of one token as llama.cpp's `token_to_piece` (no leading-space strip). Control and
    /// unknown tokens give "" unless `special` is true.
    public func piece(_ id: Int32, special: Bool = false) -> [UInt8] {
        guard id >= 0, Int(id) < count else { return [] }
        let a = attrs[Int(id)]
        if !special && !a.intersection([.unknown, .control]).isEmpty { return [] }
        let text = tokenBytes[Int(id)]
        if !a.intersection([.unknown, .control, .userDefined]).isEmpty { return text }
        if a.contains(.normal) {
            if kind == .sentencePiece { return Tokenizer.unescapeSpaces(text) }
            var out: [UInt8] = []
            var cpts: [UInt32] = []
            text.withUnsafeBufferPointer { cpts = UTF8Util.codepoints($0) }
            for c in cpts {
                if let b = ByteLevel.byte(forCpt: c) { out.append(b) } else {
                    var u: [UInt8] = []; UTF8Util.append(c, to: &u)
                    out.append(contentsOf: Array("[UNK_BYTE_0x".utf8))
                    for x in u { out.append(contentsOf: Array(String(x, radix: 16).leftPadded(2).utf8)) }
                    out.append(contentsOf: text); out.append(0x5D)
                }
            }
            return out
        }
        if a.contains(.byte) {
            if text.count >= 5, let v = UInt8(String(decoding: text[3..<5], as: UTF8.self), radix: 16) { return [v] }
            return []
        }
        return []
    }

    static func unescapeSpaces(_ t: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(t.count)
        var i = 0
        while i < t.count {
            if i + 2 < t.count && t[i] == 0xE2 && t[i + 1] == 0x96 && t[i + 2] == 0x81 { out.append(0x20); i += 3 } else {
                out.append(t[i]); i += 1
            }
        }
        return out
    }

    /// Decodes ids to text as llama.cpp's `llama_detokenize(remove_special, unparse_special)`.
    public func decode(_ ids: [Int32], removeSpecial: Bool = false, unparseSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, removeSpecial: removeSpecial, unparseSpecial: unparseSpecial), as: UTF8.self)
    }

    /// `decode` returning raw bytes (a token may hold part of a UTF-8 sequence).
    public func decodeBytes(_ ids: [Int32], removeSpecial: Bool = false, unparseSpecial: Bool = false) -> [UInt8] {
        var toks = ids[...]
        var removeSpace = addSpacePrefix
        if removeSpecial && addBos, let f = toks.first, f == bosId { removeSpace = false; toks = toks.dropFirst() }
        if removeSpecial && addEos, let l = toks.last, l == eosId { toks = toks.dropLast() }
        var text: [UInt8] = []
        for id in toks {
            var p = piece(id, special: unparseSpecial)
            if removeSpace, p.first == 0x20 { p.removeFirst() }
            removeSpace = false
            text.append(contentsOf: p)
        }
        guard cleanSpaces, !text.isEmpty else { return text }
        // pass 1: " ?", " !", " .", " ," lose the space
        var t1: [UInt8] = [text[0]]
        for i in 1..<text.count {
            let x = text[i]
            if text[i - 1] == 0x20 && (x == 0x3F || x == 0x21 || x == 0x2E || x == 0x2C) { t1.removeLast() }
            t1.append(x)
        }
        // pass 2: " ' " → "'"
        var t2: [UInt8] = [t1[0]]
        var i = 1
        while i < t1.count {
            let x = t1[i]
            if x == 0x27 && i + 1 < t1.count && t1[i - 1] == 0x20 && t1[i + 1] == 0x20 {
                t2.removeLast(); t2.append(x); i += 2; continue
            }
            t2.append(x); i += 1
        }
        // pass 3: " 's", " 'm", " 're", " 've" lose the space
        var t3: [UInt8] = [t2[0]]
        for i in 1..<t2.count {
            let x = t2[i]
            if t2[i - 1] == 0x20 && x == 0x27 && i + 1 < t2.count {
                let x1 = t2[i + 1]
                if x1 == 0x73 || x1 == 0x6D { t3.removeLast() }
                else if i + 2 < t2.count {
                    let x2 = t2[i + 2]
                    if (x1 == 0x72 && x2 == 0x65) || (x1 == 0x76 && x2 == 0x65) { t3.removeLast() }
                }
            }
            t3.append(x)
        }
        return t3
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

// MARK: - SentencePiece session (llm_tokenizer_spm_session)

struct SPMSession {
    let tok: Tokenizer
    struct Sym { var prev: Int32; var next: Int32; var start: Int32; var n: Int32 }
    struct Bigram: HeapItem {
        var left: Int32; var right: Int32; var score: Float; var size: Int32
        // llm_bigram_spm::comparator: highest score first, then leftmost
        @inline(__always) static func before(_ a: Bigram, _ b: Bigram) -> Bool {
            a.score > b.score || (a.score == b.score && a.left < b.left)
        }
    }
    var symbols: [Sym] = []
    var queue = Heap<Bigram>()

    init(_ t: Tokenizer) { tok = t }

    mutating func tokenize(_ text: [UInt8], _ out: inout [Int32]) {
        symbols.removeAll(keepingCapacity: true)
        queue.removeAll()
        if text.isEmpty { return }
        text.withUnsafeBufferPointer { tb in
            let base = tb.baseAddress!
            var offs = 0
            var index: Int32 = 0
            while offs < tb.count {
                let len = min(UTF8Util.seqLen(tb[offs]), tb.count - offs)
                let nextOffs = offs + len
                symbols.append(Sym(prev: index - 1, next: nextOffs == tb.count ? -1 : index + 1, start: Int32(offs), n: Int32(len)))
                offs = nextOffs
                index += 1
            }
            for i in 1..<max(1, symbols.count) { tryAdd(Int32(i - 1), Int32(i), base) }
            while !queue.isEmpty {
                let bg = queue.pop()
                let l = Int(bg.left), r = Int(bg.right)
                if symbols[l].n == 0 || symbols[r].n == 0 || symbols[l].n + symbols[r].n != bg.size { continue }
                symbols[l].n += symbols[r].n
                symbols[r].n = 0
                symbols[l].next = symbols[r].next
                if symbols[r].next >= 0 { symbols[Int(symbols[r].next)].prev = bg.left }
                tryAdd(symbols[l].prev, bg.left, base)
                tryAdd(bg.left, symbols[l].next, base)
            }
            var i: Int32 = 0
            while i != -1 {
                let s = symbols[Int(i)]
                let id = tok.lookup(base + Int(s.start), Int(s.n))
                if id >= 0 { out.append(id) } else {
                    // byte fallback (llama.cpp throws when a vocabulary has no byte tokens; use <unk> then)
                    for j in 0..<Int(s.n) {
                        let b = tb[Int(s.start) + j]
                        let t = tok.byteTokenSPM[Int(b)]
                        if t >= 0 { out.append(t) } else if let u = tok.unknownId { out.append(u) }
                    }
                }
                i = s.next
            }
        }
    }

    @inline(__always) mutating func tryAdd(_ left: Int32, _ right: Int32, _ base: UnsafePointer<UInt8>) {
        if left == -1 || right == -1 { return }
        let l = symbols[Int(left)], r = symbols[Int(right)]
        let size = Int(l.n + r.n)
        let id = tok.lookup(base + Int(l.start), size)
        if id < 0 { return }
        queue.push(Bigram(left: left, right: right, score: tok.scores[Int(id)], size: Int32(size)))
    }
}

// MARK: - BPE session (llm_tokenizer_bpe_session)

struct BPESession {
    let tok: Tokenizer
    struct Sym { var prev: Int32; var next: Int32; var start: Int32; var n: Int32; var text: Int32 }
    struct Bigram: HeapItem {
        var left: Int32; var right: Int32; var lt: Int32; var rt: Int32; var rank: Int32; var result: Int32
        // llm_bigram_bpe::comparator: lowest rank first, then leftmost
        @inline(__always) static func before(_ a: Bigram, _ b: Bigram) -> Bool {
            a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
        }
    }
    var symbols: [Sym] = []
    var queue = Heap<Bigram>()
    var cache: [[UInt8]: [Int32]] = [:]
    var word: [UInt8] = []

    init(_ t: Tokenizer) { tok = t }

    mutating func tokenize(_ bytes: [UInt8], _ s: Int, _ e: Int, _ out: inout [Int32]) {
        guard let pre = tok.pre else { return }
        let cpts: [UInt32] = bytes.withUnsafeBufferPointer { b in
            UTF8Util.codepoints(UnsafeBufferPointer(rebasing: b[s..<e]))
        }
        cpts.withUnsafeBufferPointer { cp in
            let lens = pre.split(cp)
            var start = 0
            for len in lens {
                word.removeAll(keepingCapacity: true)
                for k in start..<(start + len) {
                    let c = cp[k]
                    if pre.byteEncode {
                        var u: [UInt8] = []
                        UTF8Util.append(c, to: &u)
                        for b in u { word.append(contentsOf: ByteLevel.byteToUTF8[Int(b)]) }
                    } else {
                        UTF8Util.append(c, to: &word)
                    }
                }
                start += len
                if let hit = cache[word] { out.append(contentsOf: hit); continue }
                var ids: [Int32] = []
                tokenizeWord(word, &ids, byteEncode: pre.byteEncode)
                if cache.count < 200_000 { cache[word] = ids }
                out.append(contentsOf: ids)
            }
        }
    }

    mutating func tokenizeWord(_ w: [UInt8], _ out: inout [Int32], byteEncode: Bool) {
        symbols.removeAll(keepingCapacity: true)
        queue.removeAll()
        w.withUnsafeBufferPointer { wb in
            let base = wb.baseAddress!
            if tok.ignoreMerges {
                let id = tok.lookup(base, wb.count)
                if id >= 0 { out.append(id); return }
            }
            var offs = 0
            var index: Int32 = 0
            while offs < wb.count {
                let len = min(UTF8Util.seqLen(wb[offs]), wb.count - offs)
                let t = tok.texts.find(base + offs, len)
                let nextOffs = offs + len
                symbols.append(Sym(prev: index - 1, next: nextOffs == wb.count ? -1 : index + 1, start: Int32(offs),
                                   n: Int32(len), text: Int32(t)))
                offs = nextOffs
                index += 1
            }
            for i in 1..<max(1, symbols.count) { addBigram(Int32(i - 1), Int32(i)) }
            while !queue.isEmpty {
                let bg = queue.pop()
                let l = Int(bg.left), r = Int(bg.right)
                if symbols[l].n == 0 || symbols[r].n == 0 { continue }
                if symbols[l].text != bg.lt || symbols[r].text != bg.rt { continue }
                symbols[l].n += symbols[r].n
                symbols[l].text = bg.result
                symbols[r].n = 0
                symbols[l].next = symbols[r].next
                if symbols[r].next >= 0 { symbols[Int(symbols[r].next)].prev = bg.left }
                addBigram(symbols[l].prev, bg.left)
                addBigram(bg.left, symbols[l].next)
            }
            for sym in symbols where sym.n > 0 {
                let id = sym.text >= 0 ? tok.textToToken[Int(sym.text)] : -1
                if id >= 0 { out.append(id); continue }
                for j in 0..<Int(sym.n) {
                    let b = wb[Int(sym.start) + j]
                    var t: Int32 = -1
                    if byteEncode {
                        t = withUnsafePointer(to: b) { tok.lookup($0, 1) }
                    } else {
                        let hex = Array("0123456789ABCDEF".utf8)
                        let s: [UInt8] = [0x3C, 0x30, 0x78, hex[Int(b >> 4)], hex[Int(b & 15)], 0x3E]
                        t = s.withUnsafeBufferPointer { tok.lookup($0.baseAddress!, 6) }
                    }
                    if t >= 0 { out.append(t) }
                }
            }
        }
    }

    @inline(__always) mutating func addBigram(_ left: Int32, _ right: Int32) {
        if left == -1 || right == -1 { return }
        let lt = symbols[Int(left)].text, rt = symbols[Int(right)].text
        if lt < 0 || rt < 0 { return }
        guard let v = tok.pairs[UInt64(lt) << 32 | UInt64(rt)] else { return }
        queue.push(Bigram(left: left, right: right, lt: lt, rt: rt, rank: Int32(v >> 32), result: Int32(truncatingIfNeeded: v)))
    }
}

extension Tokenizer {
    /// Loads the tokenizer of a Hugging Face checkpoint folder (tokenizer.model for SentencePiece,
    /// tokenizer.json for byte-level BPE) through the same metadata llama.cpp's converter would write,
    /// so that encoding matches llama.cpp on the converted GGUF. `recipe` defaults to the one for
    /// config.json's architecture; `forcedPre` overrides pre-tokenizer detection.
    public convenience init(hfDirectory dir: URL, recipe: HFVocabConverter.Recipe? = nil, forcedPre: String? = nil) throws {
        let meta: MetaEntries
        if let r = recipe {
            meta = try HFVocabConverter.metadata(modelDir: dir, recipe: r, forcedPre: forcedPre)
        } else {
            meta = try HFVocabConverter.metadata(modelDir: dir, forcedPre: forcedPre)
        }
        try self.init(vocab: TokenizerVocab(metadata: meta))
    }
}
