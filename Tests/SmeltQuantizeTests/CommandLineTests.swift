import Foundation
import XCTest
import SmeltFormats
import SmeltTestSupport

/// The command line as a llama.cpp user meets it, through the real binary: exit statuses,
/// one-line errors with "did you mean", llama.cpp's spellings, case-insensitive names.
final class CommandLineTests: XCTestCase {
    static let golden = "models/tiny/tiny-llama.golden"

    func assertUsageError(_ args: [String], contains: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try SmeltBinary.run(args)
        XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains(contains), r.stderr, file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one line: \(r.stderr)", file: file, line: line)
    }

    /// 2 for usage (with the closest name), 1 for bad input, 0 for success; `smelt help nope` fails.
    func testExitStatusesAndSuggestions() throws {
        let f32 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f32.gguf").path
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("o.gguf").path
        try assertUsageError(["quantise", f32], contains: "unknown command 'quantise'; did you mean 'quantize'?")
        try assertUsageError(["help", "nope"], contains: "unknown command 'nope'")
        try assertUsageError(["quantize", f32, out, "Q4_KM"], contains: "unknown TYPE 'Q4_KM'; did you mean 'Q4_K_M'?")
        try assertUsageError(["quantize", f32, out, "Q4_K_M", "--token-embedding-type", "q6k"], contains: "did you mean 'q6_K'?")
        try assertUsageError(["quantize", f32, out, "Q4_K_M", "--override-kv", "a=ints:1"], contains: "did you mean 'int'?")
        try assertUsageError(["quantize", f32, out, "--recipe", "Q4_K_M", "--target-bpw", "4"], contains: "cannot be used together")
        try assertUsageError(["convert", f32, "-o", out, "--outtype", "f61"], contains: "unknown --outtype 'f61'; did you mean 'f16'?")
        try assertUsageError(["perplexity", f32, "--nonsense"], contains: "nonsense")
        try assertUsageError(["perplexity"], contains: "missing the model")
        try assertUsageError(["imatrix", "-m", f32, "-o", dir.appendingPathComponent("x.dat").path, "--output-format", "gguf"],
                             contains: "a .dat name for GGUF output")
        let recipe = try SmeltBinary.run(["plan", f32, "--recipe", "Q4_K_XLL"])
        XCTAssertEqual(recipe.status, 1)
        XCTAssertTrue(recipe.stderr.contains("did you mean 'Q4_K_XL'?"), recipe.stderr)
        let missing = try SmeltBinary.run(["inspect", dir.appendingPathComponent("absent.gguf").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.hasPrefix("error: ") && missing.stderr.contains("absent.gguf"), missing.stderr)
        XCTAssertEqual(try SmeltBinary.run(["inspect", f32]).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// Case-insensitive names, `COPY`, `--override-kv` placed as llama-quantize places them.
    func testQuantizeFamiliarOptions() throws {
        let g = try Fixtures.sharedFile(Self.golden)
        let dir = try Fixtures.tempDir(self)
        // lower-case preset and upper-case ggml type name: same bytes as llama-quantize's Q4_K_M
        let q = dir.appendingPathComponent("q.gguf")
        let r = try SmeltBinary.run(["quantize", g.appendingPathComponent("tiny-llama-f32.gguf").path, q.path, "q4_k_m", "2",
                                     "--output-tensor-type", "Q6_K"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try GGUFFile(url: q).tensor(named: "output.weight")?.type, .q6_K)

        // COPY: every tensor as it is, the input's general.file_type (llama-quantize's ml.ftype) moved last
        let src = try GGUFFile(url: g.appendingPathComponent("tiny-llama-q8_0.gguf"))
        let c = dir.appendingPathComponent("c.gguf")
        XCTAssertEqual(try SmeltBinary.run(["quantize", src.url.path, c.path, "COPY"]).status, 0)
        let copy = try GGUFFile(url: c)
        for t in src.tensors {
            let u = try XCTUnwrap(copy.tensor(named: t.name))
            XCTAssertEqual(u.type, t.type)
            XCTAssertTrue(copy.data(for: u).elementsEqual(src.data(for: t)), t.name)
        }
        XCTAssertEqual(Array(copy.metadata.keys.suffix(2)), ["general.quantization_version", "general.file_type"])
        XCTAssertEqual(copy.metadata["general.file_type"], src.metadata["general.file_type"], "llama-quantize: ftype = the input's")
        XCTAssertEqual(src.metadata["general.file_type"], .uint32(7))

        // --override-kv: int → uint32 of the absolute value, float32, bool, str; removed and appended in order
        let o = dir.appendingPathComponent("o.gguf")
        let ov = try SmeltBinary.run(["quantize", g.appendingPathComponent("tiny-llama-f32.gguf").path, o.path, "Q8_0",
                                      "--override-kv", "general.name=str:Renamed", "--override-kv", "llama.context_length=int:-4096",
                                      "--override-kv", "x.f=float:0.5", "--override-kv", "x.b=bool:true"])
        XCTAssertEqual(ov.status, 0, ov.stderr)
        let md = try GGUFFile(url: o).metadata
        XCTAssertEqual(Array(md.keys.suffix(5)), ["general.file_type", "general.name", "llama.context_length", "x.f", "x.b"])
        XCTAssertEqual(md["general.name"], .string("Renamed"))
        XCTAssertEqual(md["llama.context_length"], .uint32(4096))
        XCTAssertEqual(md["x.f"], .float32(0.5))
        XCTAssertEqual(md["x.b"], .bool(true))
    }

    /// perplexity/imatrix take -m; --kl-divergence-base alone writes the base file, with the
    /// flag --kl-divergence reads it (llama-perplexity); imatrix --in-file converts and combines.
    func testEvaluationFamiliarOptions() throws {
        let g = try Fixtures.sharedFile(Self.golden)
        let dir = try Fixtures.tempDir(self)
        let f32 = g.appendingPathComponent("tiny-llama-f32.gguf").path, q4 = g.appendingPathComponent("tiny-llama-Q4_K_M.gguf").path
        let text = g.appendingPathComponent("eval-sample.txt").path
        let base = dir.appendingPathComponent("base.kld").path
        let w = try SmeltBinary.run(["perplexity", "-m", f32, "-f", text, "-c", "128", "--chunks", "4", "-t", "2", "--kl-divergence-base", base])
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: base))
        let k1 = try SmeltBinary.run(["perplexity", "-m", q4, "--kl-divergence-base", base, "--kl-divergence", "-t", "2"])
        XCTAssertEqual(k1.status, 0, k1.stderr)
        let k2 = try SmeltBinary.run(["perplexity", q4, "--kl-divergence", base, "-t", "2"])
        XCTAssertEqual(k2.status, 0, k2.stderr)
        XCTAssertTrue(k1.stdout.contains("KL divergence") || k1.stdout.contains("KLD"), k1.stdout)
        XCTAssertEqual(k1.stdout, k2.stdout, "llama-perplexity's spelling and Smelt's give the same run")

        // imatrix --in-file: GGUF → .dat (by name) is llama-imatrix's own .dat of the same run, and back
        for m in ["tiny-mixtral", "tiny-qwen3moe"] {
            let mg = try Fixtures.sharedFile("models/tiny/\(m).golden")
            let dat = dir.appendingPathComponent("\(m).dat"), gguf = dir.appendingPathComponent("\(m).gguf")
            XCTAssertEqual(try SmeltBinary.run(["imatrix", "--in-file", mg.appendingPathComponent("\(m).imatrix.gguf").path, "-o", dat.path]).status, 0)
            XCTAssertEqual(try Data(contentsOf: dat), try Data(contentsOf: mg.appendingPathComponent("\(m).imatrix.dat")))
            XCTAssertEqual(try SmeltBinary.run(["imatrix", "--in-file", mg.appendingPathComponent("\(m).imatrix.gguf").path, "-o", gguf.path]).status, 0)
            XCTAssertEqual(try Data(contentsOf: gguf), try Data(contentsOf: mg.appendingPathComponent("\(m).imatrix.gguf")))
        }
        // combining a file with itself: sums and counts double, chunk counts add, weights unchanged
        let one = try Fixtures.sharedFile("models/tiny/tiny-mixtral.golden/tiny-mixtral.imatrix.gguf").path
        let two = dir.appendingPathComponent("two.gguf")
        XCTAssertEqual(try SmeltBinary.run(["imatrix", "--in-file", one, "--in-file", one, "-o", two.path]).status, 0)
        let a = try Imatrix(url: URL(fileURLWithPath: one)), b = try Imatrix(url: two)
        XCTAssertEqual(b.chunkCount, 2 * a.chunkCount)
        XCTAssertEqual(b.datasets, a.datasets + a.datasets)
        XCTAssertEqual(b.entries["blk.0.ffn_down_exps.weight"]?.counts, a.entries["blk.0.ffn_down_exps.weight"]?.counts.map { 2 * $0 })
        let wa = a.importanceWeights(), wb = b.importanceWeights()
        for (k, v) in wa { XCTAssertEqual(wb[k], v, k) }
    }

    /// `--dry-run` fails where the real run fails, with the same message, and writes nothing
    /// (budget mode: no recipe file, no sensitivity cache).
    func testHonestDryRun() throws {
        let demo = try Fixtures.sharedFile("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf").path
        let f32 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f32.gguf").path
        let dir = try Fixtures.tempDir(self)
        let out = dir.appendingPathComponent("o.gguf").path
        // 576-wide token embeddings cannot be q6_K (256-blocks): the real run refuses before writing, and so does the dry run
        let args = ["quantize", demo, out, "Q4_K_M", "--token-embedding-type", "q6_K", "--allow-requantize"]
        let real = try SmeltBinary.run(args), dry = try SmeltBinary.run(args + ["--dry-run"])
        XCTAssertEqual(real.status, 1)
        XCTAssertEqual(dry.status, 1)
        XCTAssertTrue(real.stderr.contains("row length 576 is not a multiple of q6_K's block size 256"), real.stderr)
        XCTAssertEqual(dry.stderr, real.stderr)
        let noDir = try SmeltBinary.run(["quantize", f32, dir.appendingPathComponent("nope/o.gguf").path, "Q4_0", "--dry-run"])
        XCTAssertEqual(noDir.status, 1)
        XCTAssertTrue(noDir.stderr.contains("does not exist"), noDir.stderr)

        let cache = dir.appendingPathComponent("cache")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let b = try SmeltBinary.run(["quantize", f32, out, "--target-bpw", "6", "--candidates", "q4_0,q8_0",
                                     "--cache", cache.path, "--dry-run", "2"])
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(b.stderr.contains("dry run: no recipe written"), b.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.path), [], "no sensitivity cache written")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["cache"], "nothing else written")
    }

    /// Wherever quantize takes a checkpoint folder, plan, sensitivity and budget mode take it too:
    /// the folder (converted on the fly, auto = f16 here) gives what llama.cpp's f16 conversion gives.
    func testCheckpointFolderAcceptedEverywhere() throws {
        let folder = try Fixtures.sharedFile("models/tiny/tiny-llama").path
        let f16 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f16.gguf").path
        let dir = try Fixtures.tempDir(self)
        let p1 = try SmeltBinary.run(["plan", folder, "--recipe", "Q4_K_M", "--json"])
        let p2 = try SmeltBinary.run(["plan", f16, "--recipe", "Q4_K_M", "--json"])
        XCTAssertEqual(p1.status, 0, p1.stderr)
        XCTAssertEqual(p1.stdout, p2.stdout)
        func sens(_ m: String, _ cache: String) throws -> String {
            let r = try SmeltBinary.run(["sensitivity", m, "--candidates", "q4_0,q8_0", "-t", "2", "--cache", dir.appendingPathComponent(cache).path, "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            // The table, without the run record that --json adds (its paths and ids differ).
            var o = (try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
            o["run"] = nil; o["run_id"] = nil
            return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }
        XCTAssertEqual(try sens(folder, "a"), try sens(f16, "b"))
        let b = try SmeltBinary.run(["quantize", folder, dir.appendingPathComponent("q.gguf").path, "--target-bpw", "6",
                                     "--candidates", "q4_0,q8_0", "--cache", dir.appendingPathComponent("c").path, "2"])
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("q.recipe.yaml").path))
        XCTAssertGreaterThan(try GGUFFile(url: dir.appendingPathComponent("q.gguf")).tensors.count, 0)
    }

    /// Budget mode without hidden state: an impossible budget is refused before any measurement
    /// naming the smallest reachable size; no imatrix warns; the loss model is the flag's and is
    /// printed (kld without measurements is an error, not a silent switch); --no-cache writes no cache.
    func testBudgetModeStatesItsChoices() throws {
        let f32 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f32.gguf").path
        let dir = try Fixtures.tempDir(self)
        let cache = dir.appendingPathComponent("cache")
        let out = dir.appendingPathComponent("o.gguf").path
        let start = Date()
        let tiny = try SmeltBinary.run(["quantize", f32, out, "--target-size", "95", "--cache", cache.path])
        XCTAssertEqual(tiny.status, 1)
        XCTAssertTrue(tiny.stderr.contains("--target-size 95 bytes cannot be reached: the smallest file with these candidates is about"), tiny.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "refused before measuring")
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.path), "nothing measured or written")
        let bpw = try SmeltBinary.run(["quantize", f32, out, "--target-bpw", "1.5", "--candidates", "q4_0,q8_0", "--cache", cache.path])
        XCTAssertEqual(bpw.status, 1)
        XCTAssertTrue(bpw.stderr.contains("--target-bpw 1.500 cannot be reached: the smallest plan with these candidates is"), bpw.stderr)

        let kld = try SmeltBinary.run(["quantize", f32, out, "--target-bpw", "6", "--candidates", "q4_0,q8_0", "--loss", "kld", "--no-cache", "2"])
        XCTAssertEqual(kld.status, 1)
        XCTAssertTrue(kld.stderr.contains("--loss kld: no KLD measurements"), kld.stderr)
        XCTAssertTrue(kld.stderr.contains("warning: budget mode without --imatrix"), kld.stderr)
        try assertUsageError(["quantize", f32, out, "--target-bpw", "6", "--loss", "kdl"], contains: "did you mean 'kld'?")

        let ok = try SmeltBinary.run(["quantize", f32, out, "--target-bpw", "6", "--candidates", "q4_0,q8_0", "--no-cache", "2"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stderr.contains("loss model: relative importance-weighted error per tensor (--loss weighted)"), ok.stderr)
        XCTAssertTrue(ok.stderr.contains("(cache off)"), ok.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.path))
        XCTAssertTrue(try String(contentsOfFile: dir.appendingPathComponent("o.recipe.yaml").path, encoding: .utf8).contains("(--loss weighted)"))
    }

    /// In logs (stderr not a terminal) quantize prints llama-quantize's line per tensor.
    func testQuantizeLogLines() throws {
        let f32 = try Fixtures.sharedFile(Self.golden + "/tiny-llama-f32.gguf").path
        let dir = try Fixtures.tempDir(self)
        let r = try SmeltBinary.run(["quantize", f32, dir.appendingPathComponent("q.gguf").path, "Q4_K_M", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains("[   1/  21] output.weight                        - [  256,  1000,     1,     1], type =    f32, converting to q6_K .. size =     0.98 MiB ->     0.20 MiB"), r.stderr)
        XCTAssertTrue(lines.contains("[   2/  21] output_norm.weight                   - [  256,     1,     1,     1], type =    f32, size =    0.001 MiB"), r.stderr)
        XCTAssertEqual(lines.filter { $0.hasPrefix("[") && $0.contains("/  21] ") }.count, 21)
    }

    /// perplexity states tokens, chunks and time at the end (stderr), as llama-perplexity does.
    func testPerplexitySummaryLine() throws {
        let g = try Fixtures.sharedFile(Self.golden)
        let r = try SmeltBinary.run(["perplexity", g.appendingPathComponent("tiny-llama-f32.gguf").path,
                                     "-f", g.appendingPathComponent("eval-sample.txt").path, "-c", "128", "--chunks", "4", "-t", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotNil(r.stderr.range(of: #"perplexity: 512 tokens \(4 chunks of 128\) in [0-9.]+ s, [0-9]+ tokens/s"#, options: .regularExpression), r.stderr)
        XCTAssertTrue(r.stdout.contains("Final estimate: PPL = "), r.stdout)
    }
}
