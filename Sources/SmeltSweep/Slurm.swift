import Foundation
import SmeltFormats
import SmeltReport
#if canImport(Glibc)
import Glibc
#endif

/// Slurm submission of a sweep: a preparation job (base logits, computed imatrices), a job
/// array of the quants (`smelt sweep run-one FOLDER --index $((SLURM_ARRAY_TASK_ID + P))`) that
/// starts after it succeeds, and a final job that collects the records into the store and writes
/// the report. Tasks write records into the sweep folder, never to SQLite on a shared file system.
public enum SlurmSubmit {
    /// `sbatch` options from the command line.
    public struct Options: Sendable {
        public var partition: String?
        public var time: String?
        public var cpusPerTask: Int?
        public var memory: String?
        public var gres: String?
        public var account: String?
        /// At most this many array tasks at once (`%K`).
        public var maxParallel: Int?
        public var extra: [String] = []
        public var store: String?
        public init() {}
    }

    /// The three scripts, by file name.
    public static func scripts(_ plan: SweepPlan, options o: Options, executable: String) -> [(name: String, text: String)] {
        func header(_ name: String, array: String? = nil) -> String {
            var h = "#!/bin/bash\n#SBATCH --job-name=smelt-\(plan.name)-\(name)\n"
            h += "#SBATCH --output=\(plan.folder)/slurm/\(name)-%A\(array == nil ? "" : "_%a").log\n"
            if let a = array { h += "#SBATCH --array=\(a)\n" }
            if let p = o.partition { h += "#SBATCH --partition=\(p)\n" }
            if let t = o.time { h += "#SBATCH --time=\(t)\n" }
            if let c = o.cpusPerTask { h += "#SBATCH --cpus-per-task=\(c)\n" }
            if let m = o.memory { h += "#SBATCH --mem=\(m)\n" }
            if let g = o.gres { h += "#SBATCH --gres=\(g)\n" }
            if let a = o.account { h += "#SBATCH --account=\(a)\n" }
            for e in o.extra { h += "#SBATCH \(e)\n" }
            return h + "set -euo pipefail\nSMELT=\(quote(executable))\nTHREADS=${SLURM_CPUS_PER_TASK:-$(nproc)}\n"
        }
        let prep = plan.prepJobs
        var prepScript = header("prep")
        for j in prep { prepScript += "\"$SMELT\" sweep run-one \(quote(plan.folder)) --index \(j.index) --threads \"$THREADS\"\n" }
        if prep.isEmpty { prepScript += "true\n" }
        let first = plan.quantJobs.first?.index ?? 0
        let n = plan.quantJobs.count
        let array = "0-\(max(0, n - 1))" + (o.maxParallel.map { "%\($0)" } ?? "")
        var arrayScript = header("quant", array: array)
        arrayScript += "\"$SMELT\" sweep run-one \(quote(plan.folder)) --index $((SLURM_ARRAY_TASK_ID + \(first))) --threads \"$THREADS\"\n"
        var collect = header("collect")
        let store = o.store.map { " --store \(quote($0))" } ?? ""
        collect += "\"$SMELT\" sweep collect \(quote(plan.folder))\(store)\n"
        collect += "\"$SMELT\" report\(store) --base \(quote(URL(fileURLWithPath: plan.model).lastPathComponent)) -o \(quote(plan.folder + "/report.html"))\n"
        return [("prep.sh", prepScript), ("quant.sh", arrayScript), ("collect.sh", collect)]
    }

    static func quote(_ s: String) -> String {
        s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The job ids of a submission (`slurm/jobs.json`).
    public struct Submitted: Codable, Sendable { public var prep: String; public var quant: String; public var collect: String }

    /// Writes the scripts under `FOLDER/slurm/` and submits them with dependencies; returns the job ids.
    public static func submit(_ plan: SweepPlan, options: Options, executable: String) throws -> Submitted {
        let dir = plan.folder + "/slurm"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var paths: [String: String] = [:]
        for (name, text) in scripts(plan, options: options, executable: executable) {
            let u = URL(fileURLWithPath: dir).appendingPathComponent(name)
            let out = try OutputFile(url: u)
            try out.write(Array(text.utf8))
            try out.commit()
            chmod(u.path, 0o755)
            paths[name] = u.path
        }
        let prep = try sbatch(["--parsable", paths["prep.sh"]!])
        let quant = try sbatch(["--parsable", "--dependency=afterok:\(prep)", paths["quant.sh"]!])
        let collect = try sbatch(["--parsable", "--dependency=afterany:\(quant)", paths["collect.sh"]!])
        let s = Submitted(prep: prep, quant: quant, collect: collect)
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let out = try OutputFile(url: URL(fileURLWithPath: dir).appendingPathComponent("jobs.json"))
        try out.write(Array(try e.encode(s)))
        try out.commit()
        return s
    }

    /// Runs `sbatch ARGS` and returns the job id it prints (`--parsable`: `ID[;cluster]`).
    static func sbatch(_ args: [String]) throws -> String {
        let (status, out, err) = try run("sbatch", args)
        guard status == 0, let id = out.split(separator: ";").first.map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }), !id.isEmpty else {
            throw SmeltError("sbatch \(args.last ?? ""): \(err.split(separator: "\n").first.map(String.init) ?? "exit status \(status)")")
        }
        return id
    }

    /// Runs a program found on the PATH; a missing program is one clear error.
    static func run(_ program: String, _ args: [String]) throws -> (Int32, String, String) {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/\(program)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw SmeltError("\(program) is not on the PATH (is this a Slurm cluster? use smelt sweep run to run here)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    /// Per job: done / failed / pending from the records, and the Slurm states of a submission.
    public static func status(_ plan: SweepPlan) throws -> String {
        var s = ""
        let jobsFile = plan.folder + "/slurm/jobs.json"
        if let d = FileManager.default.contents(atPath: jobsFile), let sub = try? JSONDecoder().decode(Submitted.self, from: d) {
            s += "slurm jobs: prep \(sub.prep), quants \(sub.quant), collect \(sub.collect)\n"
            if let (st, out, _) = try? run("squeue", ["-h", "-j", "\(sub.prep),\(sub.quant),\(sub.collect)", "-o", "%i %T %R"]), st == 0 {
                s += out.isEmpty ? "squeue: none of them is queued or running\n" : out.split(separator: "\n").map { "squeue: \($0)\n" }.joined()
            }
            if let (st, out, _) = try? run("sacct", ["-n", "-P", "-j", "\(sub.prep),\(sub.quant),\(sub.collect)", "-o", "JobID,State,ExitCode"]),
               st == 0, !out.isEmpty {
                s += out.split(separator: "\n").map { "sacct: \($0)\n" }.joined()
            }
        }
        var done = 0, failed = 0
        for j in plan.jobs {
            let state: String
            if SweepRunner.isDone(j, plan: plan, store: nil) { state = "done"; done += 1 }
            else if let lines = try? RecordLine.read(URL(fileURLWithPath: plan.recordFile(j))), let f = lines.last(where: { $0.run?.status == "failed" }) {
                state = "FAILED: \(f.run?.error ?? "")"; failed += 1
            } else { state = "pending" }
            s += String(format: "%4d  ", j.index) + j.id + "  " + state + "\n"
        }
        s += "\(done) done, \(failed) failed, \(plan.jobs.count - done - failed) pending of \(plan.jobs.count)\n"
        return s
    }
}
