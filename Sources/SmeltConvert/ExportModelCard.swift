import Foundation
import SmeltFormats

extension Exporter {
    /// README.md with YAML front matter from the GGUF's `general.*` keys, so that the license,
    /// base models, tags, languages and name survive a round trip through llama.cpp's (and
    /// Smelt's) converter, which read them back from the model card.
    static func modelCard(_ g: GGUFFile, source: URL) -> String {
        func s(_ k: String) -> String? { g.metadata[k]?.stringValue }
        func q(_ v: String) -> String {  // a YAML double-quoted scalar
            var out = ""
            JSONValue.escape(v, into: &out)
            return out
        }
        var y: [String] = []
        if let n = s("general.name") { y.append("model_name: \(q(n))") }
        if let l = s("general.license") { y.append("license: \(q(l))") }
        if let l = s("general.license.name") { y.append("license_name: \(q(l))") }
        if let l = s("general.license.link") { y.append("license_link: \(q(l))") }
        if let n = g.metadata["general.base_model.count"]?.intValue, n > 0 {
            var ids: [String] = []
            for i in 0..<n {
                if let url = s("general.base_model.\(i).repo_url"), url.hasPrefix("https://huggingface.co/") {
                    ids.append(String(url.dropFirst("https://huggingface.co/".count)))
                } else if let name = s("general.base_model.\(i).name") {
                    let org = s("general.base_model.\(i).organization").map { $0.replacingOccurrences(of: " ", with: "-") + "/" } ?? ""
                    ids.append(org + name.replacingOccurrences(of: " ", with: "-"))
                }
            }
            if !ids.isEmpty { y.append("base_model:"); y += ids.map { "- \(q($0))" } }
        }
        if let tags = g.metadata["general.tags"]?.arrayValue?.compactMap(\.stringValue), !tags.isEmpty {
            y.append("tags:"); y += tags.map { "- \(q($0))" }
        }
        if let langs = g.metadata["general.languages"]?.arrayValue?.compactMap(\.stringValue), !langs.isEmpty {
            y.append("language:"); y += langs.map { "- \(q($0))" }
        }
        let title = s("general.name") ?? source.deletingPathExtension().lastPathComponent
        return "---\n" + y.joined(separator: "\n") + "\n---\n\n# \(title)\n\nExported from `\(source.lastPathComponent)` by Smelt \(SmeltVersion.string) (`smelt export`): tensors dequantized to safetensors, llama.cpp's transforms undone.\n"
    }
}
