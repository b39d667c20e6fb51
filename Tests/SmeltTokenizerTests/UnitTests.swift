import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltTokenizer

/// Tests that need no Python: splitting rules, protobuf decoding, hashing, vocab plumbing.
final class UnitTests: XCTestCase {
    func words(_ pre: String, _ text: String) -> [String] {
        let p = PreTokenizer.forPre(pre)!
        let cpts = Array(text.unicodeScalars.map { $0.value })
        let lens = cpts.withUnsafeBufferPointer { p.split($0) }
        var out: [String] = []
        var i = 0
        for n in lens {
            out.append(String(String.UnicodeScalarView(cpts[i..<(i + n)].map { Unicode.Scalar($0)! })))
            i += n
        }
        return out
    }

    func testSplitRules() {
        XCTAssertEqual(words("gpt-2", "  hello world!! 12's"), [" ", " hello", " world", "!!", " 12", "'s"])
        XCTAssertEqual(words("gpt-2", "a  \n b"), ["a", "  \n", " b"])
        XCTAssertEqual(words("llama-bpe", "12345 HE'S x\r\n\r\ny"), ["123", "45", " HE", "'S", " x", "\r\n\r\n", "y"])
        XCTAssertEqual(words("qwen2", "12345"), ["1", "2", "3", "4", "5"])
        XCTAssertEqual(words("qwen2", "hi!!\n\nthere"), ["hi", "!!\n\n", "there"])
        XCTAssertEqual(words("smollm", "rose 3.5%"), ["rose", " ", "3", ".", "5", "%"])
        XCTAssertEqual(words("default", "a+b=12345"), ["a", "+", "b", "=", "123", "45"])
        // llama.cpp quirk: U+3000 becomes U+000B before the literal CJK class, so it stays with the letters
        XCTAssertEqual(words("deepseek-coder", "a\u{3000}b"), ["a", "\u{3000}b"])
        XCTAssertEqual(words("deepseek-llm", "ab  "), ["ab", "  "])
        XCTAssertEqual(words("qwen35", "e\u{301}x"), ["e\u{301}x"])
        XCTAssertEqual(words("qwen2", "e\u{301}x"), ["e", "\u{301}x"])
    }

    func testUnicodeFlagsFollowLlamaCpp() {
        XCTAssertTrue(UnicodeTable.flags(0x41).isLetter)
        XCTAssertTrue(UnicodeTable.flags(0x31).isNumber)
        XCTAssertTrue(UnicodeTable.flags(0xBD).isNumber)           // ½
        XCTAssertTrue(UnicodeTable.flags(0x20).isWhitespace)
        XCTAssertTrue(UnicodeTable.flags(0x85).isWhitespace)
        XCTAssertTrue(UnicodeTable.flags(0x3000).isWhitespace)
        XCTAssertFalse(UnicodeTable.flags(0x200B).isWhitespace)    // zero width space is not \s
        XCTAssertTrue(UnicodeTable.flags(0x301).isAccentMark)
        XCTAssertEqual(UnicodeTable.flags(0x20AC).category, CptFlags.symbol)   // €
        XCTAssertEqual(UnicodeTable.flags(0x10FFFF).category, CptFlags.undefined)
    }

    func testSHA256AndCheckText() {
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // the check text is byte-identical to convert_hf_to_gguf.py's chktxt
        XCTAssertEqual(Array(HFVocabConverter.checkText.utf8).count, 431)
        XCTAssertEqual(SHA256.hex(Array(HFVocabConverter.checkText.utf8)),
                       "a36179c1e2b1cfcfbfad1dc779addad2ffc778201e4cf0d538bddeafa2c526da")
    }

    func testPreHashTable() {
        let t = HFVocabConverter.knownPreHashes
        XCTAssertEqual(t.count, 91)
        XCTAssertEqual(t["0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5"], "llama-bpe")
        XCTAssertEqual(t["e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea"], "qwen2")
        // duplicated upstream: the later `if` wins
        XCTAssertEqual(t["b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166"], "olmo")
        XCTAssertEqual(t["0876d13b50744004aa9aeae05e7b0647eac9d801b5ba4668afc01e709c15e19f"], "jina-v2-en")
    }

    func testSentencePieceModelProto() throws {
        let m = try SentencePieceModel(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-llama/tokenizer.model"))
        XCTAssertEqual(m.pieces.count, 1000)
        XCTAssertEqual(m.modelType, 2)
        XCTAssertTrue(m.byteFallback)
        XCTAssertEqual(m.pieces[0], .init(piece: "<unk>", score: 0, type: .unknown))
        XCTAssertEqual(m.pieces[1].type, .control)
        XCTAssertEqual(m.pieces[3].piece, "<0x00>")
        XCTAssertEqual(m.pieces[3].type, .byte)
        XCTAssertTrue(m.addDummyPrefix)
        let g = try SentencePieceModel(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-gemma3/tokenizer.model"))
        XCTAssertEqual(g.pieces[2].piece, "<bos>")
        XCTAssertThrowsError(try SentencePieceModel(data: [0x0A, 0x05, 0x01]))
    }

    func testMergesInBothForms() throws {
        let pair = try JSONValue.parse(#"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]}}"#)
        let str = try JSONValue.parse(#"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}"#)
        XCTAssertEqual(try HFTokenizerJSON(json: pair).merges, ["a b"])
        XCTAssertEqual(try HFTokenizerJSON(json: str).merges, ["a b"])
    }

    /// A hand-made byte-level BPE vocabulary: merges by rank, BOS/EOS flags, special tokens, decode.
    func testSmallBPEVocab() throws {
        var tokens = (0..<256).map { String(Unicode.Scalar(ByteLevel.byteToCpt[$0])!) }
        tokens += ["Ġt", "he", "Ġthe", "<|bos|>", "<|eos|>"]
        var v = TokenizerVocab(model: "gpt2", pre: "gpt-2", tokens: tokens,
                               tokenTypes: tokens.indices.map { $0 >= 259 ? 3 : 1 }, merges: ["Ġ t", "h e", "Ġt he"])
        v.bosTokenId = 259; v.eosTokenId = 260; v.addBosToken = true; v.addEosToken = true
        let tok = try Tokenizer(vocab: v)
        let the = Int32(258), bos = Int32(259), eos = Int32(260)
        XCTAssertEqual(tok.encode(" the"), [bos, the, eos])
        XCTAssertEqual(tok.encode(" the", addSpecial: false), [the])
        XCTAssertEqual(tok.encode("<|eos|> the", addSpecial: false), [eos, the])
        XCTAssertEqual(tok.encode("<|eos|>", addSpecial: false, parseSpecial: false).count, 7)
        XCTAssertEqual(tok.decode([bos, the, Int32(0x21)], unparseSpecial: true), "<|bos|> the!")
        XCTAssertEqual(tok.decode([bos, the]), " the")
        XCTAssertThrowsError(try Tokenizer(vocab: TokenizerVocab(model: "gpt2", pre: "no-such-pre", tokens: tokens, merges: []))) { e in
            XCTAssertTrue("\(e)".contains("qwen2"))
        }
        XCTAssertThrowsError(try Tokenizer(vocab: TokenizerVocab(model: "t5", tokens: tokens)))
    }

    func testVocabFromMetadataList() throws {
        let meta: MetaEntries = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.tokens", .stringArray(["<unk>", "<s>", "</s>", "▁a"])),
            ("tokenizer.ggml.scores", .float32Array([0, 0, 0, -1])),
            ("tokenizer.ggml.token_type", .int32Array([2, 3, 3, 1])),
            ("tokenizer.ggml.add_eos_token", .bool(true)),
        ]
        let v = try TokenizerVocab(metadata: meta)
        XCTAssertEqual(v.addEosToken, true)
        XCTAssertNil(v.addBosToken)
        let tok = try Tokenizer(vocab: v)
        XCTAssertEqual(tok.encode("a"), [1, 3, 2])   // SPM defaults: BOS 1, EOS 2, space prefix
        XCTAssertThrowsError(try TokenizerVocab(metadata: [("tokenizer.ggml.model", .string("llama"))]))
    }

    /// A Llama checkpoint with tokenizer.json only takes llama.cpp's LlamaHfVocab route.
    func testLlamaTokenizerJSONOnly() throws {
        let src = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let dir = try Fixtures.tempDir(self)
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        let meta = try HFVocabConverter.metadata(modelDir: dir)
        let v = try TokenizerVocab(metadata: meta)
        let spm = try TokenizerVocab(metadata: HFVocabConverter.metadata(modelDir: src))
        XCTAssertEqual(v.model, "llama")
        XCTAssertEqual(v.tokens, spm.tokens)
        XCTAssertEqual(Set(v.scores ?? []), [-1000])
        XCTAssertEqual(Array(v.tokenTypes![0..<4]), [3, 3, 3, 6])
        XCTAssertEqual(v.tokenTypes!.filter { $0 == 1 }.count, 1000 - 3 - 256)
        XCTAssertEqual(v.bosTokenId, 1)
        XCTAssertEqual(meta.first?.key, "tokenizer.ggml.add_space_prefix")
    }

    /// SentencePiece vocab padded to config vocab_size, added_tokens.json and a non-special added token.
    func testSentencePiecePaddingAndAddedTokens() throws {
        let src = try Fixtures.sharedFile("models/tiny/tiny-llama")
        let dir = try Fixtures.tempDir(self)
        for f in ["tokenizer.model", "tokenizer.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(at: src.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        var config = try String(contentsOf: src.appendingPathComponent("config.json"), encoding: .utf8)
        config = config.replacingOccurrences(of: "\"vocab_size\": 1000", with: "\"vocab_size\": 1004")
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try #"{"<extra>": 1001}"#.write(to: dir.appendingPathComponent("added_tokens.json"), atomically: true, encoding: .utf8)
        try #"{"add_bos_token": false, "added_tokens_decoder": {"1002": {"content": "\u2581x", "special": false}, "1003": {"content": "<|tool|>", "special": false}}}"#
            .write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let v = try TokenizerVocab(metadata: HFVocabConverter.metadata(modelDir: dir))
        XCTAssertEqual(v.tokens.count, 1004)
        XCTAssertEqual(Array(v.tokens[1000...]), ["[PAD1000]", "<extra>", " x", "<|tool|>"])
        XCTAssertEqual(Array(v.scores![1000...]), [-10000, -1000, -1000, -1000])
        XCTAssertEqual(Array(v.tokenTypes![1000...]), [5, 4, 4, 3])
        XCTAssertEqual(v.addBosToken, false)
        let tok = try Tokenizer(vocab: v)
        XCTAssertEqual(tok.encode("a<|tool|>").last, 1003)
        XCTAssertEqual(tok.encode("<extra>").suffix(1), [1001])   // user-defined tokens are matched even without parse_special
        XCTAssertEqual(tok.encode("<extra>", parseSpecial: false).suffix(1), [1001])
    }
}
