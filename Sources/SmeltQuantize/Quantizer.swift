import Foundation
import SmeltFormats
import SmeltQuant

/// Everything `smelt quantize` needs besides the input and output.
public struct QuantizeRequest: Sendable {
    public var preset: LlamaPreset
    public var options = QuantizeOptions()
    /// Worker threads (≤ 0: all cores).
    public var threads = 0
    /// `--imatrix` file (GGUF or legacy .dat).
    public var imatrixURL: URL? = nil
    /// The imatrix path as given on the command line (written as `quantize.imatrix.file`,
    /// as llama-quantize does); nil: `imatrixURL.path`.
    public var imatrixArgument: String? = nil
    /// `--include-weights` / `--exclude-weights` (substring matches on imatrix entry names).
    public var includeWeights: [String] = []
    public var excludeWeights: [String] = []
    /// `--allow-requantize`.
    public var allowRequantize = false
    /// The recipe that plans the types (the preset's built-in recipe when nil).
    public var recipe: Recipe? = nil
    /// Extra metadata appended at the end (recipe provenance, `RecipeProvenance`).
    public var extraMetadata: [(String, GGUFValue)] = []
    public init(preset: LlamaPreset) { self.preset = preset }
}

/// What a run did: the plan and llama-quantize's size totals.
public struct QuantizeResult: Sendable {
    public var plan: QuantPlan
    /// Bytes of the input tensors (llama.cpp's `total_size_org`).
    public var inputBytes: Int
    /// Bytes of the output tensors (`total_size_new`).
    public var outputBytes: Int
    public var elementCount: Int
    /// Entries of importance data used (after include/exclude filters).
    public var imatrixEntries: Int
    /// One line per imatrix entry with matrices (experts) that saw no tokens (`PreparedImatrix.warnings`).
    public var imatrixWarnings: [String] = []

    /// llama-quantize's two closing lines (`model size  = … MiB (… BPW)` / `quant size  = …`).
    public var summaryLines: [String] {
        func line(_ label: String, _ bytes: Int) -> String {
            String(format: "%@ = %8.2f MiB (%.2f BPW)", label, Double(bytes) / 1024 / 1024,
                   Double(bytes) * 8 / Double(max(elementCount, 1)))
        }
        return [line("model size ", inputBytes), line("quant size ", outputBytes)]
    }
}

/// Importance data prepared as llama-quantize does (tools/quantize/quantize.cpp).
public struct PreparedImatrix: Sendable {
    /// Tensor name → per-column weights (`ne0 * n_expert` values).
    public var weights: [String: [Float]]
    public var path: String
    public var datasets: [String]
    public var chunkCount: Int
    /// Entries (after the filters) with matrices that saw no tokens — typically experts the
    /// calibration text never routed to: their importance is 1, as llama-quantize's
    /// `load_imatrix` makes it (it says nothing; Smelt names the tensor and the experts).
    public var warnings: [String] = []

    /// Loads `url`, normalises, then applies `--exclude-weights` and `--include-weights`.
    public init(url: URL, include: [String], exclude: [String], name: String? = nil) throws {
        let im = try Imatrix(url: url)
        if !im.isLegacy && !im.hasMetadata { throw SmeltError("\(url.path): missing imatrix metadata (imatrix.datasets / chunk_count / chunk_size)") }
        var w = im.importanceWeights()
        for e in exclude { w = w.filter { !$0.key.contains(e) } }
        if !include.isEmpty {
            var keep: [String: [Float]] = [:]
            for i in include { for (k, v) in w where k.contains(i) { keep[k] = v } }
            w = keep
        }
        for (k, v) in w where v.contains(where: { !$0.isFinite }) {
            throw SmeltError("imatrix contains non-finite values (entry \(k))")
        }
        weights = w; path = name ?? url.path; datasets = im.datasets; chunkCount = im.chunkCount
        if !im.isLegacy {
            for k in w.keys.sorted() {
                guard let counts = im.entries[k]?.counts else { continue }
                let zero = counts.indices.filter { counts[$0] == 0 }
                guard !zero.isEmpty else { continue }
                let what = counts.count > 1 ? "expert\(zero.count > 1 ? "s" : "") \(zero.map(String.init).joined(separator: ", ")) of \(counts.count)" : "the tensor"
                warnings.append("warning: imatrix entry \(k): \(what) saw no tokens; importance 1 used there (as llama-quantize)")
            }
        }
    }
}

/// The quantize pipeline: plan, then stream tensors one at a time through the
/// kernels, rows split across threads, into a `GGUFWriter`.
public enum Quantizer {
    /// The plan for `source` (no data read).
    public static func plan(source: TensorSource, preset: LlamaPreset, options: QuantizeOptions) throws -> QuantPlan {
        try LlamaPresets.plan(tensors: source.tensors.map { PlanInput(name: $0.name, shape: $0.shape, type: $0.type) },
                              model: ModelFacts(metadata: source.metadata), preset: preset, options: options)
    }

    /// The output metadata as llama-quantize writes it: the input's keys in order,
    /// `general.quantization_version` and `general.file_type` moved to the end,
    /// split keys removed, then the `quantize.imatrix.*` keys.
    public static func outputMetadata(_ input: GGUFMetadata, fileType: UInt32, imatrix: PreparedImatrix?) -> GGUFMetadata {
        var md = input
        func set(_ k: String, _ v: GGUFValue) { md[k] = nil; md[k] = v }
        set("general.quantization_version", .uint32(2))
        set("general.file_type", .uint32(fileType))
        md["split.no"] = nil; md["split.count"] = nil; md["split.tensors.count"] = nil
        if let im = imatrix, !im.weights.isEmpty {
            func trunc(_ s: String) -> String {
                let u = Array(s.utf8.prefix(127))
                return String(decoding: u.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            set("quantize.imatrix.file", .string(trunc(im.path)))
            if let d = im.datasets.first { set("quantize.imatrix.dataset", .string(trunc(d))) }
            set("quantize.imatrix.entries_count", .uint32(UInt32(im.weights.count)))
            if im.chunkCount > 0 { set("quantize.imatrix.chunks_count", .uint32(UInt32(im.chunkCount))) }
        }
        return md
    }

    /// Runs a quantization. `output` nil means dry run (nothing written). On any
    /// error nothing is left at `output`. `progress(done, total, name)` is called
    /// before each tensor.
    @discardableResult
    public static func run(source: TensorSource, output: URL?, request: QuantizeRequest,
                           progress: ((Int, Int, String) -> Void)? = nil) throws -> QuantizeResult {
        var imatrix: PreparedImatrix? = nil
        if let u = request.imatrixURL {
            imatrix = try PreparedImatrix(url: u, include: request.includeWeights, exclude: request.excludeWeights,
                                          name: request.imatrixArgument)
        }
        var options = request.options
        options.hasImatrix = !(imatrix?.weights.isEmpty ?? true)
        options.dryRun = output == nil
        let plan = try request.recipe.map {
            try $0.plan(tensors: source.tensors.map { PlanInput(name: $0.name, shape: $0.shape, type: $0.type) },
                        model: ModelFacts(metadata: source.metadata), options: options)
        } ?? plan(source: source, preset: request.preset, options: options)
        let index = Dictionary(uniqueKeysWithValues: source.tensors.enumerated().map { ($1.name, $0) })

        // Everything that can fail is checked before the output file is opened.
        var importance: [Int: [Float]] = [:]
        for (k, c) in plan.tensors.enumerated() where c.converts {
            if c.sourceType.isQuantized && !request.allowRequantize {
                throw SmeltError("requantizing from type \(c.sourceType.name) is disabled (tensor \(c.name)); use --allow-requantize")
            }
            guard !c.sourceType.isQuantized || QuantRegistry.kernel(for: c.sourceType) != nil || output == nil else {
                throw SmeltError("tensor \(c.name): cannot dequantize type \(c.sourceType.name)")
            }
            guard c.type == .f32 || QuantRegistry.kernel(for: c.type) != nil || output == nil else {
                throw SmeltError("tensor \(c.name): Smelt has no kernel for type \(c.type.name) yet")
            }
            guard [.f32, .f16, .bf16].contains(c.sourceType) || c.sourceType.isQuantized else {
                throw SmeltError("tensor \(c.name): cannot convert type \(c.sourceType.name)")
            }
            var w: [Float]? = nil
            if let im = imatrix, let v = im.weights[c.name] {
                let ne0 = c.shape[0], ne2 = c.shape.count > 2 ? c.shape[2] : 1
                if v.count == ne0 * ne2 { w = v } else if !(c.name == "token_embd.weight" || c.name == "per_layer_token_embd.weight") {
                    throw SmeltError("imatrix size \(v.count) is different from tensor size \(ne0 * ne2) for \(c.name)")
                }
            }
            if w == nil && c.requiresImatrix && output != nil {
                throw SmeltError("missing importance matrix for tensor \(c.name) in a very low-bit quantization (\(c.type.name))")
            }
            if w == nil, output != nil, let kq = QuantRegistry.kernel(for: c.type), kq.requiresImportance {
                throw SmeltError("tensor \(c.name): type \(c.type.name) needs importance data (--imatrix)")
            }
            if let w { importance[k] = w }
        }

        let result = QuantizeResult(plan: plan, inputBytes: plan.inputBytes, outputBytes: plan.outputBytes,
                                    elementCount: plan.elementCount, imatrixEntries: imatrix?.weights.count ?? 0,
                                    imatrixWarnings: imatrix?.warnings ?? [])
        guard let output else { return result }

        if let src = source as? GGUFTensorSource,
           src.file.url.standardizedFileURL.resolvingSymlinksInPath() == output.standardizedFileURL.resolvingSymlinksInPath() {
            throw SmeltError("input and output files are the same: '\(output.path)'")
        }
        var md = outputMetadata(source.metadata, fileType: plan.fileType, imatrix: imatrix)
        for (k, v) in request.extraMetadata { md[k] = nil; md[k] = v }
        let writer = try GGUFWriter(url: output, metadata: md,
                                    tensors: plan.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) })
        // Tensors are computed in order on the worker threads while a serial queue
        // writes the previous one (at most two converted tensors in memory).
        let threads = request.threads > 0 ? request.threads : ProcessInfo.processInfo.activeProcessorCount
        let writeQueue = DispatchQueue(label: "smelt.quantize.write")
        // Two reusable output buffers (one being written, one being filled) and one
        // scratch buffer per worker, sized for the largest tensor: memory is bounded by
        // a few tensors and pages are touched once.
        var maxOut = 1, maxScratch = 1
        for c in plan.tensors where c.converts {
            maxOut = max(maxOut, c.outputBytes)
            maxScratch = max(maxScratch, Self.chunkRows(c) * c.shape[0])
        }
        let pool = BufferPool(count: 2, bytes: maxOut)
        let scratch = (0..<threads).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: maxScratch) }
        defer { scratch.forEach { $0.deallocate() } }
        let writeError = FirstError()
        func pendingError() -> Error? { writeError.value }
        func enqueue(_ body: @escaping () throws -> Void) {
            writeQueue.async {
                if writeError.value == nil {
                    do { try body() } catch { writeError.set(error) }
                }
            }
        }
        do {
            for (k, c) in plan.tensors.enumerated() {
                if let e = pendingError() { throw e }
                progress?(k, plan.tensors.count, c.name)
                let si = index[c.name]!
                if !c.converts, let raw = source.rawData(si) {
                    enqueue { try writer.write(raw); source.release(si) }
                } else {
                    let buf = pool.take()
                    let bytes: Int
                    do {
                        bytes = try convert(source: source, index: si, choice: c, importance: importance[k],
                                            threads: threads, out: buf, scratch: scratch)
                    } catch { pool.give(buf); throw error }
                    enqueue {
                        defer { pool.give(buf) }
                        try writer.write(UnsafeRawBufferPointer(start: buf, count: bytes))
                        source.release(si)
                    }
                }
            }
            writeQueue.sync {}
            if let e = pendingError() { throw e }
            progress?(plan.tensors.count, plan.tensors.count, "")
            try writer.finish()
        } catch {
            writeQueue.sync {}
            writer.abort()
            throw error
        }
        return result
    }

    /// Rows per work item: about 64K values.
    static func chunkRows(_ c: TensorChoice) -> Int {
        let n = c.shape[0], rows = c.shape.dropFirst().reduce(1, *)
        return max(1, min(rows, 65536 / max(n, 1)))
    }

    /// Converts one tensor into its planned type, into `out`; returns the byte count.
    static func convert(source: TensorSource, index si: Int, choice c: TensorChoice, importance: [Float]?,
                        threads: Int, out: UnsafeMutableRawPointer, scratch: [UnsafeMutablePointer<Float>]) throws -> Int {
        let n = c.shape[0]
        let rows = c.shape.dropFirst().reduce(1, *)
        let ne1 = c.shape.count > 1 ? c.shape[1] : 1
        let ne2 = c.shape.count > 2 ? c.shape[2] : 1
        guard let rowBytes = c.type.rowBytes(n) else { throw SmeltError("tensor \(c.name): bad row length \(n) for \(c.type.name)") }
        let total = rowBytes * rows
        let kernel = c.type == .f32 ? nil : QuantRegistry.kernel(for: c.type)
        let chunkRows = Self.chunkRows(c)
        let nChunks = (rows + chunkRows - 1) / chunkRows
        let workers = max(1, min(threads, nChunks))
        let lock = NSLock()
        var next = 0
        var failure: Error? = nil
        try importance.withUnsafeBufferPointerOpt { imp in
            let body = { (worker: Int) in
                let scratch: UnsafeMutablePointer<Float>? = kernel == nil ? nil : scratch[worker]
                while true {
                    lock.lock()
                    let ch = next; next += 1
                    let stop = failure != nil
                    lock.unlock()
                    if stop || ch >= nChunks { return }
                    let r0 = ch * chunkRows, r1 = min(rows, r0 + chunkRows)
                    do {
                        if let kernel, let scratch {
                            try source.readRows(si, rows: r0..<r1, into: scratch)
                            for r in r0..<r1 {
                                let w = imp.map { $0.baseAddress! + ((r / ne1) % ne2) * n }
                                kernel.quantizeRow(scratch + (r - r0) * n, out + r * rowBytes, count: n, importance: w)
                            }
                        } else {
                            let dst = (out + r0 * rowBytes).assumingMemoryBound(to: Float.self)
                            try source.readRows(si, rows: r0..<r1, into: dst)
                        }
                        source.release(si, rows: r0..<r1)
                    } catch {
                        lock.lock(); if failure == nil { failure = error }; lock.unlock()
                        return
                    }
                }
            }
            if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
            if let failure { throw failure }
        }
        return total
    }
}

extension Optional where Wrapped == [Float] {
    func withUnsafeBufferPointerOpt<R>(_ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
        if let a = self { return try a.withUnsafeBufferPointer { try body($0) } }
        return try body(nil)
    }
}

/// The first error reported by any thread.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error? = nil
    var value: Error? { lock.lock(); defer { lock.unlock() }; return error }
    func set(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}

/// A fixed set of equal buffers handed out and given back (blocks when all are out).
final class BufferPool: @unchecked Sendable {
    private let lock = NSLock()
    private let available: DispatchSemaphore
    private var free: [UnsafeMutableRawPointer]
    private let all: [UnsafeMutableRawPointer]
    init(count: Int, bytes: Int) {
        all = (0..<count).map { _ in UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        free = all
        available = DispatchSemaphore(value: count)
    }
    func take() -> UnsafeMutableRawPointer {
        available.wait()
        lock.lock(); defer { lock.unlock() }
        return free.removeLast()
    }
    func give(_ p: UnsafeMutableRawPointer) {
        lock.lock(); free.append(p); lock.unlock()
        available.signal()
    }
    deinit { all.forEach { $0.deallocate() } }
}
