import Foundation
import SmeltCompressedTensors
import SmeltEval
import SmeltFormats
import SmeltQuantize
import SmeltStore
#if canImport(Glibc)
import Glibc
#endif

/// Records every run of the commands into the results store: identities of the
/// files read and written, settings, machine and result. `nil` store (`--no-store`)
/// makes every call a no-op that still builds the record, so `--json` output is the same.
public final class Recorder {
    public let store: ResultsStore?
    /// `--record-to FILE`: records appended to a JSON-lines file instead of the store
    /// (sweep jobs on shared file systems; `smelt sweep collect` moves them into the store).
    public let recordFile: URL?
    public let started = Date()
    private let commandLine: String
    private var plans: [ModelPlanRecord] = []

    /// Opens the store chosen by `--store PATH`, `SMELT_STORE` or the default location;
    /// `noStore` (`--no-store`, or `SMELT_NO_STORE=1` without `--store`) records nothing;
    /// `recordTo` appends the records to a file instead.
    public init(storePath: String?, noStore: Bool, recordTo: String? = nil, arguments: [String] = CommandLine.arguments) throws {
        commandLine = arguments.map(Self.shellQuoted).joined(separator: " ")
        recordFile = recordTo.map { URL(fileURLWithPath: $0) }
        if recordTo != nil || noStore || (storePath == nil && ProcessInfo.processInfo.environment["SMELT_NO_STORE"] == "1") {
            store = nil
        } else {
            store = try ResultsStore(url: storePath.map { URL(fileURLWithPath: $0) } ?? ResultsStore.defaultURL())
        }
    }

    /// A record of this process's run, with machine, version and command line filled in.
    public func begin(_ kind: RunKind) -> RunRecord {
        var r = RunRecord(kind: kind, startedAt: started, smeltVersion: SmeltVersion.string, host: Machine.hostName,
                          cpu: Machine.cpuModel, commandLine: commandLine)
        r.wallSeconds = nil
        r.sweepJob = ProcessInfo.processInfo.environment["SMELT_SWEEP_JOB"]
        return r
    }

    /// Whether the run's records keep the digests of the files written (a store or `--record-to`):
    /// writers skip hashing their output when not.
    public var wantsDigests: Bool { store != nil || recordFile != nil }

    // MARK: identities

    /// A file read by the run (hash cached by path, size and time); without a store, its path only.
    public func identify(_ url: URL) throws -> FileIdentity {
        if let store { return try store.identify(url) }
        if recordFile != nil { return try ResultsStore.hashIdentity(url) }
        let attrs = try? FileManager.default.attributesOfItem(atPath: url.path)
        return FileIdentity(sha256: nil, path: url.standardizedFileURL.path, bytes: (attrs?[.size] as? NSNumber)?.int64Value)
    }

    /// A file the run wrote, with the digest computed while writing.
    public func written(_ url: URL, sha256: String?) throws -> FileIdentity {
        if let store, let sha256 { return try store.rememberWritten(url, sha256: sha256) }
        if let store { return try store.identify(url) }
        if recordFile != nil && sha256 == nil { return try ResultsStore.hashIdentity(url) }
        let attrs = try? FileManager.default.attributesOfItem(atPath: url.path)
        return FileIdentity(sha256: sha256, path: url.standardizedFileURL.path, bytes: (attrs?[.size] as? NSNumber)?.int64Value)
    }

    /// Stores the tensor table of a GGUF model (nothing for checkpoint folders or already known models).
    public func recordPlan(of url: URL, identity: FileIdentity) throws {
        guard identity.sha256 != nil else { return }
        if let store {
            guard !(try store.hasPlan(modelKey: identity.key)), let plan = try Self.plan(of: url, key: identity.key) else { return }
            try store.savePlan(plan)
        } else if recordFile != nil, let plan = try Self.plan(of: url, key: identity.key) {
            plans.append(plan)
        }
    }

    /// The tensor table of a GGUF file or of a compressed-tensors folder (its dense tensors with the
    /// bytes their codes and scales take, `fileTypeName` the scheme); nil for other folders.
    public static func plan(of url: URL, key: String) throws -> ModelPlanRecord? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { return nil }
        if isDir.boolValue {
            // a plain checkpoint folder has no quantization_config: no plan (best effort, never an error)
            guard let ct = try? CTCheckpointReader(folder: url), let table = try? ct.tensorTable() else { return nil }
            return ModelPlanRecord(modelKey: key, fileType: nil, fileTypeName: ct.schemeName,
                                   tensors: table.map { TensorPlanEntry(name: $0.name, type: $0.type, shape: $0.shape, bytes: $0.bytes) })
        }
        let g = try GGUFFile(url: url)
        let ft = g.metadata["general.file_type"]?.intValue
        let name = ft.flatMap { f in LlamaPreset.allCases.first { Int($0.fileType) == f }?.rawValue }
        return ModelPlanRecord(modelKey: key, fileType: ft, fileTypeName: name,
                               tensors: g.tensors.map { TensorPlanEntry(name: $0.name, type: $0.type.name, shape: $0.shape,
                                                                       bytes: Int64($0.byteCount)) })
    }

    // MARK: saving

    /// Stores the record (when there is a store), returning it with its id.
    public func save(_ record: RunRecord) throws -> RunRecord {
        var r = record
        if r.wallSeconds == nil { r.wallSeconds = Date().timeIntervalSince(started) }
        if let store {
            r.id = try store.record(r)
            r.modelType = try r.model.flatMap { try store.plan(modelKey: $0.key)?.fileTypeName }
        } else if let f = recordFile {
            var lines = plans.map { RecordLine(plan: $0) }
            lines.append(RecordLine(run: r))
            try RecordLine.append(lines, to: f)
            plans = []
        }
        return r
    }

    /// The JSON a command prints with `--json`: the result's own fields, plus `run`
    /// (the stored record: id, files with their hashes, settings, machine, date, version).
    public static func json<T: Encodable>(result: T, record: RunRecord) throws -> String {
        let enc = JSONEncoder()
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try json(resultJSON: enc.encode(result), record: record)
    }

    /// `json(result:record:)` for a result already serialised as a JSON object.
    public static func json(resultJSON: Data, record: RunRecord) throws -> String {
        let enc = JSONEncoder()
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        enc.dateEncodingStrategy = .iso8601
        var top = (try JSONSerialization.jsonObject(with: resultJSON) as? [String: Any]) ?? [:]
        var r = record
        r.result = nil
        top["run"] = try JSONSerialization.jsonObject(with: enc.encode(r))
        top["run_id"] = record.id.map { NSNumber(value: $0) } ?? NSNull()
        let data = try JSONSerialization.data(withJSONObject: top, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// The result encoded as the JSON text stored in `run.result`.
    public static func resultJSON<T: Encodable>(_ v: T) -> String? {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return (try? enc.encode(v)).map { String(decoding: $0, as: UTF8.self) }
    }

    static func shellQuoted(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

// MARK: - Per-command records

extension Recorder {
    /// A perplexity run (optionally writing a KLD base file).
    public func perplexity(_ res: PerplexityResult, model: URL, text: URL, tokens: Int, options: EvaluationOptions,
                           threads: Int, saveLogits: URL?) throws -> RunRecord {
        var r = begin(.perplexity)
        let m = try identify(model)
        try recordPlan(of: model, identity: m)
        r.model = m
        r.text = try identify(text)
        r.textTokens = tokens
        if let s = saveLogits {
            r.base = try written(s, sha256: res.savedLogitsSHA256)
            r.baseModel = m
        }
        r.contextLength = res.contextLength; r.chunks = res.chunks; r.batchSize = options.batchSize; r.threads = threads
        r.tokensPerSecond = res.tokensPerSecond
        r.result = Self.resultJSON(res)
        return try save(r)
    }

    /// A KL-divergence run: the base model and text are those of the run that wrote the base file, when stored.
    public func klDivergence(_ res: KLDivergenceResult, model: URL, base: URL, options: EvaluationOptions,
                             threads: Int) throws -> RunRecord {
        var r = begin(.klDivergence)
        let m = try identify(model)
        try recordPlan(of: model, identity: m)
        r.model = m
        let b = try identify(base)
        r.base = b
        if let writer = try store?.runWritingBase(key: b.key) {
            r.baseModel = writer.model
            r.text = writer.text
            r.textTokens = writer.textTokens
        }
        r.contextLength = res.contextLength; r.chunks = res.chunks; r.batchSize = options.batchSize; r.threads = threads
        r.tokensPerSecond = res.tokensPerSecond
        r.result = Self.resultJSON(res)
        return try save(r)
    }

    /// A quantize run (its output's tensor plan is stored under the output's hash).
    public func quantize(_ res: QuantizeResult, input: URL, output: URL?, recipe: Recipe?, imatrix: URL?,
                         threads: Int, summary: QuantizeSummary) throws -> RunRecord {
        var r = begin(.quantize)
        r.input = try identify(input)
        if let output, res.outputSHA256 != nil {
            let o = try written(output, sha256: res.outputSHA256)
            try recordPlan(of: output, identity: o)
            r.model = o
        }
        r.imatrix = try imatrix.map(identify)
        r.recipeName = recipe?.name
        r.recipeText = recipe?.text
        r.threads = threads
        r.result = Self.resultJSON(summary)
        return try save(r)
    }

    /// An imatrix run.
    /// An imatrix run; `text` nil: the calibration text built into the binary, recorded by `textName`.
    public func imatrix(_ res: ImatrixResult, model: URL, text: URL?, textName: String, tokens: Int, output: URL,
                        options: EvaluationOptions, threads: Int) throws -> RunRecord {
        var r = begin(.imatrix)
        let m = try identify(model)
        try recordPlan(of: model, identity: m)
        r.model = m
        if let text { r.text = try identify(text) } else { r.text = FileIdentity(sha256: nil, path: textName, bytes: nil) }
        r.textTokens = tokens
        r.imatrix = try identify(output)
        r.contextLength = res.contextLength; r.chunks = res.chunks; r.batchSize = options.batchSize; r.threads = threads
        r.tokensPerSecond = res.tokensPerSecond
        r.result = Self.resultJSON(res)
        return try save(r)
    }

    /// A sensitivity run (its table is the result).
    public func sensitivity(resultJSON: String, model: URL, imatrix: URL?, text: URL?, base: URL?, context: Int,
                            chunks: Int, threads: Int) throws -> RunRecord {
        var r = begin(.sensitivity)
        let m = try identify(model)
        try recordPlan(of: model, identity: m)
        r.model = m
        r.imatrix = try imatrix.map(identify)
        r.text = try text.map(identify)
        r.base = try base.map(identify)
        r.contextLength = context; r.chunks = chunks; r.threads = threads
        r.result = resultJSON
        return try save(r)
    }
}

/// What a quantize run stores as its result: llama-quantize's totals and the preset.
public struct QuantizeSummary: Codable, Sendable, Equatable {
    public var preset: String
    public var recipe: String?
    public var inputBytes: Int
    public var outputBytes: Int
    public var elements: Int
    public var bitsPerWeight: Double
    public var tensors: Int
    public var imatrixEntries: Int
    public var dryRun: Bool
    public var seconds: Double
    public init(_ r: QuantizeResult, preset: String, recipe: String?, dryRun: Bool, seconds: Double) {
        self.preset = preset
        self.recipe = recipe
        inputBytes = r.inputBytes
        outputBytes = r.outputBytes
        elements = r.elementCount
        bitsPerWeight = Double(r.outputBytes) * 8 / Double(max(r.elementCount, 1))
        tensors = r.plan.tensors.count
        imatrixEntries = r.imatrixEntries
        self.dryRun = dryRun
        self.seconds = seconds
    }
}

/// The machine a run ran on.
public enum Machine {
    public static let hostName: String = ProcessInfo.processInfo.hostName
    /// `model name` of /proc/cpuinfo (or the architecture), with the core count.
    public static let cpuModel: String = {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if let s = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = s.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) + " (\(cores) cores)"
        }
        #if arch(x86_64)
        return "x86_64 (\(cores) cores)"
        #else
        return "arm64 (\(cores) cores)"
        #endif
    }()
}

/// One line of a `--record-to` file: a run, or a model plan it refers to.
public struct RecordLine: Codable, Sendable {
    public var run: RunRecord?
    public var plan: ModelPlanRecord?
    public init(run: RunRecord? = nil, plan: ModelPlanRecord? = nil) { self.run = run; self.plan = plan }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        // milliseconds, as the store keeps them: `SweepRunner.collect` tells runs apart by start
        // time, and a job run again within the same second is a different run
        e.dateEncodingStrategy = .custom { d, enc in
            var c = enc.singleValueContainer()
            try c.encode(ResultsStore.iso(d))
        }
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()

    /// Appends lines with one `write` (O_APPEND), so concurrent writers do not interleave lines.
    public static func append(_ lines: [RecordLine], to url: URL) throws {
        var data = Data()
        for l in lines { data.append(try encoder.encode(l)); data.append(0x0A) }
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SmeltError("cannot write \(url.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == data.count else { throw SmeltError("cannot write \(url.path): short write") }
    }

    /// Reads a `--record-to` file; a torn last line (an interrupted writer) is ignored.
    public static func read(_ url: URL) throws -> [RecordLine] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw SmeltError("\(url.path): cannot read (\(error.localizedDescription))")
        }
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { dec in   // with or without fractional seconds (files before 2026-12-04)
            let c = try dec.singleValueContainer()
            let s = try c.decode(String.self)
            guard let date = ResultsStore.date(s) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 date: \(s)")
            }
            return date
        }
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var out: [RecordLine] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        for (i, l) in lines.enumerated() {
            do { out.append(try d.decode(RecordLine.self, from: Data(l.utf8))) } catch {
                if i == lines.count - 1 && !text.hasSuffix("\n") { break }
                throw SmeltError("\(url.path):\(i + 1): not a Smelt record line")
            }
        }
        return out
    }
}
