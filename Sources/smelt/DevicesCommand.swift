import ArgumentParser
import Foundation
import SmeltFormats
import SmeltGPU

/// `smelt devices`: what Vulkan sees (the N of `--device vulkan:N`).
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the Vulkan devices smelt quantize --device vulkan:N can use.")

    @Flag(help: "Print the list as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let list = try GPUInstance().devices()
            guard !list.isEmpty else {
                throw SmeltError("no Vulkan device: the loader found no GPU or driver (Debian: apt-get install mesa-vulkan-drivers for lavapipe)")
            }
            if json {
                let items = list.map { d -> String in
                    let fields: [(String, String)] = [
                        ("index", "\(d.index)"), ("name", jsonString(d.name)), ("type", jsonString(d.type)),
                        ("driver", jsonString(d.driver)), ("api_version", jsonString(d.apiVersion)),
                        ("device_local_bytes", "\(d.deviceLocalBytes)"), ("subgroup_size", "\(d.subgroupSize)"),
                        ("max_storage_buffer_range", "\(d.maxStorageBufferRange)"), ("shader_int64", "\(d.shaderInt64)"),
                        ("shader_float16", "\(d.shaderFloat16)"), ("shader_int8", "\(d.shaderInt8)"),
                    ]
                    return "  {" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
                }
                print("[\n" + items.joined(separator: ",\n") + "\n]")
                return
            }
            func yn(_ b: Bool) -> String { b ? "yes" : "no" }
            for d in list {
                print("vulkan:\(d.index)  \(d.name)  (\(d.type))")
                print("  driver \(d.driver), Vulkan \(d.apiVersion)")
                print(String(format: "  memory %.1f GiB device-local, subgroup %d, maxStorageBufferRange %d MiB",
                             Double(d.deviceLocalBytes) / 1073741824, d.subgroupSize, d.maxStorageBufferRange >> 20))
                print("  shaderInt64 \(yn(d.shaderInt64)), shaderFloat16 \(yn(d.shaderFloat16)), shaderInt8 \(yn(d.shaderInt8))")
            }
        }
    }

    func jsonString(_ s: String) -> String {
        var o = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            default: o += c.value < 0x20 ? String(format: "\\u%04x", c.value) : String(c)
            }
        }
        return o + "\""
    }
}
