import Dispatch
import Foundation
import SmeltFormats
import SmeltQuant

/// One measured quantization throughput (`smelt bench quantize`).
public struct QuantThroughput: Sendable {
    public var type: GGMLType
    public var importance: Bool
    /// "cpu (N threads)" or the GPU's description.
    public var device: String
    public var inputBytes: Int
    public var seconds: Double
    /// Input float32 bytes quantized per second, in GB/s (10⁹).
    public var gbPerSecond: Double { Double(inputBytes) / seconds / 1e9 }
}

/// Quantization throughput on synthetic rows (4096 values, Gaussian-like with outlier columns),
/// on the CPU (all threads, the CPU kernels) and on a GPU (streaming through its chunks,
/// copies included; shader compilation is not timed). The GPU result is checked against the CPU bytes.
public enum QuantBenchmark {
    /// Measures `type` over `megabytes` MiB of float32 input; `gpu` nil measures the CPU.
    public static func run(type: GGMLType, megabytes: Int, importance: Bool, gpu: GPUQuantizer?,
                           threads: Int) throws -> QuantThroughput {
        guard let kernel = QuantRegistry.kernel(for: type) else { throw SmeltError("no kernel for type \(type.name)") }
        let n = 4096
        let rows = max(1, megabytes * (1 << 20) / (4 * n))
        guard let rowBytes = type.rowBytes(n) else { throw SmeltError("type \(type.name) cannot hold rows of \(n)") }
        let x = UnsafeMutablePointer<Float>.allocate(capacity: rows * n)
        defer { x.deallocate() }
        var s: UInt64 = 0x1234_5678
        for i in 0..<(rows * n) {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            let u = Float(s >> 40) / Float(1 << 24) - 0.5
            x[i] = i % 131 == 0 ? u * 8 : u * 0.05
        }
        let w: [Float] = (0..<n).map { Float(($0 * 7919) % 1000) / 100 + 0.01 }
        let out = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
        defer { out.deallocate() }
        if let gpu {   // warm-up: pipeline creation (the driver compiles the shader) is not timed
            try w.withUnsafeBufferPointer { wp in
                try gpu.quantize(type: type, src: x, rows: 1, n: n, importance: importance ? wp.baseAddress : nil, dst: out)
            }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        try w.withUnsafeBufferPointer { wp in
            let imp = importance ? wp.baseAddress : nil
            if let gpu {
                try gpu.quantize(type: type, src: x, rows: rows, n: n, importance: imp, dst: out)
            } else {
                let workers = max(1, threads)
                let per = (rows + workers - 1) / workers
                DispatchQueue.concurrentPerform(iterations: workers) { t in
                    for r in (t * per)..<min(rows, (t + 1) * per) {
                        kernel.quantizeRow(x + r * n, out + r * rowBytes, count: n, importance: imp)
                    }
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if gpu != nil {
            // Spot check: a few rows against the CPU kernel.
            let check = UnsafeMutableRawPointer.allocate(byteCount: rowBytes, alignment: 64)
            defer { check.deallocate() }
            for r in Set([0, rows / 2, rows - 1]) {
                w.withUnsafeBufferPointer { wp in
                    kernel.quantizeRow(x + r * n, check, count: n, importance: importance ? wp.baseAddress : nil)
                }
                guard memcmp(check, out + r * rowBytes, rowBytes) == 0 else {
                    throw SmeltError("benchmark: \(type.name) row \(r) differs between the GPU and the CPU")
                }
            }
        }
        return QuantThroughput(type: type, importance: importance,
                               device: gpu?.deviceDescription ?? "cpu (\(max(1, threads)) threads)",
                               inputBytes: rows * n * 4, seconds: seconds)
    }
}
