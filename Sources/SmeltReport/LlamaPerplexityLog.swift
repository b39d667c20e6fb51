import Foundation
import SmeltEval
import SmeltFormats

/// llama-perplexity's own output (stdout and stderr of one run), read back into
/// Smelt's result types so runs made with llama.cpp sit in the same store and report:
/// the final estimate of a perplexity run, or the statistics blocks of a
/// `--kl-divergence` run. The logs name neither model nor text; the importer takes those
/// from its arguments.
public enum LlamaPerplexityLog {
    /// What a log holds.
    public enum Parsed {
        case perplexity(PerplexityResult, threads: Int?, batch: Int?)
        case klDivergence(KLDivergenceResult, threads: Int?, batch: Int?)
    }

    /// Parses a log; `model` names the model in the result. Errors name the file and line.
    public static func parse(_ text: String, file: String, model: String) throws -> Parsed {
        let lines = text.components(separatedBy: "\n")
        var chunks: Int?, context: Int?, batch: Int?, threads: Int?
        var secondsPerPass: Double?
        for l in lines {
            if let r = l.range(of: #"over (\d+) chunks, n_ctx=(\d+), batch_size=(\d+)"#, options: .regularExpression) {
                let nums = numbers(in: String(l[r]))
                if nums.count >= 3 { chunks = Int(nums[0]); context = Int(nums[1]); batch = Int(nums[2]) }
            }
            if let r = l.range(of: #"n_threads = (\d+)"#, options: .regularExpression), threads == nil {
                threads = Int(numbers(in: String(l[r])).first ?? -1)
            }
            if let r = l.range(of: #"([0-9.]+) seconds per pass"#, options: .regularExpression) {
                secondsPerPass = numbers(in: String(l[r])).first
            }
        }
        guard let n = context, let c = chunks else {
            throw SmeltError("\(file): not a llama-perplexity log (no 'over N chunks, n_ctx=…' line)")
        }
        let scored = c * (n - 1 - n / 2)
        if let i = lines.firstIndex(where: { $0.contains("====== Perplexity statistics ======") }) {
            return .klDivergence(try parseKLD(lines, from: i, file: file, model: model, context: n, chunks: c, scored: scored),
                                 threads: threads, batch: batch)
        }
        guard let fi = lines.lastIndex(where: { $0.contains("Final estimate: PPL = ") }) else {
            throw SmeltError("\(file): no 'Final estimate: PPL = …' line and no KL-divergence statistics")
        }
        let f = numbers(in: String(lines[fi][lines[fi].range(of: "Final estimate: PPL = ")!.upperBound...]))
        guard f.count >= 2 else { throw SmeltError("\(file):\(fi + 1): cannot read the final estimate") }
        var running: [Double] = []
        for l in lines where l.hasPrefix("[") {
            for part in l.split(separator: ",") where part.hasPrefix("[") {
                if let close = part.firstIndex(of: "]"), let v = Double(part[part.index(after: close)...]) { running.append(v) }
            }
        }
        // llama-perplexity's ETA line is the time of the first pass; the total is not printed.
        let seconds = (secondsPerPass ?? 0) * Double(c) / Double(max(1, (batch ?? n) / n))
        let res = PerplexityResult(model: model, contextLength: n, chunks: c, scoredTokens: scored, perplexity: f[0],
                                   uncertainty: f[1], runningEstimates: running, seconds: seconds,
                                   tokensPerSecond: seconds > 0 ? Double(c * n) / seconds : 0)
        return .perplexity(res, threads: threads, batch: batch)
    }

    private static func parseKLD(_ lines: [String], from start: Int, file: String, model: String, context: Int, chunks: Int,
                                 scored: Int) throws -> KLDivergenceResult {
        var values: [String: [Double]] = [:]
        var lineOf: [String: Int] = [:]
        var section = ""
        for i in start..<lines.count {
            let l = lines[i]
            if l.hasPrefix("======") { section = l.contains("KL divergence") ? "KLD" : l.contains("Token probability") ? "dp" : "ppl"; continue }
            guard let colon = l.firstIndex(of: ":") else { continue }
            let label = l[..<colon].trimmingCharacters(in: .whitespaces)
            if label.isEmpty { continue }
            let key = section + "|" + label
            values[key] = numbers(in: String(l[l.index(after: colon)...]))
            lineOf[key] = i + 1
        }
        func get(_ section: String, _ label: String, _ count: Int = 1) throws -> [Double] {
            let key = section + "|" + label
            guard let v = values[key], v.count >= count else {
                throw SmeltError("\(file): KL-divergence statistics lack '\(label)'\(lineOf[key].map { " (line \($0))" } ?? "")")
            }
            return v
        }
        func est(_ s: String, _ l: String, scale: Double = 1) throws -> Estimate {
            let v = try get(s, l, 2); return Estimate(v[0] / scale, v[1] / scale)
        }
        func one(_ s: String, _ l: String, scale: Double = 1) throws -> Double { try get(s, l)[0] / scale }
        let kldDist = Distribution(
            maximum: try one("KLD", "Maximum KLD"), p99_9: try one("KLD", "99.9%   KLD"), p99: try one("KLD", "99.0%   KLD"),
            p95: try one("KLD", "95.0%   KLD"), p90: try one("KLD", "90.0%   KLD"), p75: .nan, median: try one("KLD", "Median  KLD"),
            p25: .nan, p10: try one("KLD", "10.0%   KLD"), p5: try one("KLD", "5.0%   KLD"), p1: try one("KLD", "1.0%   KLD"),
            p0_1: try one("KLD", "0.1%   KLD"), minimum: try one("KLD", "Minimum KLD"))
        let p = 100.0
        let dpDist = Distribution(
            maximum: try one("dp", "Maximum Δp", scale: p), p99_9: try one("dp", "99.9%   Δp", scale: p),
            p99: try one("dp", "99.0%   Δp", scale: p), p95: try one("dp", "95.0%   Δp", scale: p),
            p90: try one("dp", "90.0%   Δp", scale: p), p75: try one("dp", "75.0%   Δp", scale: p),
            median: try one("dp", "Median  Δp", scale: p), p25: try one("dp", "25.0%   Δp", scale: p),
            p10: try one("dp", "10.0%   Δp", scale: p), p5: try one("dp", "5.0%   Δp", scale: p),
            p1: try one("dp", "1.0%   Δp", scale: p), p0_1: try one("dp", "0.1%   Δp", scale: p),
            minimum: try one("dp", "Minimum Δp", scale: p))
        // The per-chunk table: "chunk  PPL  ln(PPL(Q)/PPL(base))  KL Divergence  Δp RMS  Same top p".
        var perChunk: [KLDChunkLine] = []
        if let h = lines.firstIndex(where: { $0.hasPrefix("chunk") && $0.contains("KL Divergence") }) {
            for l in lines[(h + 1)...] {
                let v = numbers(in: l)
                guard v.count == 11, let c = Int(exactly: v[0]) else { break }
                perChunk.append(KLDChunkLine(chunk: c, ppl: Estimate(v[1], v[2]), lnPPLRatio: Estimate(v[3], v[4]),
                                             kld: Estimate(v[5], v[6]), rmsDeltaP: Estimate(v[7] / p, v[8] / p),
                                             sameTop: Estimate(v[9] / p, v[10] / p)))
            }
        }
        return KLDivergenceResult(
            model: model, base: "", contextLength: context, chunks: chunks, scoredTokens: scored,
            pplQ: try est("ppl", "Mean PPL(Q)"), pplBase: try est("ppl", "Mean PPL(base)"),
            correlation: try one("ppl", "Cor(ln(PPL(Q)), ln(PPL(base)))", scale: p),
            lnPPLRatio: try est("ppl", "Mean ln(PPL(Q)/PPL(base))"), pplRatio: try est("ppl", "Mean PPL(Q)/PPL(base)"),
            pplDifference: try est("ppl", "Mean PPL(Q)-PPL(base)"), kld: try est("KLD", "Mean    KLD"),
            kldDistribution: kldDist, deltaP: try est("dp", "Mean    Δp", scale: p), deltaPDistribution: dpDist,
            rmsDeltaP: try est("dp", "RMS Δp", scale: p), sameTop: try est("dp", "Same top p", scale: p),
            perChunk: perChunk, seconds: 0, tokensPerSecond: 0)
    }

    /// The decimal numbers in a string, in order (signs kept; `±`, `%` and words skipped).
    static func numbers(in s: String) -> [Double] {
        var out: [Double] = []
        var cur = ""
        func flush() {
            if !cur.isEmpty, cur != "-", cur != ".", let v = Double(cur) { out.append(v) }
            cur = ""
        }
        var prev: Character = " "
        for ch in s {
            if ch.isASCII && (ch.isNumber || ch == ".") || (ch == "-" && cur.isEmpty && !prev.isLetter && !prev.isNumber) {
                cur.append(ch)
            } else {
                flush()
            }
            prev = ch
        }
        flush()
        return out
    }
}
