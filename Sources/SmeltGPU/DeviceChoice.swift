import Foundation
import SmeltFormats

/// Where quantization runs: `cpu`, `auto` (the best Vulkan device, else the CPU with a note),
/// `vulkan` (the best Vulkan device) or `vulkan:N` (device N of `smelt devices`).
public enum DeviceChoice: Equatable, Sendable {
    case cpu
    case auto
    case vulkan(Int?)

    /// Parses `cpu`, `auto`, `vulkan`, `vulkan:N`.
    public init(parsing s: String) throws {
        let t = s.lowercased()
        switch t {
        case "cpu": self = .cpu
        case "auto": self = .auto
        case "vulkan", "gpu": self = .vulkan(nil)
        default:
            if t.hasPrefix("vulkan:"), let n = Int(t.dropFirst(7)), n >= 0 { self = .vulkan(n); return }
            throw SmeltError("invalid device '\(s)': expected cpu, auto, vulkan or vulkan:N")
        }
    }

    /// The `--device` value, else the SMELT_DEVICE environment variable, else cpu.
    public static func resolve(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DeviceChoice {
        if let o = option { return try DeviceChoice(parsing: o) }
        if let e = environment["SMELT_DEVICE"], !e.isEmpty {
            do { return try DeviceChoice(parsing: e) } catch { throw SmeltError("SMELT_DEVICE: \(error)") }
        }
        return .cpu
    }

    /// Opens the device: nil for the CPU. `auto` without a usable device returns nil and a note
    /// saying why; `vulkan` without one throws.
    public func open(chunkBytes: Int? = nil) throws -> (quantizer: GPUQuantizer?, note: String?) {
        switch self {
        case .cpu:
            return (nil, nil)
        case .vulkan(let index):
            let device = try GPUInstance().open(index: index)
            return (try GPUQuantizer(device: device, chunkBytes: chunkBytes), nil)
        case .auto:
            do {
                let device = try GPUInstance().open(index: nil)
                return (try GPUQuantizer(device: device, chunkBytes: chunkBytes), nil)
            } catch {
                return (nil, "note: --device auto: no usable Vulkan device (\(error)); quantizing on the CPU")
            }
        }
    }
}
