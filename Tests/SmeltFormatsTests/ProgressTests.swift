import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// One progress display: a bar with rate and ETA on a terminal, plain lines in logs.
final class ProgressTests: XCTestCase {
    final class Sink: @unchecked Sendable { var text = "" }

    func testLogModePrintsPlainLinesAndTerminalModeABar() {
        let log = Sink()
        let p = ProgressBar("convert", total: 4 << 20, terminal: false, logInterval: 0, output: { log.text += $0 })
        p.advance(1 << 20, detail: "blk.0.attn_q.weight")
        p.advance(3 << 20)
        p.finish()
        let lines = log.text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, log.text)
        XCTAssertTrue(lines[0].hasPrefix("convert:  25.0%      1.0/4.0 MiB"), String(lines[0]))
        XCTAssertTrue(lines[0].contains("MiB/s  ETA ") && lines[0].hasSuffix("blk.0.attn_q.weight"), String(lines[0]))
        XCTAssertTrue(lines[1].contains("100.0%"), String(lines[1]))
        XCTAssertFalse(log.text.contains("\r"), "no carriage returns in logs")

        let tty = Sink()
        let b = ProgressBar("export", total: 100, terminal: true, output: { tty.text += $0 })
        b.advance(50)
        b.finish()
        XCTAssertTrue(tty.text.hasPrefix("\rexport "), tty.text)
        XCTAssertTrue(tty.text.contains("MiB/s") && tty.text.hasSuffix("\n"), tty.text)

        // items, and results in the same log: a progress line never lands inside a result line
        let both = Sink()
        let e = ProgressBar("perplexity", total: 4, unit: .items("chunks"), terminal: false, logInterval: 0, resultsInLog: true,
                            output: { both.text += $0 }, resultOutput: { both.text += $0 })
        e.result("[1]5.0,"); e.set(1, detail: "80 tokens/s"); e.result("[2]4.0,"); e.result("\n")
        XCTAssertEqual(both.text.split(separator: "\n").count, 3, both.text)
        XCTAssertTrue(both.text.hasPrefix("[1]5.0,\nperplexity:  25.0% 1/4 chunks "), both.text)
        XCTAssertTrue(both.text.contains("chunks/s  ETA ") && both.text.hasSuffix("80 tokens/s\n[2]4.0,\n"), both.text)

        // on a terminal, with an unfinished result line: the bar goes below it and comes off before more results
        let screen = Sink()
        let t = ProgressBar("perplexity", total: 4, unit: .items("chunks"), terminal: true, resultsOnTerminal: true, width: 80,
                            output: { screen.text += $0 }, resultOutput: { screen.text += $0 })
        t.result("[1]5.0,"); t.set(1); t.result("[2]4.0,")
        XCTAssertTrue(screen.text.hasPrefix("[1]5.0,\nperplexity "), screen.text)
        XCTAssertTrue(screen.text.contains("\r\u{1B}[K\u{1B}[A\u{1B}[8G[2]4.0,\nperplexity "), screen.text)

        let quiet = Sink()
        let q = ProgressBar("x", total: 10, enabled: false, terminal: false, logInterval: 0, output: { quiet.text += $0 })
        q.advance(10); q.finish()
        XCTAssertEqual(quiet.text, "")
    }
}

/// llama-imatrix --show-statistics, computed from an imatrix llama-imatrix wrote.
final class ImatrixStatisticsTests: XCTestCase {
    func testStatisticsOfLlamaImatrix() throws {
        let url = try SmeltTestSupport.Fixtures.sharedFile("models/tiny/tiny-mixtral.golden/tiny-mixtral.imatrix.gguf")
        let im = try Imatrix(url: url)
        let ts = im.statistics()
        XCTAssertEqual(ts.count, im.entries.count)
        // every figure recomputed directly from sums / counts
        let e = try XCTUnwrap(im.entries["blk.1.attn_output.weight"])
        let v = e.sums.map { Double($0) / Double(e.counts[0]) }
        let s = try XCTUnwrap(ts.first { $0.name == "blk.1.attn_output.weight" })
        XCTAssertEqual(s.layer, "1"); XCTAssertEqual(s.tensor, "attn_output")
        XCTAssertEqual(s.elements, v.count)
        XCTAssertEqual(Double(s.sum), v.reduce(0, +), accuracy: 1e-3)
        XCTAssertEqual(Double(s.mean), v.reduce(0, +) / Double(v.count), accuracy: 1e-5)
        XCTAssertEqual(s.min, Float(v.min()!)); XCTAssertEqual(s.max, Float(v.max()!))
        let sd = (v.map { ($0 - v.reduce(0, +) / Double(v.count)) * ($0 - v.reduce(0, +) / Double(v.count)) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
        XCTAssertEqual(Double(s.std), sd, accuracy: 1e-4)
        XCTAssertGreaterThan(s.cossim, 0.5); XCTAssertLessThanOrEqual(s.cossim, 1)
        XCTAssertEqual(ts.first { $0.name == "blk.0.attn_output.weight" }?.cossim, 0, "no previous block")
        // q, k and v see the same input: identical rows
        let q = ts.first { $0.name == "blk.1.attn_q.weight" }, k = ts.first { $0.name == "blk.1.attn_k.weight" }
        XCTAssertEqual(q?.sum, k?.sum)
        // sorted by short name, then by Σ descending
        XCTAssertEqual(ts.map(\.tensor), ts.map(\.tensor).sorted())
        let text = im.statisticsText(file: "x.gguf")
        XCTAssertTrue(text.contains("Computing tensor statistics for x.gguf (16 tensors)"), text)
        XCTAssertTrue(text.contains("\n    1\tattn_output         \t"), text)
        XCTAssertTrue(text.contains("Computing layer statistics (2 layers)"), text)
    }
}
