import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport
import SmeltStore

/// Every command run is recorded: quantize, perplexity (with --save-logits), KL-divergence,
/// imatrix; `--json` carries the record; `--no-store` records nothing; report and card read it.
final class CommandRecordingTests: XCTestCase {
    func testQuantizeEvaluateReportAndCardThroughTheBinary() throws {
        let golden = try Fixtures.sharedFile("models/tiny/tiny-llama.golden")
        let dir = try Fixtures.tempDir(self)
        let store = dir.appendingPathComponent("results.sqlite").path
        let quants = dir.appendingPathComponent("quants")
        try FileManager.default.createDirectory(at: quants, withIntermediateDirectories: true)
        let bf16 = quants.appendingPathComponent("tiny-bf16.gguf")
        try FileManager.default.copyItem(at: golden.appendingPathComponent("tiny-llama-bf16.gguf"), to: bf16)
        let text = golden.appendingPathComponent("eval-sample.txt")
        let env = ["SMELT_STORE": store]
        func smelt(_ a: [String]) throws -> SmeltBinary.Result {
            let r = try SmeltBinary.run(a, environment: env)
            XCTAssertEqual(r.status, 0, "smelt \(a.joined(separator: " ")): \(r.stderr)")
            return r
        }
        func json(_ r: SmeltBinary.Result) throws -> [String: Any] {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        }
        let q8 = quants.appendingPathComponent("tiny-Q8_0.gguf"), q4 = quants.appendingPathComponent("tiny-Q4_0.gguf")
        _ = try smelt(["quantize", bf16.path, q8.path, "Q8_0"])
        let qj = try json(try smelt(["quantize", bf16.path, q4.path, "Q4_0", "--json"]))
        let qrun = try XCTUnwrap(qj["run"] as? [String: Any])
        // The digest computed while writing is the file's SHA-256.
        XCTAssertEqual((qrun["model"] as? [String: Any])?["sha256"] as? String, try SHA256Hasher.hashFile(q4))
        XCTAssertEqual((qrun["input"] as? [String: Any])?["sha256"] as? String, try SHA256Hasher.hashFile(bf16))
        XCTAssertEqual(qrun["recipeName"] as? String, "Q4_0")
        XCTAssertNotNil(qj["run_id"] as? Int)

        let base = dir.appendingPathComponent("base.kld")
        let pj = try json(try smelt(["perplexity", bf16.path, "-f", text.path, "-c", "128", "--chunks", "6", "--save-logits", base.path, "--json"]))
        let prun = try XCTUnwrap(pj["run"] as? [String: Any])
        XCTAssertEqual((prun["base"] as? [String: Any])?["sha256"] as? String, try SHA256Hasher.hashFile(base))
        XCTAssertEqual((prun["text"] as? [String: Any])?["sha256"] as? String, try SHA256Hasher.hashFile(text))
        XCTAssertEqual(prun["contextLength"] as? Int, 128)
        XCTAssertEqual(prun["smeltVersion"] as? String, SmeltVersion.string)
        XCTAssertNotNil(pj["perplexity"] as? Double)

        var kldIDs: [Int] = []
        for q in [q8, q4] {
            let kj = try json(try smelt(["perplexity", q.path, "--kl-divergence", base.path, "--json"]))
            let krun = try XCTUnwrap(kj["run"] as? [String: Any])
            // The base model and the text come from the run that wrote the base file.
            XCTAssertEqual((krun["baseModel"] as? [String: Any])?["sha256"] as? String, try SHA256Hasher.hashFile(bf16))
            XCTAssertEqual((krun["text"] as? [String: Any])?["name"] as? String, "eval-sample.txt")
            kldIDs.append(try XCTUnwrap(kj["run_id"] as? Int))
        }
        // --no-store: nothing recorded.
        let before = try ResultsStore(url: URL(fileURLWithPath: store)).runCount()
        _ = try smelt(["perplexity", q4.path, "--kl-divergence", base.path, "--no-store"])
        XCTAssertEqual(try ResultsStore(url: URL(fileURLWithPath: store)).runCount(), before)
        XCTAssertEqual(before, 5)

        let list = try smelt(["results", "list", "--kind", "kl-divergence"])
        XCTAssertEqual(list.stdout.split(separator: "\n").count, 3, list.stdout)
        let csv = try smelt(["results", "export", "--csv", "--model", "Q4_0"])
        XCTAssertEqual(csv.stdout.split(separator: "\n").count, 3, csv.stdout)  // header, quantize, kld

        let md = dir.appendingPathComponent("report.md")
        _ = try smelt(["report", "-o", md.path])
        let report = try String(contentsOf: md, encoding: .utf8)
        XCTAssertTrue(report.contains("tiny-bf16.gguf (base)"), report)
        XCTAssertTrue(report.contains("tiny-Q8_0.gguf") && report.contains("tiny-Q4_0.gguf"), report)
        let html = dir.appendingPathComponent("report.html")
        _ = try smelt(["report", "-o", html.path])
        let page = try String(contentsOf: html, encoding: .utf8)
        XCTAssertEqual(page.components(separatedBy: "class=\"typemap\"").count - 1, 2, "a type map per quant (plans stored)")

        let card = try smelt(["card", quants.path, "-o", "-", "--base-model", "example/tiny-llama", "--quantized-by", "smelt-tests"])
        XCTAssertTrue(card.stdout.hasPrefix("---\nbase_model: example/tiny-llama\nbase_model_relation: quantized\n"), card.stdout)
        XCTAssertTrue(card.stdout.contains("quantized_by: smelt-tests"))
        XCTAssertTrue(card.stdout.contains("| tiny-Q4_0.gguf | Q4_0 |"), card.stdout)
        XCTAssertTrue(card.stdout.contains("tiny-Q8_0.gguf: recipe `Q8_0`, no importance matrix"), card.stdout)

        let bad = try SmeltBinary.run(["results", "show", "999"], environment: env)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertEqual(bad.stderr, "error: no run 999 in the results store\n")
    }
}
