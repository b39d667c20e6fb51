import Foundation
import SmeltEval
import SmeltFormats
import SmeltStore

/// One model of a report: its size, and the statistics of its latest run against the group's base.
public struct ReportRow: Codable, Sendable, Equatable {
    public var file: String
    public var modelKey: String
    public var runID: Int64
    /// `smelt` or `llama-perplexity` (imported).
    public var source: String
    public var isBase: Bool
    public var bytes: Int64?
    public var sizeMiB: Double?
    public var bitsPerWeight: Double?
    public var fileType: String?
    public var ppl: Estimate?
    public var pplRatio: Estimate?
    public var lnPPLRatio: Estimate?
    public var kld: Estimate?
    public var kldMedian: Double?
    public var kld99: Double?
    public var kld99_9: Double?
    public var kldMax: Double?
    /// Fractions (not percent).
    public var sameTop: Estimate?
    public var rmsDeltaP: Estimate?
    public var tokensPerSecond: Double?
    /// On the Pareto frontier of (size, mean KLD) / (size, 99.9 % KLD) among the quants.
    public var frontierMean = false
    public var frontierP99_9 = false
    public var perChunkKLD: [Double] = []
}

/// The runs that share one base model, text and context size, as a report shows them.
public struct ReportGroup: Codable, Sendable, Equatable {
    public var baseModel: String
    public var baseKey: String
    public var text: String
    public var textKey: String
    public var context: Int
    public var chunks: Int?
    public var tokens: Int?
    public var smeltVersion: String
    public var generated: String
    /// Base first, then the quants by size.
    public var rows: [ReportRow]
}

/// Builds reports from the store.
public enum Report {
    struct GroupKey: Hashable { var base: String; var text: String; var context: Int }

    /// Every group of the store that has KL-divergence runs, most recent first.
    public static func groups(_ store: ResultsStore) throws -> [ReportGroup] {
        let runs = try store.runs().filter { $0.status == "ok" }
        let plans = try store.planSummaries()
        var kld: [GroupKey: [RunRecord]] = [:]
        var order: [GroupKey: Int64] = [:]
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        for r in runs where r.kind == .klDivergence {
            guard let ctx = r.contextLength, let b = r.baseModel?.key ?? r.base.map({ "kld-base:" + $0.key }) else { continue }
            let k = GroupKey(base: b, text: r.text?.key ?? r.base.map { "kld-base:" + $0.key } ?? "?", context: ctx)
            kld[k, default: []].append(r)
            order[k] = max(order[k] ?? 0, r.id ?? 0)
        }
        var out: [(Int64, ReportGroup)] = []
        for (k, members) in kld {
            var latest: [String: RunRecord] = [:]
            for r in members { if let m = r.model?.key, (latest[m]?.id ?? -1) < (r.id ?? 0) { latest[m] = r } }
            var rows: [ReportRow] = []
            for r in latest.values.sorted(by: { ($0.id ?? 0) < ($1.id ?? 0) }) {
                guard let json = r.result, let res = try? decoder.decode(KLDivergenceResult.self, from: Data(json.utf8)) else { continue }
                var row = baseRow(r, plans: plans)
                row.ppl = res.pplQ
                row.pplRatio = res.pplRatio
                row.lnPPLRatio = res.lnPPLRatio
                row.kld = res.kld
                row.kldMedian = res.kldDistribution?.median
                row.kld99 = res.kldDistribution?.p99
                row.kld99_9 = res.kldDistribution?.p99_9
                row.kldMax = res.kldDistribution?.maximum
                row.sameTop = res.sameTop
                row.rmsDeltaP = res.rmsDeltaP
                row.perChunkKLD = res.perChunk.map(\.kld.value)
                rows.append(row)
            }
            // The base model's own perplexity run on the same text and context.
            let baseRun = runs.last { $0.kind == .perplexity && $0.model?.key == k.base && $0.text?.key == k.text
                && $0.contextLength == k.context }
            var head: [ReportRow] = []
            if let b = baseRun, let json = b.result, let res = try? decoder.decode(PerplexityResult.self, from: Data(json.utf8)) {
                var row = baseRow(b, plans: plans)
                row.isBase = true
                row.ppl = Estimate(res.perplexity, res.uncertainty)
                head.append(row)
            }
            rows.removeAll { $0.modelKey == k.base }
            rows.sort { ($0.bytes ?? .max, $0.file) < ($1.bytes ?? .max, $1.file) }
            markFrontier(&rows)
            let any = members.last!
            let baseName = baseRun?.model?.name ?? any.baseModel?.name ?? any.base.map { "base file \($0.name)" } ?? "?"
            out.append((order[k] ?? 0, ReportGroup(
                baseModel: baseName, baseKey: k.base, text: any.text?.name ?? "(text of base file \(any.base?.name ?? "?"))",
                textKey: k.text, context: k.context, chunks: any.chunks, tokens: any.textTokens,
                smeltVersion: SmeltVersion.string, generated: ResultsStore.iso(Date()), rows: head + rows)))
        }
        return out.sorted { $0.0 > $1.0 }.map(\.1)
    }

    /// The group whose base model matches `base` (name, path substring or hash prefix), or the only group.
    public static func select(_ groups: [ReportGroup], base: String?) throws -> ReportGroup {
        guard !groups.isEmpty else {
            throw SmeltError("the results store has no KL-divergence runs to report (smelt perplexity QUANT --kl-divergence BASE records them)")
        }
        if let base {
            let m = groups.filter { $0.baseModel.contains(base) || $0.baseKey.hasPrefix(base) || $0.baseKey == "name:" + base }
            guard let g = m.first else {
                throw SmeltError("no report group has base model '\(base)'; groups: \(groups.map(\.baseModel).joined(separator: ", "))")
            }
            return g
        }
        guard groups.count == 1 else {
            let list = groups.map { "\($0.baseModel) (\(String($0.baseKey.prefix(12))), \($0.text), -c \($0.context))" }
            throw SmeltError("the store has \(groups.count) report groups; choose one with --base: \(list.joined(separator: "; "))")
        }
        return groups[0]
    }

    static func baseRow(_ r: RunRecord, plans: [String: ModelPlanRecord]) -> ReportRow {
        let key = r.model?.key ?? "?"
        let plan = plans[key]
        return ReportRow(file: r.model?.name ?? "?", modelKey: key, runID: r.id ?? 0, source: r.source, isBase: false,
                         bytes: r.model?.bytes, sizeMiB: r.model?.bytes.map { Double($0) / 1_048_576 },
                         bitsPerWeight: plan?.bitsPerWeight, fileType: plan?.fileTypeName, tokensPerSecond: r.tokensPerSecond)
    }

    /// Marks the rows on the Pareto frontier of (bytes, mean KLD) and (bytes, 99.9 % KLD):
    /// no other row is at most as large and at most as bad, and better in one of the two.
    public static func markFrontier(_ rows: inout [ReportRow]) {
        let mean = frontier(rows.map { r in r.bytes.flatMap { b in r.kld.map { (Double(b), $0.value) } } })
        let tail = frontier(rows.map { r in r.bytes.flatMap { b in r.kld99_9.map { (Double(b), $0) } } })
        for i in rows.indices { rows[i].frontierMean = mean[i]; rows[i].frontierP99_9 = tail[i] }
    }

    /// For each point (size, loss), whether no other point dominates it.
    public static func frontier(_ points: [(Double, Double)?]) -> [Bool] {
        points.enumerated().map { i, p in
            guard let p, p.1.isFinite else { return false }
            return !points.enumerated().contains { j, q in
                guard j != i, let q, q.1.isFinite else { return false }
                return q.0 <= p.0 && q.1 <= p.1 && (q.0 < p.0 || q.1 < p.1)
            }
        }
    }
}
