/// ggml's `kvalues_fp4` (E2M1 values, doubled), shared by mxfp4 and nvfp4.
nonisolated(unsafe) let kvaluesFP4: UnsafePointer<Int8> = makeTable([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12])

/// ggml's `best_index_mxfp4`: index of the E2M1 value nearest to x/e (first one on ties).
@inline(__always) func bestIndexFP4(_ x: Float, _ e: Float) -> UInt8 {
    let kv = kvaluesFP4
    var bestIndex = 0
    var bestErr = abs(Float(kv[0]) * e - x)
    for i in 1..<16 {
        let err = abs(Float(kv[i]) * e - x)
        if err < bestErr { bestIndex = i; bestErr = err }
    }
    return UInt8(bestIndex)
}

/// ggml's `ggml_e8m0_to_fp32_half`: 2^(x − 128).
@inline(__always) func e8m0ToFP32Half(_ x: UInt8) -> Float {
    let bits: UInt32 = x < 2 ? 0x0020_0000 << UInt32(x) : UInt32(x - 1) << 23
    return Float(bitPattern: bits)
}

/// ggml's `ggml_ue4m3_to_fp32` (already halved, to match the doubled E2M1 table).
@inline(__always) func ue4m3ToFP32(_ x: UInt8) -> Float {
    if x == 0 || x == 0x7F { return 0 }
    let exp = Int((x >> 3) & 0xF)
    let man = Int(x & 0x7)
    let raw: Float
    if exp == 0 {
        raw = Float(man) * Float(sign: .plus, exponent: -9, significand: 1)
    } else {
        raw = (1 + Float(man) / 8) * Float(sign: .plus, exponent: exp - 7, significand: 1)
    }
    return raw * 0.5
}

/// ggml's `ggml_fp32_to_ue4m3`: unsigned E4M3 with its own rounding (ties up), max 448.
@inline(__always) func fp32ToUE4M3(_ xIn: Float) -> UInt8 {
    var x = xIn
    if !(x > 0) { return 0 }
    if x > 448 { x = 448 }
    let bits = x.bitPattern
    let fp32Exp = Int((bits >> 23) & 0xFF) - 127
    let fp32Man = Int((bits >> 20) & 0x7)
    var ueExp = fp32Exp + 7
    if ueExp <= 0 {
        var man = Int(truncToInt32(x * 512 + 0.5))
        if man > 7 { man = 7 }
        if man < 1 { return 0 }
        return UInt8(man)
    }
    if ueExp >= 15 { return 0x7E }
    let roundBit = Int((bits >> 19) & 1)
    var ueMan = fp32Man + roundBit
    if ueMan > 7 {
        ueMan = 0
        ueExp += 1
        if ueExp >= 15 { return 0x7E }
    }
    return UInt8((ueExp << 3) | ueMan)
}
