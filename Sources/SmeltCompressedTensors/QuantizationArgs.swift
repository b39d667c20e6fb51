import SmeltFormats

/// compressed-tensors' `QuantizationType`: integers or floats (FP8 E4M3).
public enum CTQuantizationType: String, Sendable, CaseIterable {
    case int
    case float
}

/// compressed-tensors' `QuantizationStrategy`: what one scale (and zero point) covers.
public enum CTQuantizationStrategy: String, Sendable, CaseIterable {
    /// one scale for the whole tensor
    case tensor
    /// one scale per output row (weights)
    case channel
    /// one scale per `group_size` consecutive input columns of a row
    case group
    /// one scale per 2-D block (not written by Smelt)
    case block
    /// one scale per token (dynamic activations)
    case token
    case tensorGroup = "tensor_group"
    case attnHead = "attn_head"
}

/// The floating-point type computations are rounded to after every operation, as torch computes
/// in a tensor's own dtype (a bf16 model: `x / scale` is rounded to bf16 before it is cast to FP8).
public enum CTComputeType: String, Sendable, CaseIterable {
    case bf16, f16, f32

    /// Rounds a float32 result to this type (round to nearest even) and back.
    @inline(__always) public func round(_ x: Float) -> Float {
        switch self {
        case .f32: return x
        case .bf16: return FloatFormats.bf16ToFloat(FloatFormats.floatToBF16(x))
        case .f16: return Float(Float16(x))
        }
    }

    /// The safetensors dtype of tensors stored in this type (scales, dequantized weights).
    public var safetensorsDType: SafetensorsDType {
        switch self { case .bf16: return .BF16; case .f16: return .F16; case .f32: return .F32 }
    }

    /// torch's name (`torch.finfo(...).eps` is used for zero scales).
    public var eps: Float {
        switch self {
        case .bf16: return 0.0078125          // 2^-7
        case .f16: return 0.0009765625        // 2^-10
        case .f32: return Float.ulpOfOne      // 2^-23
        }
    }

    /// The compute type of a safetensors float dtype (F32 for anything else).
    public init(_ dtype: SafetensorsDType) {
        switch dtype {
        case .BF16: self = .bf16
        case .F16: self = .f16
        default: self = .f32
        }
    }
}

/// compressed-tensors' `QuantizationArgs`: how one tensor (weights or input activations) is quantized.
/// Field names, defaults and validation follow the Python class (pydantic model); `json` writes it as
/// compressed-tensors serialises it.
public struct CTQuantizationArgs: Equatable, Sendable {
    public var numBits: Int
    public var type: CTQuantizationType
    public var symmetric: Bool
    public var groupSize: Int?
    public var strategy: CTQuantizationStrategy
    public var blockStructure: [Int]?
    /// true: scales computed on the fly (per token for activations); false: static, stored in the checkpoint
    public var dynamic: Bool
    /// GPTQ activation ordering as written in the config: nil, "weight" or "group"
    public var actorder: String?
    /// "memoryless_minmax" (static default), "static_minmax", "minmax", "mse"…; nil for dynamic args
    public var observer: String?
    /// torch dtype name of the scales (nil: the weight's dtype)
    public var scaleDtype: String?

    /// Builds and validates arguments as compressed-tensors does: the strategy is inferred from
    /// `groupSize` when not given (nil → tensor, > 0 → group, -1 → channel); token strategy must be
    /// dynamic; group strategy needs a positive group size; dynamic args have no observer, static ones
    /// default to "memoryless_minmax".
    public init(numBits: Int = 8, type: CTQuantizationType = .int, symmetric: Bool = true, groupSize: Int? = nil,
                strategy: CTQuantizationStrategy? = nil, blockStructure: [Int]? = nil, dynamic: Bool = false,
                actorder: String? = nil, observer: String? = nil, scaleDtype: String? = nil) throws {
        guard (1...16).contains(numBits) else { throw SmeltError("quantization args: num_bits \(numBits) is not supported (1…16)") }
        if type == .float && numBits != 8 { throw SmeltError("quantization args: float quantization supports num_bits 8 only (FP8 E4M3), not \(numBits)") }
        if let g = groupSize, g < -1 || g == 0 {
            throw SmeltError("quantization args: invalid group_size \(g) (use > 0 for strategy 'group', -1 for 'channel')")
        }
        var s: CTQuantizationStrategy
        if let strategy { s = strategy }
        else if let g = groupSize { s = g > 0 ? .group : .channel }
        else { s = .tensor }
        if s == .token && !dynamic { throw SmeltError("quantization args: static token quantization is not possible, use dynamic: true") }
        if s == .group || s == .tensorGroup {
            guard let g = groupSize, g > 0 else { throw SmeltError("quantization args: strategy '\(s.rawValue)' needs a positive group_size") }
        }
        if let g = groupSize, g > 0, s != .group && s != .tensorGroup {
            throw SmeltError("quantization args: group_size needs strategy 'group'")
        }
        if (s == .block) != (blockStructure != nil) { throw SmeltError("quantization args: strategy 'block' and block_structure go together") }
        var obs = observer
        if dynamic {
            guard [.token, .tensor, .tensorGroup, .group].contains(s) else {
                throw SmeltError("quantization args: dynamic quantization needs strategy token, tensor, group or tensor_group")
            }
            obs = nil
        } else if obs == nil {
            obs = "memoryless_minmax"
        }
        self.numBits = numBits; self.type = type; self.symmetric = symmetric; self.groupSize = groupSize
        self.strategy = s; self.blockStructure = blockStructure; self.dynamic = dynamic; self.actorder = actorder
        self.observer = obs; self.scaleDtype = scaleDtype
    }

    /// For the preset table: arguments known to be valid (the observer defaults as in the validating init).
    init(valid numBits: Int, _ type: CTQuantizationType, symmetric: Bool, groupSize: Int?, _ strategy: CTQuantizationStrategy,
         dynamic: Bool, observer: String? = nil) {
        self.numBits = numBits; self.type = type; self.symmetric = symmetric; self.groupSize = groupSize
        self.strategy = strategy; blockStructure = nil; self.dynamic = dynamic; actorder = nil
        self.observer = dynamic ? nil : (observer ?? "memoryless_minmax"); scaleDtype = nil
    }

    /// The quantized range (compressed-tensors' `calculate_range`): int b bits → [−2^(b−1), 2^(b−1) − 1],
    /// FP8 E4M3 → [−448, 448].
    public var qMin: Float {
        type == .float ? -CTFloat8.max : -Float(1 << (numBits - 1))
    }
    public var qMax: Float {
        type == .float ? CTFloat8.max : Float((1 << (numBits - 1)) - 1)
    }

    /// torch dtype name of the quantized values (`pytorch_dtype`): float8_e4m3fn, int8, int16, int32.
    public var quantizedTorchDType: String {
        if type == .float { return "torch.float8_e4m3fn" }
        return numBits <= 8 ? "torch.int8" : numBits <= 16 ? "torch.int16" : "torch.int32"
    }

    /// The JSON object compressed-tensors writes for these arguments (`model_dump`), keys sorted.
    /// `zp_dtype` is written only for asymmetric args (its serializer returns None otherwise).
    public var json: JSONValue {
        var m: [(String, JSONValue)] = [
            ("actorder", actorder.map { .string($0) } ?? .null),
            ("block_structure", blockStructure.map { .array($0.map { .int(Int64($0)) }) } ?? .null),
            ("dynamic", .bool(dynamic)),
            ("group_size", groupSize.map { .int(Int64($0)) } ?? .null),
            ("num_bits", .int(Int64(numBits))),
            ("observer", observer.map { .string($0) } ?? .null),
            ("observer_kwargs", .object([])),
            ("scale_dtype", scaleDtype.map { .string($0) } ?? .null),
            ("strategy", .string(strategy.rawValue)),
            ("symmetric", .bool(symmetric)),
            ("type", .string(type.rawValue)),
            ("zp_dtype", symmetric ? .null : .string(quantizedTorchDType)),
        ]
        m.sort { $0.0 < $1.0 }
        return .object(m)
    }

    /// Reads arguments from a config's JSON object (unknown keys are refused, as pydantic's `extra="forbid"`).
    public init(json: JSONValue, context: String) throws {
        guard let o = json.objectValue else { throw SmeltError("\(context): quantization args must be an object") }
        let known: Set<String> = ["num_bits", "type", "symmetric", "group_size", "strategy", "block_structure", "dynamic",
                                  "actorder", "observer", "observer_kwargs", "scale_dtype", "zp_dtype"]
        for (k, _) in o where !known.contains(k) { throw SmeltError("\(context): unknown quantization args key '\(k)'") }
        func int(_ k: String) throws -> Int? {
            guard let v = json[k], !v.isNull else { return nil }
            guard let i = v.intValue else { throw SmeltError("\(context): '\(k)' must be an integer") }
            return i
        }
        func str(_ k: String) throws -> String? {
            guard let v = json[k], !v.isNull else { return nil }
            guard let s = v.stringValue else { throw SmeltError("\(context): '\(k)' must be a string") }
            return s
        }
        func bool(_ k: String) throws -> Bool? {
            guard let v = json[k], !v.isNull else { return nil }
            guard let b = v.boolValue else { throw SmeltError("\(context): '\(k)' must be true or false") }
            return b
        }
        let typeName = try str("type")?.lowercased() ?? "int"
        guard let t = CTQuantizationType(rawValue: typeName) else { throw SmeltError("\(context): unknown quantization type '\(typeName)'") }
        var strategy: CTQuantizationStrategy?
        if let s = try str("strategy") {
            guard let st = CTQuantizationStrategy(rawValue: s.lowercased()) else { throw SmeltError("\(context): unknown strategy '\(s)'") }
            strategy = st
        }
        var dynamic = false
        if let v = json["dynamic"], !v.isNull {
            if let b = v.boolValue { dynamic = b }
            else if v.stringValue == "local" { throw SmeltError("\(context): dynamic 'local' (NVFP4) is not supported") }
            else { throw SmeltError("\(context): 'dynamic' must be true or false") }
        }
        var actorder: String?
        if let v = json["actorder"], !v.isNull {
            if let b = v.boolValue { actorder = b ? "group" : nil } else if let s = v.stringValue { actorder = s.lowercased() }
        }
        var block: [Int]?
        if let v = json["block_structure"], !v.isNull {
            guard let a = v.arrayValue?.compactMap({ $0.intValue }), a.count == 2 else {
                throw SmeltError("\(context): block_structure must be two integers")
            }
            block = a
        }
        try self.init(numBits: try int("num_bits") ?? 8, type: t, symmetric: try bool("symmetric") ?? true,
                      groupSize: try int("group_size"), strategy: strategy, blockStructure: block, dynamic: dynamic,
                      actorder: actorder, observer: try str("observer"), scaleDtype: try str("scale_dtype"))
    }
}
