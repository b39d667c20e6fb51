import ArgumentParser
import Foundation
import SmeltFormats
import SmeltGPU

/// `smelt bench quantize`: quantization throughput per type on the CPU and a GPU.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks.",
        subcommands: [BenchQuantizeCommand.self])
}

struct BenchQuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Input GB/s per type on the CPU and on a Vulkan device (synthetic 4096-wide rows; GPU bytes checked against the CPU).")

    @Option(help: "cpu, vulkan or vulkan:N; with a GPU the CPU is measured too (default: vulkan).")
    var device: String = "vulkan"
    @Option(help: "Comma-separated ggml types (default: every type with a GPU kernel).")
    var types: String?
    @Option(help: "MiB of float32 input per type.")
    var mib: Int = 256
    @Option(help: "CPU threads (default: all).")
    var threads: Int = 0
    @Option(help: "The GPU's memory bandwidth in GB/s, to print the fraction reached.")
    var bandwidth: Double?
    @Flag(help: "Measure the importance-weighted paths as well.")
    var imatrix = false

    func run() throws {
        try reportingErrors {
            let choice = try DeviceChoice(parsing: device)
            let gpu = try choice.open().quantizer
            let list = try (types?.split(separator: ",").map { s -> GGMLType in
                guard let t = GGMLType(name: String(s).lowercased()) else { throw SmeltError("invalid ggml type '\(s)'") }
                return t
            }) ?? GPUQuantizer.supportedTypes
            let nThreads = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
            if let gpu { print("device: \(gpu.deviceDescription) (\(gpu.device.info.type), \(gpu.device.info.driver))") }
            print("input: \(mib) MiB float32 per type, rows of 4096; CPU: \(nThreads) threads")
            print("type     path      cpu GB/s   gpu GB/s   gpu/cpu" + (bandwidth != nil ? "   of bandwidth" : ""))
            for t in list {
                for imp in imatrix ? [false, true] : [false] {
                    let cpu = try QuantBenchmark.run(type: t, megabytes: mib, importance: imp, gpu: nil, threads: nThreads)
                    func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
                    var line = pad(t.name, 9) + pad(imp ? "imatrix" : "plain", 8) + String(format: "%10.3f", cpu.gbPerSecond)
                    if let gpu, GPUQuantizer.supports(t) {
                        let g = try QuantBenchmark.run(type: t, megabytes: mib, importance: imp, gpu: gpu, threads: nThreads)
                        line += String(format: "  %9.3f  %7.2fx", g.gbPerSecond, g.gbPerSecond / cpu.gbPerSecond)
                        if let bw = bandwidth { line += String(format: "   %6.1f %%", 100 * g.gbPerSecond / bw) }
                    } else if gpu != nil {
                        line += "          -  (no GPU kernel)"
                    }
                    print(line)
                }
            }
        }
    }
}
