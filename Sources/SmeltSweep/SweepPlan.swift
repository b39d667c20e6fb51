import Foundation
import SmeltFormats
import SmeltQuantize
import SmeltStore

/// One job of a sweep: the `smelt` command lines it runs, what it depends on, and the
/// digest of its inputs (a job whose digest has a stored result is not run again).
public struct SweepJob: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case base, imatrix, quant }
    public var index: Int
    /// `base`, `imatrix-NAME`, or `LABEL-IMATRIX` (`Q4_K_M-v5`, `bpw4.5-none`).
    public var id: String
    public var kind: Kind
    public var dependsOn: [String]
    /// SHA-256 of the job's inputs (base model, text, reference, imatrix, the variant, the commands).
    public var key: String
    /// `smelt` argument lists; `{threads}` and `{record}` are filled in when the job runs.
    public var steps: [[String]]
    /// The file the job makes (a quant, the KLD base file, an imatrix).
    public var output: String
    public var summary: String
    public var estimatedBytes: Int64?
    public var estimatedSeconds: Double
}

/// A sweep made concrete: every job with its commands, in dependency order (written as
/// `plan.json` in the sweep's folder, which `run-one` and the Slurm tasks read).
public struct SweepPlan: Codable, Sendable {
    public var name: String
    public var sweepFile: String
    public var folder: String
    public var model: String
    public var text: String
    public var context: Int
    public var baseFile: String
    public var jobs: [SweepJob]

    public var recordsFolder: String { folder + "/records" }
    public func recordFile(_ j: SweepJob) -> String { recordsFolder + "/\(j.id).jsonl" }
    public var quantJobs: [SweepJob] { jobs.filter { $0.kind == .quant } }
    public var prepJobs: [SweepJob] { jobs.filter { $0.kind != .quant } }
    public var planFile: URL { URL(fileURLWithPath: folder).appendingPathComponent("plan.json") }

    /// Plans a sweep file; `store` (optional) gives cached hashes and measured speeds for the estimates.
    public static func make(_ f: SweepFile, store: ResultsStore?) throws -> SweepPlan {
        let folder = f.path(f.output)
        let model = f.path(f.model), text = f.path(f.text), reference = f.path(f.reference)
        for (what, p) in [("model", model), ("text", text), ("reference", reference)] {
            guard FileManager.default.fileExists(atPath: p) else { throw SmeltError("\(f.source): \(what) \(p): no such file") }
        }
        func identity(_ p: String) throws -> String {
            if let store { return try store.identify(URL(fileURLWithPath: p)).key }
            return try ResultsStore.hashIdentity(URL(fileURLWithPath: p)).key
        }
        let modelKey = try identity(model), textKey = try identity(text)
        let referenceKey = reference == model ? modelKey : try identity(reference)
        func digest(_ parts: [String]) -> String { SHA256Hasher.hex(Array((["smelt-sweep-v1", SmeltVersion.string] + parts).joined(separator: "\n").utf8)) }

        let facts = try ModelSize(model)
        let speed = Speeds(store: store, modelKey: modelKey, parameters: facts.parameters)
        let tokens = Double((f.chunks ?? 40) * f.context)
        var jobs: [SweepJob] = []
        var baseFile: String
        var baseKey: String
        var baseDeps: [String] = []
        if let kb = f.kldBase {
            baseFile = f.path(kb)
            guard FileManager.default.fileExists(atPath: baseFile) else { throw SmeltError("\(f.source): kld_base \(baseFile): no such file") }
            baseKey = try identity(baseFile)
        } else {
            baseFile = folder + "/base.kld.zst"
            var args = ["perplexity", reference, "-f", text, "-c", String(f.context)]
            if let c = f.chunks { args += ["--chunks", String(c)] }
            args += ["--save-logits", baseFile, "-t", "{threads}", "--record-to", "{record}"]
            baseKey = digest(["base", referenceKey, textKey] + args)
            jobs.append(SweepJob(index: 0, id: "base", kind: .base, dependsOn: [], key: baseKey, steps: [args], output: baseFile,
                                 summary: "logits of \(URL(fileURLWithPath: reference).lastPathComponent) on \(URL(fileURLWithPath: text).lastPathComponent)",
                                 estimatedBytes: nil, estimatedSeconds: tokens / speed.tokensPerSecond))
            baseDeps = ["base"]
        }
        var imatrixFile: [String: (path: String, key: String, job: String?)] = [:]
        // Only the importance matrices some quant uses are made.
        let used = Set(f.quants.compactMap(\.imatrix))
        for im in f.imatrices where used.contains(im.name) {
            if let file = im.file {
                let p = f.path(file)
                guard FileManager.default.fileExists(atPath: p) else { throw SmeltError("\(f.source): imatrix \(im.name): \(p): no such file") }
                imatrixFile[im.name] = (p, try identity(p), nil)
            } else if let t = im.text {
                let calib = f.path(t)
                guard FileManager.default.fileExists(atPath: calib) else { throw SmeltError("\(f.source): imatrix \(im.name): \(calib): no such file") }
                let out = folder + "/imatrix-\(im.name).gguf"
                var args = ["imatrix", model, "-f", calib, "-o", out, "-c", String(f.context)]
                if let c = im.chunks { args += ["--chunks", String(c)] }
                args += ["-t", "{threads}", "--record-to", "{record}"]
                let key = digest(["imatrix", modelKey, try identity(calib)] + args)
                jobs.append(SweepJob(index: 0, id: "imatrix-\(im.name)", kind: .imatrix, dependsOn: [], key: key, steps: [args], output: out,
                                     summary: "importance matrix on \(URL(fileURLWithPath: calib).lastPathComponent)",
                                     estimatedBytes: nil, estimatedSeconds: Double((im.chunks ?? 100) * 512) / speed.tokensPerSecond))
                imatrixFile[im.name] = (out, key, "imatrix-\(im.name)")
            }
        }
        for q in f.quants {
            let id = "\(q.variant.label)-\(q.imatrix ?? "none")"
            let out = folder + "/models/\(id).gguf"
            var quantize = ["quantize", model, out]
            var bytes: Int64?
            switch q.variant {
            case .preset(let p):
                quantize.append(p)
                bytes = facts.estimate(preset: p)
            case .recipe(let r):
                let path = FileManager.default.fileExists(atPath: f.path(r)) ? f.path(r) : r
                quantize += ["--recipe", path]
                bytes = facts.estimate(recipe: path)
            case .targetBPW(let b):
                quantize += ["--target-bpw", String(b)]
                bytes = Int64(Double(facts.parameters) * b / 8)
            }
            quantize.append("{threads}")
            var deps = baseDeps
            var imKey = "none"
            if let name = q.imatrix, let im = imatrixFile[name] {
                quantize += ["--imatrix", im.path]
                imKey = im.key
                if let j = im.job { deps.append(j) }
            }
            quantize += ["--record-to", "{record}"]
            let kld = ["perplexity", out, "--kl-divergence", baseFile, "-t", "{threads}", "--record-to", "{record}"]
            let key = digest(["quant", modelKey, baseKey, imKey] + quantize + kld)
            let secs = Double(facts.bytes) / speed.quantizeBytesPerSecond(q.variant) + tokens / speed.tokensPerSecond
            jobs.append(SweepJob(index: 0, id: id, kind: .quant, dependsOn: deps, key: key, steps: [quantize, kld], output: out,
                                 summary: "\(q.variant.label)\(q.imatrix.map { " with imatrix \($0)" } ?? ""), KLD against the base",
                                 estimatedBytes: bytes, estimatedSeconds: secs))
        }
        for i in jobs.indices { jobs[i].index = i }
        return SweepPlan(name: f.name, sweepFile: f.source, folder: folder, model: model, text: text, context: f.context,
                         baseFile: baseFile, jobs: jobs)
    }

    /// One line per job: index, id, what it makes, dependencies, estimated size and time.
    public func table() -> String {
        var s = "sweep \(name): \(jobs.count) jobs (\(prepJobs.count) preparation, \(quantJobs.count) quants) → \(folder)\n"
        s += "   #  id                         depends on              est. size    est. time  makes\n"
        for j in jobs {
            let size = j.estimatedBytes.map { String(format: "%8.1f MiB", Double($0) / 1_048_576) } ?? "           -"
            s += String(format: "%4d  ", j.index) + pad(j.id, 25) + "  " + pad(j.dependsOn.isEmpty ? "-" : j.dependsOn.joined(separator: ","), 22)
            s += "  " + size + "  " + pad(Self.duration(j.estimatedSeconds), 9) + "  " + j.summary + "\n"
        }
        let total = jobs.reduce(0) { $0 + $1.estimatedSeconds }
        s += "estimated total: \(Self.duration(total)) of one worker (sizes from the planner's dry run; times from this store's measured speeds when it has them)\n"
        return s
    }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    public static func duration(_ s: Double) -> String {
        if !s.isFinite { return "?" }
        if s < 60 { return String(format: "%.0fs", s) }
        if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
        return String(format: "%dh%02dm", Int(s) / 3600, Int(s) % 3600 / 60)
    }

    /// Writes `plan.json` (and makes the folders).
    public func write() throws {
        for d in [folder, recordsFolder, folder + "/models"] {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw SmeltError("cannot create \(d): \(error.localizedDescription)")
            }
        }
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let out = try OutputFile(url: planFile)
        try out.write(Array(try e.encode(self)))
        try out.commit()
    }

    public static func read(folder: String) throws -> SweepPlan {
        let u = URL(fileURLWithPath: folder).appendingPathComponent("plan.json")
        guard let d = FileManager.default.contents(atPath: u.path) else {
            throw SmeltError("\(u.path): no sweep plan (run smelt sweep run or submit first)")
        }
        do { return try JSONDecoder().decode(SweepPlan.self, from: d) } catch {
            throw SmeltError("\(u.path): not a sweep plan (\(error.localizedDescription))")
        }
    }
}

/// Parameters and bytes of the base model, and the planner's size estimates.
struct ModelSize {
    var parameters: Int64
    var bytes: Int64
    var source: TensorSource?

    init(_ path: String) throws {
        var isDir: ObjCBool = false
        FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        if !isDir.boolValue, let g = try? GGUFTensorSource(url: URL(fileURLWithPath: path)) {
            source = g
            parameters = Int64(g.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) })
            bytes = Int64((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? 0)
        } else {
            // A checkpoint folder: its safetensors bytes, two per weight (bf16/f16).
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            bytes = files.filter { $0.hasSuffix(".safetensors") }.reduce(Int64(0)) {
                $0 + ((try? FileManager.default.attributesOfItem(atPath: path + "/" + $1)[.size] as? NSNumber)??.int64Value ?? 0)
            }
            parameters = bytes / 2
        }
    }

    /// The output size of a preset or recipe from a dry run of the planner (nil when it cannot plan).
    func estimate(preset: String) -> Int64? {
        guard let p = LlamaPreset(parsing: preset) else { return nil }
        return dryRun(try? BuiltinRecipes.recipe(named: p.rawValue), preset: p)
    }

    func estimate(recipe: String) -> Int64? {
        guard let r = try? BuiltinRecipes.load(recipe) else { return nil }
        return dryRun(r, preset: r.fileType)
    }

    private func dryRun(_ recipe: Recipe?, preset: LlamaPreset) -> Int64? {
        guard let source else { return nil }
        var req = QuantizeRequest(preset: preset)
        req.recipe = recipe
        req.options.hasImatrix = true
        guard let r = try? Quantizer.run(source: source, output: nil, request: req) else { return nil }
        return Int64(r.outputBytes)
    }
}

/// Speeds for the estimates: measured ones from the store when it has runs of this model.
struct Speeds {
    var tokensPerSecond: Double
    var quantizeBytes: Double

    init(store: ResultsStore?, modelKey: String, parameters: Int64) {
        // Defaults measured on this project's 2-core machine with the 135M demo model (docs/SWEEPS.md).
        let scale = 135e6 / Double(max(parameters, 1))
        tokensPerSecond = 1000 * scale
        quantizeBytes = 150e6
        guard let store, let runs = try? store.runs(RunFilter(model: modelKey)) else { return }
        let tps = runs.filter { $0.kind == .perplexity || $0.kind == .klDivergence }.compactMap(\.tokensPerSecond).filter { $0 > 0 }
        if !tps.isEmpty { tokensPerSecond = tps.sorted()[tps.count / 2] }
    }

    func quantizeBytesPerSecond(_ v: SweepFile.Variant) -> Double {
        // IQ types and budgets (which measure every candidate type) are slower than the k-quants.
        switch v {
        case .preset(let p) where p.uppercased().hasPrefix("IQ"): return quantizeBytes / 6
        case .targetBPW: return quantizeBytes / 10
        default: return quantizeBytes
        }
    }
}
