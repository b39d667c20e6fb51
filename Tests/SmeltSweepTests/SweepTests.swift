import Foundation
import XCTest
import SmeltFormats
import SmeltStore
import SmeltTestSupport
@testable import SmeltSweep

/// Sweep files, plans, local runs (resume, failures) and a real single-node Slurm.
final class SweepTests: XCTestCase {
    /// A sweep of the tiny llama: bf16 base, evaluation text, a computed imatrix.
    func makeSweep(_ dir: URL, variants: String, extra: String = "") throws -> URL {
        let golden = try Fixtures.sharedFile("models/tiny/tiny-llama.golden")
        let calib = try Fixtures.sharedFile("data/calibration_data_v5_rc.txt")
        let model = dir.appendingPathComponent("tiny-bf16.gguf")
        if !FileManager.default.fileExists(atPath: model.path) {
            try FileManager.default.copyItem(at: golden.appendingPathComponent("tiny-llama-bf16.gguf"), to: model)
        }
        let yaml = """
            name: tiny
            model: tiny-bf16.gguf
            text: \(golden.appendingPathComponent("eval-sample.txt").path)
            context: 128
            chunks: 6
            imatrix:
              calib: {text: \(calib.path), chunks: 4}
            \(variants)
            \(extra)
            """
        let u = dir.appendingPathComponent("sweep.yaml")
        try Data(yaml.utf8).write(to: u)
        return u
    }

    func testSweepFileErrorsNameFileAndLine() throws {
        let dir = try Fixtures.tempDir(self)
        func error(_ yaml: String) -> String {
            do { _ = try SweepFile(yaml: yaml, source: "s.yaml", folder: dir); return "" } catch { return (error as? SmeltError)?.message ?? "\(error)" }
        }
        XCTAssertEqual(error("model: m.gguf\ntext: t.txt\nvariants:\n  presets: [Q4_KM]\n").hasPrefix("s.yaml:4: unknown preset 'Q4_KM'"), true)
        XCTAssertEqual(error("model: m.gguf\ntext: t.txt\nvariant:\n  presets: [Q4_K_M]\n"),
                       "s.yaml:3: unknown key 'variant' (known: name, model, text, context, chunks, reference, kld_base, output, imatrix, variants, jobs)")
        XCTAssertTrue(error("model: m.gguf\ntext: t.txt\nvariants:\n  presets: [Q4_K_M]\n  imatrix: [calib]\n").hasPrefix("s.yaml:4: unknown imatrix 'calib'"))
        XCTAssertTrue(error("model: m.gguf\ntext: t.txt\nvariants:\n  presets: [Q4_K_XL]\n").contains("is a recipe, not a llama-quantize preset"))
        XCTAssertTrue(error("model: m.gguf\ntext: t.txt\nvariants:\n  target_bpw: [0.1]\n").hasPrefix("s.yaml:4: target_bpw must be"))
        XCTAssertTrue(error("text: t.txt\nvariants:\n  presets: [Q4_0]\n").hasPrefix("s.yaml:1: missing model:"))
        XCTAssertTrue(error("model: m\ntext: t\n").contains("no quants to make"))
        XCTAssertTrue(error("model: [a\n").hasPrefix("s.yaml:"))
        // Cross product and explicit jobs, duplicates once.
        let f = try SweepFile(yaml: """
            model: m.gguf
            text: t.txt
            imatrix:
              a: {file: a.dat}
            variants:
              presets: [Q4_0, Q8_0]
              recipes: [Q4_K_XL]
              target_bpw: [4.5]
              imatrix: [none, a]
            jobs:
              - preset: Q4_0
                imatrix: none
              - preset: Q6_K
            """, source: "s.yaml", folder: dir)
        XCTAssertEqual(f.quants.count, 4 * 2 + 1)
        XCTAssertEqual(f.quants.map { "\($0.variant.label)-\($0.imatrix ?? "none")" }.filter { $0.hasPrefix("Q4_0") }, ["Q4_0-none", "Q4_0-a"])
    }

    func testPlanDependenciesAndKeys() throws {
        let dir = try Fixtures.tempDir(self)
        let u = try makeSweep(dir, variants: "variants:\n  presets: [Q4_0, Q4_K_M]\n  imatrix: [none, calib]")
        let p = try SweepPlan.make(try SweepFile.load(u), store: nil)
        XCTAssertEqual(p.jobs.map(\.id), ["base", "imatrix-calib", "Q4_0-none", "Q4_0-calib", "Q4_K_M-none", "Q4_K_M-calib"])
        XCTAssertEqual(p.jobs[3].dependsOn, ["base", "imatrix-calib"])
        XCTAssertEqual(p.jobs[2].dependsOn, ["base"])
        XCTAssertTrue(p.jobs[3].steps[0].contains("--imatrix"))
        XCTAssertGreaterThan(p.jobs[4].estimatedBytes ?? 0, p.jobs[2].estimatedBytes ?? .max, "Q4_K_M is larger than Q4_0 on this model")
        // Same inputs, same keys; another text, other keys.
        XCTAssertEqual(try SweepPlan.make(try SweepFile.load(u), store: nil).jobs.map(\.key), p.jobs.map(\.key))
        let other = dir.appendingPathComponent("other.txt")
        try Data(String(repeating: "other words ", count: 2000).utf8).write(to: other)
        let y = try String(contentsOf: u, encoding: .utf8).replacingOccurrences(of: try Fixtures.sharedFile("models/tiny/tiny-llama.golden").appendingPathComponent("eval-sample.txt").path, with: other.path)
        try Data(y.utf8).write(to: u)
        let q = try SweepPlan.make(try SweepFile.load(u), store: nil)
        XCTAssertNotEqual(q.jobs[0].key, p.jobs[0].key)
        XCTAssertNotEqual(q.jobs[2].key, p.jobs[2].key)
        XCTAssertEqual(q.jobs[1].key, p.jobs[1].key, "the imatrix does not depend on the evaluation text")
        XCTAssertTrue(p.table().contains("Q4_K_M-calib"))
    }

    /// A local run with two workers: every quant evaluated into the store, a failing job recorded
    /// without stopping the others, a rerun that does nothing, and a resumed run that does only what is missing.
    func testLocalRunFailureRerunAndResume() throws {
        let dir = try Fixtures.tempDir(self)
        let store = dir.appendingPathComponent("r.sqlite").path
        // IQ2_XXS without an importance matrix fails in quantize.
        let u = try makeSweep(dir, variants: "variants:\n  presets: [Q4_0, Q8_0]\n  imatrix: [none, calib]\njobs:\n  - preset: IQ2_XXS")
        let first = try SmeltBinary.run(["sweep", "run", u.path, "-j", "2", "--store", store])
        XCTAssertNotEqual(first.status, 0, "a failed job makes the sweep's status non-zero")
        XCTAssertTrue(first.stderr.contains("IQ2_XXS-none FAILED"), first.stderr)
        XCTAssertEqual(first.stderr.components(separatedBy: "\n").filter { $0.hasPrefix("error: ") }.count, 1, first.stderr)
        let s = try ResultsStore(url: URL(fileURLWithPath: store))
        let klds = try s.runs(RunFilter(kind: .klDivergence))
        XCTAssertEqual(klds.count, 4)
        XCTAssertTrue(klds.allSatisfy { $0.sweepJob != nil && $0.baseModel?.name == "tiny-bf16.gguf" && $0.text?.name == "eval-sample.txt" })
        let failed = try s.runs().filter { $0.status == "failed" }
        XCTAssertEqual(failed.count, 1)
        XCTAssertTrue(failed[0].error?.contains("importance") ?? false, "\(failed)")
        XCTAssertTrue(first.stdout.contains("Q4_0-calib.gguf"), first.stdout)   // the report at the end

        // Nothing to do the second time (the failed job runs again and fails again).
        let count = try s.runCount()
        let again = try SmeltBinary.run(["sweep", "run", u.path, "-j", "2", "--store", store])
        XCTAssertTrue(again.stderr.contains("6 already done"), again.stderr)
        XCTAssertEqual(try s.runs(RunFilter(kind: .klDivergence)).count, 4)
        XCTAssertEqual(try s.runCount(), count + 1, "only the failing quantize ran again")

        // An interrupted job (its record and its results gone) is the only one run again.
        let p = try SweepPlan.read(folder: dir.appendingPathComponent("tiny").path)
        let victim = try XCTUnwrap(p.jobs.first { $0.id == "Q8_0-calib" })
        unlink(p.recordFile(victim))
        for r in try s.runs(sweepJob: victim.key) { _ = try s.delete(id: try XCTUnwrap(r.id)) }
        let resumed = try SmeltBinary.run(["sweep", "run", u.path, "-j", "2", "--store", store, "--keep", "none"])
        XCTAssertTrue(resumed.stderr.contains("Q8_0-calib done"), resumed.stderr)
        XCTAssertFalse(resumed.stderr.contains("Q4_0-none done"), resumed.stderr)
        XCTAssertEqual(try s.runs(RunFilter(kind: .klDivergence)).count, 4)
        XCTAssertFalse(FileManager.default.fileExists(atPath: victim.output), "--keep none deletes a quant once evaluated")
        XCTAssertTrue(FileManager.default.fileExists(atPath: p.jobs.first { $0.id == "Q4_0-none" }!.output), "earlier outputs stay")
    }

    /// A real single-node Slurm (Debian's slurm-wlm and munge): submit, wait, collect, report;
    /// then a cancelled array task and a resubmission that runs only what was missing.
    func testSlurmSubmission() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/slurmctld"), FileManager.default.isExecutableFile(atPath: "/usr/sbin/munged") else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("slurm-wlm and munge are not installed (make deps installs them)") }
            throw XCTSkip("slurm-wlm / munge not installed")
        }
        let dir = try Fixtures.tempDir(self)
        let cluster = dir.appendingPathComponent("cluster")
        let script = Fixtures.repoRoot.appendingPathComponent("scripts/slurm-local.sh").path
        func sh(_ args: [String], env: [String: String] = [:]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = args
            var e = ProcessInfo.processInfo.environment
            for (k, v) in env { e[k] = v }
            p.environment = e
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let d = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: d, as: UTF8.self))
        }
        let up = try sh([script, "start", cluster.path])
        XCTAssertEqual(up.0, 0, up.1)
        addTeardownBlock { _ = try? sh([script, "stop", cluster.path]) }
        guard up.0 == 0 else { return }
        let env = ["SLURM_CONF": cluster.appendingPathComponent("slurm.conf").path]
        let store = dir.appendingPathComponent("r.sqlite").path
        let u = try makeSweep(dir, variants: "variants:\n  presets: [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q6_K]")
        func waitIdle(_ what: String) throws {
            let deadline = Date().addingTimeInterval(600)
            while Date() < deadline {
                let q = try sh(["-c", "squeue -h -u $(id -un)"], env: env)
                if q.0 == 0 && q.1.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
                Thread.sleep(forTimeInterval: 1)
            }
            XCTFail("\(what): the Slurm jobs did not finish in 10 minutes")
        }
        let smelt = try SmeltBinary.url.path
        // Cancel task 2 of the array while it waits behind the others (one task at a time).
        let sub = try sh(["-c", "\"$0\" sweep submit \"$1\" --slurm --max-parallel 1 --cpus-per-task 1 --store \"$2\"", smelt, u.path, store], env: env)
        XCTAssertEqual(sub.0, 0, sub.1)
        let sweepDir = dir.appendingPathComponent("tiny").path
        let jobs = try JSONDecoder().decode(SlurmSubmit.Submitted.self, from: try Data(contentsOf: URL(fileURLWithPath: sweepDir + "/slurm/jobs.json")))
        _ = try sh(["-c", "scancel \(jobs.quant)_2"], env: env)
        try waitIdle("first submission")
        let s = try ResultsStore(url: URL(fileURLWithPath: store))
        XCTAssertEqual(Set(try s.runs(RunFilter(kind: .klDivergence)).compactMap { $0.model?.name }),
                       ["Q4_0-none.gguf", "Q4_1-none.gguf", "Q5_1-none.gguf", "Q8_0-none.gguf", "Q6_K-none.gguf"],
                       "the cancelled task (Q5_0) is missing; the collect job ran after the array (afterany)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: sweepDir + "/report.html"))
        let status = try SmeltBinary.run(["sweep", "status", sweepDir], environment: env)
        XCTAssertTrue(status.stdout.contains("Q5_0-none  pending"), status.stdout)
        let mtimes = try FileManager.default.contentsOfDirectory(atPath: sweepDir + "/records").sorted().map {
            (try FileManager.default.attributesOfItem(atPath: sweepDir + "/records/" + $0)[.modificationDate] as? Date) ?? .distantPast
        }

        // Resubmitted: only Q5_0 runs; the others' records are untouched.
        let again = try sh(["-c", "\"$0\" sweep submit \"$1\" --slurm --cpus-per-task 1 --store \"$2\"", smelt, u.path, store], env: env)
        XCTAssertEqual(again.0, 0, again.1)
        try waitIdle("resubmission")
        let names = try s.runs(RunFilter(kind: .klDivergence)).compactMap { $0.model?.name }
        XCTAssertEqual(names.count, 6, "\(names)")
        XCTAssertTrue(names.contains("Q5_0-none.gguf"))
        let after = try FileManager.default.contentsOfDirectory(atPath: sweepDir + "/records").sorted().filter { $0 != "Q5_0-none.jsonl" }.map {
            (try FileManager.default.attributesOfItem(atPath: sweepDir + "/records/" + $0)[.modificationDate] as? Date) ?? .distantPast
        }
        XCTAssertEqual(after, mtimes, "done jobs were not run again")
        let report = try SmeltBinary.run(["report", "--store", store, "--format", "csv"])
        XCTAssertEqual(report.stdout.split(separator: "\n").count, 1 + 1 + 6, report.stdout)  // header, base, six quants
    }
}
