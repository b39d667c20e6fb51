import SmeltFormats

/// compressed-tensors' `CompressionFormat`: how a group's tensors are stored on disk.
public enum CTCompressionFormat: String, Sendable, CaseIterable {
    case dense
    case naiveQuantized = "naive-quantized"
    /// FP8 `weight` (+ `weight_scale`, `input_scale`)
    case floatQuantized = "float-quantized"
    /// int8 `weight` + `weight_scale`
    case intQuantized = "int-quantized"
    /// sub-byte integers packed into int32 `weight_packed` + `weight_scale` + `weight_shape` (+ `weight_zero_point`)
    case packQuantized = "pack-quantized"
    case mixedPrecision = "mixed-precision"
}

/// compressed-tensors' `QuantizationScheme`: the modules it targets and how their weights and input
/// activations are quantized.
public struct CTQuantizationScheme: Equatable, Sendable {
    /// module names, class names ("Linear") or `re:` regular expressions
    public var targets: [String]
    public var weights: CTQuantizationArgs?
    public var inputActivations: CTQuantizationArgs?
    public var outputActivations: CTQuantizationArgs?
    /// the storage format of the group (set when the checkpoint is compressed)
    public var format: CTCompressionFormat?

    public init(targets: [String], weights: CTQuantizationArgs?, inputActivations: CTQuantizationArgs? = nil,
                outputActivations: CTQuantizationArgs? = nil, format: CTCompressionFormat? = nil) throws {
        if let i = inputActivations {
            guard [.token, .tensor, .group, .tensorGroup, .attnHead].contains(i.strategy) else {
                throw SmeltError("quantization scheme: strategy '\(i.strategy.rawValue)' is not supported for input activations")
            }
            if i.actorder != nil { throw SmeltError("quantization scheme: actorder cannot apply to input activations") }
        }
        if format == .mixedPrecision { throw SmeltError("quantization scheme: mixed-precision is not a group format") }
        self.targets = targets; self.weights = weights; self.inputActivations = inputActivations
        self.outputActivations = outputActivations; self.format = format
    }

    /// The format llm-compressor picks for a scheme when it compresses (`infer_per_module_quantization_format`):
    /// FP8 weights → float-quantized; int weights of fewer than 8 bits with no (or int) activations →
    /// pack-quantized; 8-bit int weights with activations → int-quantized, without → pack-quantized.
    public var inferredFormat: CTCompressionFormat {
        guard let w = weights else { return .dense }
        if w.type == .float { return .floatQuantized }
        let actsFloat = inputActivations?.type == .float
        if !actsFloat && w.numBits <= 8 {
            if w.numBits == 8 && inputActivations != nil { return .intQuantized }
            return .packQuantized
        }
        return .naiveQuantized
    }

    /// The JSON object of a config group, as compressed-tensors serialises it (keys sorted).
    public var json: JSONValue {
        .object([
            ("format", format.map { .string($0.rawValue) } ?? .null),
            ("input_activations", inputActivations?.json ?? .null),
            ("output_activations", outputActivations?.json ?? .null),
            ("targets", .array(targets.map { .string($0) })),
            ("weights", weights?.json ?? .null),
        ])
    }

    /// For the preset table: arguments known to be valid.
    init(validTargets: [String], weights: CTQuantizationArgs?, inputActivations: CTQuantizationArgs?) {
        targets = validTargets; self.weights = weights; self.inputActivations = inputActivations
        outputActivations = nil; format = nil
    }

    /// Reads a config group.
    public init(json: JSONValue, context: String) throws {
        guard json.objectValue != nil else { throw SmeltError("\(context): a config group must be an object") }
        guard let t = json["targets"]?.arrayValue?.compactMap({ $0.stringValue }) else {
            throw SmeltError("\(context): config group has no 'targets' list")
        }
        func args(_ k: String) throws -> CTQuantizationArgs? {
            guard let v = json[k], !v.isNull else { return nil }
            return try CTQuantizationArgs(json: v, context: "\(context) \(k)")
        }
        var fmt: CTCompressionFormat?
        if let f = json["format"]?.stringValue {
            guard let cf = CTCompressionFormat(rawValue: f) else { throw SmeltError("\(context): unknown format '\(f)'") }
            fmt = cf
        }
        try self.init(targets: t, weights: try args("weights"), inputActivations: try args("input_activations"),
                      outputActivations: try args("output_activations"), format: fmt)
    }
}

/// The preset schemes of compressed-tensors' `quantization/quant_scheme.py` (`PRESET_SCHEMES`) that Smelt writes.
public enum CTSchemePreset: String, Sendable, CaseIterable {
    /// FP8 E4M3 weights per tensor, static per-tensor FP8 input activations (needs calibration)
    case FP8
    /// FP8 E4M3 weights per output channel, dynamic per-token FP8 input activations
    case FP8_DYNAMIC
    /// int8 weights per output channel, dynamic per-token int8 input activations
    case W8A8
    /// symmetric int4 weights in groups of 128, activations not quantized
    case W4A16
    /// asymmetric int4 weights (zero points) in groups of 128
    case W4A16_ASYM

    /// Case-insensitive lookup (compressed-tensors upper-cases preset names); `INT8` is W8A8's alias.
    public init?(name: String) {
        let u = name.uppercased()
        if u == "INT8" { self = .W8A8; return }
        guard let p = CTSchemePreset(rawValue: u) else { return nil }
        self = p
    }

    /// The scheme with the given targets (compressed-tensors' `preset_name_to_scheme`).
    public func scheme(targets: [String] = ["Linear"]) -> CTQuantizationScheme {
        typealias A = CTQuantizationArgs
        switch self {
        case .FP8:
            return CTQuantizationScheme(validTargets: targets,
                weights: A(valid: 8, .float, symmetric: true, groupSize: nil, .tensor, dynamic: false),
                inputActivations: A(valid: 8, .float, symmetric: true, groupSize: nil, .tensor, dynamic: false, observer: "static_minmax"))
        case .FP8_DYNAMIC:
            return CTQuantizationScheme(validTargets: targets,
                weights: A(valid: 8, .float, symmetric: true, groupSize: nil, .channel, dynamic: false),
                inputActivations: A(valid: 8, .float, symmetric: true, groupSize: nil, .token, dynamic: true))
        case .W8A8:
            return CTQuantizationScheme(validTargets: targets,
                weights: A(valid: 8, .int, symmetric: true, groupSize: nil, .channel, dynamic: false),
                inputActivations: A(valid: 8, .int, symmetric: true, groupSize: nil, .token, dynamic: true))
        case .W4A16:
            return CTQuantizationScheme(validTargets: targets,
                weights: A(valid: 4, .int, symmetric: true, groupSize: 128, .group, dynamic: false), inputActivations: nil)
        case .W4A16_ASYM:
            return CTQuantizationScheme(validTargets: targets,
                weights: A(valid: 4, .int, symmetric: false, groupSize: 128, .group, dynamic: false), inputActivations: nil)
        }
    }
}
