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
    /// `--allow-nonfinite`: write tensors holding NaN or infinity instead of refusing them.
    public var allowNonfinite = false
    /// A split output (nil: one file at the output path).
    public var split: QuantizeSplit? = nil
    /// `--override-kv`: keys set in the output (removed and appended, as ggml's `gguf_set_val`).
    public var overrides: [(String, GGUFValue)] = []
    /// `COPY` (llama-quantize's `only_copy`): every tensor keeps its type; `general.file_type` 0.
    public var onlyCopy = false
    /// A device (the GPU) that quantizes the tensors whose type it supports; nil: all on the CPU.
    public var accelerator: (any QuantAccelerator)? = nil
    /// Compute the output's SHA-256 while writing (`QuantizeResult.outputSHA256`): only needed when
    /// the run is recorded (the results store, `--record-to`).
    public var hashOutput = true
    public init(preset: LlamaPreset) { self.preset = preset }
}

/// How `smelt quantize` splits its output.
public enum QuantizeSplit: Equatable, Sendable {
    /// `--split-max-size` / `--split-max-tensors`: cut as llama-gguf-split cuts, into
    /// `PREFIX-0000k-of-0000n.gguf` (PREFIX: the output path without `.gguf`).
    case limit(GGUFSplit.Limit)
    /// `--keep-split` (llama-quantize's): one output shard per input shard, each tensor in
    /// the shard it came from, in the input's order; split keys as llama-quantize writes them.
    case keepInput

    /// The prefix of the shard names for an output path (llama-quantize drops `.gguf`).
    public static func prefix(of output: URL) -> String {
        output.pathExtension.lowercased() == "gguf" ? output.deletingPathExtension().path : output.path
    }
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
    /// SHA-256 of the file written (computed while writing); nil for a dry run.
    public var outputSHA256: String? = nil
    /// One line per imatrix entry with matrices (experts) that saw no tokens (`PreparedImatrix.warnings`).
    public var imatrixWarnings: [String] = []
    /// With an accelerator: tensors quantized on the CPU while a tensor was on the device.
    public var cpuTensorsBesideDevice = 0

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
        for (k, v) in w where v.contains(where: { !$0.isFinite || $0 < 0 }) {
            throw SmeltError("\(url.path): imatrix entry \(k) holds non-finite or negative values")
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
    public static func outputMetadata(_ input: GGUFMetadata, fileType: UInt32, imatrix: PreparedImatrix?,
                                      overrides: [(String, GGUFValue)] = []) -> GGUFMetadata {
        var md = input
        func set(_ k: String, _ v: GGUFValue) { md[k] = nil; md[k] = v }
        set("general.quantization_version", .uint32(2))
        set("general.file_type", .uint32(fileType))
        md["split.no"] = nil; md["split.count"] = nil; md["split.tensors.count"] = nil
        for (k, v) in overrides { set(k, v) }  // --override-kv, before the imatrix keys (quantize.cpp appends those after)
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
                           progress: ((Int, Int, String) -> Void)? = nil,
                           tensorLine: ((String) -> Void)? = nil) throws -> QuantizeResult {
        var imatrix: PreparedImatrix? = nil
        if let u = request.imatrixURL {
            imatrix = try PreparedImatrix(url: u, include: request.includeWeights, exclude: request.excludeWeights,
                                          name: request.imatrixArgument)
        }
        var options = request.options
        options.hasImatrix = !(imatrix?.weights.isEmpty ?? true)
        options.dryRun = output == nil
        var plan = try request.recipe.map {
            try $0.plan(tensors: source.tensors.map { PlanInput(name: $0.name, shape: $0.shape, type: $0.type) },
                        model: ModelFacts(metadata: source.metadata), options: options)
        } ?? plan(source: source, preset: request.preset, options: options)
        if request.onlyCopy {
            plan.fileType = inputFileType(source)  // llama-quantize's COPY: ftype = ml.ftype
            plan.fallbackCount = 0
            plan.willRequireImatrix = false
            for i in plan.tensors.indices {
                plan.tensors[i].type = plan.tensors[i].sourceType
                plan.tensors[i].requiresImatrix = false
                plan.tensors[i].reason = "COPY"
            }
        }
        let index = Dictionary(uniqueKeysWithValues: source.tensors.enumerated().map { ($1.name, $0) })

        // Everything that can fail is checked before the output file is opened.
        var importance: [Int: [Float]] = [:]
        for (k, c) in plan.tensors.enumerated() where c.converts {
            if c.sourceType.isQuantized && !request.allowRequantize {
                throw SmeltError("requantizing from type \(c.sourceType.name) is disabled (tensor \(c.name)); use --allow-requantize")
            }
            guard !c.sourceType.isQuantized || QuantRegistry.kernel(for: c.sourceType) != nil else {
                throw SmeltError("tensor \(c.name): cannot dequantize type \(c.sourceType.name)")
            }
            guard GGUF.byteCount(shape: c.shape, type: c.type) != nil else {
                throw SmeltError("tensor '\(c.name)': row length \(c.shape.first ?? 0) is not a multiple of \(c.type.name)'s block size \(c.type.blockSize)")
            }
            guard c.type == .f32 || QuantRegistry.kernel(for: c.type) != nil else {
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

        var md = outputMetadata(source.metadata, fileType: plan.fileType, imatrix: imatrix, overrides: request.overrides)
        for (k, v) in request.extraMetadata { md[k] = nil; md[k] = v }
        let (files, order) = try outputFiles(source: source, plan: plan, metadata: md, output: output, split: request.split)
        if let src = source as? GGUFTensorSource {
            let inputs = Set(src.file.shards.map { $0.url.standardizedFileURL.resolvingSymlinksInPath().path })
            for f in files where inputs.contains(f.url.standardizedFileURL.resolvingSymlinksInPath().path) {
                throw SmeltError("input and output files are the same: '\(f.url.path)'")
            }
        }
        let writer = try GGUFWriter(files: files, hashContent: request.hashOutput)
        // Tensors are computed in order on the worker threads while a serial queue
        // writes the previous one (at most two converted tensors in memory).
        let threads = request.threads > 0 ? request.threads : ProcessInfo.processInfo.activeProcessorCount
        let writeQueue = DispatchQueue(label: "smelt.quantize.write")
        // Two reusable output buffers (one being written, one being filled) and one
        // scratch buffer per worker, sized for the largest piece (a 2-D tensor, or one expert
        // slice of a 3-D one): memory is bounded by a few tensors, whatever the expert count,
        // and pages are touched once.
        var maxOut = 1, maxScratch = 1
        for c in plan.tensors where c.converts {
            let rb = c.type.rowBytes(c.shape[0]) ?? 0
            for p in Self.pieces(c) {
                maxScratch = max(maxScratch, Self.chunkRows(n: c.shape[0], rows: p.count) * c.shape[0])
            }
            for p in request.accelerator == nil ? Self.cpuPieces(c) : Self.pieces(c) {
                maxOut = max(maxOut, rb * p.count)
            }
        }
        // With an accelerator, a tensor whose type it supports is quantized on a device thread while
        // the main loop goes on with the next tensors on the CPU (one more buffer: the device's);
        // the writer still writes in order, after the device tensor is done.
        let accelerator = request.accelerator
        let pool = BufferPool(count: accelerator == nil ? 2 : 3, bytes: maxOut)
        let deviceQueue = DispatchQueue(label: "smelt.quantize.device")
        let deviceWork = DeviceCounter()
        func onDevice(_ c: TensorChoice) -> Bool {
            guard let acc = accelerator, c.type != .f32, QuantRegistry.kernel(for: c.type) != nil else { return false }
            return acc.supports(c.type)
        }
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
            for (step, k) in order.enumerated() {
                let c = plan.tensors[k]
                if let e = pendingError() { throw e }
                progress?(step, plan.tensors.count, c.name)
                tensorLine?(Self.llamaLine(step + 1, plan.tensors.count, c))
                let si = index[c.name]!
                if !c.converts, let raw = source.rawData(si) {
                    if !request.allowNonfinite, let (r, col, v) = NonFinite.firstInRows(raw, type: c.sourceType, rowLength: c.shape[0]) {
                        let o = source.origin(si)
                        throw NonFinite.weightError(file: o.file, tensor: o.tensor, row: r, column: col, value: v)
                    }
                    enqueue { try writer.write(raw); source.release(si) }
                } else if onDevice(c) {
                    let parts = Self.pieces(c)
                    for (j, part) in parts.enumerated() {
                        let last = j == parts.count - 1
                        let buf = pool.take()
                        let done = DispatchSemaphore(value: 0)
                        let outcome = DeviceOutcome()
                        deviceWork.started()
                        let imp = importance[k]
                        deviceQueue.async {
                            if writeError.value == nil {
                                do {
                                    outcome.bytes = try convert(source: source, index: si, choice: c, rows: part, importance: imp,
                                                                threads: threads, out: buf, scratch: scratch,
                                                                allowNonfinite: request.allowNonfinite, accelerator: accelerator)
                                } catch { outcome.error = error }
                            }
                            deviceWork.finished()
                            done.signal()
                        }
                        writeQueue.async {
                            done.wait()
                            defer { pool.give(buf) }
                            guard writeError.value == nil else { return }
                            if let e = outcome.error { writeError.set(e); return }
                            guard let bytes = outcome.bytes else { return }
                            do {
                                try writer.write(UnsafeRawBufferPointer(start: buf, count: bytes))
                                if last { source.release(si) }
                            } catch { writeError.set(error) }
                        }
                    }
                } else {
                    // One piece at a time (a few MiB of output rows, never across an expert slice
                    // of a 3-D tensor): the writer takes a tensor in several chunks, so a piece is
                    // written while the next is computed, and the two buffers stay small.
                    let parts = Self.cpuPieces(c)
                    for (j, part) in parts.enumerated() {
                        if j > 0, let e = pendingError() { throw e }
                        let last = j == parts.count - 1
                        let buf = pool.take()
                        let bytes: Int
                        deviceWork.noteCPUTensor()
                        do {
                            bytes = try convert(source: source, index: si, choice: c, rows: part, importance: importance[k],
                                                threads: threads, out: buf, scratch: scratch,
                                                allowNonfinite: request.allowNonfinite, accelerator: nil)
                        } catch { pool.give(buf); throw error }
                        enqueue {
                            defer { pool.give(buf) }
                            try writer.write(UnsafeRawBufferPointer(start: buf, count: bytes))
                            if last { source.release(si) }
                        }
                    }
                }
            }
            writeQueue.sync {}
            deviceQueue.sync {}
            if let e = pendingError() { throw e }
            progress?(plan.tensors.count, plan.tensors.count, "")
            try writer.finish()
        } catch {
            writeQueue.sync {}
            // the device thread's blocks (which hold the accelerator) are released before this
            // returns: a GPU torn down on that thread while the process exits crashes the driver
            deviceQueue.sync {}
            writer.abort()
            // a tensor still on the device when a later one failed came first: its error is the one
            // the CPU path (strictly in order) would have reported
            if accelerator != nil, let e = pendingError() { throw e }
            throw error
        }
        var written = result
        written.outputSHA256 = writer.sha256
        written.cpuTensorsBesideDevice = deviceWork.besideDevice
        return written
    }

    /// The output files and the order (indices into `plan.tensors`) in which tensors are written.
    static func outputFiles(source: TensorSource, plan: QuantPlan, metadata md: GGUFMetadata, output: URL,
                            split: QuantizeSplit?) throws -> ([GGUFWriter.FilePlan], [Int]) {
        let descs = plan.tensors.map { GGUFTensorDescriptor(name: $0.name, shape: $0.shape, type: $0.type) }
        let inOrder = Array(plan.tensors.indices)
        switch split {
        case nil:
            return ([GGUFWriter.FilePlan(url: output, metadata: md, tensors: descs)], inOrder)
        case let .limit(limit)?:
            return (try GGUFSplit.plan(url: URL(fileURLWithPath: QuantizeSplit.prefix(of: output)), metadata: md,
                                       tensors: descs, limit: limit, layout: .ggufSplit), inOrder)
        case .keepInput?:
            // llama-quantize: tensors sorted by (input shard, offset in it); shard k of the
            // output holds the tensors of input shard k.
            guard let src = source as? GGUFTensorSource else {
                throw SmeltError("--keep-split needs a GGUF input (a split model given by its first shard)")
            }
            var key: [String: (Int, Int)] = [:]
            for t in src.file.tensors { key[t.name] = (t.shard, t.offset) }
            let order = inOrder.sorted {
                let a = key[plan.tensors[$0].name] ?? (0, 0), b = key[plan.tensors[$1].name] ?? (0, 0)
                return a.0 != b.0 ? a.0 < b.0 : a.1 < b.1
            }
            let n = src.file.shards.count
            var counts = [Int](repeating: 0, count: n)
            for k in order { counts[key[plan.tensors[k].name]?.0 ?? 0] += 1 }
            let sorted = order.map { descs[$0] }
            let prefix = QuantizeSplit.prefix(of: output)
            if n == 1 {
                return ([GGUFWriter.FilePlan(url: GGUFSplit.shardURL(prefix: prefix, index: 0, count: 1), metadata: md, tensors: sorted)], order)
            }
            // llama-quantize appends split.no, split.count, split.tensors.count (gguf-py's order).
            return (GGUFSplit.files(prefix: prefix, metadata: md, tensors: sorted, counts: counts, layout: .ggufPy), order)
        }
    }

    /// The input's file type as llama.cpp's loader sees it (`ml.ftype`): `general.file_type`,
    /// else guessed from the most common tensor type with `LLAMA_FTYPE_GUESSED` (1024) set.
    static func inputFileType(_ source: TensorSource) -> UInt32 {
        if let v = source.metadata["general.file_type"]?.intValue, let u = UInt32(exactly: v) { return u }
        var n: [GGMLType: Int] = [:]
        for t in source.tensors { n[t.type, default: 0] += 1 }
        let guess: [GGMLType: UInt32] = [.f32: 0, .f16: 1, .q4_0: 2, .q4_1: 3, .q8_0: 7, .q5_0: 8, .q5_1: 9, .q2_K: 10,
                                         .q3_K: 12, .q4_K: 15, .q5_K: 17, .q6_K: 18, .iq2_xxs: 19, .iq2_xs: 20, .iq3_xxs: 23,
                                         .iq1_s: 24, .iq4_nl: 25, .iq3_s: 26, .iq4_xs: 30, .iq1_m: 31, .bf16: 32]
        // the first type with the highest count, in ggml type order, as the loader's loop
        let top = n.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }.first?.key
        return (top.flatMap { guess[$0] } ?? 0) | 1024
    }

    /// llama-quantize's per-tensor log line: `[  12/ 272] NAME - [ ne0,  ne1,  ne2,  ne3], type =   bf16,
    /// converting to q6_K .. size =     1.69 MiB ->     0.69 MiB` (or `size =    0.002 MiB` when copied).
    public static func llamaLine(_ i: Int, _ n: Int, _ c: TensorChoice) -> String {
        var ne = c.shape.map { String(format: "%5lld", Int64($0)) }
        while ne.count < GGUF.maxDimensions { ne.append(String(format: "%5d", 1)) }
        let inBytes = Double(GGUF.byteCount(shape: c.shape, type: c.sourceType) ?? 0) / 1048576
        let ty = c.sourceType.name, padded = String(repeating: " ", count: max(0, 6 - ty.count)) + ty
        var s = String(format: "[%4d/%4d] %@ - [%@], type = %@, ", i, n, c.name.padding(toLength: max(36, c.name.count), withPad: " ", startingAt: 0),
                       ne.joined(separator: ", "), padded)
        if c.converts {
            s += String(format: "converting to %@ .. size = %8.2f MiB -> %8.2f MiB", c.type.name, inBytes, Double(c.outputBytes) / 1048576)
        } else {
            s += String(format: "size = %8.3f MiB", inBytes)
        }
        return s
    }

    /// Rows per work item: about 64K values.
    static func chunkRows(n: Int, rows: Int) -> Int {
        max(1, min(rows, 65536 / max(n, 1)))
    }

    /// The row ranges a converted tensor is computed and written in, in order: one per
    /// matrix (`ne1` rows: an expert slice) when the tensor has more than one, else all rows.
    /// Output bytes do not depend on this; memory does (a slice, not all experts).
    static func pieces(_ c: TensorChoice) -> [Range<Int>] {
        let rows = c.shape.dropFirst().reduce(1, *)
        let ne1 = c.shape.count > 1 ? c.shape[1] : 1
        guard c.shape.count > 2, ne1 > 0, rows > ne1 else { return [0..<rows] }
        return stride(from: 0, to: rows, by: ne1).map { $0..<min(rows, $0 + ne1) }
    }

    /// Input bytes released at a time while a tensor is quantized (see `convert`).
    static let releaseBytes = 16 << 20

    /// Output bytes of one piece on the CPU path (at least one chunk of rows).
    static let cpuPieceBytes = 8 << 20

    /// `pieces`, each cut further into runs of whole chunks of at most `cpuPieceBytes` of
    /// output: the CPU path's buffers stay a few MiB (memory, and pages touched once) however
    /// large a tensor is. Output bytes do not depend on this.
    static func cpuPieces(_ c: TensorChoice) -> [Range<Int>] {
        guard let rb = c.type.rowBytes(c.shape[0]), rb > 0 else { return pieces(c) }
        let chunk = chunkRows(n: c.shape[0], rows: Int.max)
        let step = max(chunk, (cpuPieceBytes / rb) / chunk * chunk)
        return pieces(c).flatMap { p in
            stride(from: p.lowerBound, to: p.upperBound, by: step).map { $0..<min(p.upperBound, $0 + step) }
        }
    }

    /// Converts rows `part` (all rows when nil; otherwise within one `ne1`-row matrix, as
    /// `pieces` makes them) of one tensor into its planned type, into `out` from its start;
    /// returns the byte count.
    static func convert(source: TensorSource, index si: Int, choice c: TensorChoice, rows part: Range<Int>? = nil,
                        importance: [Float]?, threads: Int, out: UnsafeMutableRawPointer,
                        scratch: [UnsafeMutablePointer<Float>],
                        allowNonfinite: Bool = false, accelerator: (any QuantAccelerator)? = nil) throws -> Int {
        let n = c.shape[0]
        let allRows = c.shape.dropFirst().reduce(1, *)
        let part = part ?? 0..<allRows
        let rows = part.count, base = part.lowerBound
        let ne1 = c.shape.count > 1 ? c.shape[1] : 1
        let ne2 = c.shape.count > 2 ? c.shape[2] : 1
        guard let rowBytes = c.type.rowBytes(n) else { throw SmeltError("tensor \(c.name): bad row length \(n) for \(c.type.name)") }
        let total = rowBytes * rows
        let kernel = c.type == .f32 ? nil : QuantRegistry.kernel(for: c.type)
        if let acc = accelerator, kernel != nil, acc.supports(c.type) {
            try importance.withUnsafeBufferPointerOpt { imp in
                // a part inside one matrix uses that matrix's slice of the importance
                let whole = rows == allRows
                let w = imp?.baseAddress.map { whole ? $0 : $0 + ((base / max(ne1, 1)) % ne2) * n }
                try acc.quantize(type: c.type, rows: rows, n: n, importance: w, ne1: ne1, ne2: whole ? ne2 : 1,
                                 dst: out) { local, buffer in
                    let range = (base + local.lowerBound)..<(base + local.upperBound)
                    try source.readRows(si, rows: range, into: buffer)
                    // As on the CPU path: NaN or infinity is refused before anything is quantized.
                    if !allowNonfinite, let (i, v) = NonFinite.first(buffer, count: range.count * n) {
                        let o = source.origin(si)
                        throw NonFinite.weightError(file: o.file, tensor: o.tensor, row: range.lowerBound + i / n,
                                                    column: i % n, value: v)
                    }
                    source.release(si, rows: range)
                }
            }
            if rows < allRows { source.release(si, rows: part) }
            return total
        }
        let chunkRows = Self.chunkRows(n: n, rows: rows)
        let nChunks = (rows + chunkRows - 1) / chunkRows
        let workers = max(1, min(threads, nChunks))
        let lock = NSLock()
        var next = 0
        var failure: Error? = nil
        // Input rows are released in runs of about `releaseBytes` once every chunk below them is
        // done, not chunk by chunk: each release is an madvise whose TLB shootdown interrupts the
        // other cores (measured: 17 % of Q8_0's time with a release per 64K-value chunk).
        let chunkInput = max(1, chunkRows * (GGUF.byteCount(shape: [n], type: c.sourceType) ?? 4 * n))
        let releaseEvery = max(1, Self.releaseBytes / chunkInput)
        var chunkDone = [Bool](repeating: false, count: nChunks)
        var doneBelow = 0, releasedBelow = 0
        func rowsOf(chunks: Range<Int>) -> Range<Int> {
            (base + chunks.lowerBound * chunkRows)..<min(part.upperBound, base + chunks.upperBound * chunkRows)
        }
        // bf16 rows mapped in memory into q8_0 / q4_0 directly (no float32 copy, no separate
        // scan): rows the fused kernel leaves (non-finite values…) go through the float path.
        let fusedSource: UnsafeRawPointer? = kernel != nil && c.sourceType == .bf16
            && BF16Rows.supports(c.type, importance: importance != nil) ? source.rawData(si)?.baseAddress : nil
        try importance.withUnsafeBufferPointerOpt { imp in
            let body = { (worker: Int) in
                let scratch: UnsafeMutablePointer<Float>? = kernel == nil ? nil : scratch[worker]
                while true {
                    lock.lock()
                    let ch = next; next += 1
                    let stop = failure != nil
                    lock.unlock()
                    if stop || ch >= nChunks { return }
                    // r0..<r1: rows of the tensor; the output of row r goes to (r - base) in `out`
                    let r0 = base + ch * chunkRows, r1 = min(part.upperBound, r0 + chunkRows)
                    do {
                        if let kernel, let scratch {
                            var f0 = r0
                            if let fusedSource {
                                f0 += BF16Rows.quantize(c.type, src: fusedSource + r0 * n * 2, dst: out + (r0 - base) * rowBytes,
                                                        rows: r1 - r0, n: n)
                            }
                            if f0 < r1 {
                                try source.readRows(si, rows: f0..<r1, into: scratch)
                                if !allowNonfinite, let (i, v) = NonFinite.first(scratch, count: (r1 - f0) * n) {
                                    let o = source.origin(si)
                                    throw NonFinite.weightError(file: o.file, tensor: o.tensor, row: f0 + i / n, column: i % n, value: v)
                                }
                            }
                            for r in f0..<r1 {
                                let w = imp.map { $0.baseAddress! + ((r / ne1) % ne2) * n }
                                kernel.quantizeRow(scratch + (r - f0) * n, out + (r - base) * rowBytes, count: n, importance: w)
                            }
                        } else {
                            let dst = (out + (r0 - base) * rowBytes).assumingMemoryBound(to: Float.self)
                            try source.readRows(si, rows: r0..<r1, into: dst)
                            if !allowNonfinite, let (i, v) = NonFinite.first(dst, count: (r1 - r0) * n) {
                                let o = source.origin(si)
                                throw NonFinite.weightError(file: o.file, tensor: o.tensor, row: r0 + i / n, column: i % n, value: v)
                            }
                        }
                        lock.lock()
                        chunkDone[ch] = true
                        while doneBelow < nChunks && chunkDone[doneBelow] { doneBelow += 1 }
                        var run: Range<Int>? = nil
                        if doneBelow - releasedBelow >= releaseEvery, doneBelow < nChunks {  // the rest: the piece's or tensor's release
                            run = releasedBelow..<doneBelow
                            releasedBelow = doneBelow
                        }
                        lock.unlock()
                        if let run { source.release(si, rows: rowsOf(chunks: run)) }
                    } catch {
                        lock.lock(); if failure == nil { failure = error }; lock.unlock()
                        return
                    }
                }
            }
            if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
            if let failure { throw failure }
        }
        // Once more over the whole slice: a fault in a later chunk can map a large page-cache
        // folio that also covers chunks already released, which would otherwise stay resident
        // until the end of the tensor (measured: ~45 % of a 3-D tensor's input pages).
        if rows < allRows { source.release(si, rows: part) }
        return total
    }
}

extension Optional where Wrapped == [Float] {
    func withUnsafeBufferPointerOpt<R>(_ body: (UnsafeBufferPointer<Float>?) throws -> R) rethrows -> R {
        if let a = self { return try a.withUnsafeBufferPointer { try body($0) } }
        return try body(nil)
    }
}

/// What a device thread's tensor came to: its byte count or its error.
final class DeviceOutcome: @unchecked Sendable {
    var bytes: Int? = nil
    var error: Error? = nil
}

/// Tensors in flight on the device thread, and CPU tensors quantized meanwhile.
final class DeviceCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = 0, beside = 0
    func started() { lock.lock(); pending += 1; lock.unlock() }
    func finished() { lock.lock(); pending -= 1; lock.unlock() }
    func noteCPUTensor() { lock.lock(); if pending > 0 { beside += 1 }; lock.unlock() }
    var besideDevice: Int { lock.lock(); defer { lock.unlock() }; return beside }
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
