// BPE pre-tokenization (splitting text into words) as llama.cpp's `unicode_regex_split` does it
// for each `tokenizer.ggml.pre` type (src/llama-vocab.cpp `llm_tokenizer_bpe`, src/unicode.cpp).
// The regexes llama.cpp runs through std::regex on its "collapsed" text are implemented here by
// hand with the same character-class semantics; its custom fast paths are ported one to one.

/// One splitting pass. Each pass refines the word boundaries of the previous one.
enum SplitStep {
    /// llama.cpp custom: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
    case gpt2
    /// llama.cpp custom: (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    case llama3
    /// llama.cpp custom: as llama3 with \p{N} (single digits).
    case qwen2
    /// llama.cpp custom: as qwen2 with [\p{L}\p{M}]+ letter runs.
    case qwen35
    /// Regex `X+` over a collapsed character class.
    case run(CharClass)
    /// Regex `X` (one code point) over a collapsed character class.
    case single(CharClass)
    /// Regex `X{1,3}`.
    case runMax3(CharClass)
    /// Regex `\s?X+`.
    case optSpaceRun(CharClass)
    /// Regex `[0-9][0-9][0-9]`.
    case asciiDigits3
    /// Regex `[^\n]+|[\n]+` (llama.cpp custom).
    case newlines
}

/// Character classes as they behave in llama.cpp's collapsed std::regex matching: ASCII code
/// points match by their ASCII meaning, others by their llama.cpp category (whitespace first).
enum CharClass {
    case number          // \p{N}
    case letter          // \p{L}
    case punctuation     // \p{P}
    case defaultPunct    // [\p{P}\$\+<=>\^~\|]
    case falconPunct     // [\p{P}\$\+<=>\^~\|`]
    case crlf            // [\r\n]
    case cjk             // [一-龥ࠀ-一가-퟿]

    @inline(__always) func matches(_ c: UInt32) -> Bool {
        switch self {
        case .crlf: return c == 0x0A || c == 0x0D
        case .cjk: return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0x4E00) || (c >= 0xAC00 && c <= 0xD7FF)
        default: break
        }
        if c < 128 {
            let a = UInt8(c)
            switch self {
            case .number: return a >= 0x30 && a <= 0x39
            case .letter: return (a >= 0x41 && a <= 0x5A) || (a >= 0x61 && a <= 0x7A)
            case .punctuation: return CharClass.asciiPunct(a)
            case .defaultPunct: return CharClass.asciiPunct(a) || "$+<=>^~|".utf8.contains(a)
            case .falconPunct: return CharClass.asciiPunct(a) || "$+<=>^~|`".utf8.contains(a)
            default: return false
            }
        }
        let f = UnicodeTable.flags(c)
        if f.isWhitespace { return false }
        switch self {
        case .number: return f.category == CptFlags.number
        case .letter: return f.category == CptFlags.letter
        case .punctuation, .defaultPunct, .falconPunct: return f.category == CptFlags.punctuation
        default: return false
        }
    }

    /// ASCII code points llama.cpp's collapsed regex treats as \p{P}: !-#%-*,-/:-;?-@[-]_{}
    @inline(__always) static func asciiPunct(_ a: UInt8) -> Bool {
        switch a {
        case 0x21...0x23, 0x25...0x2A, 0x2C...0x2F, 0x3A...0x3B, 0x3F...0x40, 0x5B...0x5D, 0x5F, 0x7B, 0x7D: return true
        default: return false
        }
    }
}

/// A BPE pre-tokenizer: the split passes for one `tokenizer.ggml.pre` value.
struct PreTokenizer {
    let steps: [SplitStep]
    /// Whether words are mapped to GPT-2 byte-level code points before BPE.
    let byteEncode: Bool

    /// The passes llama.cpp uses for a pre-tokenizer type name; nil when not implemented here.
    static func forPre(_ pre: String) -> PreTokenizer? {
        switch pre {
        case "", "default":
            return PreTokenizer(steps: [.run(.defaultPunct), .gpt2, .run(.number), .asciiDigits3], byteEncode: true)
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano",
             "dbrx", "smaug-bpe", "glm4", "chatglm-bpe":
            return PreTokenizer(steps: [.llama3], byteEncode: true)
        case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "solar-open", "megrez", "grok-2":
            return PreTokenizer(steps: [.qwen2], byteEncode: true)
        case "qwen35":
            return PreTokenizer(steps: [.qwen35], byteEncode: true)
        case "laguna":
            return PreTokenizer(steps: [.newlines, .qwen2], byteEncode: true)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2":
            return PreTokenizer(steps: [.single(.number), .gpt2], byteEncode: true)
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "modern-bert", "exaone4", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais",
             "trillion", "granite-docling":
            return PreTokenizer(steps: [.gpt2], byteEncode: true)
        case "falcon":
            return PreTokenizer(steps: [.run(.falconPunct), .gpt2, .asciiDigits3], byteEncode: true)
        case "deepseek-coder":
            return PreTokenizer(steps: [.single(.crlf), .optSpaceRun(.letter), .optSpaceRun(.punctuation), .run(.cjk),
                                        .single(.number)], byteEncode: true)
        default:
            return nil
        }
    }

    /// The pre-tokenizer names this module can encode with.
    static let supportedNames: [String] = [
        "default", "llama-bpe", "llama3", "qwen2", "qwen35", "smollm", "gpt-2", "deepseek-coder", "falcon", "laguna",
        "starcoder", "refact", "command-r", "dbrx", "smaug-bpe", "stablelm2", "mpt", "olmo", "phi-2",
    ]

    /// Splits code points into words; returns the word lengths in code points.
    func split(_ cpts: UnsafeBufferPointer<UInt32>) -> [Int] {
        var offsets = [cpts.count]
        for step in steps {
            offsets = PreTokenizer.apply(step, cpts, offsets)
        }
        return offsets
    }

    static func apply(_ step: SplitStep, _ cpts: UnsafeBufferPointer<UInt32>, _ offsets: [Int]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(offsets.count * 2)
        var start = 0
        for len in offsets {
            let ini = start, end = start + len
            start = end
            switch step {
            case .gpt2: splitGPT2(cpts, ini, end, &out)
            case .llama3: splitLlama3(cpts, ini, end, &out, digits3: true, marks: false)
            case .qwen2: splitLlama3(cpts, ini, end, &out, digits3: false, marks: false)
            case .qwen35: splitLlama3(cpts, ini, end, &out, digits3: false, marks: true)
            case .newlines:
                var pos = ini
                while pos < end {
                    let nl = cpts[pos] == 0x0A
                    let s = pos
                    while pos < end && (cpts[pos] == 0x0A) == nl { pos += 1 }
                    out.append(pos - s)
                }
            default:
                regexSplit(step, cpts, ini, end, &out)
            }
        }
        return out
    }

    /// std::regex-style splitting (unicode_regex_split_stl): matches and the gaps between them become words.
    static func regexSplit(_ step: SplitStep, _ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int]) {
        var prev = ini
        var pos = ini
        @inline(__always) func emit(_ ms: Int, _ me: Int) {
            if ms > prev { out.append(ms - prev) }
            out.append(me - ms)
            prev = me
        }
        while pos < end {
            switch step {
            case .run(let cls):
                if cls.matches(c[pos]) {
                    var e = pos + 1
                    while e < end && cls.matches(c[e]) { e += 1 }
                    emit(pos, e); pos = e
                } else { pos += 1 }
            case .single(let cls):
                if cls.matches(c[pos]) { emit(pos, pos + 1) }
                pos += 1
            case .runMax3(let cls):
                if cls.matches(c[pos]) {
                    var e = pos + 1
                    while e < end && e - pos < 3 && cls.matches(c[e]) { e += 1 }
                    emit(pos, e); pos = e
                } else { pos += 1 }
            case .optSpaceRun(let cls):
                var s = pos
                if UnicodeTable.flags(c[pos]).isWhitespace && pos + 1 < end && cls.matches(c[pos + 1]) { s = pos + 1 }
                if cls.matches(c[s]) {
                    var e = s + 1
                    while e < end && cls.matches(c[e]) { e += 1 }
                    emit(pos, e); pos = e
                } else { pos += 1 }
            case .asciiDigits3:
                @inline(__always) func dig(_ i: Int) -> Bool { c[i] >= 0x30 && c[i] <= 0x39 }
                if pos + 2 < end && dig(pos) && dig(pos + 1) && dig(pos + 2) { emit(pos, pos + 3); pos += 3 } else { pos += 1 }
            default:
                pos = end
            }
        }
        if prev < end { out.append(end - prev) }
    }

    // MARK: custom splitters (ports of unicode.cpp's unicode_regex_split_custom_*)

    static let outOfRange: UInt32 = 0xFFFF_FFFF

    static func splitGPT2(_ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int]) {
        @inline(__always) func cpt(_ p: Int) -> UInt32 { (p >= ini && p < end) ? c[p] : outOfRange }
        @inline(__always) func flags(_ p: Int) -> CptFlags { (p >= ini && p < end) ? UnicodeTable.flags(c[p]) : CptFlags(raw: 0) }
        var prevEnd = ini
        @inline(__always) func add(_ e: Int) -> Int {
            let len = e - prevEnd
            if len > 0 { out.append(len) }
            prevEnd = e
            return len
        }
        var pos = ini
        while pos < end {
            let cp = cpt(pos)
            let f = flags(pos)
            if cp == 0x27 && pos + 1 < end {
                let n = cpt(pos + 1)
                if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 { pos += add(pos + 2); continue }
                if pos + 2 < end {
                    let nn = cpt(pos + 2)
                    if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) {
                        pos += add(pos + 3); continue
                    }
                }
            }
            var f2 = cp == 0x20 ? flags(pos + 1) : f
            if f2.isLetter {
                if cp == 0x20 { pos += 1 }
                while f2.isLetter { pos += 1; f2 = flags(pos) }
                _ = add(pos); continue
            }
            if f2.isNumber {
                if cp == 0x20 { pos += 1 }
                while f2.isNumber { pos += 1; f2 = flags(pos) }
                _ = add(pos); continue
            }
            if !(f2.isWhitespace || f2.isLetter || f2.isNumber) && !f2.isZero {
                if cp == 0x20 { pos += 1 }
                while !(f2.isWhitespace || f2.isLetter || f2.isNumber) && !f2.isZero { pos += 1; f2 = flags(pos) }
                _ = add(pos); continue
            }
            var nws = 0
            while flags(pos + nws).isWhitespace { nws += 1 }
            if nws > 1 && cpt(pos + nws) != outOfRange {
                pos += nws - 1; _ = add(pos); continue
            }
            if nws > 0 { pos += nws; _ = add(pos); continue }
            pos += 1; _ = add(pos)
        }
    }

    /// llama3 (digits3 = true), qwen2 (digits3 = false) and qwen35 (marks = true) splitters.
    static func splitLlama3(_ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int],
                            digits3: Bool, marks: Bool) {
        @inline(__always) func cpt(_ p: Int) -> UInt32 { (p >= ini && p < end) ? c[p] : outOfRange }
        @inline(__always) func flags(_ p: Int) -> CptFlags { (p >= ini && p < end) ? UnicodeTable.flags(c[p]) : CptFlags(raw: 0) }
        @inline(__always) func wordish(_ f: CptFlags) -> Bool { f.isLetter || (marks && f.isAccentMark) }
        var prevEnd = ini
        @inline(__always) func add(_ e: Int) -> Int {
            let len = e - prevEnd
            if len > 0 { out.append(len) }
            prevEnd = e
            return len
        }
        var pos = ini
        while pos < end {
            let cp = cpt(pos)
            let f = flags(pos)
            if cp == 0x27 && pos + 1 < end {
                let n = UnicodeTable.toLowerASCII(cpt(pos + 1))
                if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 { pos += add(pos + 2); continue }
                if pos + 2 < end {
                    let nn = UnicodeTable.toLowerASCII(cpt(pos + 2))
                    if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) {
                        pos += add(pos + 3); continue
                    }
                }
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(cp == 0x0D || cp == 0x0A || f.isNumber) {
                if wordish(f) || wordish(flags(pos + 1)) {
                    pos += 1
                    while wordish(flags(pos)) { pos += 1 }
                    _ = add(pos); continue
                }
            }
            if f.isNumber {
                if digits3 {
                    var s = pos
                    while flags(pos).isNumber {
                        pos += 1
                        if pos - s >= 3 { _ = add(pos); s = pos }
                    }
                    _ = add(pos)
                } else {
                    pos += 1; _ = add(pos)
                }
                continue
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*
            var f2 = cp == 0x20 ? flags(pos + 1) : f
            @inline(__always) func other(_ x: CptFlags) -> Bool {
                !(x.isWhitespace || x.isLetter || x.isNumber || (marks && x.isAccentMark))
            }
            if other(f2) && !f.isZero {
                if cp == 0x20 { pos += 1 }
                while other(f2) && !f2.isZero { pos += 1; f2 = flags(pos) }
                var c2 = cpt(pos)
                while c2 == 0x0D || c2 == 0x0A { pos += 1; c2 = cpt(pos) }
                _ = add(pos); continue
            }
            var nws = 0
            var lastRN = 0
            while flags(pos + nws).isWhitespace {
                let c2 = cpt(pos + nws)
                if c2 == 0x0D || c2 == 0x0A { lastRN = pos + nws + 1 }
                nws += 1
            }
            if lastRN > 0 { pos = lastRN; _ = add(pos); continue }
            if nws > 1 && cpt(pos + nws) != outOfRange { pos += nws - 1; _ = add(pos); continue }
            if nws > 0 { pos += nws; _ = add(pos); continue }
            pos += 1; _ = add(pos)
        }
    }
}
