import Foundation
import XCTest
import SmeltConvert
import SmeltFormats
import SmeltTestSupport

/// `--outtype tq1_0|tq2_0` and `--vocab-only` against convert_hf_to_gguf.py's rules replayed
/// with gguf-py (its writer and numpy quantizers) on llama.cpp's own f32 conversions
/// (scripts/gguf-py-convert-variants.py): byte-identical files.
final class ConvertVariantsTests: XCTestCase {
    func testTernaryOuttypesAndVocabOnlyMatchGGUFPy() throws {
        guard let py = Fixtures.venvPython else { throw XCTSkip("no .venv (make venv)") }
        let dir = try Fixtures.tempDir(self)
        for (model, pre) in [("tiny-llama", nil), ("tiny-qwen3", "qwen2"), ("tiny-gemma3", nil)] as [(String, String?)] {
            let folder = try Fixtures.sharedFile("models/tiny/\(model)")
            let f32 = try Fixtures.sharedFile("models/tiny/\(model).golden/\(model)-f32.gguf")
            for mode in ["tq1_0", "tq2_0", "vocab-only"] {
                let ref = dir.appendingPathComponent("\(model)-\(mode)-ref.gguf"), out = dir.appendingPathComponent("\(model)-\(mode).gguf")
                let r = try SmeltBinary.run(executable: py, [Fixtures.repoRoot.appendingPathComponent("scripts/gguf-py-convert-variants.py").path,
                                                             f32.path, ref.path, mode])
                XCTAssertEqual(r.status, 0, r.stderr)
                let plan = try ConversionPlan(folder: folder, outType: mode == "vocab-only" ? .f32 : OutType(rawValue: mode)!,
                                              pre: pre, vocabOnly: mode == "vocab-only")
                _ = try Converter.write(plan, to: out, threads: 2, progress: false)
                XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: ref), "\(model) \(mode)")
            }
            // what a ternary file holds: F16 embeddings / head, ternary matrices, F32 norms
            let g = try GGUFFile(url: dir.appendingPathComponent("\(model)-tq2_0.gguf"))
            XCTAssertEqual(g.tensor(named: "token_embd.weight")?.type, .f16)
            XCTAssertEqual(g.tensor(named: "blk.0.attn_q.weight")?.type, .tq2_0)
            XCTAssertEqual(g.metadata["general.file_type"], .uint32(37))
            XCTAssertEqual(try GGUFFile(url: dir.appendingPathComponent("\(model)-vocab-only.gguf")).tensors.count, 0)
        }
    }
}
