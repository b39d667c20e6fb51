import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltTokenizer

/// GGUF → HF tokenizer files → `HFVocabConverter` must give back the GGUF's tokenizer metadata.
final class HFTokenizerExportTests: XCTestCase {
    struct RoundTrip {
        let original: MetaEntries
        let reimported: MetaEntries
        let report: HFTokenizerExport.Report
        let dir: URL
    }

    /// Exports the GGUF's tokenizer next to `config`, converts the folder back.
    func roundTrip(_ gguf: URL, config: Data, forcedPre: String? = nil) throws -> RoundTrip {
        let file = try GGUFFile(url: gguf)
        let rt = try roundTrip(meta: HFTokenizerExport.metaEntries(file.metadata), config: config, forcedPre: forcedPre)
        XCTAssertEqual(rt.original.count, try GGUFMetaReader.tokenizerEntries(gguf).count)
        return rt
    }

    func roundTrip(meta: MetaEntries, config: Data, forcedPre: String? = nil) throws -> RoundTrip {
        let dir = try Fixtures.tempDir(self)
        try config.write(to: dir.appendingPathComponent("config.json"))
        let report = try HFTokenizerExport.export(metadata: meta, to: dir)
        let back = try HFVocabConverter.metadata(modelDir: dir, forcedPre: forcedPre)
        return RoundTrip(original: meta, reimported: back, report: report, dir: dir)
    }

    func replacing(_ meta: MetaEntries, _ changes: [String: MetaValue]) -> MetaEntries {
        var out = meta.map { (key: $0.key, value: changes[$0.key] ?? $0.value) }
        for (k, v) in changes.sorted(by: { $0.key < $1.key }) where !out.contains(where: { $0.key == k }) { out.append((k, v)) }
        return out
    }

    /// Every key of the original with the same value, no extra keys; returns the keys whose
    /// position differs (gguf-py's write order depends on which file a value came from).
    @discardableResult
    func assertSameMetadata(_ rt: RoundTrip, _ name: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        XCTAssertEqual(Set(rt.reimported.map { $0.key }), Set(rt.original.map { $0.key }), name, file: file, line: line)
        let d = Dictionary(rt.reimported.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        for (k, v) in rt.original {
            guard let mine = d[k] else { continue }
            if mine != v {
                var detail = ""
                if case let .stringArray(a) = mine, case let .stringArray(b) = v, a.count == b.count,
                   let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                    detail = " first difference at \(i): \(a[i]) vs \(b[i])"
                }
                if case let .int32Array(a) = mine, case let .int32Array(b) = v, a.count == b.count,
                   let i = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                    detail = " first difference at \(i): \(a[i]) vs \(b[i])"
                }
                XCTFail("\(name) \(k) differs\(detail)", file: file, line: line)
            }
        }
        let a = rt.reimported.map { $0.key }, b = rt.original.map { $0.key }
        return a == b ? [] : b.filter { k in a.firstIndex(of: k) != b.firstIndex(of: k) }
    }

    /// The tokenizer built from the re-imported metadata encodes like the original GGUF's.
    func assertSameIds(_ rt: RoundTrip, _ texts: [String], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let a = try Tokenizer(vocab: TokenizerVocab(metadata: rt.original))
        let b = try Tokenizer(vocab: TokenizerVocab(metadata: rt.reimported))
        for t in texts {
            let ids = a.encode(t)
            XCTAssertGreaterThan(ids.count, 3, file: file, line: line)
            XCTAssertEqual(b.encode(t), ids, name, file: file, line: line)
            XCTAssertEqual(b.encode(t, addSpecial: false, parseSpecial: false), a.encode(t, addSpecial: false, parseSpecial: false),
                           name, file: file, line: line)
        }
    }

    func tiny(_ m: String, forcedPre: String? = nil) throws -> RoundTrip {
        let gguf = try Fixtures.sharedFile("models/tiny/\(m).golden/\(m)-f32.gguf")
        let cfg = try Data(contentsOf: try Fixtures.sharedFile("models/tiny/\(m)/config.json"))
        return try roundTrip(gguf, config: cfg, forcedPre: forcedPre)
    }

    func sentence(_ m: String) throws -> [String] {
        let g = try Fixtures.sharedFile("models/tiny/\(m).golden")
        let s = try String(contentsOf: g.appendingPathComponent("sentence.txt"), encoding: .utf8)
        let eval = try String(contentsOf: g.appendingPathComponent("eval-sample.txt"), encoding: .utf8)
        return [s, String(eval.prefix(4000)), "Hello  world\n\n\tcafé 日本語 🤗 12345 <s>x</s>"]
    }

    func testTinyLlamaSentencePiece() throws {
        let rt = try tiny("tiny-llama")
        XCTAssertEqual(rt.report.files, ["tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
        XCTAssertTrue(rt.report.notes.isEmpty, "\(rt.report.notes)")
        XCTAssertEqual(assertSameMetadata(rt, "tiny-llama"), [])       // same keys, values and order
        try assertSameIds(rt, try sentence("tiny-llama"), "tiny-llama")
        // the model file: what SentencePieceModel reads back
        let spm = try SentencePieceModel(contentsOf: rt.dir.appendingPathComponent("tokenizer.model"))
        XCTAssertEqual(spm.pieces.count, 1000)
        XCTAssertTrue(spm.byteFallback)
        XCTAssertEqual(spm.modelType, 2)
        XCTAssertTrue(spm.addDummyPrefix)
        XCTAssertFalse(spm.removeExtraWhitespaces)
        XCTAssertEqual(spm.pieces[0], SentencePieceModel.Piece(piece: "<unk>", score: -1000, type: .unknown))
        XCTAssertEqual(spm.pieces[1].type, .control)
        XCTAssertEqual(spm.pieces[3], SentencePieceModel.Piece(piece: "<0x00>", score: 0, type: .byte))
        XCTAssertEqual(spm.unkId, 0); XCTAssertEqual(spm.bosId, 1); XCTAssertEqual(spm.eosId, 2); XCTAssertEqual(spm.padId, -1)
        // tokenizer.json: the shape and merges transformers wrote for the original checkpoint
        let mine = try JSONValue.parse(contentsOf: rt.dir.appendingPathComponent("tokenizer.json"))
        let orig = try JSONValue.parse(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-llama/tokenizer.json"))
        for k in ["added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"] { XCTAssertEqual(mine[k], orig[k], k) }
        let tj = try HFTokenizerJSON(contentsOf: rt.dir.appendingPathComponent("tokenizer.json"))
        let tjOrig = try HFTokenizerJSON(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-llama/tokenizer.json"))
        XCTAssertEqual(tj.merges, tjOrig.merges)
        XCTAssertEqual(tj.vocab.map { $0.0 }, tjOrig.vocab.map { $0.0 })
        XCTAssertTrue(tj.byteFallback)
    }

    func testTinyGemma3SentencePiece() throws {
        let rt = try tiny("tiny-gemma3")
        XCTAssertTrue(rt.report.notes.isEmpty, "\(rt.report.notes)")
        XCTAssertEqual(assertSameMetadata(rt, "tiny-gemma3"), [])
        try assertSameIds(rt, try sentence("tiny-gemma3") + ["<start_of_turn>user\nHi<end_of_turn>\n"], "tiny-gemma3")
        let spm = try SentencePieceModel(contentsOf: rt.dir.appendingPathComponent("tokenizer.model"))
        XCTAssertFalse(spm.addDummyPrefix)
        XCTAssertEqual(spm.pieces[3].type, .unknown)
        XCTAssertEqual(spm.pieces[4], SentencePieceModel.Piece(piece: "<start_of_turn>", score: -1000, type: .control))
        let tc = try JSONValue.parse(contentsOf: rt.dir.appendingPathComponent("tokenizer_config.json"))
        XCTAssertEqual(tc["bos_token"]?.stringValue, "<bos>")
        XCTAssertEqual(tc["pad_token"]?.stringValue, "<pad>")
        XCTAssertEqual(tc["added_tokens_decoder"]?["5"]?["content"]?.stringValue, "<end_of_turn>")
        XCTAssertEqual(tc["add_prefix_space"]?.boolValue, false)
    }

    func testTinyQwen3BPEForcedPre() throws {
        let rt = try tiny("tiny-qwen3", forcedPre: "qwen2")
        // the tokenizer was trained for the fixture: no fingerprint matches, as for the original folder
        XCTAssertTrue(rt.report.needsForcedPre)
        XCTAssertNil(rt.report.detectedPre)
        XCTAssertEqual(rt.report.notes.count, 1, "\(rt.report.notes)")
        XCTAssertThrowsError(try HFVocabConverter.metadata(modelDir: rt.dir)) { e in
            XCTAssertTrue(((e as? SmeltError)?.message ?? "").contains("--pre"))
        }
        XCTAssertEqual(assertSameMetadata(rt, "tiny-qwen3"), [])
        // bos came from config.json in the original (key after eos/pad): bos_token stays null
        let tc = try JSONValue.parse(contentsOf: rt.dir.appendingPathComponent("tokenizer_config.json"))
        XCTAssertEqual(tc["bos_token"], .null)
        XCTAssertEqual(tc["eos_token"]?.stringValue, "<|endoftext|>")
        try assertSameIds(rt, try sentence("tiny-qwen3") + ["<|im_start|>user\nHi<|im_end|>\n"], "tiny-qwen3")
        let tj = try HFTokenizerJSON(contentsOf: rt.dir.appendingPathComponent("tokenizer.json"))
        XCTAssertEqual(tj.vocab.count, 1000)                       // [PAD1000]...[PAD1023] left to the converter
        XCTAssertEqual(tj.addedTokens.map { $0.id }, [997, 998, 999])
        XCTAssertTrue(tj.addedTokens.allSatisfy { $0.special })
        XCTAssertEqual(try tj.equivalentPre().pre, "qwen2")
        XCTAssertEqual(tj.merges.count, 741)
    }

    func testSmolLM2BPE() throws {
        let gguf = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let rt = try roundTrip(gguf, config: Data(#"{"architectures":["LlamaForCausalLM"],"vocab_size":49152}"#.utf8))
        XCTAssertEqual(rt.report.detectedPre, "smollm")             // found by fingerprint, no --pre needed
        XCTAssertFalse(rt.report.needsForcedPre)
        XCTAssertTrue(rt.report.notes.isEmpty, "\(rt.report.notes)")
        XCTAssertEqual(rt.report.files, ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"])
        // this GGUF was made by an older converter that wrote add_bos_token second; today's writes it
        // with the other special-token keys
        XCTAssertTrue(assertSameMetadata(rt, "SmolLM2").contains("tokenizer.ggml.add_bos_token"))
        let addBos = "tokenizer.ggml.add_bos_token"
        XCTAssertEqual(rt.original.map { $0.key }.filter { $0 != addBos }, rt.reimported.map { $0.key }.filter { $0 != addBos })
        let text = "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\n"
            + "What is 2+2? Déjà vu, naïve café — 日本語 🤗 1234567 \t  spaces\n\n<|im_end|>\n"
        try assertSameIds(rt, [text, String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20)], "SmolLM2")
        let tc = try JSONValue.parse(contentsOf: rt.dir.appendingPathComponent("tokenizer_config.json"))
        XCTAssertEqual(tc["chat_template"]?.stringValue?.hasPrefix("{% for message in messages %}"), true)
        XCTAssertEqual(tc["eos_token"]?.stringValue, "<|im_end|>")
        XCTAssertEqual(tc["add_prefix_space"]?.boolValue, false)
        let stm = try JSONValue.parse(contentsOf: rt.dir.appendingPathComponent("special_tokens_map.json"))
        XCTAssertEqual(stm["unk_token"]?["content"]?.stringValue, "<|endoftext|>")
    }

    /// Byte-level BPE whose GGUF adds BOS (llama3-style pre-tokenizer): the TemplateProcessing
    /// post-processor gives add_bos back without inventing add_sep_token.
    func testBPEWithBosTemplate() throws {
        let g = try Fixtures.sharedFile("models/tiny/tiny-qwen3.golden/tiny-qwen3-f32.gguf")
        let meta = replacing(try GGUFMetaReader.tokenizerEntries(g), [
            "tokenizer.ggml.pre": .string("llama-bpe"), "tokenizer.ggml.add_bos_token": .bool(true),
            "tokenizer.ggml.bos_token_id": .uint32(998), "tokenizer.chat_template": .string("{{ messages }}"),
        ])
        let cfg = try Data(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-qwen3/config.json"))
        let rt = try roundTrip(meta: meta, config: cfg, forcedPre: "llama-bpe")
        assertSameMetadata(rt, "qwen3 as llama-bpe")
        try assertSameIds(rt, try sentence("tiny-qwen3"), "qwen3 as llama-bpe")
        let tj = try HFTokenizerJSON(contentsOf: rt.dir.appendingPathComponent("tokenizer.json"))
        XCTAssertTrue(tj.ignoreMerges)
        XCTAssertEqual(try tj.equivalentPre().pre, "llama-bpe")
        XCTAssertEqual(try tj.referenceEncode("Hi").first, 998)     // HF adds the BOS too
    }

    /// SentencePiece with a user-defined token (spaces), an extra control token and [PAD{i}] fillers.
    func testSentencePieceUserDefinedAndPadding() throws {
        let g = try Fixtures.sharedFile("models/tiny/tiny-llama.golden/tiny-llama-f32.gguf")
        let orig = try GGUFMetaReader.tokenizerEntries(g)
        let d = Dictionary(orig.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        guard case var .stringArray(tokens)? = d["tokenizer.ggml.tokens"], case var .float32Array(scores)? = d["tokenizer.ggml.scores"],
              case var .int32Array(types)? = d["tokenizer.ggml.token_type"] else { return XCTFail("fixture") }
        tokens[999] = "my token"; scores[999] = -1000; types[999] = TokenType.userDefined.rawValue
        tokens[998] = "<|tool|>"; scores[998] = -1000; types[998] = TokenType.control.rawValue
        for i in 1000..<1024 { tokens.append("[PAD\(i)]"); scores.append(-10000); types.append(TokenType.unused.rawValue) }
        let meta = replacing(orig, ["tokenizer.ggml.tokens": .stringArray(tokens), "tokenizer.ggml.scores": .float32Array(scores),
                                    "tokenizer.ggml.token_type": .int32Array(types), "tokenizer.ggml.padding_token_id": .uint32(998)])
        var cfg = try JSONValue.parse(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-llama/config.json")).objectValue ?? []
        cfg.removeAll { $0.0 == "vocab_size" }
        let rt = try roundTrip(meta: meta, config: Data(JSONValue.object(cfg).serialized().utf8))
        XCTAssertTrue(rt.report.notes.isEmpty, "\(rt.report.notes)")
        assertSameMetadata(rt, "tiny-llama modified")
        try assertSameIds(rt, try sentence("tiny-llama") + ["a my token b <|tool|>"], "tiny-llama modified")
        let spm = try SentencePieceModel(contentsOf: rt.dir.appendingPathComponent("tokenizer.model"))
        XCTAssertEqual(spm.pieces.count, 1000)                      // fillers left to the converter
        XCTAssertEqual(spm.pieces[999], SentencePieceModel.Piece(piece: "my\u{2581}token", score: -1000, type: .userDefined))
        XCTAssertEqual(spm.padId, 998)
        let cfgOut = try JSONValue.parse(contentsOf: rt.dir.appendingPathComponent("config.json"))
        XCTAssertEqual(cfgOut["vocab_size"]?.intValue, 1024)          // added: the converter pads to it
        XCTAssertNil(cfgOut["pad_token_id"])                           // resolved through tokenizer.json
    }

    /// The project venv's python; skip without it (a failure on CI, where it must exist).
    func python() throws -> URL {
        if let p = Fixtures.venvPython { return p }
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("the project venv (.venv/bin/python) is missing on CI") }
        throw XCTSkip(".venv/bin/python is missing (make creates it)")
    }

    /// Ids from Hugging Face `tokenizers` for a tokenizer.json (add_special_tokens=True).
    func hfIds(_ py: URL, _ tokenizerJSON: URL, _ text: [UInt8]) throws -> [Int32] {
        let code = """
        import sys, json
        from tokenizers import Tokenizer
        t = Tokenizer.from_file(sys.argv[1])
        print(json.dumps(t.encode(sys.stdin.buffer.read().decode('utf-8')).ids))
        """
        let p = Process()
        p.executableURL = py
        p.arguments = ["-c", code, tokenizerJSON.path]
        let inp = Pipe(), out = Pipe()
        p.standardInput = inp; p.standardOutput = out
        try p.run()
        inp.fileHandleForWriting.write(Data(text)); try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return (try JSONValue.parse(o).arrayValue ?? []).compactMap { $0.intValue }.map { Int32($0) }
    }

    func wikiText(_ kb: Int) throws -> [UInt8] {
        let raw = [UInt8](try Data(contentsOf: try Fixtures.sharedFile("data/wikitext-2-test.raw")))
        var n = min(kb * 1024, raw.count)
        while n > 0 && n < raw.count && raw[n] & 0xC0 == 0x80 { n -= 1 }
        return Array(raw[..<n])
    }

    /// Hugging Face `tokenizers` loads the exported SmolLM2 tokenizer.json and encodes like llama.cpp.
    func testHFTokenizersAgree() throws {
        let py = try python()
        let gguf = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let rt = try roundTrip(gguf, config: Data(#"{"architectures":["LlamaForCausalLM"],"vocab_size":49152}"#.utf8))
        let text = try wikiText(50) + Array("<|im_start|>user\n12 café 🤗<|im_end|>\n".utf8)
        let hf = try hfIds(py, rt.dir.appendingPathComponent("tokenizer.json"), text)
        let mine = try Tokenizer(vocab: TokenizerVocab(metadata: rt.original)).encode(bytes: text)
        XCTAssertGreaterThan(hf.count, 10000)
        XCTAssertEqual(hf, mine)
    }

    /// The tiny fixtures' exported tokenizer.json (BPE and SentencePiece) give Hugging Face
    /// `tokenizers` the same ids as the checkpoints' original tokenizer.json.
    func testHFTokenizersAgreeWithOriginalFiles() throws {
        let py = try python()
        let text = try wikiText(30) + Array("<s>x</s> <|im_start|>user\n12 café 🤗<|im_end|>\n<start_of_turn>".utf8)
        for m in ["tiny-llama", "tiny-gemma3", "tiny-qwen3"] {
            let rt = try tiny(m, forcedPre: m == "tiny-qwen3" ? "qwen2" : nil)
            let orig = try hfIds(py, try Fixtures.sharedFile("models/tiny/\(m)/tokenizer.json"), text)
            XCTAssertGreaterThan(orig.count, 5000)
            XCTAssertEqual(try hfIds(py, rt.dir.appendingPathComponent("tokenizer.json"), text), orig, m)
        }
    }

    /// Named chat templates (tokenizer.chat_templates) come back with the default one.
    func testNamedChatTemplates() throws {
        let g = try Fixtures.sharedFile("models/tiny/tiny-qwen3.golden/tiny-qwen3-f32.gguf")
        var meta = try GGUFMetaReader.tokenizerEntries(g)
        meta += [("tokenizer.chat_template.tool_use", .string("{{ tools }}")),
                 ("tokenizer.chat_templates", .stringArray(["tool_use"])),
                 ("tokenizer.chat_template", .string("{{ messages }}"))]
        let cfg = try Data(contentsOf: try Fixtures.sharedFile("models/tiny/tiny-qwen3/config.json"))
        let rt = try roundTrip(meta: meta, config: cfg, forcedPre: "qwen2")
        XCTAssertEqual(assertSameMetadata(rt, "qwen3 + templates"), [])
    }

    /// Without a config.json the report says which keys it needs.
    func testNoConfigJSONIsReported() throws {
        let g = try Fixtures.sharedFile("models/tiny/tiny-gemma3.golden/tiny-gemma3-f32.gguf")
        let dir = try Fixtures.tempDir(self)
        let r = try HFTokenizerExport.export(metadata: try GGUFMetaReader.tokenizerEntries(g), to: dir)
        XCTAssertFalse(r.files.contains("config.json"))
        XCTAssertTrue(r.notes.contains { $0.contains("\"vocab_size\": 1000") }, "\(r.notes)")
        XCTAssertFalse(r.needsForcedPre)
        XCTAssertEqual(try HFTokenizerExport.configEntries(metadata: try GGUFMetaReader.tokenizerEntries(g)).map { $0.key }, ["vocab_size"])
    }

    /// The protobuf writer's output is what SentencePieceModel reads, negative ids included.
    func testSentencePieceWriterRoundTrip() throws {
        var w = SentencePieceWriter(pieces: [
            .init(piece: "<unk>", score: 0, type: .unknown), .init(piece: "▁a", score: -1.5, type: .normal),
            .init(piece: "<0x41>", score: 0, type: .byte), .init(piece: "x", score: -3e-8, type: .userDefined),
            .init(piece: "[u]", score: -7, type: .unused), .init(piece: "<c>", score: 0, type: .control),
        ])
        w.byteFallback = true; w.bosId = 5; w.eosId = -1; w.padId = -1; w.addDummyPrefix = false
        let r = try SentencePieceModel(data: w.serialized())
        XCTAssertEqual(r.pieces, w.pieces)
        XCTAssertEqual(r.bosId, 5); XCTAssertEqual(r.eosId, -1); XCTAssertEqual(r.padId, -1); XCTAssertEqual(r.unkId, 0)
        XCTAssertEqual(r.trainerVocabSize, 6)
        XCTAssertTrue(r.byteFallback)
        XCTAssertFalse(r.addDummyPrefix)
        XCTAssertEqual(r.normalizerName, "identity")
    }

    func testUnsupportedModelIsAnError() throws {
        let dir = try Fixtures.tempDir(self)
        XCTAssertThrowsError(try HFTokenizerExport.write(metadata: [("tokenizer.ggml.model", .string("bert")),
                                                                    ("tokenizer.ggml.tokens", .stringArray(["a"]))], to: dir))
    }
}
