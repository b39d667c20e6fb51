import Foundation
import XCTest
import SmeltEval
import SmeltFormats
import SmeltTestSupport
@testable import SmeltReport
@testable import SmeltStore

/// The results store: round trips, migrations, refusal of foreign or corrupt files, concurrency.
final class StoreTests: XCTestCase {
    func record(_ kind: RunKind) -> RunRecord { TestRuns.record(kind) }

    func testRoundTripOfEveryKindAndPlans() throws {
        let dir = try Fixtures.tempDir(self)
        let s = try ResultsStore(url: dir.appendingPathComponent("r.sqlite"))
        XCTAssertEqual(try s.appliedVersions(), ResultsStore.schemaVersions)
        var ids: [Int64] = []
        for k in RunKind.allCases {
            var r = record(k)
            if k == .klDivergence { r.status = "failed"; r.error = "boom" }
            ids.append(try s.record(r))
        }
        XCTAssertEqual(ids, [1, 2, 3, 4, 5])
        for (i, k) in RunKind.allCases.enumerated() {
            var want = record(k)
            want.id = ids[i]
            if k == .klDivergence { want.status = "failed"; want.error = "boom" }
            XCTAssertEqual(try s.run(id: ids[i]), want, "kind \(k)")
        }
        XCTAssertEqual(try s.runs(RunFilter(kind: .imatrix)).map(\.id), [ids[1]])
        XCTAssertEqual(try s.runs(RunFilter(model: "q.gguf")).count, 5)
        XCTAssertEqual(try s.runs(RunFilter(model: "1111")).count, 5)   // hash prefix
        XCTAssertEqual(try s.runs(RunFilter(text: "nothing")).count, 0)
        XCTAssertEqual(try s.runs(RunFilter(since: Date(timeIntervalSince1970: 1_796_000_001))).count, 0)
        XCTAssertTrue(try s.delete(id: ids[0]))
        XCTAssertFalse(try s.delete(id: ids[0]))
        XCTAssertEqual(try s.runCount(), 4)

        let plan = ModelPlanRecord(modelKey: String(repeating: "1", count: 64), fileType: 15, fileTypeName: "Q4_K_M", tensors: [
            TensorPlanEntry(name: "blk.0.attn_q.weight", type: "q4_K", shape: [256, 64], bytes: 9216),
            TensorPlanEntry(name: "output_norm.weight", type: "f32", shape: [256], bytes: 1024)])
        try s.savePlan(plan)
        try s.savePlan(plan)  // a second save of the same model is a no-op
        XCTAssertEqual(try s.plan(modelKey: plan.modelKey), plan)
        XCTAssertEqual(plan.parameters, 256 * 64 + 256)
        XCTAssertEqual(plan.bitsPerWeight, Double(9216 + 1024) * 8 / Double(256 * 64 + 256), accuracy: 1e-12)
    }

    /// Record files keep start times to the millisecond (the sweep collector tells runs of one job
    /// apart by start time; a job run again within the same second is another run), and files
    /// written with whole seconds still read.
    func testRecordLinesKeepMilliseconds() throws {
        let dir = try Fixtures.tempDir(self)
        let url = dir.appendingPathComponent("r.jsonl")
        var a = record(.quantize), b = a
        a.startedAt = Date(timeIntervalSince1970: 1_796_000_000.125)
        b.startedAt = Date(timeIntervalSince1970: 1_796_000_000.750)
        try RecordLine.append([RecordLine(run: a), RecordLine(run: b)], to: url)
        let back = try RecordLine.read(url).compactMap { $0.run?.startedAt.timeIntervalSince1970 }
        XCTAssertEqual(back.count, 2)
        XCTAssertEqual(back[0], 1_796_000_000.125, accuracy: 0.0005)
        XCTAssertEqual(back[1], 1_796_000_000.750, accuracy: 0.0005)
        // a line as written before (whole seconds)
        let text = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")[0]
            .replacingOccurrences(of: ".125Z", with: "Z")
        XCTAssertFalse(text.contains(".125"), text)
        let old = dir.appendingPathComponent("old.jsonl")
        try (text + "\n").write(to: old, atomically: true, encoding: .utf8)
        XCTAssertEqual(try RecordLine.read(old).first?.run?.startedAt.timeIntervalSince1970, 1_796_000_000)
    }

    func testHashCacheFollowsContent() throws {
        let dir = try Fixtures.tempDir(self)
        let s = try ResultsStore(url: dir.appendingPathComponent("r.sqlite"))
        let f = dir.appendingPathComponent("x.bin")
        try Data("hello".utf8).write(to: f)
        let a = try s.identify(f)
        XCTAssertEqual(a.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        XCTAssertEqual(try s.identify(f), a)
        try Data("hello, world".utf8).write(to: f)
        XCTAssertEqual(try s.identify(f).sha256, "09ca7e4eaa6e8ae9c7d261167129184883644d07dfba7cbfbc4c8a2e08360d5b")
        let id = try s.rememberWritten(f, sha256: String(repeating: "e", count: 64))
        XCTAssertEqual(try s.identify(f).sha256, id.sha256, "a digest computed while writing is trusted for that size and mtime")
    }

    func testMigrationFromFirstSchemaVersion() throws {
        let fixture = try XCTUnwrap(Bundle.module.url(forResource: "results-v1", withExtension: "sqlite", subdirectory: "Fixtures"))
        let dir = try Fixtures.tempDir(self)
        let u = dir.appendingPathComponent("old.sqlite")
        try FileManager.default.copyItem(at: fixture, to: u)
        let s = try ResultsStore(url: u)
        XCTAssertEqual(try s.appliedVersions(), ResultsStore.schemaVersions)
        let runs = try s.runs()
        XCTAssertEqual(runs.count, 1)
        let r = try XCTUnwrap(runs.first)
        XCTAssertEqual(r.status, "ok")
        XCTAssertNil(r.error)
        XCTAssertEqual(r.kind, .perplexity)
        XCTAssertEqual(r.model?.sha256, String(repeating: "ab", count: 32))
        XCTAssertEqual(r.text?.name, "wiki.test.raw")
        XCTAssertEqual(r.textTokens, 4096)
        let res = try JSONDecoder().decode(PerplexityResult.self, from: Data(try XCTUnwrap(r.result).utf8))
        XCTAssertEqual(res.perplexity, 22.4965)
        // New runs go in beside the old one.
        XCTAssertEqual(try s.record(record(.quantize)), 2)
    }

    /// Regenerates the committed v1 fixture (SMELT_WRITE_FIXTURES=1); otherwise checks it is still what v1 writes.
    func testVersion1FixtureIsWhatTheFirstSchemaWrites() throws {
        let res = PerplexityResult(model: "m-bf16.gguf", contextLength: 512, chunks: 8, scoredTokens: 8 * 255, perplexity: 22.4965,
                                   uncertainty: 0.5, runningEstimates: [20, 21, 22], seconds: 4, tokensPerSecond: 1000)
        let dir = try Fixtures.tempDir(self)
        let fresh = dir.appendingPathComponent("v1.sqlite")
        try ResultsStore.writeVersion1Fixture(at: fresh, result: try XCTUnwrap(Recorder.resultJSON(res)))
        if ProcessInfo.processInfo.environment["SMELT_WRITE_FIXTURES"] == "1" {
            let dest = Fixtures.repoRoot.appendingPathComponent("Tests/SmeltReportTests/Fixtures/results-v1.sqlite")
            try? FileManager.default.removeItem(at: dest)
            try FileManager.default.copyItem(at: fresh, to: dest)
        }
        let s = try ResultsStore(url: fresh)
        XCTAssertEqual(try s.runs().first?.result, Recorder.resultJSON(res))
    }

    func testForeignCorruptAndNewerStoresAreRefusedAndLeftUntouched() throws {
        let dir = try Fixtures.tempDir(self)
        func check(_ name: String, _ make: (URL) throws -> Void, expect: String) throws {
            let u = dir.appendingPathComponent(name)
            try make(u)
            let before = try Data(contentsOf: u)
            XCTAssertThrowsError(try ResultsStore(url: u), name) { e in
                let msg = (e as? SmeltError)?.message ?? "\(e)"
                XCTAssertTrue(msg.hasPrefix(u.path), msg)
                XCTAssertTrue(msg.contains(expect), "\(name): \(msg)")
                XCTAssertFalse(msg.contains("\n"), msg)
            }
            XCTAssertEqual(try Data(contentsOf: u), before, "\(name) was modified")
            // And through the command: one error line, exit status non-zero.
            let run = try SmeltBinary.run(["results", "list", "--store", u.path])
            XCTAssertNotEqual(run.status, 0)
            XCTAssertTrue(run.stderr.hasPrefix("error: \(u.path)"), run.stderr)
            XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
            XCTAssertEqual(try Data(contentsOf: u), before, "\(name) was modified by the command")
        }
        try check("text.sqlite", { try Data("this is not a database\n".utf8).write(to: $0) }, expect: "not an SQLite database")
        try check("garbage.sqlite", { u in
            var d = Data("SQLite format 3\0".utf8)
            d.append(Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7919) }))
            try d.write(to: u)
        }, expect: "results store")
        let py = "/usr/bin/python3"
        try check("foreign.sqlite", { u in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: py)
            p.arguments = ["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table notes(x)'); c.commit()", u.path]
            try p.run(); p.waitUntilExit()
        }, expect: "another program")
        try check("truncated.sqlite", { u in
            let good = dir.appendingPathComponent("good.sqlite")
            let s = try ResultsStore(url: good)
            for _ in 0..<200 { try s.record(record(.klDivergence)) }
            _ = s
            var d = try Data(contentsOf: good)
            XCTAssertGreaterThan(d.count, 16384)
            for i in stride(from: 4096, to: d.count, by: 4096) { d.replaceSubrange(i + 100 ..< i + 400, with: Data(repeating: 0x5A, count: 300)) }
            try d.write(to: u)
        }, expect: "store")
        try check("newer.sqlite", { u in
            _ = try ResultsStore(url: u)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: py)
            p.arguments = ["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"insert into grdb_migrations values ('v99')\"); c.commit(); c.execute('pragma wal_checkpoint(truncate)')", u.path]
            try p.run(); p.waitUntilExit()
        }, expect: "newer Smelt")
    }

    /// Several processes importing at once: every run is kept.
    func testConcurrentWritersLoseNothing() throws {
        let logs = try Fixtures.sharedFile("data/llama-perplexity-logs/kld-Q8_0.log")
        let smelt = try SmeltBinary.url
        for (processes, each) in [(2, 10), (8, 5)] {
            let dir = try Fixtures.tempDir(self)
            let store = dir.appendingPathComponent("r.sqlite").path
            let ps: [Process] = try (0..<processes).map { i in
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/bin/bash")
                p.arguments = ["-c", "for j in $(seq \(each)); do \"$0\" results import --store \"$1\" \"$2\" -m q-\(i)-$j.gguf -f wiki --base bf16.gguf > /dev/null || exit 1; done",
                               smelt.path, store, logs.path]
                try p.run()
                return p
            }
            for p in ps { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
            let s = try ResultsStore(url: URL(fileURLWithPath: store))
            let runs = try s.runs()
            XCTAssertEqual(runs.count, processes * each, "\(processes) processes")
            XCTAssertEqual(Set(runs.compactMap { $0.model?.name }).count, processes * each)
        }
    }

    func testDefaultLocation() {
        XCTAssertEqual(ResultsStore.defaultURL(environment: ["SMELT_STORE": "/x/r.db", "HOME": "/h"]).path, "/x/r.db")
        XCTAssertEqual(ResultsStore.defaultURL(environment: ["XDG_DATA_HOME": "/d", "HOME": "/h"]).path, "/d/smelt/results.sqlite")
        XCTAssertEqual(ResultsStore.defaultURL(environment: ["HOME": "/h"]).path, "/h/.local/share/smelt/results.sqlite")
    }
}

/// Runs and results made up for the store and report tests.
enum TestRuns {
    static func sampleKLD(model: String, kld: Double, p999: Double) -> KLDivergenceResult {
        let d = Distribution(maximum: p999 * 2, p99_9: p999, p99: p999 / 2, p95: kld * 3, p90: kld * 2, p75: .nan, median: kld * 0.7,
                             p25: .nan, p10: kld / 10, p5: kld / 20, p1: kld / 100, p0_1: kld / 1000, minimum: 0)
        return KLDivergenceResult(
            model: model, base: "base.kld", contextLength: 512, chunks: 3, scoredTokens: 765, pplQ: Estimate(20 + kld * 10, 0.5),
            pplBase: Estimate(20, 0.5), correlation: 0.99, lnPPLRatio: Estimate(kld / 2, 0.001), pplRatio: Estimate(1 + kld / 2, 0.001),
            pplDifference: Estimate(kld * 10, 0.01), kld: Estimate(kld, kld / 40), kldDistribution: d, deltaP: Estimate(-0.001, 0.0001),
            deltaPDistribution: d, rmsDeltaP: Estimate(kld / 5, 0.001), sameTop: Estimate(1 - kld, 0.005),
            perChunk: (1...3).map { KLDChunkLine(chunk: $0, ppl: Estimate(20, 1), lnPPLRatio: Estimate(0.01, 0.001),
                                                  kld: Estimate(kld * (1 + Double($0) / 100), 0.001), rmsDeltaP: Estimate(0.01, 0.001),
                                                  sameTop: Estimate(0.9, 0.01)) },
            seconds: 3, tokensPerSecond: 512)
    }

    static func record(_ kind: RunKind) -> RunRecord {
        var r = RunRecord(kind: kind, startedAt: Date(timeIntervalSince1970: 1_796_000_000.125), smeltVersion: "0.1.0",
                          host: "host", cpu: "cpu (2 cores)", commandLine: "smelt \(kind.rawValue) x")
        r.wallSeconds = 1.5
        r.model = FileIdentity(sha256: String(repeating: "1", count: 64), path: "/m/q.gguf", bytes: 1000)
        r.input = FileIdentity(sha256: String(repeating: "2", count: 64), path: "/m/bf16.gguf", bytes: 4000)
        r.text = FileIdentity(sha256: String(repeating: "3", count: 64), path: "/t/wiki.raw", bytes: 50)
        r.textTokens = 1536
        r.imatrix = FileIdentity(sha256: String(repeating: "4", count: 64), path: "/m/imatrix.gguf", bytes: 70)
        r.base = FileIdentity(sha256: String(repeating: "5", count: 64), path: "/m/base.kld", bytes: 80)
        r.baseModel = r.input
        r.recipeName = "Q4_K_M"; r.recipeText = "name: Q4_K_M\n"
        r.contextLength = 512; r.chunks = 3; r.batchSize = 2048; r.threads = 2; r.tokensPerSecond = 512.25
        r.result = Recorder.resultJSON(sampleKLD(model: "q.gguf", kld: 0.05, p999: 0.7))
        return r
    }

}
