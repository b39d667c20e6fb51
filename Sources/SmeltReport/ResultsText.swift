import Foundation
import SmeltEval
import SmeltStore

/// Text forms of stored runs: one line each, CSV, JSON.
public enum ResultsText {
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }()

    /// The main figure of a run (PPL, KLD, size).
    public static func figure(_ r: RunRecord) -> String {
        guard let json = r.result.map({ Data($0.utf8) }) else { return r.status == "ok" ? "" : "failed: \(r.error ?? "")" }
        switch r.kind {
        case .perplexity:
            if let p = try? decoder.decode(PerplexityResult.self, from: json) { return String(format: "PPL %.4f ± %.5f, %d chunks", p.perplexity, p.uncertainty, p.chunks) }
        case .klDivergence:
            if let k = try? decoder.decode(KLDivergenceResult.self, from: json) {
                return String(format: "KLD %.6f ± %.6f, PPL(Q) %.4f, same top %.3f %%", k.kld.value, k.kld.uncertainty, k.pplQ.value, 100 * k.sameTop.value)
            }
        case .quantize:
            if let q = try? decoder.decode(QuantizeSummary.self, from: json) {
                return String(format: "%@, %.2f MiB, %.3f BPW", q.recipe ?? q.preset, Double(q.outputBytes) / 1_048_576, q.bitsPerWeight)
            }
        case .imatrix:
            if let i = try? decoder.decode(ImatrixResult.self, from: json) { return "\(i.entries) entries, \(i.chunks) chunks" }
        case .sensitivity:
            return "sensitivity table"
        }
        return ""
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    /// The header of `line`.
    public static let header = "    id  " + pad("date (UTC)", 19) + "  " + pad("kind", 13) + "  " + pad("model", 40) + "  result"

    public static func line(_ r: RunRecord) -> String {
        let date = String(ResultsStore.iso(r.startedAt).replacingOccurrences(of: "T", with: " ").prefix(19))
        let name = r.model?.name ?? r.input?.name ?? "-"
        return String(format: "%6lld  ", r.id ?? 0) + date + "  " + pad(r.kind.rawValue, 13) + "  " + pad(name, 40) + "  " + figure(r)
    }

    /// Every field of every run (the result embedded as an object), as a JSON array.
    public static func json(_ runs: [RunRecord]) throws -> String {
        let enc = JSONEncoder()
        enc.dateEncodingStrategy = .iso8601
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        var arr: [Any] = []
        for r in runs {
            var copy = r
            copy.result = nil
            var o = (try JSONSerialization.jsonObject(with: enc.encode(copy)) as? [String: Any]) ?? [:]
            if let res = r.result, let v = try? JSONSerialization.jsonObject(with: Data(res.utf8)) { o["result"] = v }
            arr.append(o)
        }
        let d = try JSONSerialization.data(withJSONObject: arr, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: d, as: UTF8.self)
    }

    /// One CSV row per run: identities, settings and the main statistics.
    public static func csv(_ runs: [RunRecord]) -> String {
        let head = ["id", "kind", "source", "status", "started_at", "wall_seconds", "model", "model_sha256", "model_bytes", "text",
                    "text_sha256", "base_model", "base_model_sha256", "imatrix_sha256", "recipe", "context", "chunks", "threads",
                    "tokens_per_second", "ppl", "ppl_uncertainty", "kld_mean", "kld_uncertainty", "kld_median", "kld_p99",
                    "kld_p99_9", "kld_max", "ppl_ratio", "same_top_p", "rms_delta_p", "smelt_version", "host", "cpu", "command_line"]
        func q(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        func d(_ v: Double?) -> String { v.map { String(format: "%.17g", $0) } ?? "" }
        var out = head.joined(separator: ",") + "\n"
        for r in runs {
            var ppl: Double?, pplU: Double?, k: KLDivergenceResult?
            if let j = r.result.map({ Data($0.utf8) }) {
                if r.kind == .perplexity, let p = try? decoder.decode(PerplexityResult.self, from: j) { ppl = p.perplexity; pplU = p.uncertainty }
                if r.kind == .klDivergence { k = try? decoder.decode(KLDivergenceResult.self, from: j); ppl = k?.pplQ.value; pplU = k?.pplQ.uncertainty }
            }
            let cells: [String] = [
                String(r.id ?? 0), r.kind.rawValue, r.source, r.status, ResultsStore.iso(r.startedAt), d(r.wallSeconds),
                r.model?.name ?? "", r.model?.sha256 ?? "", r.model?.bytes.map(String.init) ?? "", r.text?.name ?? "",
                r.text?.sha256 ?? "", r.baseModel?.name ?? "", r.baseModel?.sha256 ?? "", r.imatrix?.sha256 ?? "",
                r.recipeName ?? "", r.contextLength.map(String.init) ?? "", r.chunks.map(String.init) ?? "",
                r.threads.map(String.init) ?? "", d(r.tokensPerSecond), d(ppl), d(pplU), d(k?.kld.value), d(k?.kld.uncertainty),
                d(k?.kldDistribution?.median), d(k?.kldDistribution?.p99), d(k?.kldDistribution?.p99_9), d(k?.kldDistribution?.maximum),
                d(k?.pplRatio.value), d(k?.sameTop.value), d(k?.rmsDeltaP.value), r.smeltVersion, r.host, r.cpu, r.commandLine,
            ]
            out += cells.map(q).joined(separator: ",") + "\n"
        }
        return out
    }
}
