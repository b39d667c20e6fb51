import Foundation
import SmeltFormats
import SmeltQuant

/// The SPIR-V of one shader, decoded from the file `scripts/build-shaders.sh` generates.
enum Shaders {
    static func spirv(_ name: String) throws -> [UInt8] {
        guard let b64 = GeneratedSPIRV.base64[name], let data = Data(base64Encoded: b64) else {
            throw SmeltError("shader \(name) is not built (run make shaders)")
        }
        return [UInt8](data)
    }
}

/// Quantizes and dequantizes rows on a Vulkan device, producing the CPU kernels' bytes
/// (and so ggml's). Tensors are streamed in chunks of whole rows through two sets of
/// buffers: while the GPU quantizes one chunk the host fills the next. Rows holding NaN,
/// infinity or subnormal values are re-quantized on the CPU (drivers may flush subnormals).
/// Not thread-safe: one caller at a time.
public final class GPUQuantizer: QuantAccelerator, @unchecked Sendable {
    /// The types with a GPU kernel (quantize and dequantize).
    public static let supportedTypes: [GGMLType] = [.q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_nl, .iq4_xs, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

    /// Blocks one shader invocation quantizes: two where a block is not a whole number of 32-bit
    /// words (then the pair is), one where it is (the shader is built with DIRECT_WORDS).
    static func blocksPerInvocation(_ type: GGMLType) -> Int { [.iq4_xs, .q2_K, .q4_K, .q5_K].contains(type) ? 1 : 2 }

    /// True when `type` has a GPU kernel.
    public static func supports(_ type: GGMLType) -> Bool { supportedTypes.contains(type) }
    public func supports(_ type: GGMLType) -> Bool { Self.supports(type) }
    public var deviceDescription: String { "vulkan:\(device.info.index) \(device.info.name)" }

    public let device: GPUDevice
    /// Upper bound on the input floats of one chunk, in bytes (≤ the device's maxStorageBufferRange).
    public let chunkBytes: Int
    let hardwareOps: Bool
    private var pipelines: [String: GPUPipeline] = [:]
    private var slots: [Slot] = []
    private var dummy: GPUBuffer? = nil
    /// Rows quantized on the CPU because they held NaN, infinity or subnormal values (or, on
    /// lavapipe, because the shader ran out of the driver's loop budget: shaders/exact.glsl).
    public private(set) var cpuFallbackRows = 0
    /// Test switch: loop iterations each quantization invocation spends before its work
    /// (enough of them exhaust lavapipe's loop budget, which the shaders must then report).
    var debugBurnLoopIterations: UInt32 = 0

    /// `chunkBytes` nil: 64 MiB or the device limit, whichever is smaller. `hardwareOps`
    /// replaces the emulated division, square root and f16/bf16 rounding by the GPU's own
    /// operations (a debug switch: results may then differ from the CPU).
    public init(device: GPUDevice, chunkBytes: Int? = nil, hardwareOps: Bool = false) throws {
        self.device = device
        self.chunkBytes = max(4096, min(chunkBytes ?? (64 << 20), device.maxBindingBytes))
        self.hardwareOps = hardwareOps
    }

    func pipeline(_ name: String, bindings: Int, pushWords: Int) throws -> GPUPipeline {
        if let p = pipelines[name] { return p }
        let p = try device.pipeline(name: name, spirv: try Shaders.spirv(name), bindings: bindings,
                                    pushBytes: pushWords * 4, hardwareOps: hardwareOps)
        pipelines[name] = p
        return p
    }

    final class Slot {
        var input: GPUBuffer
        var output: GPUBuffer
        var rowInfo: GPUBuffer
        var flags: GPUBuffer
        let work: GPUSlot
        var pending: (() throws -> Void)? = nil
        init(device: GPUDevice, inputBytes: Int, outputBytes: Int, rows: Int) throws {
            input = try device.buffer(bytes: inputBytes)
            output = try device.buffer(bytes: outputBytes)
            rowInfo = try device.buffer(bytes: rows * 4)
            flags = try device.buffer(bytes: rows * 4)
            work = try device.makeSlot()
        }
    }

    private func slots(inputBytes: Int, outputBytes: Int, rows: Int) throws -> [Slot] {
        if slots.count == 2, slots.allSatisfy({ $0.input.bytes >= inputBytes && $0.output.bytes >= outputBytes
                                                && $0.rowInfo.bytes >= rows * 4 }) { return slots }
        slots = []
        slots = try (0..<2).map { _ in try Slot(device: device, inputBytes: inputBytes, outputBytes: outputBytes, rows: rows) }
        return slots
    }

    /// Quantizes `rows` rows of `n` values to `type` into `dst` (`rows × type.rowBytes(n)` bytes).
    /// `fill(range, buffer)` writes the floats of tensor rows `range` into `buffer`.
    /// `importance`, when given, holds `n × ne2` weights; row r uses weights `(r / ne1) % ne2`.
    public func quantize(type: GGMLType, rows: Int, n: Int, importance: UnsafePointer<Float>?, ne1: Int, ne2: Int,
                         dst: UnsafeMutableRawPointer,
                         fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) throws {
        guard Self.supports(type), let kernel = QuantRegistry.kernel(for: type) else {
            throw SmeltError("no GPU kernel for type \(type.name)")
        }
        guard n > 0, n % type.blockSize == 0, let rowBytes = type.rowBytes(n) else {
            throw SmeltError("row length \(n) is not a multiple of \(type.name)'s block size \(type.blockSize)")
        }
        guard rows > 0 else { return }
        guard n * 4 <= chunkBytes else {
            throw SmeltError("a row of \(n) floats exceeds the GPU chunk size of \(chunkBytes) bytes")
        }
        let bs = type.blockSize
        let perInvocation = Self.blocksPerInvocation(type)
        let chunkRows = max(1, min(rows, chunkBytes / (n * 4)))
        let slots = try self.slots(inputBytes: chunkRows * n * 4, outputBytes: (chunkRows * rowBytes + 3) & ~3,
                                   rows: chunkRows)
        let prep = try pipeline("rowprep", bindings: 3, pushWords: 2)
        let quant = try pipeline(type.name, bindings: 5, pushWords: 7)
        let impBuffer: GPUBuffer
        if let importance {
            impBuffer = try device.buffer(bytes: n * ne2 * 4)
            impBuffer.contents.copyMemory(from: importance, byteCount: n * ne2 * 4)
        } else {
            let d = try dummy ?? device.buffer(bytes: 16)
            dummy = d
            impBuffer = d
        }
        defer { for s in slots { try? s.work.wait(); s.pending = nil } }
        var k = 0
        var r0 = 0
        while r0 < rows {
            let slot = slots[k % 2]
            try slot.work.wait()
            try slot.pending?()
            slot.pending = nil
            let r1 = min(rows, r0 + chunkRows)
            let nr = r1 - r0
            let input = slot.input.contents.bindMemory(to: Float.self, capacity: nr * n)
            try fill(r0..<r1, input)
            let nBlocks = nr * n / bs
            try slot.work.dispatch(prep, buffers: [(slot.input, 0, nr * n * 4), (slot.rowInfo, 0, nr * 4), (slot.flags, 0, nr * 4)],
                                   push: [UInt32(n), UInt32(nr)], groups: (nr + 63) / 64)
            try slot.work.dispatch(quant, buffers: [(slot.input, 0, nr * n * 4), (slot.output, 0, (nr * rowBytes + 3) & ~3),
                                                    (impBuffer, 0, impBuffer.bytes), (slot.rowInfo, 0, nr * 4),
                                                    (slot.flags, 0, nr * 4)],
                                   push: [UInt32(n), UInt32(nBlocks), UInt32(r0), UInt32(max(1, ne1)), UInt32(max(1, ne2)),
                                          importance == nil ? 0 : 1, debugBurnLoopIterations],
                                   groups: ((nBlocks + perInvocation - 1) / perInvocation + 63) / 64)
            try slot.work.submit()
            let out = dst + r0 * rowBytes
            slot.pending = { [unowned self] in
                out.copyMemory(from: slot.output.contents, byteCount: nr * rowBytes)
                let flags = slot.flags.contents.bindMemory(to: UInt32.self, capacity: nr)
                for r in 0..<nr where flags[r] != 0 {
                    let w = importance.map { $0 + (((r0 + r) / max(1, ne1)) % max(1, ne2)) * n }
                    kernel.quantizeRow(input + r * n, out + r * rowBytes, count: n, importance: w)
                    self.cpuFallbackRows += 1
                }
            }
            r0 = r1
            k += 1
        }
        for i in 0..<2 {
            let slot = slots[(k + i) % 2]
            try slot.work.wait()
            try slot.pending?()
            slot.pending = nil
        }
    }

    /// Quantizes `rows × n` floats already in memory.
    public func quantize(type: GGMLType, src: UnsafePointer<Float>, rows: Int, n: Int, importance: UnsafePointer<Float>?,
                         ne1: Int = 1, ne2: Int = 1, dst: UnsafeMutableRawPointer) throws {
        try quantize(type: type, rows: rows, n: n, importance: importance, ne1: ne1, ne2: ne2, dst: dst) { range, buf in
            buf.update(from: src + range.lowerBound * n, count: range.count * n)
        }
    }

    /// Dequantizes `count` values (a multiple of the block size) of `type` from `src` into `dst`.
    public func dequantize(type: GGMLType, src: UnsafeRawPointer, count: Int, dst: UnsafeMutablePointer<Float>) throws {
        guard Self.supports(type) else { throw SmeltError("no GPU kernel for type \(type.name)") }
        let bs = type.blockSize, bb = type.bytesPerBlock
        guard count % bs == 0 else {
            throw SmeltError("\(count) values are not a multiple of \(type.name)'s block size \(bs)")
        }
        let pipe = try pipeline(type.name + "_deq", bindings: 2, pushWords: 1)
        let blocksPerChunk = max(1, min(chunkBytes / (bs * 4), (device.maxBindingBytes - 4) / bb, 65535 * 64))
        let total = count / bs
        let qbuf = try device.buffer(bytes: (min(total, blocksPerChunk) * bb + 3) & ~3)
        let fbuf = try device.buffer(bytes: min(total, blocksPerChunk) * bs * 4)
        let slot = try device.makeSlot()
        var b0 = 0
        while b0 < total {
            let nb = min(blocksPerChunk, total - b0)
            qbuf.contents.copyMemory(from: src + b0 * bb, byteCount: nb * bb)
            try slot.dispatch(pipe, buffers: [(qbuf, 0, qbuf.bytes), (fbuf, 0, nb * bs * 4)], push: [UInt32(nb)],
                              groups: (nb + 63) / 64)
            try slot.submit()
            try slot.wait()
            (dst + b0 * bs).update(from: fbuf.contents.bindMemory(to: Float.self, capacity: nb * bs), count: nb * bs)
            b0 += nb
        }
    }

    /// Runs the emulated-operation test kernel: for each (a, b) the bits of a/b, sqrt(a) and
    /// f16(a) | bf16(a) << 16. For tests of the exact arithmetic.
    public func exactOps(_ pairs: [(UInt32, UInt32)]) throws -> [(div: UInt32, sqrt: UInt32, f16: UInt16, bf16: UInt16)] {
        guard !pairs.isEmpty else { return [] }
        let pipe = try pipeline("ops_test", bindings: 2, pushWords: 1)
        let per = 1 << 20
        var result: [(div: UInt32, sqrt: UInt32, f16: UInt16, bf16: UInt16)] = []
        result.reserveCapacity(pairs.count)
        let inb = try device.buffer(bytes: min(per, pairs.count) * 8)
        let outb = try device.buffer(bytes: min(per, pairs.count) * 12)
        let slot = try device.makeSlot()
        var i0 = 0
        while i0 < pairs.count {
            let m = min(per, pairs.count - i0)
            let inp = inb.contents.bindMemory(to: UInt32.self, capacity: 2 * m)
            for i in 0..<m { inp[2 * i] = pairs[i0 + i].0; inp[2 * i + 1] = pairs[i0 + i].1 }
            try slot.dispatch(pipe, buffers: [(inb, 0, m * 8), (outb, 0, m * 12)], push: [UInt32(m)], groups: (m + 63) / 64)
            try slot.submit()
            try slot.wait()
            let o = outb.contents.bindMemory(to: UInt32.self, capacity: 3 * m)
            for i in 0..<m {
                result.append((o[3 * i], o[3 * i + 1], UInt16(truncatingIfNeeded: o[3 * i + 2]),
                               UInt16(truncatingIfNeeded: o[3 * i + 2] >> 16)))
            }
            i0 += m
        }
        return result
    }
}
