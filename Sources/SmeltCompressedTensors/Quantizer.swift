import SmeltFormats

/// Scales and zero points of one quantized matrix: `rows × columns` values (tensor: 1 × 1,
/// channel: rows × 1, group: rows × groups, token: tokens × 1), row-major, each a value of the
/// compute type. Zero points are integers (nil when the arguments are symmetric).
public struct CTQuantParams: Equatable, Sendable {
    public var scales: [Float]
    public var zeroPoints: [Int8]?
    public var rows: Int
    public var columns: Int
    public init(scales: [Float], zeroPoints: [Int8]?, rows: Int, columns: Int) {
        self.scales = scales; self.zeroPoints = zeroPoints; self.rows = rows; self.columns = columns
    }
}

/// The arithmetic of compressed-tensors (`quantization/utils/helpers.py` `calculate_qparams`,
/// `quantization/lifecycle/forward.py` `_quantize`, `_dequantize`, `_quantize_dequantize`) on row-major
/// float matrices, every operation rounded to the tensor's compute type as torch computes in a tensor's
/// own dtype. Quantized values are int8 bit patterns (ints) or E4M3 codes (FP8), one byte per value.
public enum CTQuantizer {
    /// How many scale columns a strategy gives a matrix with `columns` columns.
    public static func scaleColumns(_ args: CTQuantizationArgs, columns: Int) throws -> Int {
        switch args.strategy {
        case .tensor, .channel, .token: return 1
        case .group:
            guard let g = args.groupSize, g > 0 else { throw SmeltError("group strategy without a group size") }
            if columns >= g && columns % g != 0 {
                throw SmeltError("\(columns) columns are not divisible by the group size \(g)")
            }
            return (columns + g - 1) / g
        default:
            throw SmeltError("strategy '\(args.strategy.rawValue)' is not supported by Smelt")
        }
    }

    /// `calculate_qparams` for one (min, max) pair: 0 is always in the range; symmetric:
    /// scale = max(|min|, |max|) / ((q_max − q_min) / 2), zero point 0; asymmetric:
    /// scale = (max − min) / (q_max − q_min), zero point = round(clamp(q_min − min / scale)).
    /// A zero scale becomes the compute type's epsilon. `min`/`max` are values of the compute type.
    @inline(__always)
    public static func qparams(min mn: Float, max mx: Float, args: CTQuantizationArgs, type: CTComputeType) -> (scale: Float, zeroPoint: Int8) {
        let lo = Swift.min(mn, 0), hi = Swift.max(mx, 0)
        let range = args.qMax - args.qMin
        var scale: Float
        var zp: Float = 0
        if args.symmetric {
            scale = type.round(Swift.max(Swift.abs(lo), Swift.abs(hi)) / (range / 2))
        } else {
            scale = type.round(type.round(hi - lo) / range)
            zp = type.round(args.qMin - type.round(lo / scale))
            zp = Swift.min(Swift.max(zp, args.qMin), args.qMax)
        }
        if scale == 0 { scale = type.eps }
        // round_to_quantized_type_dtype(zp, int8): clamp to int8's range, round half to even
        // (a NaN zero point — an all-NaN group — becomes 0 instead of trapping)
        let z = zp.isNaN ? 0 : Swift.min(Swift.max(zp, -128), 127).rounded(.toNearestOrEven)
        return (scale, Int8(z))
    }

    /// Scales (and zero points) of a weight matrix by its strategy (tensor, channel or group), as
    /// llm-compressor's min-max observer and `calculate_qparams` compute them.
    public static func weightParams(_ w: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
                                    args: CTQuantizationArgs, type: CTComputeType) throws -> CTQuantParams {
        guard rows > 0, columns > 0, w.count == rows * columns else { throw SmeltError("matrix size does not match \(rows) × \(columns)") }
        let sc = try scaleColumns(args, columns: columns)
        var scales: [Float] = [], zps: [Int8] = []
        func add(_ lo: Float, _ hi: Float) {
            let (s, z) = qparams(min: lo, max: hi, args: args, type: type)
            scales.append(s); zps.append(z)
        }
        switch args.strategy {
        case .tensor:
            let (lo, hi) = minMax(w, 0..<w.count)
            add(lo, hi)
            return CTQuantParams(scales: scales, zeroPoints: args.symmetric ? nil : zps, rows: 1, columns: 1)
        case .channel, .token:
            scales.reserveCapacity(rows)
            for r in 0..<rows { let (lo, hi) = minMax(w, r * columns..<(r + 1) * columns); add(lo, hi) }
            return CTQuantParams(scales: scales, zeroPoints: args.symmetric ? nil : zps, rows: rows, columns: 1)
        default:
            let g = args.groupSize ?? columns
            scales.reserveCapacity(rows * sc)
            for r in 0..<rows {
                for k in 0..<sc {
                    let a = r * columns + k * g
                    let (lo, hi) = minMax(w, a..<Swift.min(a + g, (r + 1) * columns))
                    add(lo, hi)
                }
            }
            return CTQuantParams(scales: scales, zeroPoints: args.symmetric ? nil : zps, rows: rows, columns: sc)
        }
    }

    @inline(__always) static func minMax(_ w: UnsafeBufferPointer<Float>, _ r: Range<Int>) -> (Float, Float) {
        var lo = Float.infinity, hi = -Float.infinity
        for i in r { let v = w[i]; if v < lo { lo = v }; if v > hi { hi = v } }
        return (lo, hi)
    }

    /// The scale index of element (r, c).
    @inline(__always) static func paramIndex(_ p: CTQuantParams, _ r: Int, _ c: Int, _ g: Int) -> Int {
        (p.rows == 1 ? 0 : r * p.columns) + (p.columns == 1 ? 0 : c / g)
    }

    /// Rounds one scaled value to the quantized grid (`round_to_quantized_type_args`): clamp to
    /// [q_min, q_max], then round half to even (ints) or cast to E4M3 (floats); the result as a value of
    /// the compute type (the quantized grids are exact in bf16).
    /// NaN stays NaN for FP8 (torch's clamp and cast keep it) and becomes 0 for integers.
    @inline(__always) static func roundScaled(_ x: Float, _ args: CTQuantizationArgs) -> Float {
        if x.isNaN { return args.type == .float ? .nan : 0 }
        let c = x < args.qMin ? args.qMin : (x > args.qMax ? args.qMax : x)
        if args.type == .float { return CTFloat8.round(c) }
        return c.rounded(.toNearestOrEven)
    }

    /// `_quantize`: q = round(clamp(x / scale + zero_point)), each step in the compute type.
    /// Returns one byte per value: the int8 bit pattern (ints) or the E4M3 code (FP8).
    public static func quantize(_ w: UnsafeBufferPointer<Float>, rows: Int, columns: Int, params p: CTQuantParams,
                                args: CTQuantizationArgs, type: CTComputeType) throws -> [UInt8] {
        guard w.count == rows * columns else { throw SmeltError("matrix size does not match \(rows) × \(columns)") }
        try check(p, rows: rows, columns: columns, args: args)
        let g = args.groupSize.map { Swift.max($0, 1) } ?? columns
        var out = [UInt8](repeating: 0, count: w.count)
        for r in 0..<rows {
            for c in 0..<columns {
                let k = paramIndex(p, r, c, g)
                var x = type.round(w[r * columns + c] / p.scales[k])
                if let z = p.zeroPoints { x = type.round(x + Float(z[k])) }
                let q = roundScaled(x, args)
                out[r * columns + c] = args.type == .float ? CTFloat8.bits(q) : UInt8(bitPattern: Int8(q))
            }
        }
        return out
    }

    /// `_dequantize`: x = (q − zero_point) · scale in the scales' compute type.
    public static func dequantize(_ q: [UInt8], rows: Int, columns: Int, params p: CTQuantParams,
                                  args: CTQuantizationArgs, type: CTComputeType) throws -> [Float] {
        guard q.count == rows * columns else { throw SmeltError("quantized size does not match \(rows) × \(columns)") }
        try check(p, rows: rows, columns: columns, args: args)
        let g = args.groupSize.map { Swift.max($0, 1) } ?? columns
        var out = [Float](repeating: 0, count: q.count)
        for r in 0..<rows {
            for c in 0..<columns {
                let k = paramIndex(p, r, c, g)
                let b = q[r * columns + c]
                var v = args.type == .float ? CTFloat8.value(b) : Float(Int8(bitPattern: b))
                if let z = p.zeroPoints { v = type.round(v - Float(z[k])) }
                out[r * columns + c] = type.round(v * p.scales[k])
            }
        }
        return out
    }

    /// `_quantize_dequantize` (fake quantization) in place: the value the scheme's forward pass sees.
    public static func fakeQuantize(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, columns: Int, params p: CTQuantParams,
                                    args: CTQuantizationArgs, type: CTComputeType) throws {
        guard x.count == rows * columns else { throw SmeltError("matrix size does not match \(rows) × \(columns)") }
        try check(p, rows: rows, columns: columns, args: args)
        let g = args.groupSize.map { Swift.max($0, 1) } ?? columns
        for r in 0..<rows {
            for c in 0..<columns {
                let k = paramIndex(p, r, c, g)
                let s = p.scales[k]
                var v = type.round(x[r * columns + c] / s)
                if let z = p.zeroPoints { v = type.round(v + Float(z[k])) }
                var d = roundScaled(v, args)
                if let z = p.zeroPoints { d = type.round(d - Float(z[k])) }
                x[r * columns + c] = type.round(d * s)
            }
        }
    }

    /// Dynamic per-token fake quantization of activations (`compute_dynamic_scales_and_zp` with the
    /// token strategy, then `fake_quantize`): each row (token) gets its own scale from its min and max.
    public static func fakeQuantizeTokens(_ x: UnsafeMutableBufferPointer<Float>, tokens: Int, features: Int,
                                          args: CTQuantizationArgs, type: CTComputeType) throws {
        guard x.count == tokens * features else { throw SmeltError("activation size does not match \(tokens) × \(features)") }
        var a = args
        a.strategy = .channel   // one scale per row: the same indexing
        let p = try weightParams(UnsafeBufferPointer(x), rows: tokens, columns: features, args: a, type: type)
        try fakeQuantize(x, rows: tokens, columns: features, params: p, args: a, type: type)
    }

    /// Static per-tensor fake quantization of activations with a stored scale (e.g. FP8's `input_scale`).
    public static func fakeQuantizeTensor(_ x: UnsafeMutableBufferPointer<Float>, scale: Float, zeroPoint: Int8? = nil,
                                          args: CTQuantizationArgs, type: CTComputeType) throws {
        let p = CTQuantParams(scales: [scale], zeroPoints: zeroPoint.map { [$0] }, rows: 1, columns: 1)
        var a = args
        a.strategy = .tensor; a.groupSize = nil
        try fakeQuantize(x, rows: 1, columns: x.count, params: p, args: a, type: type)
    }

    static func check(_ p: CTQuantParams, rows: Int, columns: Int, args: CTQuantizationArgs) throws {
        guard p.scales.count == p.rows * p.columns, p.zeroPoints.map({ $0.count == p.scales.count }) ?? true else {
            throw SmeltError("scales and zero points do not match their shape \(p.rows) × \(p.columns)")
        }
        guard p.rows == 1 || p.rows == rows else { throw SmeltError("\(p.rows) scale rows for \(rows) matrix rows") }
        let g = args.groupSize.map { Swift.max($0, 1) } ?? columns
        let need = p.columns == 1 ? 1 : (columns + g - 1) / g
        guard p.columns == need else { throw SmeltError("\(p.columns) scale columns for \(columns) matrix columns") }
        if !args.symmetric && p.zeroPoints == nil { throw SmeltError("asymmetric quantization without zero points") }
    }
}
