import Foundation

/// What kind of command produced a run.
public enum RunKind: String, Codable, CaseIterable, Sendable {
    case quantize, imatrix, perplexity, sensitivity
    case klDivergence = "kl-divergence"
}

/// A file (or checkpoint folder) identified by content: `key` is its SHA-256, or
/// `name:<file name>` when the file was not available to hash (imported runs).
public struct FileIdentity: Codable, Sendable, Hashable {
    public var key: String
    public var sha256: String?
    /// The path the run saw (absolute when it could be resolved).
    public var path: String
    /// The file name (last path component).
    public var name: String
    /// Size in bytes (for a folder: the sum of its files).
    public var bytes: Int64?

    public init(sha256: String?, path: String, bytes: Int64?) {
        self.sha256 = sha256
        self.path = path
        self.name = URL(fileURLWithPath: path).lastPathComponent
        self.key = sha256 ?? "name:\(name)"
        self.bytes = bytes
    }

    /// A short form for tables: the first 12 hex digits, or the name key.
    public var shortKey: String { sha256.map { String($0.prefix(12)) } ?? key }
}

/// One tensor of a model's plan: what type it was stored as.
public struct TensorPlanEntry: Codable, Sendable, Equatable {
    public var name: String
    /// ggml type name (`q4_K`, `bf16`, …).
    public var type: String
    /// ggml order (ne0 first).
    public var shape: [Int]
    public var bytes: Int64
    public init(name: String, type: String, shape: [Int], bytes: Int64) {
        self.name = name; self.type = type; self.shape = shape; self.bytes = bytes
    }
}

/// A model file's tensor table and totals, kept once per model content.
public struct ModelPlanRecord: Codable, Sendable, Equatable {
    public var modelKey: String
    /// `general.file_type` and its llama.cpp name (`MOSTLY_Q4_K_M` → `Q4_K_M`).
    public var fileType: Int?
    public var fileTypeName: String?
    /// Bytes of tensor data.
    public var tensorBytes: Int64
    /// Weights (elements of all tensors).
    public var parameters: Int64
    /// `tensorBytes · 8 / parameters` (llama-quantize's BPW).
    public var bitsPerWeight: Double
    public var tensors: [TensorPlanEntry]
    public init(modelKey: String, fileType: Int?, fileTypeName: String?, tensors: [TensorPlanEntry]) {
        self.modelKey = modelKey
        self.fileType = fileType
        self.fileTypeName = fileTypeName
        self.tensors = tensors
        tensorBytes = tensors.reduce(0) { $0 + $1.bytes }
        parameters = tensors.reduce(0) { $0 + Int64($1.shape.reduce(1, *)) }
        bitsPerWeight = parameters > 0 ? Double(tensorBytes) * 8 / Double(parameters) : 0
    }
}

/// One recorded run: identities of everything it read and wrote, its settings,
/// where and when it ran, and its result (the command's JSON result, verbatim).
public struct RunRecord: Codable, Sendable, Equatable {
    public var id: Int64?
    public var kind: RunKind
    /// `smelt`, or `llama-perplexity` for imported logs.
    public var source: String = "smelt"
    /// `ok` or `failed` (schema version 2).
    public var status: String = "ok"
    public var error: String? = nil
    public var startedAt: Date
    public var wallSeconds: Double? = nil
    public var smeltVersion: String
    public var host: String
    public var cpu: String
    public var commandLine: String
    /// The model evaluated, the imatrix's model, or the file a quantize run wrote.
    public var model: FileIdentity? = nil
    /// The model a quantize run read.
    public var input: FileIdentity? = nil
    /// The evaluation or calibration text.
    public var text: FileIdentity? = nil
    public var textTokens: Int? = nil
    public var imatrix: FileIdentity? = nil
    /// The KL-divergence base file read (`--kl-divergence`) or written (`--save-logits`).
    public var base: FileIdentity? = nil
    /// The model whose logits the base file holds.
    public var baseModel: FileIdentity? = nil
    public var recipeName: String? = nil
    public var recipeText: String? = nil
    public var contextLength: Int? = nil
    public var chunks: Int? = nil
    public var batchSize: Int? = nil
    public var threads: Int? = nil
    public var tokensPerSecond: Double? = nil
    /// The command's result as JSON (PerplexityResult, KLDivergenceResult, …).
    public var result: String? = nil
    /// The model's `general.file_type` name (`Q4_K_M`, `BF16`, …), from its stored plan (not a column of `run`).
    public var modelType: String? = nil
    /// The key of the sweep job that made this run (schema version 3).
    public var sweepJob: String? = nil

    public init(kind: RunKind, startedAt: Date, smeltVersion: String, host: String, cpu: String, commandLine: String) {
        self.kind = kind
        self.startedAt = startedAt
        self.smeltVersion = smeltVersion
        self.host = host
        self.cpu = cpu
        self.commandLine = commandLine
    }
}

/// Filters of `smelt results list` (every field optional; all given must match).
public struct RunFilter: Sendable {
    /// Substring of the model's name or path, or a prefix of its SHA-256.
    public var model: String?
    /// Substring or hash prefix of the base model (the model that wrote the KLD base file).
    public var base: String?
    /// Substring or hash prefix of the text.
    public var text: String?
    public var kind: RunKind?
    public var since: Date?
    public init(model: String? = nil, base: String? = nil, text: String? = nil, kind: RunKind? = nil, since: Date? = nil) {
        self.model = model; self.base = base; self.text = text; self.kind = kind; self.since = since
    }
}
