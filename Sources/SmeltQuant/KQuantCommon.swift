/// ggml's `get_scale_min_k4`: the 6-bit scale and min of block `j` from the 12 packed
/// bytes of a q4_K / q5_K super-block.
@inline(__always) func getScaleMinK4(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
    if j < 4 {
        return (q[j] & 63, q[j + 4] & 63)
    }
    return ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
}

/// Packs eight 6-bit scales and mins into q4_K / q5_K's 12-byte layout, as ggml does.
@inline(__always) func packScaleMinK4(_ y: UnsafeMutablePointer<UInt8>, _ j: Int, _ ls: UInt8, _ lm: UInt8) {
    if j < 4 {
        y[j] = ls
        y[j + 4] = lm
    } else {
        y[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
        y[j - 4] |= (ls >> 4) << 6
        y[j] |= (lm >> 4) << 6
    }
}

/// Packs 256 2-bit quants the way q2_K / q3_K store them (4 per byte, strided by 32).
@inline(__always) func pack2BitK(_ qs: UnsafeMutablePointer<UInt8>, _ L: UnsafePointer<UInt8>) {
    for j in stride(from: 0, to: 256, by: 128) {
        for l in 0..<32 {
            qs[j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6)
        }
    }
}

/// Packs q3_K's 16 6-bit scales (given as 0...63) into its 12-byte layout.
@inline(__always) func packScalesQ3K(_ s: UnsafeMutablePointer<UInt8>, _ j: Int, _ lIn: UInt8) {
    var l = lIn
    if j < 8 {
        s[j] = l & 0xF
    } else {
        s[j - 8] |= (l & 0xF) << 4
    }
    l >>= 4
    s[j % 4 + 8] |= l << UInt8(2 * (j / 4))
}

/// q3_K's signed 6-bit scale of block `j` (−32...31) from its 12-byte layout.
@inline(__always) func scaleQ3K(_ s: UnsafePointer<UInt8>, _ j: Int) -> Int8 {
    let lo: UInt8 = j < 8 ? s[j] & 0xF : s[j - 8] >> 4
    let hi: UInt8 = (s[8 + j % 4] >> UInt8(2 * (j / 4))) & 3
    return Int8(bitPattern: lo | (hi << 4)) &- 32
}
