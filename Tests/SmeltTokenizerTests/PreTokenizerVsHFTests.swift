import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltTokenizer

/// The splitters against Hugging Face `tokenizers` running the original regexes: variants of the
/// SmolLM2 tokenizer.json with each pre-tokenizer configuration, encoded on tricky text.
final class PreTokenizerVsHFTests: XCTestCase {
    static let texts: [String] = [
        HFVocabConverter.checkText,
        "Hello world! It's 2024... I'LL say 'RE you sure? We'Ve a'lL don't",
        "  leading spaces\tand\ttabs\n\n\nnewlines \r\n crlf   \n  trailing   ",
        "numbers 1 12 123 1234 12345 3.14159 1,000,000 ١٢٣ ⅫⅣ ² ½",
        "café naïve coöperate Ünïcödé e\u{301} a\u{308}o\u{302} Ωmega ΣΑΣ Привет мир",
        "日本語のテキスト 中文文本 한국어 텍스트 ไทย हिन्दी العربية",
        "emoji 🚀🦙 😶‍🌫️ 👍🏽 ✅ flags 🇫🇷 math ∑∫√ ≠ ≤ → ⇒ ©®™ €£¥",
        "code: def f(x): return x**2 + y_1 -> {'a': [1, 2]}; a != b && c || d // comment /* x */",
        "nbsp\u{00A0}here ideographic\u{3000}space en\u{2002}space zwsp\u{200B}x line\u{2028}sep nel\u{0085}x",
        "$100 + 5% <tag> a=b ^hat ~tilde |pipe| `tick` @at #hash ------======= ......!!!!!!??????",
        "",
        " ",
        "\n",
        "a",
    ]

    /// The converter's fingerprint (sha256 of str(ids) of chktxt with add_special_tokens=True) computed
    /// without Python equals the one from HF tokenizers, for several tokenizer.json configurations
    /// (normalizer, pre-tokenizer, ignore_merges, BOS post-processor).
    func testFingerprintEqualsHF() throws {
        let dir = try Fixtures.tempDir(self)
        let qwenSplit = Self.seq([Self.split(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)])
        let llamaSplit = Self.seq([Self.split(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)])
        let bos = JSONValue.object([
            ("type", .string("TemplateProcessing")),
            ("single", .array([.object([("SpecialToken", .object([("id", .string("<|endoftext|>")), ("type_id", .int(0))]))]),
                               .object([("Sequence", .object([("id", .string("A")), ("type_id", .int(0))]))])])),
            ("pair", .array([])),
            ("special_tokens", .object([("<|endoftext|>", .object([("id", .string("<|endoftext|>")), ("ids", .array([.int(0)])),
                                                                  ("tokens", .array([.string("<|endoftext|>")]))]))])),
        ])
        let nfc = JSONValue.object([("type", .string("NFC"))])
        let cases: [(String, JSONValue, Bool, JSONValue?, JSONValue?)] = [
            ("gpt2", Self.byteLevel(regex: true), false, nil, nil),
            ("smollm", Self.seq([Self.digits, Self.byteLevel(regex: true)]), false, nil, nil),
            ("qwen2", qwenSplit, false, nfc, nil),
            ("llama3", llamaSplit, true, nil, bos),
        ]
        for (name, pre, ignore, norm, post) in cases {
            let json = try variant(pre, ignoreMerges: ignore, in: dir, name: name, normalizer: norm, postProcessor: post)
            let ref = try TestPython.hfEncode(json, [HFVocabConverter.checkText], addSpecial: true)[0]
            let refHash = SHA256.hex(Array(("[" + ref.map(String.init).joined(separator: ", ") + "]").utf8))
            let mine = try HFVocabConverter.preFingerprint(HFTokenizerJSON(contentsOf: json))
            XCTAssertEqual(mine, refHash, name)
        }
    }

    /// A variant of SmolLM2's tokenizer.json (49k tokens, so that splitting differences show in the
    /// ids) with another pre-tokenizer and no normalizer.
    func variant(_ pre: JSONValue, ignoreMerges: Bool, in dir: URL, name: String,
                 normalizer: JSONValue? = nil, postProcessor: JSONValue? = nil) throws -> URL {
        let src = try TestPython.smolDir().appendingPathComponent("tokenizer.json")
        guard case var .object(root) = try JSONValue.parse(contentsOf: src) else { throw SmeltError("bad json") }
        for i in root.indices {
            switch root[i].0 {
            case "normalizer": root[i].1 = normalizer ?? .null
            case "post_processor": if let p = postProcessor { root[i].1 = p }
            case "pre_tokenizer": root[i].1 = pre
            case "model":
                if case var .object(m) = root[i].1 {
                    for k in m.indices where m[k].0 == "ignore_merges" { m[k].1 = .bool(ignoreMerges) }
                    root[i].1 = .object(m)
                }
            default: break
            }
        }
        let out = dir.appendingPathComponent("\(name).json")
        try JSONValue.object(root).serialized().write(to: out, atomically: true, encoding: .utf8)
        return out
    }

    static func split(_ regex: String) -> JSONValue {
        .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(regex))])),
                 ("behavior", .string("Isolated")), ("invert", .bool(false))])
    }
    static func byteLevel(regex: Bool) -> JSONValue {
        .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(false)),
                 ("use_regex", .bool(regex))])
    }
    static func seq(_ items: [JSONValue]) -> JSONValue {
        .object([("type", .string("Sequence")), ("pretokenizers", .array(items))])
    }
    static let digits = JSONValue.object([("type", .string("Digits")), ("individual_digits", .bool(true))])

    func check(pre llamaPre: String, hfPre: JSONValue, ignoreMerges: Bool = false, extraTexts: [String] = [],
               skip: (String) -> Bool = { _ in false }) throws {
        let bad = try mismatches(pre: llamaPre, hfPre: hfPre, ignoreMerges: ignoreMerges, extraTexts: extraTexts).filter { !skip($0) }
        XCTAssertEqual(bad, [], llamaPre)
    }

    /// llama.cpp runs regexes without \p{..} through std::wregex on text whose non-ASCII whitespace
    /// became U+000B, so literal classes that contain such code points (U+3000 in [ࠀ-一]) differ
    /// from HF's on that text; llama.cpp's behaviour is the one implemented.
    static func hasNonASCIIWhitespace(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.value > 0x7F && UnicodeTable.flags($0.value).isWhitespace }
    }

    /// The texts whose ids differ from HF's.
    func mismatches(pre llamaPre: String, hfPre: JSONValue, ignoreMerges: Bool = false, extraTexts: [String] = []) throws -> [String] {
        let texts = Self.texts + extraTexts
        let dir = try Fixtures.tempDir(self)
        let json = try variant(hfPre, ignoreMerges: ignoreMerges, in: dir, name: llamaPre)
        let ref = try TestPython.hfEncode(json, texts, addSpecial: false)
        let hf = try HFTokenizerJSON(contentsOf: json)
        var v = TokenizerVocab(model: "gpt2", pre: llamaPre, tokens: [], merges: hf.merges)
        let full = hf.fullVocab()
        v.tokens = [String](repeating: "", count: (full.values.max() ?? 0) + 1)
        for (t, id) in full { v.tokens[id] = t }
        v.tokenTypes = v.tokens.indices.map { i in hf.addedTokens.contains { $0.id == i } ? 3 : 1 }
        let tok = try Tokenizer(vocab: v)
        XCTAssertEqual(tok.ignoreMerges, ignoreMerges)
        return zip(texts, ref).filter { tok.encode($0.0, addSpecial: false) != $0.1 }.map { $0.0 }
    }

    func testMutationIsDetected() throws {
        let bad = try mismatches(pre: "gpt-2", hfPre: Self.seq([Self.split(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)]))
        XCTAssertFalse(bad.isEmpty, "a different splitter must give different ids")
    }

    func testQwen2() throws {
        try check(pre: "qwen2", hfPre: Self.seq([Self.split(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)]))
    }

    func testLlama3() throws {
        try check(pre: "llama-bpe", hfPre: Self.seq([Self.split(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)]), ignoreMerges: true)
    }

    func testQwen35() throws {
        try check(pre: "qwen35", hfPre: Self.seq([Self.split(
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)]))
    }

    func testGPT2() throws {
        try check(pre: "gpt-2", hfPre: Self.byteLevel(regex: true))
    }

    func testSmolLM() throws {
        try check(pre: "smollm", hfPre: Self.seq([Self.digits, Self.byteLevel(regex: true)]))
    }

    func testDeepseekCoder() throws {
        try check(pre: "deepseek-coder", hfPre: Self.seq([
            Self.split("[\r\n]"), Self.split("\\s?\\p{L}+"), Self.split("\\s?\\p{P}+"),
            Self.split("[\u{4E00}-\u{9FA5}\u{0800}-\u{4E00}\u{AC00}-\u{D7FF}]+"), Self.digits, Self.byteLevel(regex: false)]),
            skip: Self.hasNonASCIIWhitespace)
    }

    func testDeepseekLLM() throws {
        func cls(_ r: [ClosedRange<UInt32>]) -> String {
            r.map { x in
                let a = String(Unicode.Scalar(x.lowerBound)!), b = String(Unicode.Scalar(x.upperBound)!)
                return x.lowerBound == x.upperBound ? a : a + "-" + b
            }.joined()
        }
        try check(pre: "deepseek-llm", hfPre: Self.seq([
            Self.split("[\r\n]"), Self.split("\\s?[" + cls(CharClass.deepseekLetterRanges) + "]+"),
            Self.split("\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+"),
            Self.split("\\s+$"), Self.split("[\u{4E00}-\u{9FA5}\u{0800}-\u{4E00}\u{AC00}-\u{D7FF}]+"),
            Self.split("\\p{N}+"), Self.byteLevel(regex: false)]),
            skip: Self.hasNonASCIIWhitespace)
    }

    func testBloom() throws {
        try check(pre: "bloom", hfPre: Self.seq([
            Self.split(" ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{0964}\u{06D4}\u{060C})]+"), Self.byteLevel(regex: false)]),
            skip: Self.hasNonASCIIWhitespace)
    }

    /// llama.cpp's collapsed-text version of these regexes treats every non-ASCII letter as both
    /// upper and lower case (HF uses \p{Lu}/\p{Ll}), so only texts without such letters compare.
    static func hasNonASCIILetterOrMark(_ s: String) -> Bool {
        s.unicodeScalars.contains { $0.value > 0x7F && (UnicodeTable.flags($0.value).isLetter || UnicodeTable.flags($0.value).isAccentMark) }
    }
    static let caseTexts = ["HelloWorld HELLOworld helloWORLD iPhone McDonald's DON'T I'M we'LL they'Re x'D A'S",
                            "ABC\ndef\r\n/path/to/file.txt  //  \n\n  x", "a1b22c333d4444 HTTPServer getHTTPResponse"]

    func testGPT4o() throws {
        try check(pre: "gpt-4o", hfPre: Self.seq([Self.split(
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)]), extraTexts: Self.caseTexts, skip: Self.hasNonASCIILetterOrMark)
    }

    func testTekken() throws {
        try check(pre: "tekken", hfPre: Self.seq([Self.split(
            "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
            Self.byteLevel(regex: false)]), ignoreMerges: true, extraTexts: Self.caseTexts, skip: Self.hasNonASCIILetterOrMark)
    }

    func testDefault() throws {
        try check(pre: "default", hfPre: Self.seq([
            Self.split("[\\p{P}\\$\\+<=>\\^~\\|]+"),
            Self.split("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"),
            Self.split("\\p{N}+"), Self.split("[0-9][0-9][0-9]"), Self.byteLevel(regex: false)]))
    }
}
