import Foundation
import SmeltEval
import SmeltFormats
import SmeltStore

extension Recorder {
    /// Imports a llama-perplexity log: the model, the text and (for KL-divergence) the base
    /// model are named by the caller; files that exist are identified by content, others by name.
    public func importLlamaLog(_ log: URL, model: String, text: String?, baseModel: String?) throws -> RunRecord {
        guard let store else { throw SmeltError("results import needs a store (not --no-store)") }
        let data: String
        do { data = try String(contentsOf: log, encoding: .utf8) } catch {
            throw SmeltError("\(log.path): cannot read the log (\(error.localizedDescription))")
        }
        func ident(_ p: String) throws -> FileIdentity {
            FileManager.default.fileExists(atPath: p) ? try identify(URL(fileURLWithPath: p)) : try store.identity(named: p)
        }
        let m = try ident(model)
        if m.sha256 != nil { try recordPlan(of: URL(fileURLWithPath: model), identity: m) }
        let parsed = try LlamaPerplexityLog.parse(data, file: log.path, model: m.name)
        switch parsed {
        case let .perplexity(res, threads, batch):
            var r = begin(.perplexity)
            r.source = "llama-perplexity"
            r.model = m
            r.text = try text.map(ident)
            r.contextLength = res.contextLength; r.chunks = res.chunks; r.batchSize = batch; r.threads = threads
            r.tokensPerSecond = res.tokensPerSecond > 0 ? res.tokensPerSecond : nil
            r.result = Self.resultJSON(res)
            r.wallSeconds = res.seconds > 0 ? res.seconds : nil
            return try save(r)
        case let .klDivergence(res, threads, batch):
            var r = begin(.klDivergence)
            r.source = "llama-perplexity"
            r.model = m
            r.text = try text.map(ident)
            r.baseModel = try baseModel.map(ident)
            r.contextLength = res.contextLength; r.chunks = res.chunks; r.batchSize = batch; r.threads = threads
            r.result = Self.resultJSON(res)
            r.wallSeconds = 0
            return try save(r)
        }
    }
}
