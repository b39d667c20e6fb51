import ArgumentParser
import Foundation
import SmeltFormats
import SmeltReport
import SmeltStore
import SmeltSweep

/// `smelt sweep plan|run|run-one|submit|collect|status`: many quants of one model, evaluated
/// against one base, locally or as a Slurm job array, into one store (docs/SWEEPS.md).
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Plan and run a sweep of quants (presets × recipes × budgets × imatrices) here or on Slurm.",
        discussion: "The sweep file format and examples: docs/SWEEPS.md.",
        subcommands: [Plan.self, Run.self, RunOne.self, Submit.self, Collect.self, Status.self])

    static func plan(_ file: String, store: ResultsStore?) throws -> SweepPlan {
        try SweepPlan.make(try SweepFile.load(URL(fileURLWithPath: file)), store: store)
    }

    /// A sweep named by its file (plans it) or by its folder (reads plan.json).
    static func existingPlan(_ fileOrFolder: String, store: ResultsStore?) throws -> SweepPlan {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: fileOrFolder, isDirectory: &isDir), isDir.boolValue {
            return try SweepPlan.read(folder: fileOrFolder)
        }
        return try plan(fileOrFolder, store: store)
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the jobs of a sweep file (id, dependencies, estimated size and time).")
        @Argument(help: "The sweep file (YAML).") var file: String
        @OptionGroup var location: ResultsCommand.Location
        @Flag(help: "Print the plan as JSON.") var json = false
        func run() throws {
            try reportingErrors {
                let p = try SweepCommand.plan(file, store: try? location.open())
                if json {
                    let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try e.encode(p), as: UTF8.self))
                } else { print(p.table(), terminator: "") }
            }
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a sweep on this machine: N jobs at a time, results into the store; reruns skip what is done.")
        @Argument(help: "The sweep file (YAML).") var file: String
        @Option(name: [.customShort("j"), .long], help: "Jobs at a time.") var jobs = 1
        @Option(name: [.short, .long], help: "Threads in all, split between the jobs (default: all cores).") var threads: Int?
        @Option(help: "Quant files to keep once evaluated: none, frontier (the Pareto frontiers), all.") var keep = "all"
        @OptionGroup var location: ResultsCommand.Location
        func run() throws {
            try reportingErrors {
                guard let k = SweepRunner.Keep(rawValue: keep.lowercased()) else { throw SmeltError("--keep: none, frontier or all (got '\(keep)')") }
                guard jobs >= 1, jobs <= 256 else { throw SmeltError("--jobs must be 1…256") }
                let store = try location.open()
                let p = try SweepCommand.plan(file, store: store)
                try p.write()
                let total = threads ?? ProcessInfo.processInfo.activeProcessorCount
                let s = try SweepRunner.run(p, store: store, jobs: jobs, threads: total, keep: k,
                                            progress: SweepProgress(plan: p, workers: jobs))
                if let g = try? Report.select(try Report.groups(store), base: URL(fileURLWithPath: p.model).lastPathComponent) {
                    print(try g.render(.terminal), terminator: "")
                }
                if s.failed > 0 { throw SmeltError("\(s.failed) of \(p.jobs.count) sweep jobs failed: \(s.failures.joined(separator: "; "))") }
            }
        }
    }

    struct RunOne: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run-one",
            abstract: "Run one job of a planned sweep (what each Slurm array task runs); records go to the sweep folder.")
        @Argument(help: "The sweep folder (with plan.json) or the sweep file.") var sweep: String
        @Option(help: "The job's index in the plan.") var index: Int
        @Option(name: [.short, .long], help: "Threads (default: all cores).") var threads: Int?
        @Flag(help: "Run the job even when its result is already recorded.") var force = false
        func run() throws {
            try reportingErrors {
                let p = try SweepCommand.existingPlan(sweep, store: nil)
                try SweepRunner.runOne(p, index: index, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount, force: force) {
                    FileHandle.standardError.write(Data(($0 + "\n").utf8))
                }
            }
        }
    }

    struct Submit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a sweep to Slurm: a preparation job, a job array of the quants (afterok), a collect-and-report job.")
        @Argument(help: "The sweep file (YAML).") var file: String
        @Flag(help: "Slurm (the only scheduler Smelt submits to).") var slurm = false
        @Option(help: "sbatch --partition.") var partition: String?
        @Option(help: "sbatch --time.") var time: String?
        @Option(help: "sbatch --cpus-per-task (also the threads of each job).") var cpusPerTask: Int?
        @Option(help: "sbatch --mem.") var mem: String?
        @Option(help: "sbatch --gres (e.g. gpu:1).") var gres: String?
        @Option(help: "sbatch --account.") var account: String?
        @Option(help: "At most this many array tasks at once (--array=0-N%K).") var maxParallel: Int?
        @Option(help: "Extra #SBATCH line (repeatable), e.g. --sbatch '--qos=low'.") var sbatch: [String] = []
        @Flag(help: "Print the scripts and the sbatch commands; submit nothing.") var dryRun = false
        @OptionGroup var location: ResultsCommand.Location
        func run() throws {
            try reportingErrors {
                guard slurm else { throw SmeltError("say where to submit: --slurm (Smelt runs no scheduler of its own; smelt sweep run runs here)") }
                let p = try SweepCommand.plan(file, store: try? location.open())
                var o = SlurmSubmit.Options()
                o.partition = partition; o.time = time; o.cpusPerTask = cpusPerTask; o.memory = mem; o.gres = gres
                o.account = account; o.maxParallel = maxParallel; o.extra = sbatch; o.store = location.store
                if dryRun {
                    for (name, text) in SlurmSubmit.scripts(p, options: o, executable: SweepRunner.executable) {
                        print("# \(p.folder)/slurm/\(name)\n\(text)")
                    }
                    print("# sbatch --parsable \(p.folder)/slurm/prep.sh → PREP\n# sbatch --parsable --dependency=afterok:PREP \(p.folder)/slurm/quant.sh → ARRAY\n# sbatch --parsable --dependency=afterany:ARRAY \(p.folder)/slurm/collect.sh")
                    return
                }
                try p.write()
                let s = try SlurmSubmit.submit(p, options: o, executable: SweepRunner.executable)
                print("submitted: prep \(s.prep), quants \(s.quant) (\(p.quantJobs.count) array tasks), collect \(s.collect); smelt sweep status \(p.folder)")
            }
        }
    }

    struct Collect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move the records of a sweep's jobs into the store.")
        @Argument(help: "The sweep folder (with plan.json) or the sweep file.") var sweep: String
        @OptionGroup var location: ResultsCommand.Location
        func run() throws {
            try reportingErrors {
                let store = try location.open()
                let p = try SweepCommand.existingPlan(sweep, store: store)
                let n = try SweepRunner.collect(p, store: store)
                print("collected \(n) runs of sweep \(p.name) into \(store.url.path)")
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each job's state (records, squeue/sacct for a Slurm submission).")
        @Argument(help: "The sweep folder (with plan.json) or the sweep file.") var sweep: String
        func run() throws {
            try reportingErrors {
                print(try SlurmSubmit.status(try SweepCommand.existingPlan(sweep, store: nil)), terminator: "")
            }
        }
    }
}
