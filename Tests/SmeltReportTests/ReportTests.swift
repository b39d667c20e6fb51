import Foundation
import XCTest
import SmeltEval
import SmeltFormats
import SmeltTestSupport
@testable import SmeltReport
@testable import SmeltStore

/// Reports: grouping, the Pareto marking, every output form read back, the HTML page in a real browser.
final class ReportTests: XCTestCase {
    func testParetoFrontierOnAConstructedSet() {
        // (size, loss): B dominates C (smaller and better); D ties A on size but is worse; E is the largest and best.
        let pts: [(Double, Double)?] = [(1, 0.5), (2, 0.2), (3, 0.3), (1, 0.6), (5, 0.01), nil, (4, .nan), (2, 0.2)]
        XCTAssertEqual(Report.frontier(pts), [true, true, false, false, true, false, false, true])
        XCTAssertEqual(Report.frontier([]), [])
        XCTAssertEqual(Report.frontier([(1, 1)]), [true])
    }

    /// A store with a base perplexity run and quants whose mean and 99.9 % frontiers differ.
    func makeStore(_ dir: URL) throws -> (ResultsStore, [String: (Int64, Double, Double)]) {
        let s = try ResultsStore(url: dir.appendingPathComponent("r.sqlite"))
        let base = FileIdentity(sha256: String(repeating: "b", count: 64), path: "/m/model-bf16.gguf", bytes: 270_000_000)
        let text = FileIdentity(sha256: String(repeating: "7", count: 64), path: "/t/wiki.test.raw", bytes: 1_290_547)
        var b = RunRecord(kind: .perplexity, startedAt: Date(), smeltVersion: "0.1.0", host: "h", cpu: "c", commandLine: "x")
        b.model = base; b.text = text; b.contextLength = 512; b.chunks = 3; b.tokensPerSecond = 900
        b.base = FileIdentity(sha256: String(repeating: "5", count: 64), path: "/m/base.kld", bytes: 10)
        b.result = Recorder.resultJSON(PerplexityResult(model: "model-bf16.gguf", contextLength: 512, chunks: 3, scoredTokens: 765,
                                                        perplexity: 17.9721, uncertainty: 0.7088, runningEstimates: [1, 2, 3],
                                                        seconds: 2, tokensPerSecond: 900))
        try s.record(b)
        // name: (bytes, mean KLD, 99.9 % KLD)
        let quants: [String: (Int64, Double, Double)] = [
            "m-Q8_0.gguf": (140_000_000, 0.0047, 0.05), "m-Q6_K.gguf": (110_000_000, 0.0090, 0.10),
            "m-Q4_K_M.gguf": (100_000_000, 0.0405, 0.40), "m-Q4_0.gguf": (90_000_000, 0.3010, 2.1),
            "m-Q4_1.gguf": (95_000_000, 0.3500, 1.9),  // worse mean than Q4_0 but better tail: only on the 99.9 % frontier
        ]
        // An older, worse run of m-Q8_0.gguf (the 5th name in order): the report takes the latest.
        var old = RunRecord(kind: .klDivergence, startedAt: Date(), smeltVersion: "0.1.0", host: "h", cpu: "c", commandLine: "x")
        old.model = FileIdentity(sha256: String(format: "%064x", 5), path: "/m/m-Q8_0.gguf", bytes: 140_000_000)
        old.baseModel = base; old.text = text; old.base = b.base; old.contextLength = 512; old.chunks = 3
        old.result = Recorder.resultJSON(TestRuns.sampleKLD(model: "m-Q8_0.gguf", kld: 0.9, p999: 5))
        try s.record(old)
        var ids: [String: (Int64, Double, Double)] = [:]
        for (i, (name, v)) in quants.sorted(by: { $0.key < $1.key }).enumerated() {
            var r = RunRecord(kind: .klDivergence, startedAt: Date(), smeltVersion: "0.1.0", host: "h", cpu: "c", commandLine: "x")
            r.model = FileIdentity(sha256: String(format: "%064x", i + 1), path: "/m/\(name)", bytes: v.0)
            r.baseModel = base; r.text = text; r.base = b.base; r.contextLength = 512; r.chunks = 3; r.tokensPerSecond = 1000 + Double(i)
            r.result = Recorder.resultJSON(TestRuns.sampleKLD(model: name, kld: v.1, p999: v.2))
            ids[name] = (try s.record(r), v.1, v.2)
            try s.savePlan(ModelPlanRecord(modelKey: r.model!.key, fileType: 15, fileTypeName: "Q4_K_M", tensors: [
                TensorPlanEntry(name: "blk.0.attn_q.weight", type: "q4_K", shape: [256, 64], bytes: 9216),
                TensorPlanEntry(name: "blk.1.attn_q.weight", type: "q6_K", shape: [256, 64], bytes: 13440),
                TensorPlanEntry(name: "token_embd.weight", type: "q8_0", shape: [256, 100], bytes: 27200)]))
        }
        return (s, ids)
    }

    func testGroupsFrontiersAndEveryOutputFormReadBack() throws {
        let dir = try Fixtures.tempDir(self)
        let (s, ids) = try makeStore(dir)
        let g = try Report.select(try Report.groups(s), base: nil)
        XCTAssertEqual(g.rows.first?.isBase, true)
        XCTAssertEqual(g.rows.first?.ppl?.value, 17.9721)
        XCTAssertEqual(g.rows.dropFirst().map(\.file), ["m-Q4_0.gguf", "m-Q4_1.gguf", "m-Q4_K_M.gguf", "m-Q6_K.gguf", "m-Q8_0.gguf"])
        let mean = Set(g.rows.filter(\.frontierMean).map(\.file)), tail = Set(g.rows.filter(\.frontierP99_9).map(\.file))
        XCTAssertEqual(mean, ["m-Q4_0.gguf", "m-Q4_K_M.gguf", "m-Q6_K.gguf", "m-Q8_0.gguf"])
        XCTAssertEqual(tail, ["m-Q4_0.gguf", "m-Q4_1.gguf", "m-Q4_K_M.gguf", "m-Q6_K.gguf", "m-Q8_0.gguf"])
        XCTAssertThrowsError(try Report.select([], base: nil))
        XCTAssertThrowsError(try Report.select([g], base: "nothing-like-it"))
        XCTAssertEqual(try Report.select([g], base: "bbbbbb").baseKey, g.baseKey)

        // JSON: exact values.
        let json = try JSONDecoder().decode(ReportGroup.self, from: Data(try g.render(.json).utf8))
        for r in json.rows where !r.isBase {
            let want = try XCTUnwrap(ids[r.file])
            XCTAssertEqual(r.runID, want.0); XCTAssertEqual(r.kld?.value, want.1); XCTAssertEqual(r.kld99_9, want.2)
        }
        XCTAssertEqual(json, g)

        // Markdown and CSV: every printed number equals the stored one at the printed precision.
        func checkTable(_ rows: [[String]], _ form: String) throws {
            XCTAssertEqual(rows.count, g.rows.count, form)
            for (cells, r) in zip(rows, g.rows) {
                XCTAssertEqual(cells[0].replacingOccurrences(of: " (base)", with: ""), r.file, form)
                func near(_ i: Int, _ v: Double?, _ tol: Double) {
                    guard let v else { return XCTAssertEqual(cells[i], "", "\(form) \(r.file) column \(i)") }
                    XCTAssertEqual(Double(cells[i]) ?? .nan, v, accuracy: tol, "\(form) \(r.file) \(ReportGroup.columns[i])")
                }
                near(1, r.sizeMiB, 0.005); near(2, r.bitsPerWeight, 0.0005); near(3, r.ppl?.value, 5e-5); near(4, r.ppl?.uncertainty, 5e-5)
                near(5, r.pplRatio?.value, 5e-5); near(6, r.kld?.value, 5e-7); near(7, r.kld?.uncertainty, 5e-7)
                near(8, r.kldMedian, 5e-7); near(9, r.kld99, 5e-7); near(10, r.kld99_9, 5e-7); near(11, r.kldMax, 5e-7)
                near(12, r.sameTop.map { 100 * $0.value }, 5e-4); near(13, r.rmsDeltaP.map { 100 * $0.value }, 5e-4)
                near(14, r.tokensPerSecond, 0.05)
                XCTAssertEqual(cells[15].contains("mean"), r.frontierMean, form)
                XCTAssertEqual(cells[15].contains("99.9"), r.frontierP99_9, form)
            }
        }
        let md = try g.render(.markdown).components(separatedBy: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| file") }
        try checkTable(md.map { $0.dropFirst(2).dropLast(2).components(separatedBy: " | ").map { $0.trimmingCharacters(in: .whitespaces) } }, "md")
        let csv = try g.render(.csv).components(separatedBy: "\n").dropFirst().filter { !$0.isEmpty }
        try checkTable(csv.map { $0.components(separatedBy: ",") }, "csv")
        let term = try g.render(.terminal)
        XCTAssertTrue(term.contains("m-Q4_K_M.gguf"))
        XCTAssertTrue(term.contains("0.040500"))

        // HTML: one point per quant and series, with the stored values, the table, and a type map per quant.
        var plans: [String: ModelPlanRecord] = [:]
        for r in g.rows { plans[r.modelKey] = try s.plan(modelKey: r.modelKey) }
        let html = try g.render(.html, plans: plans)
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("http://") && html.contains("src=\"http"))
        for r in g.rows where !r.isBase {
            let mean = "data-file=\"\(r.file)\" data-size-mib=\"\(ReportHTML.num(r.sizeMiB!))\" data-kld=\"\(ReportHTML.num(r.kld!.value))\""
            XCTAssertTrue(html.contains(mean), "mean point of \(r.file)")
            XCTAssertTrue(html.contains("data-kld=\"\(ReportHTML.num(r.kld99_9!))\""), "99.9 point of \(r.file)")
        }
        XCTAssertEqual(html.components(separatedBy: "class=\"typemap\"").count - 1, 5)
    }

    /// The page in a real browser (Debian's chromium): the DOM has one point per quant and
    /// series and the table, and the screenshot is not blank.
    func testHTMLRendersInChromium() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("chromium is not installed (make deps installs it)") }
            throw XCTSkip("chromium is not installed")
        }
        let dir = try Fixtures.tempDir(self)
        let (s, _) = try makeStore(dir)
        let g = try Report.select(try Report.groups(s), base: nil)
        var plans: [String: ModelPlanRecord] = [:]
        for r in g.rows { plans[r.modelKey] = try s.plan(modelKey: r.modelKey) }
        let page = dir.appendingPathComponent("report.html")
        try Data(try g.render(.html, plans: plans).utf8).write(to: page)
        func browser(_ args: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: chromium)
            p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(dir.path)/profile"] + args + [page.absoluteString]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let d = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "chromium \(args)")
            return String(decoding: d, as: UTF8.self)
        }
        let dom = try browser(["--dump-dom"])
        let quants = g.rows.filter { !$0.isBase }.count
        XCTAssertEqual(dom.components(separatedBy: "class=\"pt pt-mean\"").count - 1, quants)
        XCTAssertEqual(dom.components(separatedBy: "class=\"pt pt-p99_9\"").count - 1, quants)
        XCTAssertEqual(dom.components(separatedBy: "<tr class=").count - 1, g.rows.count)
        XCTAssertTrue(dom.contains("<table class=\"report\">"))
        let png = dir.appendingPathComponent("shot.png")
        _ = try browser(["--screenshot=\(png.path)", "--window-size=1280,1400"])
        let data = try Data(contentsOf: png)
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertGreaterThan(try distinctPixelBytes(png), 40, "the screenshot looks blank")
    }

    /// Distinct byte values of the decompressed image data (a blank page has a handful).
    func distinctPixelBytes(_ png: URL) throws -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", """
            import sys, zlib, struct
            d = open(sys.argv[1], 'rb').read(); i = 8; idat = b''
            while i < len(d):
                n, t = struct.unpack('>I4s', d[i:i+8]); i += 8
                if t == b'IDAT': idat += d[i:i+n]
                i += n + 4
            print(len(set(zlib.decompress(idat))))
            """, png.path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let d = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Int(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
}
