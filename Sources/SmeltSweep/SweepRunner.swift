import Foundation
import SmeltFormats
import SmeltReport
import SmeltStore
#if canImport(Glibc)
import Glibc
#endif

/// Runs sweep jobs: one job in this process's child `smelt` commands (`run-one`, what a
/// Slurm array task runs), or the whole sweep with a bounded pool of such processes.
public enum SweepRunner {
    /// The `smelt` executable running now (children run the same binary).
    public static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    // MARK: one job

    /// Runs job `index` of the plan: its steps as child `smelt` processes, each recording into
    /// the job's record file (written anew). A failing step records a failed run with its
    /// error and ends the job (an error naming the job and the step).
    public static func runOne(_ plan: SweepPlan, index: Int, threads: Int, force: Bool = false,
                              log: (String) -> Void = { _ in }) throws {
        guard plan.jobs.indices.contains(index) else {
            throw SmeltError("\(plan.planFile.path): no job \(index) (the sweep has \(plan.jobs.count) jobs, 0…\(plan.jobs.count - 1))")
        }
        let job = plan.jobs[index]
        if !force && isDone(job, plan: plan, store: nil) {
            log("[\(job.id)] already done (its record is in \(plan.recordFile(job)))")
            return
        }
        for d in job.dependsOn {
            guard let dep = plan.jobs.first(where: { $0.id == d }), isDone(dep, plan: plan, store: nil) else {
                throw SmeltError("sweep job \(job.id): its dependency \(d) has no result yet")
            }
        }
        let record = plan.recordFile(job)
        try? FileManager.default.createDirectory(atPath: plan.recordsFolder, withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: plan.folder + "/models", withIntermediateDirectories: true)
        unlink(record)
        for (n, step) in job.steps.enumerated() {
            let args = step.map { $0 == "{threads}" ? String(max(1, threads)) : $0 == "{record}" ? record : $0 }
            log("[\(job.id)] smelt \(args.joined(separator: " "))")
            let (status, lastError) = try runSmelt(args, environment: ["SMELT_SWEEP_JOB": job.key])
            if status != 0 {
                let message = lastError ?? "exit status \(status)"
                var r = RunRecord(kind: kind(of: args), startedAt: Date(), smeltVersion: SmeltVersion.string, host: Machine.hostName,
                                  cpu: Machine.cpuModel, commandLine: ([executable] + args).joined(separator: " "))
                r.status = "failed"
                r.error = message
                r.sweepJob = job.key
                try RecordLine.append([RecordLine(run: r)], to: URL(fileURLWithPath: record))
                throw SmeltError("sweep job \(job.id), step \(n + 1) (smelt \(args[0])): \(message)")
            }
        }
    }

    static func kind(of args: [String]) -> RunKind {
        switch args.first {
        case "quantize": return .quantize
        case "imatrix": return .imatrix
        case "perplexity": return args.contains("--kl-divergence") ? .klDivergence : .perplexity
        default: return .sensitivity
        }
    }

    /// Runs `smelt ARGS`, passing its output through; returns the status and its last `error:` line.
    static func runSmelt(_ args: [String], environment: [String: String]) throws -> (Int32, String?) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch { throw SmeltError("cannot run \(executable): \(error.localizedDescription)") }
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let last = text.split(separator: "\n").last { $0.hasPrefix("error: ") }.map { String($0.dropFirst(7)) }
        return (p.terminationStatus, last)
    }

    /// The run that completes a job (KLD for a quant, the base perplexity run, the imatrix run).
    static func finalKind(_ j: SweepJob) -> RunKind {
        switch j.kind { case .base: return .perplexity; case .imatrix: return .imatrix; case .quant: return .klDivergence }
    }

    /// Whether a job's result is there: in its record file, or in the store (by the job's key).
    public static func isDone(_ j: SweepJob, plan: SweepPlan, store: ResultsStore?) -> Bool {
        if let lines = try? RecordLine.read(URL(fileURLWithPath: plan.recordFile(j))),
           lines.contains(where: { $0.run?.kind == finalKind(j) && $0.run?.status == "ok" && $0.run?.sweepJob == j.key }),
           j.kind == .quant || FileManager.default.fileExists(atPath: j.output) {
            return true
        }
        if let store, let runs = try? store.runs(sweepJob: j.key),
           runs.contains(where: { $0.kind == finalKind(j) && $0.status == "ok" }),
           j.kind == .quant || FileManager.default.fileExists(atPath: j.output) {
            return true
        }
        return false
    }

    // MARK: collecting

    /// Moves the records of the plan's jobs into the store (each run once: runs already
    /// there for the same job, kind and start time are skipped). KL-divergence runs get the
    /// base model and text of the run that wrote their base file. Returns the runs added.
    @discardableResult
    public static func collect(_ plan: SweepPlan, store: ResultsStore) throws -> Int {
        var added = 0
        // Preparation jobs first, so that KLD runs find the run that wrote their base file.
        for j in plan.prepJobs + plan.quantJobs {
            let url = URL(fileURLWithPath: plan.recordFile(j))
            guard FileManager.default.fileExists(atPath: url.path) else { continue }
            let lines = try RecordLine.read(url)
            let existing = try store.runs(sweepJob: j.key)
            for l in lines {
                if let p = l.plan { try store.savePlan(p) }
                guard var r = l.run else { continue }
                if existing.contains(where: { $0.kind == r.kind && abs($0.startedAt.timeIntervalSince(r.startedAt)) < 0.001 }) { continue }
                r.sweepJob = r.sweepJob ?? j.key
                if r.kind == .klDivergence, r.baseModel == nil, let b = r.base, let writer = try store.runWritingBase(key: b.key) {
                    r.baseModel = writer.model
                    r.text = r.text ?? writer.text
                    r.textTokens = r.textTokens ?? writer.textTokens
                }
                r.id = nil
                try store.record(r)
                added += 1
            }
        }
        return added
    }

    // MARK: the whole sweep on this machine

    /// What `run` did.
    public struct Summary: Sendable {
        public var done = 0, skipped = 0, failed = 0
        public var failures: [String] = []
        public var seconds = 0.0
    }

    /// Which outputs to keep once evaluated.
    public enum Keep: String, CaseIterable, Sendable { case none, frontier, all }

    /// Runs every job not already done with at most `jobs` at once (threads split between
    /// them), collecting each finished job into the store; a failed job is recorded and the
    /// others go on (jobs that depend on it are not started).
    public static func run(_ plan: SweepPlan, store: ResultsStore, jobs: Int, threads: Int, keep: Keep,
                           progress: SweepProgress) throws -> Summary {
        var summary = Summary()
        let start = Date()
        let perJob = max(1, threads / max(1, jobs))
        var state: [String: String] = [:]   // id -> done | failed | running
        for j in plan.jobs where isDone(j, plan: plan, store: store) {
            state[j.id] = "done"
            summary.skipped += 1
        }
        try collect(plan, store: store)
        progress.begin(total: plan.jobs.count, skipped: summary.skipped)
        final class Mailbox: @unchecked Sendable {
            let lock = NSCondition()
            var items: [(SweepJob, Int32, String?, Double)] = []
            func post(_ x: (SweepJob, Int32, String?, Double)) { lock.lock(); items.append(x); lock.signal(); lock.unlock() }
            func take(waiting: Bool) -> [(SweepJob, Int32, String?, Double)] {
                lock.lock(); defer { lock.unlock() }
                if waiting && items.isEmpty { _ = lock.wait(until: Date().addingTimeInterval(1)) }
                let out = items; items.removeAll(); return out
            }
        }
        let mailbox = Mailbox()
        var running = 0
        func launch(_ j: SweepJob) {
            running += 1
            state[j.id] = "running"
            progress.started(j)
            let t0 = Date()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["sweep", "run-one", plan.folder, "--index", String(j.index), "--threads", String(perJob)]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            do { try p.run() } catch {
                mailbox.post((j, 127, "cannot start \(executable): \(error.localizedDescription)", 0))
                return
            }
            DispatchQueue(label: "smelt.sweep.\(j.id)").async {
                let data = err.fileHandleForReading.readDataToEndOfFile()
                p.waitUntilExit()
                let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last { $0.hasPrefix("error: ") }
                mailbox.post((j, p.terminationStatus, last.map { String($0.dropFirst(7)) }, Date().timeIntervalSince(t0)))
            }
        }
        while true {
            // Start what is ready.
            for (j, status, err, secs) in mailbox.take(waiting: false) {
                running -= 1
                do { try collect(plan, store: store) } catch { progress.note("collecting \(j.id): \((error as? SmeltError)?.message ?? "\(error)")") }
                if status == 0 && isDone(j, plan: plan, store: store) {
                    state[j.id] = "done"
                    summary.done += 1
                    let kld = (try? store.runs(sweepJob: j.key).last { $0.kind == .klDivergence })?.flatMap { ResultsText.figure($0) }
                    progress.finished(j, seconds: secs, figure: kld)
                    if keep == .none, j.kind == .quant { unlink(j.output) }
                } else {
                    state[j.id] = "failed"
                    summary.failed += 1
                    summary.failures.append("\(j.id): \(err ?? "exit status \(status)")")
                    progress.failed(j, error: err ?? "exit status \(status)")
                }
            }
            var startedAny = false
            for j in plan.jobs where state[j.id] == nil && running < max(1, jobs) {
                if j.dependsOn.contains(where: { state[$0] == "failed" }) {
                    state[j.id] = "failed"
                    summary.failed += 1
                    let why = "dependency \(j.dependsOn.first { state[$0] == "failed" } ?? "?") failed"
                    summary.failures.append("\(j.id): \(why)")
                    progress.failed(j, error: why)
                    continue
                }
                guard j.dependsOn.allSatisfy({ state[$0] == "done" }) else { continue }
                launch(j)
                startedAny = true
            }
            if running == 0 && !startedAny {
                if plan.jobs.allSatisfy({ state[$0.id] == "done" || state[$0.id] == "failed" }) { break }
                // Nothing can start (should not happen: dependencies come first).
                break
            }
            let arrived = mailbox.take(waiting: true)
            if !arrived.isEmpty { mailbox.lock.lock(); mailbox.items.insert(contentsOf: arrived, at: 0); mailbox.lock.unlock() }
            progress.tick()
        }
        if keep == .frontier { try prune(plan, store: store) }
        summary.seconds = Date().timeIntervalSince(start)
        progress.end(summary)
        return summary
    }

    /// Deletes the quants of the sweep that are on neither Pareto frontier of its report group.
    public static func prune(_ plan: SweepPlan, store: ResultsStore) throws {
        let groups = try Report.groups(store)
        var keep = Set<String>()
        for g in groups { for r in g.rows where r.frontierMean || r.frontierP99_9 { keep.insert(r.modelKey) } }
        for j in plan.quantJobs {
            guard FileManager.default.fileExists(atPath: j.output),
                  let kld = try store.runs(sweepJob: j.key).last(where: { $0.kind == .klDivergence }), let m = kld.model else { continue }
            if !keep.contains(m.key) { unlink(j.output) }
        }
    }
}

/// The sweep's progress: a line per finished job (logs), and on a terminal a status line
/// with counts and the ETA from the jobs' estimates, corrected by the measured pace.
public final class SweepProgress: @unchecked Sendable {
    let isTTY = isatty(2) != 0
    var total = 0, completed = 0, failedCount = 0
    var remainingEstimate = 0.0, start = Date()
    var estimateDone = 0.0, actualDone = 0.0
    var runningJobs: [String: SweepJob] = [:]
    var plan: SweepPlan?
    let workers: Int

    public init(plan: SweepPlan, workers: Int) { self.plan = plan; self.workers = workers }

    func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
    func clear() { if isTTY { write("\r\u{1B}[K") } }

    func begin(total: Int, skipped: Int) {
        self.total = total
        completed = skipped
        remainingEstimate = plan?.jobs.reduce(0) { $0 + $1.estimatedSeconds } ?? 0
        write("sweep: \(total) jobs, \(skipped) already done, \(workers) at a time\n")
    }
    func started(_ j: SweepJob) { runningJobs[j.id] = j; tick() }
    func finished(_ j: SweepJob, seconds: Double, figure: String?) {
        runningJobs[j.id] = nil
        completed += 1
        estimateDone += j.estimatedSeconds
        actualDone += seconds
        clear()
        write(String(format: "[%d/%d] %@ done in %@%@ · ETA %@\n", completed + failedCount, total, j.id,
                     SweepPlan.duration(seconds), figure.map { ": " + $0 } ?? "", eta()))
    }
    func failed(_ j: SweepJob, error: String) {
        runningJobs[j.id] = nil
        failedCount += 1
        clear()
        write("[\(completed + failedCount)/\(total)] \(j.id) FAILED: \(error)\n")
    }
    func note(_ s: String) { clear(); write("sweep: \(s)\n") }
    func eta() -> String {
        guard let plan else { return "?" }
        let pace = estimateDone > 0 ? actualDone / estimateDone : 1
        let left = plan.jobs.filter { runningJobs[$0.id] != nil }.reduce(0) { $0 + $1.estimatedSeconds / 2 }
        let pending = Double(max(0, total - completed - failedCount - runningJobs.count))
        let avg = plan.jobs.isEmpty ? 0 : plan.jobs.reduce(0) { $0 + $1.estimatedSeconds } / Double(plan.jobs.count)
        return SweepPlan.duration((left + pending * avg) * pace / Double(max(1, workers)))
    }
    func tick() {
        guard isTTY else { return }
        write(String(format: "\r\u{1B}[Ksweep: %d/%d done, %d failed, running %@ · ETA %@", completed, total, failedCount,
                     runningJobs.keys.sorted().joined(separator: ", "), eta()))
    }
    func end(_ s: SweepRunner.Summary) {
        clear()
        write("sweep: \(s.done) done, \(s.skipped) already done, \(s.failed) failed in \(SweepPlan.duration(s.seconds))\n")
    }
}
