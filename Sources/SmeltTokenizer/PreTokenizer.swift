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
    /// Regex `\s+$` (whitespace that ends the word).
    case trailingSpace
    /// Regex ` ?[^(\s|.,!?…。，、।۔،)]+` (bloom, poro-chat, gpt3-finnish, viking).
    case bloomWord
    /// llama.cpp's adapted gpt-4o / tekken regexes (case-split letter runs via lookaheads), run by
    /// std::regex on collapsed text: non-ASCII letters count as both upper and lower case.
    case caseSplit(contractions: Bool, maxDigits: Int)
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
    case deepseekLetters // deepseek-llm's literal letter class [A-Za-zµÀ-Ö...]
    case deepseekPunct   // [!-/:-~！-／：-～‘-‟　-。]

    @inline(__always) func matches(_ c: UInt32) -> Bool {
        // Literal classes run through std::wregex on text where non-ASCII whitespace was replaced
        // by U+000B, so such code points never match them.
        switch self {
        case .crlf: return c == 0x0A || c == 0x0D
        case .cjk:
            if c > 0x7F && UnicodeTable.flags(c).isWhitespace { return false }
            return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0x4E00) || (c >= 0xAC00 && c <= 0xD7FF)
        case .deepseekLetters:
            if c > 0x7F && UnicodeTable.flags(c).isWhitespace { return false }
            return CharClass.inRanges(c, CharClass.deepseekLetterRanges)
        case .deepseekPunct:
            if c > 0x7F && UnicodeTable.flags(c).isWhitespace { return false }
            return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F)
                || (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002)
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

    static func inRanges(_ c: UInt32, _ r: [ClosedRange<UInt32>]) -> Bool {
        var lo = 0, hi = r.count - 1
        while lo <= hi {
            let m = (lo + hi) >> 1
            if c < r[m].lowerBound { hi = m - 1 } else if c > r[m].upperBound { lo = m + 1 } else { return true }
        }
        return false
    }

    /// The letter class of llama.cpp's deepseek-llm regex (src/llama-vocab.cpp), as sorted ranges.
    static let deepseekLetterRanges: [ClosedRange<UInt32>] = {
        let r: [ClosedRange<UInt32>] = [0x41...0x5A, 0x61...0x7A, 0xB5...0xB5, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x1BA, 0x1BC...0x1BF, 0x1C4...0x293, 0x295...0x2AF, 0x370...0x373, 0x376...0x376, 0x377...0x377, 0x37B...0x37D, 0x37F...0x37F, 0x386...0x386, 0x388...0x38A, 0x38C...0x38C, 0x38E...0x3A1, 0x3A3...0x3F5, 0x3F7...0x481, 0x48A...0x52F, 0x531...0x556, 0x10A0...0x10C5, 0x13A0...0x13F5, 0x13F8...0x13FD, 0x1C90...0x1CBA, 0x1CBD...0x1CBF, 0x1D00...0x1D2B, 0x1D6B...0x1D77, 0x1D79...0x1D9A, 0x1E00...0x1F15, 0x1F18...0x1F1D, 0x1F20...0x1F45, 0x1F48...0x1F4D, 0x1F50...0x1F57, 0x1F59...0x1F59, 0x1F5B...0x1F5B, 0x1F5D...0x1F5D, 0x1F5F...0x1F7D, 0x1F80...0x1FB4, 0x1FB6...0x1FBC, 0x1FBE...0x1FBE, 0x1FC2...0x1FC4, 0x1FC6...0x1FCC, 0x1FD0...0x1FD3, 0x1FD6...0x1FDB, 0x1FE0...0x1FEC, 0x1FF2...0x1FF4, 0x1FF6...0x1FFC, 0x2102...0x2102, 0x2107...0x2107, 0x210A...0x2113, 0x2115...0x2115, 0x2119...0x211D, 0x2124...0x2124, 0x2126...0x2126, 0x2128...0x2128, 0x212A...0x212D, 0x212F...0x2134, 0x2139...0x2139, 0x213C...0x213F, 0x2145...0x2149, 0x214E...0x214E, 0x2183...0x2183, 0x2184...0x2184, 0x2C00...0x2C7B, 0x2C7E...0x2CE4, 0x2CEB...0x2CEE, 0x2CF2...0x2CF2, 0x2CF3...0x2CF3, 0xA640...0xA66D, 0xA680...0xA69B, 0xA722...0xA76F, 0xA771...0xA787, 0xA78B...0xA78E, 0xAB70...0xABBF, 0xFB00...0xFB06, 0xFB13...0xFB17, 0xFF21...0xFF3A, 0xFF41...0xFF5A, 0x10400...0x1044F, 0x104B0...0x104D3, 0x104D8...0x104FB, 0x10C80...0x10CB2, 0x10CC0...0x10CF2, 0x118A0...0x118DF, 0x1E900...0x1E943]
        return r.sorted { $0.lowerBound < $1.lowerBound }
    }()

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
        case "gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2":
            return PreTokenizer(steps: [.caseSplit(contractions: true, maxDigits: 3)], byteEncode: true)
        case "tekken":
            return PreTokenizer(steps: [.caseSplit(contractions: false, maxDigits: 1)], byteEncode: true)
        case "bloom", "poro-chat", "gpt3-finnish":
            return PreTokenizer(steps: [.bloomWord], byteEncode: true)
        case "viking":
            return PreTokenizer(steps: [.bloomWord, .single(.number)], byteEncode: true)
        case "deepseek-llm":
            return PreTokenizer(steps: [.single(.crlf), .optSpaceRun(.deepseekLetters), .optSpaceRun(.deepseekPunct),
                                        .trailingSpace, .run(.cjk), .run(.number)], byteEncode: true)
        case "deepseek-coder":
            return PreTokenizer(steps: [.single(.crlf), .optSpaceRun(.letter), .optSpaceRun(.punctuation), .run(.cjk),
                                        .single(.number)], byteEncode: true)
        default:
            return nil
        }
    }

    /// The pre-tokenizer names this module can encode with.
    static let supportedNames: [String] = [
        "default", "llama-bpe", "llama3", "qwen2", "qwen35", "smollm", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon", "laguna", "bloom", "poro-chat", "gpt3-finnish", "viking", "gpt-4o", "llama4", "tekken",
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
            case let .caseSplit(contractions, maxDigits):
                splitCaseRegex(cpts, ini, end, &out, contractions: contractions, maxDigits: maxDigits)
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
            case .trailingSpace:
                if UnicodeTable.flags(c[pos]).isWhitespace {
                    var e = pos + 1
                    while e < end && UnicodeTable.flags(c[e]).isWhitespace { e += 1 }
                    if e == end { emit(pos, e) }
                    pos = e
                } else { pos += 1 }
            case .bloomWord:
                @inline(__always) func inWord(_ x: UInt32) -> Bool {
                    if UnicodeTable.flags(x).isWhitespace { return false }
                    switch x {
                    case 0x28, 0x7C, 0x2E, 0x2C, 0x21, 0x3F, 0x2026, 0x3002, 0xFF0C, 0x3001, 0x0964, 0x06D4, 0x060C, 0x29: return false
                    default: return true
                    }
                }
                var st = pos
                if c[pos] == 0x20 && pos + 1 < end && inWord(c[pos + 1]) { st = pos + 1 }
                if inWord(c[st]) {
                    var e = st + 1
                    while e < end && inWord(c[e]) { e += 1 }
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

    // MARK: collapsed-text classes (std::regex on llama.cpp's collapsed text)

    @inline(__always) static func cWS(_ c: UInt32) -> Bool {
        c < 128 ? (c == 0x20 || (c >= 0x09 && c <= 0x0D)) : UnicodeTable.flags(c).isWhitespace
    }
    @inline(__always) static func cL(_ c: UInt32) -> Bool { CharClass.letter.matches(c) }
    @inline(__always) static func cN(_ c: UInt32) -> Bool { CharClass.number.matches(c) }

    /// `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|...)?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:...)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// with ECMAScript backtracking order (gpt-4o family; tekken without contractions and with \p{N}).
    static func splitCaseRegex(_ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int],
                               contractions: Bool, maxDigits: Int) {
        @inline(__always) func up(_ i: Int) -> Bool { i < end && cL(c[i]) && !(c[i] >= 0x61 && c[i] <= 0x7A) }
        @inline(__always) func lo(_ i: Int) -> Bool { i < end && cL(c[i]) && !(c[i] >= 0x41 && c[i] <= 0x5A) }
        @inline(__always) func contraction(_ e: Int) -> Int {
            // (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?
            guard contractions, e + 1 < end, c[e] == 0x27 else { return e }
            let a = UnicodeTable.toLowerASCII(c[e + 1])
            if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return e + 2 }
            if e + 2 < end {
                let b = UnicodeTable.toLowerASCII(c[e + 2])
                if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return e + 3 }
            }
            return e
        }
        var pos = ini
        while pos < end {
            let c0 = c[pos]
            var e = -1
            // letter alternatives, with an optional leading [^\r\n\p{L}\p{N}]
            var s = -1
            if cL(c0) { s = pos }
            else if !(c0 == 0x0D || c0 == 0x0A || cN(c0)) && pos + 1 < end && cL(c[pos + 1]) { s = pos + 1 }
            if s >= 0 {
                var maxU = 0
                while up(s + maxU) { maxU += 1 }
                var k = maxU
                while k >= 0 && !lo(s + k) { k -= 1 }
                if k >= 0 {
                    var x = s + k + 1
                    while lo(x) { x += 1 }
                    e = contraction(x)
                } else if up(s) {
                    var x = s + 1
                    while up(x) { x += 1 }
                    while lo(x) { x += 1 }
                    e = contraction(x)
                }
            }
            if e < 0 && cN(c0) {
                var x = pos + 1
                while x < end && x - pos < maxDigits && cN(c[x]) { x += 1 }
                e = x
            }
            if e < 0 {
                @inline(__always) func other(_ i: Int) -> Bool { i < end && !cWS(c[i]) && !cL(c[i]) && !cN(c[i]) }
                var st = pos
                if c0 == 0x20 && other(pos + 1) { st = pos + 1 }
                if other(st) {
                    var x = st + 1
                    while other(x) { x += 1 }
                    while x < end && (c[x] == 0x0D || c[x] == 0x0A || c[x] == 0x2F) { x += 1 }
                    e = x
                }
            }
            if e < 0 && cWS(c0) {
                var r = pos
                var lastRN = -1
                while r < end && cWS(c[r]) {
                    if c[r] == 0x0D || c[r] == 0x0A { lastRN = r }
                    r += 1
                }
                if lastRN >= 0 { e = lastRN + 1 }
                else if r - pos > 1 && r < end { e = r - 1 }
                else { e = r }
            }
            if e <= pos { e = pos + 1 }
            out.append(e - pos)
            pos = e
        }
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
