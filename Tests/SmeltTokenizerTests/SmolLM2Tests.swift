import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltTokenizer

/// Real-model checks with SmolLM2-135M-Instruct's byte-level BPE tokenizer (pre `smollm`).
/// The HF checkpoint is rebuilt from the shared GGUF by make-hf.py (cached in .cache/), and the
/// reference ids come from Hugging Face `tokenizers` in the project venv.
final class SmolLM2Tests: XCTestCase {
    func python() throws -> URL { try TestPython.python() }
    @discardableResult
    func run(_ exe: URL, _ args: [String], stdin: Data? = nil) throws -> Data { try TestPython.run(exe, args, stdin: stdin) }
    func smolDir() throws -> URL { try TestPython.smolDir() }

    /// Hugging Face `tokenizers` ids for a text (add_special_tokens=True, as the converter's check).
    func hfIds(_ dir: URL, _ text: [UInt8]) throws -> [Int32] {
        let code = """
        import sys, json
        from tokenizers import Tokenizer
        t = Tokenizer.from_file(sys.argv[1])
        text = sys.stdin.buffer.read().decode('utf-8')
        print(json.dumps(t.encode(text).ids))
        """
        let out = try run(try python(), ["-c", code, dir.appendingPathComponent("tokenizer.json").path], stdin: Data(text))
        return (try JSONValue.parse(out).arrayValue ?? []).compactMap { $0.intValue }.map { Int32($0) }
    }

    func testPreIsDetectedAsSmollm() throws {
        let dir = try smolDir()
        XCTAssertEqual(try HFVocabConverter.preFingerprint(modelDir: dir),
                       "855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249")
        XCTAssertEqual(try HFVocabConverter.detectPre(modelDir: dir), "smollm")
    }

    /// The rebuilt checkpoint converts back to the tokenizer keys of the GGUF it came from.
    func testMetadataMatchesOriginalGGUF() throws {
        let dir = try smolDir()
        let gguf = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf")
        let original = try GGUFMetaReader.tokenizerEntries(gguf)
        let mine = try HFVocabConverter.metadata(modelDir: dir)
        XCTAssertEqual(Set(mine.map { $0.key }), Set(original.map { $0.key }))
        let d = Dictionary(mine.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        for (k, v) in original { XCTAssertEqual(d[k], v, k) }
        XCTAssertEqual(mine.first?.key, "tokenizer.ggml.add_space_prefix")
        XCTAssertEqual(mine.last?.key, "tokenizer.ggml.add_bos_token")   // the Llama converter's 49152-vocab rule
    }

    /// First 100 KB of WikiText-2 test: ids equal Hugging Face tokenizers'.
    func testWikiText100KMatchesHF() throws {
        let dir = try smolDir()
        let raw = [UInt8](try Data(contentsOf: try Fixtures.sharedFile("data/wikitext-2-test.raw")))
        var n = min(100 * 1024, raw.count)
        while n > 0 && n < raw.count && raw[n] & 0xC0 == 0x80 { n -= 1 }
        let text = Array(raw[..<n])
        let tok = try Tokenizer(hfDirectory: dir)
        let mine = tok.encode(bytes: text)
        let ref = try hfIds(dir, text)
        XCTAssertGreaterThan(ref.count, 20000)
        XCTAssertEqual(mine.count, ref.count)
        if let i = zip(mine, ref).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            XCTFail("first mismatch at \(i): \(Array(mine[max(0, i - 3)..<min(mine.count, i + 5)])) vs \(Array(ref[max(0, i - 3)..<min(ref.count, i + 5)]))")
        }
        // round trip
        XCTAssertEqual(tok.decodeBytes(mine), text)
    }

    /// Special tokens written in text become their ids (llama-tokenize parses them by default).
    func testChatTemplateTokens() throws {
        let tok = try Tokenizer(hfDirectory: try smolDir())
        let ids = tok.encode("<|im_start|>user\nHi<|im_end|>\n")
        XCTAssertEqual(ids.first, 1)
        XCTAssertTrue(ids.contains(2))
        XCTAssertFalse(tok.encode("<|im_start|>", parseSpecial: false).contains(1))
        XCTAssertEqual(tok.vocab.chatTemplate?.hasPrefix("{% for message in messages %}"), true)
    }
}
