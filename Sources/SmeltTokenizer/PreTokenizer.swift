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
    /// The llama3 regex shape with \p{N}{1,maxDigits} (Int.max: \p{N}+) and, when `punctNewlines`
    /// is false, no [\r\n]* after punctuation (std::regex in llama.cpp; same rules as its custom code).
    case llama3Like(maxDigits: Int, punctNewlines: Bool, cascade: Bool = false)
    /// deepseek-v3's third regex: [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
    /// ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ (std::regex on collapsed text).
    case deepseekV3
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
    /// llama.cpp's custom AFMoE digit grouping (also used for tiny_aya's `\d{1,3}(?=(?:\d{3})*\b)`):
    /// a digit run is split into its len % 3 leading digits, then groups of 3; the text before a
    /// run stays attached to its first group, as in unicode.cpp.
    case afmoeDigits
    /// youtu's first regex: [가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+
    case youtuScripts
    /// superbpe's (?=(\d{3})+(?!\d)): split ASCII digit runs so that groups of 3 end the run.
    case superbpeDigits
    /// exaone-moe's regex (letter runs joined by single spaces).
    case exaoneMoe
    /// kimi-k2 (llama.cpp custom: Han runs, letter words with contractions, ...).
    case kimiK2
    /// chameleon's <sentinel:N>, IMGIMG[A-I]{1,4}Z, ([\t\n]|    |  ), and [\p{P}!-/:-@\[-`{-~] steps.
    case chameleonSentinel, chameleonImage, chameleonSpaces, chameleonPunct
    /// Regex ` ?[^(\s|.,!?…。，、।۔،)]+` (bloom, poro-chat, gpt3-finnish, viking).
    case bloomWord
    /// llama.cpp's adapted gpt-4o / tekken regexes (case-split letter runs via lookaheads), run by
    /// std::regex on collapsed text: non-ASCII letters count as both upper and lower case.
    case caseSplit(contractions: Bool, maxDigits: Int, marks: Bool = false, caseless: Bool = false)
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
    case cjkKana         // [一-龥぀-ゟ゠-ヿ]
    case afmoeScripts    // afmoe's CJK / kana / Thai / Lao / Khmer / Myanmar / Hangul class
    case youtuHangul     // [가-힣ㄱ-ㆎ]
    case youtuPunct      // [！…“”‘’—：；，、-〿︰-﹏]
    case youtuBopomofo   // [ㄅ-ㄯ]

    @inline(__always) func matches(_ c: UInt32) -> Bool {
        // Literal classes run through std::wregex on text where non-ASCII whitespace was replaced
        // by U+000B, so such code points never match them.
        switch self {
        case .crlf: return c == 0x0A || c == 0x0D
        case .cjk:
            if c > 0x7F && UnicodeTable.flags(c).isWhitespace { return false }
            return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0x4E00) || (c >= 0xAC00 && c <= 0xD7FF)
        case .afmoeScripts:
            if c > 0x7F && UnicodeTable.flags(c).isWhitespace { return false }
            return CharClass.afmoeRanges.contains { $0.contains(c) }
        case .youtuHangul: return (c >= 0xAC00 && c <= 0xD7A3) || (c >= 0x3131 && c <= 0x318E)
        case .youtuPunct:
            return c == 0xFF01 || c == 0x2026 || c == 0x201C || c == 0x201D || c == 0x2018 || c == 0x2019 || c == 0x2014
                || c == 0xFF1A || c == 0xFF1B || c == 0xFF0C || (c >= 0x3001 && c <= 0x303F) || (c >= 0xFE30 && c <= 0xFE4F)
        case .youtuBopomofo: return c >= 0x3105 && c <= 0x312F
        case .cjkKana:
            return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x309F) || (c >= 0x30A0 && c <= 0x30FF)
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

    /// afmoe's literal script class (src/llama-vocab.cpp), as sorted ranges.
    static let afmoeRanges: [ClosedRange<UInt32>] = [
        // (the source's "豈" is U+8C48, not the compatibility ideograph U+F900, so this range is wide)
        0x0E40...0x0E7F, 0x0E80...0x0EFF, 0x1000...0x109F, 0x1100...0x11FF, 0x1780...0x17FF, 0x2F00...0x2FDF,
        0x3040...0x309F, 0x30A0...0x30FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0x8C48...0xFAFF, 0xA9E0...0xA9FF,
        0xAA60...0xAA7F, 0xAC00...0xD7AF, 0xFF65...0xFF9F,
    ]

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
        case "bailingmoe", "bailingmoe2", "llada-moe":
            // '(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|...|\p{N}|...|\s*[\r\n]|... splits as qwen2
            return PreTokenizer(steps: [.qwen2], byteEncode: true)
        case "seed-coder":
            return PreTokenizer(steps: [.llama3Like(maxDigits: 1, punctNewlines: false)], byteEncode: true)
        case "minicpm5":
            return PreTokenizer(steps: [.runMax3(.number), .llama3Like(maxDigits: Int.max, punctNewlines: true)], byteEncode: true)
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
        case "granite-embed-multi-97m":
            return PreTokenizer(steps: [.caseSplit(contractions: true, maxDigits: 3, marks: true)], byteEncode: true)
        case "tiny_aya", "cohere2moe":
            return PreTokenizer(steps: [.afmoeDigits, .caseSplit(contractions: true, maxDigits: 3, marks: true, caseless: true)],
                                byteEncode: true)
        case "jais-2":
            return PreTokenizer(steps: [.llama3Like(maxDigits: 3, punctNewlines: true, cascade: true)], byteEncode: true)
        case "exaone-moe":
            return PreTokenizer(steps: [.exaoneMoe], byteEncode: true)
        case "kimi-k2":
            return PreTokenizer(steps: [.kimiK2], byteEncode: true)
        case "superbpe":
            return PreTokenizer(steps: [.run(.number), .superbpeDigits], byteEncode: true)
        case "chameleon":
            return PreTokenizer(steps: [.chameleonSentinel, .chameleonImage, .chameleonSpaces, .single(.number), .chameleonPunct, .gpt2],
                                byteEncode: true)
        case "gemma4", "granite-embed-multi-311m", "sarvam-moe":
            return PreTokenizer(steps: [.newlines], byteEncode: false)
        case "afmoe":
            return PreTokenizer(steps: [.afmoeDigits, .run(.afmoeScripts), .deepseekV3], byteEncode: true)
        case "youtu":
            return PreTokenizer(steps: [.youtuScripts, .caseSplit(contractions: true, maxDigits: 1, marks: true, caseless: true)],
                                byteEncode: true)
        case "tekken":
            return PreTokenizer(steps: [.caseSplit(contractions: false, maxDigits: 1)], byteEncode: true)
        case "bloom", "poro-chat", "gpt3-finnish":
            return PreTokenizer(steps: [.bloomWord], byteEncode: true)
        case "viking":
            return PreTokenizer(steps: [.bloomWord, .single(.number)], byteEncode: true)
        case "deepseek-v3", "hunyuan-dense", "joyai-llm":
            return PreTokenizer(steps: [.runMax3(.number), .run(.cjkKana), .deepseekV3], byteEncode: true)
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

    /// Every `tokenizer.ggml.pre` name llama.cpp's llama-vocab.cpp accepts (commit 34af94cd9).
    static let llamaCppNames: [String] = [
        "kimi-k2", "default", "minicpm5", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
        "midm-2.0", "lfm2", "jina-v5-nano", "deepseek-llm", "deepseek-coder", "deepseek-v3", "youtu", "falcon", "mpt",
        "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
        "mellum", "modern-bert", "jais-2", "gemma4", "granite-embed-multi-311m", "sarvam-moe", "jina-v1-en",
        "jina-v2-code", "roberta-bpe", "whitespace", "refact", "command-r", "qwen2", "deepseek-r1-qwen", "kormo",
        "f2llmv2", "qwen35", "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "glm4", "chatglm-bpe", "viking",
        "jais", "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "exaone4", "exaone-moe",
        "chameleon", "minerva-7b", "megrez", "gpt-4o", "llama4", "kanana2", "talkie", "granite-embed-multi-97m",
        "tiny_aya", "cohere2moe", "superbpe", "trillion", "granite-docling", "bailingmoe", "bailingmoe2", "llada-moe",
        "seed-coder", "hunyuan", "hunyuan-dense", "joyai-llm", "grok-2", "afmoe", "laguna", "minimax-m2",
        "solar-open", "mellum2",
    ]

    /// The pre-tokenizer names this module can encode with.
    static let supportedNames: [String] = llamaCppNames.filter { forPre($0) != nil }

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
            case .llama3: splitLlama3(cpts, ini, end, &out, maxDigits: 3, marks: false)
            case .qwen2: splitLlama3(cpts, ini, end, &out, maxDigits: 1, marks: false)
            case .qwen35: splitLlama3(cpts, ini, end, &out, maxDigits: 1, marks: true)
            case let .llama3Like(maxDigits, punctNewlines, cascade):
                splitLlama3(cpts, ini, end, &out, maxDigits: maxDigits, marks: false, punctNewlines: punctNewlines,
                            whitespaceCascade: cascade)
            case .exaoneMoe: splitExaoneMoe(cpts, ini, end, &out)
            case .kimiK2: splitKimiK2(cpts, ini, end, &out)
            case .superbpeDigits:
                var prev = ini
                var pos = ini
                @inline(__always) func dig(_ i: Int) -> Bool { cpts[i] >= 0x30 && cpts[i] <= 0x39 }
                while pos < end {
                    guard dig(pos) else { pos += 1; continue }
                    let a = pos
                    while pos < end && dig(pos) { pos += 1 }
                    let n = pos - a
                    var p = a + n % 3
                    while p <= pos - 3 {
                        if p > prev { out.append(p - prev); prev = p }
                        p += 3
                    }
                }
                if end > prev { out.append(end - prev) }
            case let .caseSplit(contractions, maxDigits, marks, caseless):
                splitCaseRegex(cpts, ini, end, &out, contractions: contractions, maxDigits: maxDigits, marks: marks, caseless: caseless)
            case .afmoeDigits:
                var prevEnd = ini
                @inline(__always) func add(_ e: Int) { if e > prevEnd { out.append(e - prevEnd) }; prevEnd = e }
                var pos = ini
                while pos < end {
                    if UnicodeTable.flags(cpts[pos]).isNumber {
                        let start = pos
                        while pos < end && UnicodeTable.flags(cpts[pos]).isNumber { pos += 1 }
                        let count = pos - start
                        var cur = start
                        let rem = count % 3
                        if rem > 0 { add(cur + rem); cur += rem }
                        while cur < start + count { add(cur + 3); cur += 3 }
                        continue
                    }
                    pos += 1
                }
                if prevEnd < end { add(end) }
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
            case .deepseekV3:
                @inline(__always) func L(_ i: Int) -> Bool { i < end && CharClass.letter.matches(c[i]) }
                @inline(__always) func M(_ i: Int) -> Bool { i < end && c[i] > 0x7F && !UnicodeTable.flags(c[i]).isWhitespace && UnicodeTable.flags(c[i]).category == CptFlags.accentMark }
                @inline(__always) func P(_ i: Int) -> Bool { i < end && CharClass.punctuation.matches(c[i]) }
                @inline(__always) func S(_ i: Int) -> Bool {
                    guard i < end else { return false }
                    let x = c[i]
                    if x < 128 { return "$+<=>^`|".utf8.contains(UInt8(x)) }
                    let f = UnicodeTable.flags(x)
                    return !f.isWhitespace && f.category == CptFlags.symbol
                }
                @inline(__always) func asciiAlpha(_ i: Int) -> Bool { i < end && ((c[i] >= 0x41 && c[i] <= 0x5A) || (c[i] >= 0x61 && c[i] <= 0x7A)) }
                @inline(__always) func asciiPunctSym(_ i: Int) -> Bool {
                    i < end && c[i] < 128 && (CharClass.asciiPunct(UInt8(c[i])) || "$+<=>^`|~".utf8.contains(UInt8(c[i])))
                }
                var e = -1
                if asciiPunctSym(pos) && asciiAlpha(pos + 1) {
                    e = pos + 2
                    while asciiAlpha(e) { e += 1 }
                }
                if e < 0 {
                    let x = c[pos]
                    var st = -1
                    if !(x == 0x0D || x == 0x0A || L(pos) || P(pos) || S(pos)) && (L(pos + 1) || M(pos + 1)) { st = pos + 1 }
                    else if L(pos) || M(pos) { st = pos }
                    if st >= 0 { e = st + 1; while L(e) || M(e) { e += 1 } }
                }
                if e < 0 {
                    var st = pos
                    if c[pos] == 0x20 && (P(pos + 1) || S(pos + 1)) { st = pos + 1 }
                    if P(st) || S(st) {
                        e = st + 1
                        while P(e) || S(e) { e += 1 }
                        while e < end && (c[e] == 0x0D || c[e] == 0x0A) { e += 1 }
                    }
                }
                if e < 0 && cWS(c[pos]) {
                    var r = pos
                    var lastRN = -1
                    while r < end && cWS(c[r]) {
                        if c[r] == 0x0D || c[r] == 0x0A { lastRN = r }
                        r += 1
                    }
                    if lastRN >= 0 { e = lastRN + 1 } else if r - pos > 1 && r < end { e = r - 1 } else { e = r }
                }
                if e > pos { emit(pos, e); pos = e } else { pos += 1 }
            case .chameleonSentinel:
                // <sentinel:[0-9]+>
                let pfx: [UInt32] = Array("<sentinel:".unicodeScalars.map { $0.value })
                var ok = pos + pfx.count < end
                if ok { for k in 0..<pfx.count where c[pos + k] != pfx[k] { ok = false; break } }
                if ok {
                    var x = pos + pfx.count
                    let d0 = x
                    while x < end && c[x] >= 0x30 && c[x] <= 0x39 { x += 1 }
                    if x > d0 && x < end && c[x] == 0x3E { emit(pos, x + 1); pos = x + 1; continue }
                }
                pos += 1
            case .chameleonImage:
                // (IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z
                let pfx: [UInt32] = Array("IMGIMG".unicodeScalars.map { $0.value })
                var ok = pos + pfx.count < end
                if ok { for k in 0..<pfx.count where c[pos + k] != pfx[k] { ok = false; break } }
                if ok {
                    var x = pos + pfx.count
                    let s0 = x
                    while x < end && x - s0 < 4 && c[x] >= 0x41 && c[x] <= 0x49 { x += 1 }
                    if x > s0 && x < end && c[x] == 0x5A { emit(pos, x + 1); pos = x + 1; continue }
                }
                pos += 1
            case .chameleonSpaces:
                // ([\t\n]|    |  )
                if c[pos] == 0x09 || c[pos] == 0x0A { emit(pos, pos + 1); pos += 1; continue }
                var n = 0
                while n < 4 && pos + n < end && c[pos + n] == 0x20 { n += 1 }
                if n == 4 { emit(pos, pos + 4); pos += 4; continue }
                if n >= 2 { emit(pos, pos + 2); pos += 2; continue }
                pos += 1
            case .chameleonPunct:
                // [\p{P}!-/:-@\[-`{-~]
                let x = c[pos]
                let hit = x < 128 ? ((x >= 0x21 && x <= 0x2F) || (x >= 0x3A && x <= 0x40) || (x >= 0x5B && x <= 0x60) || (x >= 0x7B && x <= 0x7E))
                    : CharClass.punctuation.matches(x)
                if hit { emit(pos, pos + 1) }
                pos += 1
            case .youtuScripts:
                var matched = false
                for cls in [CharClass.youtuHangul, .youtuPunct, .youtuBopomofo, .cjkKana] where cls.matches(c[pos]) {
                    var e = pos + 1
                    while e < end && cls.matches(c[e]) { e += 1 }
                    emit(pos, e); pos = e
                    matched = true
                    break
                }
                if !matched { pos += 1 }
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
    @inline(__always) static func cM(_ c: UInt32) -> Bool {
        guard c > 0x7F else { return false }
        let f = UnicodeTable.flags(c)
        return !f.isWhitespace && f.category == CptFlags.accentMark
    }

    /// `[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|...)?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:...)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// with ECMAScript backtracking order (gpt-4o family; tekken without contractions and with \p{N}).
    static func splitCaseRegex(_ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int],
                               contractions: Bool, maxDigits: Int, marks: Bool = false, caseless: Bool = false) {
        @inline(__always) func letterish(_ i: Int) -> Bool { i < end && (cL(c[i]) || (marks && cM(c[i]))) }
        @inline(__always) func up(_ i: Int) -> Bool { letterish(i) && (caseless || !(c[i] >= 0x61 && c[i] <= 0x7A)) }
        @inline(__always) func lo(_ i: Int) -> Bool { letterish(i) && (caseless || !(c[i] >= 0x41 && c[i] <= 0x5A)) }
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
        // upper* lower+ (greedy upper*, backtracking until a lower follows)
        @inline(__always) func alt1(_ s: Int) -> Int {
            var maxU = 0
            while up(s + maxU) { maxU += 1 }
            var k = maxU
            while k >= 0 && !lo(s + k) { k -= 1 }
            guard k >= 0 else { return -1 }
            var x = s + k + 1
            while lo(x) { x += 1 }
            return contraction(x)
        }
        // upper+ lower*
        @inline(__always) func alt2(_ s: Int) -> Int {
            guard up(s) else { return -1 }
            var x = s + 1
            while up(x) { x += 1 }
            while lo(x) { x += 1 }
            return contraction(x)
        }
        var pos = ini
        while pos < end {
            let c0 = c[pos]
            var e = -1
            // each letter alternative with its optional leading [^\r\n\p{L}\p{N}], tried with it first
            let prefixOK = !(c0 == 0x0D || c0 == 0x0A || cL(c0) || cN(c0)) && pos + 1 < end
            if prefixOK { e = alt1(pos + 1) }
            if e < 0 { e = alt1(pos) }
            if e < 0 && prefixOK { e = alt2(pos + 1) }
            if e < 0 { e = alt2(pos) }
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

    /// exaone-moe: (?:'[sS]|...)|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|
    /// \s*[\r\n]|\s+(?!\S)|\s+ (std::regex on collapsed text).
    static func splitExaoneMoe(_ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int]) {
        @inline(__always) func L(_ i: Int) -> Bool { i < end && cL(c[i]) }
        @inline(__always) func M(_ i: Int) -> Bool { i < end && cM(c[i]) }
        var pos = ini
        while pos < end {
            let c0 = c[pos]
            var e = -1
            if c0 == 0x27 && pos + 1 < end {
                let a = UnicodeTable.toLowerASCII(c[pos + 1])
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { e = pos + 2 }
                else if pos + 2 < end {
                    let b = UnicodeTable.toLowerASCII(c[pos + 2])
                    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { e = pos + 3 }
                }
            }
            if e < 0 {
                var st = -1
                if !(c0 == 0x0D || c0 == 0x0A || cL(c0) || cN(c0)) && L(pos + 1) { st = pos + 1 } else if cL(c0) { st = pos }
                if st >= 0 {
                    var x = st
                    while L(x) {
                        x += 1
                        while M(x) { x += 1 }
                        if x < end && c[x] == 0x20 && L(x + 1) { x += 1 }
                    }
                    e = x
                }
            }
            if e < 0 && cN(c0) { e = pos + 1 }
            if e < 0 {
                @inline(__always) func other(_ i: Int) -> Bool { i < end && !cWS(c[i]) && !cL(c[i]) && !cN(c[i]) }
                var st = pos
                if c0 == 0x20 && other(pos + 1) { st = pos + 1 }
                if other(st) {
                    var x = st + 1
                    while other(x) { x += 1 }
                    if x < end && (c[x] == 0x0D || c[x] == 0x0A || c[x] == 0x2F) { x += 1 }
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
                if lastRN >= 0 { e = lastRN + 1 } else if r - pos > 1 && r < end { e = r - 1 } else { e = r }
            }
            if e <= pos { e = pos + 1 }
            out.append(e - pos)
            pos = e
        }
    }

    /// unicode.cpp's `unicode_cpt_is_han`.
    @inline(__always) static func isHan(_ c: UInt32) -> Bool {
        (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF)
            || (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF)
            || (c >= 0x2CEB0 && c <= 0x2EBEF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F)
    }

    /// Port of unicode.cpp's `unicode_regex_split_custom_kimi_k2`.
    static func splitKimiK2(_ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int]) {
        @inline(__always) func cpt(_ p: Int) -> UInt32 { (p >= ini && p < end) ? c[p] : outOfRange }
        @inline(__always) func flags(_ p: Int) -> CptFlags { (p >= ini && p < end) ? UnicodeTable.flags(c[p]) : CptFlags(raw: 0) }
        var prevEnd = ini
        @inline(__always) func add(_ e: Int) { if e > prevEnd { out.append(e - prevEnd) }; prevEnd = e }
        var pos = ini
        while pos < end {
            let cp = cpt(pos)
            let f = flags(pos)
            if isHan(cp) {
                while isHan(cpt(pos)) { pos += 1 }
                add(pos); continue
            }
            let isLetterPattern = (f.isLetter && !isHan(cp))
                || (!(cp == 0x0D || cp == 0x0A || f.isLetter || f.isNumber) && flags(pos + 1).isLetter && !isHan(cpt(pos + 1)))
            if isLetterPattern {
                var hasLeading = false
                if !(cp == 0x0D || cp == 0x0A || f.isLetter || f.isNumber) { hasLeading = true; pos += 1 }
                var hasLetters = false
                while flags(pos).isLetter && !isHan(cpt(pos)) { hasLetters = true; pos += 1 }
                if hasLetters || (!hasLeading && flags(pos).isLetter && !isHan(cpt(pos))) {
                    if !hasLetters { pos += 1 }
                    while flags(pos).isLetter && !isHan(cpt(pos)) { pos += 1 }
                    if cpt(pos) == 0x27 && pos + 1 < end {
                        let n = UnicodeTable.toLowerASCII(cpt(pos + 1))
                        if n == 0x73 || n == 0x74 || n == 0x6D || n == 0x64 { pos += 2 }
                        else if pos + 2 < end {
                            let nn = UnicodeTable.toLowerASCII(cpt(pos + 2))
                            if (n == 0x72 && nn == 0x65) || (n == 0x76 && nn == 0x65) || (n == 0x6C && nn == 0x6C) { pos += 3 }
                        }
                    }
                    add(pos); continue
                } else if hasLeading {
                    pos -= 1
                }
            }
            if f.isNumber {
                var s = pos
                while flags(pos).isNumber {
                    pos += 1
                    if pos - s >= 3 { add(pos); s = pos }
                }
                add(pos); continue
            }
            var f2 = cp == 0x20 ? flags(pos + 1) : f
            if !(f2.isWhitespace || f2.isLetter || f2.isNumber) && !f2.isZero {
                if cp == 0x20 { pos += 1 }
                while !(f2.isWhitespace || f2.isLetter || f2.isNumber) && !f2.isZero { pos += 1; f2 = flags(pos) }
                var c2 = cpt(pos)
                while c2 == 0x0D || c2 == 0x0A { pos += 1; c2 = cpt(pos) }
                add(pos); continue
            }
            var nws = 0
            var lastRN = 0
            while flags(pos + nws).isWhitespace {
                let c2 = cpt(pos + nws)
                if c2 == 0x0D || c2 == 0x0A { lastRN = pos + nws + 1 }
                nws += 1
            }
            if lastRN > 0 { pos = lastRN; add(pos); continue }
            if nws > 1 && cpt(pos + nws) != outOfRange { pos += nws - 1; add(pos); continue }
            if nws > 0 { pos += nws; add(pos); continue }
            pos += 1; add(pos)
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

    /// llama3 (maxDigits 3), qwen2 (maxDigits 1) and qwen35 (marks) splitters; `punctNewlines`
    /// is the `[\r\n]*` after punctuation runs.
    static func splitLlama3(_ c: UnsafeBufferPointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int],
                            maxDigits: Int, marks: Bool, punctNewlines: Bool = true, whitespaceCascade: Bool = false) {
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
                if maxDigits > 1 {
                    var s = pos
                    while flags(pos).isNumber {
                        pos += 1
                        if pos - s >= maxDigits { _ = add(pos); s = pos }
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
                while punctNewlines && (c2 == 0x0D || c2 == 0x0A) { pos += 1; c2 = cpt(pos) }
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
            if whitespaceCascade && nws > 0 {
                // jais-2: \s{512}(?!\S)|\s{256}(?!\S)|...|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}
                let atEnd = pos + nws == end
                var take = 1
                for k in [512, 256, 128, 64, 32, 16, 8, 4, 2, 1] where nws > k || (nws == k && atEnd) { take = k; break }
                pos += take; _ = add(pos); continue
            }
            if nws > 1 && cpt(pos + nws) != outOfRange { pos += nws - 1; _ = add(pos); continue }
            if nws > 0 { pos += nws; _ = add(pos); continue }
            pos += 1; _ = add(pos)
        }
    }
}
