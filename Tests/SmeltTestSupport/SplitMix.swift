/// A small deterministic generator (SplitMix64): tests must not depend on the platform's random numbers.
public struct SplitMix: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [−1, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 52) * 2 - 1 }
    /// Roughly normal (sum of uniforms).
    public mutating func normal() -> Double { (0..<6).reduce(0) { s, _ in s + uniform() } * 0.7 }
}
