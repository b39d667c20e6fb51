import Foundation
import XCTest
import SmeltEval
import SmeltFormats
import SmeltTestSupport
@testable import SmeltReport
import SmeltStore

/// `smelt results import` of real llama-perplexity output gives its numbers exactly.
final class ImportTests: XCTestCase {
    func log(_ name: String) throws -> (URL, String) {
        let u = try Fixtures.sharedFile("data/llama-perplexity-logs/\(name)")
        return (u, try String(contentsOf: u, encoding: .utf8))
    }

    func testKLDLogsReproduceTheirStatisticsBlocks() throws {
        for name in ["kld-Q4_K_M.log", "kld-Q8_0.log"] {
            let (u, text) = try log(name)
            guard case let .klDivergence(r, threads, batch) = try LlamaPerplexityLog.parse(text, file: u.path, model: "q.gguf") else {
                return XCTFail("\(name): not read as a KL-divergence log")
            }
            XCTAssertEqual(threads, 2); XCTAssertEqual(batch, 2048)
            XCTAssertEqual(r.contextLength, 512); XCTAssertEqual(r.chunks, 10)
            // Printing the parsed values the way llama-perplexity does gives the log's block, byte for byte.
            let start = try XCTUnwrap(text.range(of: "====== Perplexity statistics ======"))
            let block = String(text[start.lowerBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(r.report().trimmingCharacters(in: .whitespacesAndNewlines), block, name)
            // The per-chunk table, every value.
            XCTAssertEqual(r.perChunk.count, 10)
            let table = text.components(separatedBy: "\n").filter { $0.range(of: #"^\s+\d+\s+\d"#, options: .regularExpression) != nil }
            XCTAssertEqual(table.count, 10)
            for (line, c) in zip(table, r.perChunk) {
                let printed = String(format: "%4d      %8.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%   %6.3f ± %6.3f %%",
                                     c.chunk, c.ppl.value, c.ppl.uncertainty, c.lnPPLRatio.value, c.lnPPLRatio.uncertainty,
                                     c.kld.value, c.kld.uncertainty, 100 * c.rmsDeltaP.value, 100 * c.rmsDeltaP.uncertainty,
                                     100 * c.sameTop.value, 100 * c.sameTop.uncertainty)
                XCTAssertEqual(LlamaPerplexityLog.numbers(in: printed), LlamaPerplexityLog.numbers(in: line).map { $0 }, name)
            }
        }
    }

    func testPerplexityLog() throws {
        let (u, text) = try log("ppl-bf16.log")
        guard case let .perplexity(r, threads, _) = try LlamaPerplexityLog.parse(text, file: u.path, model: "bf16.gguf") else {
            return XCTFail("not read as a perplexity log")
        }
        XCTAssertEqual(r.perplexity, 25.5866)
        XCTAssertEqual(r.uncertainty, 1.55849)
        XCTAssertEqual(r.runningEstimates, [12.5811, 21.3342, 22.2234, 22.1134, 21.7687, 21.9959, 22.6451, 23.6131, 24.7005, 25.5866])
        XCTAssertEqual(r.chunks, 10); XCTAssertEqual(r.contextLength, 512); XCTAssertEqual(threads, 2)
        XCTAssertEqual(r.scoredTokens, 10 * 255)
    }

    func testNotALogIsOneClearError() throws {
        XCTAssertThrowsError(try LlamaPerplexityLog.parse("hello\n", file: "/x/notes.txt", model: "m")) { e in
            XCTAssertEqual((e as? SmeltError)?.message.hasPrefix("/x/notes.txt: not a llama-perplexity log"), true, "\(e)")
        }
        let (_, text) = try log("kld-Q8_0.log")
        let cut = text.replacingOccurrences(of: "Same top p:", with: "Same top q:")
        XCTAssertThrowsError(try LlamaPerplexityLog.parse(cut, file: "/x/cut.log", model: "m")) { e in
            XCTAssertTrue(((e as? SmeltError)?.message ?? "").contains("Same top p"), "\(e)")
        }
    }

    /// Through the binary: imported runs land in the store and in the report with the log's values.
    func testImportedRunsReport() throws {
        let dir = try Fixtures.tempDir(self)
        let store = dir.appendingPathComponent("r.sqlite").path
        let wiki = try Fixtures.sharedFile("data/wikitext-2-test.raw").path
        let (ppl, _) = try log("ppl-bf16.log"), (q4, _) = try log("kld-Q4_K_M.log"), (q8, _) = try log("kld-Q8_0.log")
        for (l, m) in [(ppl, "bf16.gguf"), (q4, "Q4_K_M.gguf"), (q8, "Q8_0.gguf")] {
            var args = ["results", "import", "--store", store, l.path, "-m", m, "-f", wiki]
            if m != "bf16.gguf" { args += ["--base", "bf16.gguf"] }
            let r = try SmeltBinary.run(args)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let rep = try SmeltBinary.run(["report", "--store", store, "--format", "json"])
        XCTAssertEqual(rep.status, 0, rep.stderr)
        let g = try JSONDecoder().decode(ReportGroup.self, from: Data(rep.stdout.utf8))
        XCTAssertEqual(g.rows.map(\.file), ["bf16.gguf", "Q4_K_M.gguf", "Q8_0.gguf"])
        XCTAssertEqual(g.rows[0].ppl?.value, 25.5866)
        XCTAssertEqual(g.rows[1].kld?.value, 0.054060)
        XCTAssertEqual(g.rows[1].kld99_9, 0.739932)
        XCTAssertEqual(g.rows[2].kld?.value, 0.004081)
        XCTAssertEqual(g.rows[2].sameTop.map { String(format: "%.3f", 100 * $0.value) }, "95.373")
        XCTAssertEqual(g.rows[2].rmsDeltaP.map { String(format: "%.3f", 100 * $0.value) }, "1.354")
        XCTAssertEqual(g.text, "wikitext-2-test.raw")
    }
}
