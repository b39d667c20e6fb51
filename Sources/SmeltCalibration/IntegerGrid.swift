import Foundation
import SmeltCompressedTensors

/// Integer weight quantization as compressed-tensors computes it (`calculate_qparams`, `fake_quantize`):
/// `bits`-bit integers in [−2^(b−1), 2^(b−1) − 1], one scale (and zero point when asymmetric) per output
/// row and group of `groupSize` input columns (nil: one per row, the "channel" strategy).
///
/// - symmetric: scale = max(|min|, |max|) / ((q_max − q_min) / 2) (INT4: amax / 7.5, INT8: amax / 127.5), zero point 0;
/// - asymmetric: scale = (max − min) / (q_max − q_min), zero point = clamp(q_min − round(min / scale));
/// min and max include 0; a zero scale becomes `epsilon`. Values: q = clamp(round(x / scale + zp)) rounded
/// half to even, dequantized (q − zp) · scale.
public struct IntegerGrid: Sendable {
    public var bits: Int
    public var symmetric: Bool
    /// Input columns per scale; nil: per channel (one scale per row).
    public var groupSize: Int?
    /// The scale used where a group is all zeros (torch's `finfo(dtype).eps` of the scale's dtype).
    public var epsilon: Double

    /// When set, scales and zero points are computed by compressed-tensors' own arithmetic
    /// (`CTQuantizer.qparams` with these arguments, every step rounded to this type, as the checkpoint
    /// writer computes them); nil: in double precision (the reference tests).
    public private(set) var compressedTensors: (args: CTQuantizationArgs, type: CTComputeType)?

    public init(bits: Int, symmetric: Bool, groupSize: Int?, epsilon: Double = 0.0078125) {
        self.bits = bits; self.symmetric = symmetric; self.groupSize = groupSize; self.epsilon = epsilon
    }

    /// The grid of a compressed-tensors integer weight scheme (`int`, strategy channel or group), with its
    /// arithmetic in `type` (the model's dtype). nil for FP8, tensor-wise or other strategies.
    public init?(weights a: CTQuantizationArgs, type: CTComputeType) {
        guard a.type == .int, (2...8).contains(a.numBits) else { return nil }
        switch a.strategy {
        case .channel: self.init(bits: a.numBits, symmetric: a.symmetric, groupSize: nil, epsilon: Double(type.eps))
        case .group:
            guard let g = a.groupSize, g > 0 else { return nil }
            self.init(bits: a.numBits, symmetric: a.symmetric, groupSize: g, epsilon: Double(type.eps))
        default: return nil
        }
        compressedTensors = (a, type)
    }

    public var qMin: Double { -Double(1 << (bits - 1)) }
    public var qMax: Double { Double((1 << (bits - 1)) - 1) }

    /// INT4 in groups of 128, symmetric (W4A16) or asymmetric (W4A16_ASYM).
    public static func w4(symmetric: Bool = true) -> IntegerGrid { IntegerGrid(bits: 4, symmetric: symmetric, groupSize: 128) }
    /// INT8 per channel, symmetric (W8A8's weights).
    public static let w8 = IntegerGrid(bits: 8, symmetric: true, groupSize: nil)

    /// Scale and zero point of values spanning [min, max].
    public func parameters(min lo: Double, max hi: Double) -> (scale: Double, zeroPoint: Double) {
        if let (a, t) = compressedTensors {
            let (s, z) = CTQuantizer.qparams(min: t.round(Float(lo)), max: t.round(Float(hi)), args: a, type: t)
            return (Double(s), Double(z))
        }
        let mn = Swift.min(lo, 0), mx = Swift.max(hi, 0)
        if symmetric {
            var s = Swift.max(-mn, mx) / ((qMax - qMin) / 2)
            if s == 0 { s = epsilon }
            return (s, 0)
        }
        var s = (mx - mn) / (qMax - qMin)
        if s == 0 { s = epsilon }
        let zp = Swift.min(qMax, Swift.max(qMin, (qMin - mn / s).rounded(.toNearestOrEven)))
        return (s, zp)
    }

    /// The integer of `x` (before subtracting the zero point).
    @inline(__always) public func quantize(_ x: Double, scale: Double, zeroPoint: Double) -> Double {
        Swift.min(qMax, Swift.max(qMin, (x / scale + zeroPoint).rounded(.toNearestOrEven)))
    }

    /// The value of integer `q`: (q − zp) · scale (in the compute type when there is one, as the
    /// checkpoint's reader computes it).
    @inline(__always) public func dequantize(_ q: Double, scale: Double, zeroPoint: Double) -> Double {
        if let (_, t) = compressedTensors {
            return Double(t.round(t.round(Float(q - zeroPoint)) * Float(scale)))
        }
        return (q - zeroPoint) * scale
    }

    /// x quantized and dequantized.
    @inline(__always) public func fakeQuantize(_ x: Double, scale: Double, zeroPoint: Double) -> Double {
        dequantize(quantize(x, scale: scale, zeroPoint: zeroPoint), scale: scale, zeroPoint: zeroPoint)
    }

    /// Groups per row of `cols` columns.
    public func groups(cols: Int) -> Int { groupSize.map { (cols + $0 - 1) / $0 } ?? 1 }

    /// Round to nearest with this grid's scales from the values themselves (no calibration): the
    /// dequantized values, row-major. The baseline calibration algorithms are measured against.
    public func roundToNearest(_ w: [Float], rows: Int, cols: Int) -> [Float] {
        var out = w
        let g = groupSize ?? cols
        for r in 0..<rows {
            var c0 = 0
            while c0 < cols {
                let c1 = Swift.min(cols, c0 + g)
                var lo = Double.infinity, hi = -Double.infinity
                for c in c0..<c1 { let v = Double(w[r * cols + c]); lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
                let (s, z) = parameters(min: lo, max: hi)
                for c in c0..<c1 { out[r * cols + c] = Float(fakeQuantize(Double(w[r * cols + c]), scale: s, zeroPoint: z)) }
                c0 = c1
            }
        }
        return out
    }
}
