import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
@testable import SmeltTokenizer

final class TinyFixtureTests: XCTestCase {
    static let models = ["tiny-llama", "tiny-qwen3", "tiny-gemma3"]

    func forcedPre(_ m: String) -> String? { m == "tiny-qwen3" ? "qwen2" : nil }

    func expectedIds(_ m: String) throws -> (text: String, ids: [Int32]) {
        let dir = try Fixtures.sharedFile("models/tiny/\(m).golden")
        let j = try JSONValue.parse(contentsOf: dir.appendingPathComponent("tokens.json"))
        let text = try String(contentsOf: dir.appendingPathComponent("sentence.txt"), encoding: .utf8)
        let ids = (j["llama_cpp"]?["ids"]?.arrayValue ?? []).compactMap { $0.intValue }.map { Int32($0) }
        XCTAssertEqual(j["hf"]?["ids"]?.arrayValue?.count, ids.count)
        return (text, ids)
    }

    func testSentenceIdsFromHFCheckpoint() throws {
        for m in Self.models {
            let dir = try Fixtures.sharedFile("models/tiny/\(m)")
            let tok = try Tokenizer(hfDirectory: dir, forcedPre: forcedPre(m))
            let (text, ids) = try expectedIds(m)
            XCTAssertFalse(ids.isEmpty)
            XCTAssertEqual(tok.encode(text), ids, m)
        }
    }

    func testSentenceIdsFromGoldenGGUF() throws {
        for m in Self.models {
            let g = try Fixtures.sharedFile("models/tiny/\(m).golden/\(m)-f32.gguf")
            let meta = try GGUFMetaReader.tokenizerEntries(g)
            let tok = try Tokenizer(vocab: TokenizerVocab(metadata: meta))
            let (text, ids) = try expectedIds(m)
            XCTAssertEqual(tok.encode(text), ids, m)
            // decoding without BOS gives the text back (llama.cpp strips the SPM prefix space only
            // from the first piece; with remove_special it keeps it, as llama_detokenize does)
            let body = tok.addBos ? Array(ids.dropFirst()) : ids
            XCTAssertEqual(tok.decode(body), text, m)
            if tok.addBos { XCTAssertEqual(tok.decode(ids, removeSpecial: true), (tok.addSpacePrefix ? " " : "") + text, m) }
        }
    }

    func testMetadataMatchesGoldenGGUF() throws {
        for m in Self.models {
            let dir = try Fixtures.sharedFile("models/tiny/\(m)")
            let g = try Fixtures.sharedFile("models/tiny/\(m).golden/\(m)-f32.gguf")
            let golden = try GGUFMetaReader.tokenizerEntries(g)
            let mine = try HFVocabConverter.metadata(modelDir: dir, forcedPre: forcedPre(m))
            XCTAssertEqual(mine.map { $0.key }, golden.map { $0.key }, m)
            for (a, b) in zip(mine, golden) {
                XCTAssertEqual(a.value, b.value, "\(m) \(a.key)")
            }
        }
    }

    func testQwenPreIsNotRecognizedAndSuggestsForcing() throws {
        let dir = try Fixtures.sharedFile("models/tiny/tiny-qwen3")
        XCTAssertThrowsError(try HFVocabConverter.metadata(modelDir: dir)) { e in
            let msg = (e as? SmeltError)?.message ?? ""
            XCTAssertTrue(msg.contains("--pre"), msg)
            XCTAssertTrue(msg.contains("qwen2"), msg)
        }
    }

    /// eval-sample.txt: llama.cpp's token counts are recorded in tokens.json.
    func testEvalSampleTokenCounts() throws {
        for m in Self.models {
            let gdir = try Fixtures.sharedFile("models/tiny/\(m).golden")
            let j = try JSONValue.parse(contentsOf: gdir.appendingPathComponent("tokens.json"))
            let cmp = j["eval_sample_comparison"]
            let nFull = cmp?["eval-sample.txt verbatim"]?["n_llama_cpp"]?.intValue
            let nTrim = cmp?["eval-sample.txt minus trailing LF (llama-perplexity input)"]?["n_llama_cpp"]?.intValue
            let tok = try Tokenizer(hfDirectory: try Fixtures.sharedFile("models/tiny/\(m)"), forcedPre: forcedPre(m))
            var bytes = [UInt8](try Data(contentsOf: gdir.appendingPathComponent("eval-sample.txt")))
            XCTAssertEqual(tok.encode(bytes: bytes).count, nFull, m)
            if bytes.last == 0x0A { bytes.removeLast() }
            XCTAssertEqual(tok.encode(bytes: bytes).count, nTrim, m)
        }
    }
}
