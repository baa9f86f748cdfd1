import CMPI
import Foundation
import Winnow
import WinnowCommands

// winnow-mpi: `mpirun -np N winnow-mpi COMMAND ...` with COMMAND one of
//   score, predict  every rank scores its shard (--shard RANK/N); rank 0 gathers the shard outputs over
//                   MPI and merges them into --out, the file one process writes;
//   train           data-parallel: each rank takes its slice of every global batch, gradients are summed
//                   with MPI_Allreduce, and rank 0 writes the run folder.
// Built with `swift build --traits MPI` (Open MPI from Debian's libopenmpi-dev); without the trait it
// only explains how to get it.

final class MPIGroup: ProcessGroup, @unchecked Sendable {
    let rank = Int(wmpi_rank()), size = Int(wmpi_size())
    func allReduceSum(_ x: UnsafeMutablePointer<Float>, count: Int) { wmpi_allreduce_float(x, Int64(count)) }
    func allReduceSum(_ x: UnsafeMutablePointer<Double>, count: Int) { wmpi_allreduce_double(x, Int64(count)) }
}

func fail(_ message: String) -> Never {
    printError("winnow-mpi: error: \(message)")
    if wmpi_available() != 0 && wmpi_size() > 1 { wmpi_abort(1) }
    exit(1)
}

/// The value of `--name VALUE` or `--name=VALUE`.
func option(_ args: [String], _ name: String) -> String? {
    for (i, a) in args.enumerated() {
        if a == name, i + 1 < args.count { return args[i + 1] }
        if a.hasPrefix(name + "=") { return String(a.dropFirst(name.count + 1)) }
    }
    return nil
}

/// The values of every `--name VALUE` and `--name=VALUE`.
func options(_ args: [String], _ name: String) -> [String] {
    var out: [String] = []
    for (i, a) in args.enumerated() {
        if a == name, i + 1 < args.count { out.append(args[i + 1]) }
        if a.hasPrefix(name + "=") { out.append(String(a.dropFirst(name.count + 1))) }
    }
    return out
}

/// Runs a score or predict command on this rank's shard and merges all shards at rank 0. The command's
/// checks (the real --out included) run first on rank 0; each rank writes its shard beside --out
/// (`.OUT.rank-R-of-N.EXT`, with its resumable parts), so that `--resume` after a failure continues every
/// rank's parts; they are removed once the merged file is written. The exit status is the worst rank's.
func sharded(_ args: [String], group: MPIGroup) -> Int32 {
    // A usage error every rank finds alike: said once (by rank 0), exit 2 everywhere.
    func usage(_ message: String) -> Int32 {
        if group.rank == 0 { printError("winnow-mpi: error: \(message)") }
        return 2
    }
    let outs = options(args, "--out")
    guard let out = outs.first else { return usage("\(args[0]) needs --out") }
    if outs.count > 1 { return usage("--out is given \(outs.count) times; give it once") }
    if option(args, "--shard") != nil { return usage("do not give --shard under MPI: each rank scores shard RANK/N") }
    if args[0] == "score", args.count > 1, let m = ScoreMethod(rawValue: args[1]), m.readsDynamics || option(args, "--test") != nil {
        return usage("\(m.readsDynamics ? m.rawValue : "tracin --test") is not split across ranks (only per-example gradient and output scores are); "
                     + "run `winnow \(args.prefix(2).joined(separator: " ")) ...` in one process")
    }
    var invalid = [Double(group.rank == 0 ? (WinnowMain.check(arguments: args) ?? 0) : 0)]
    group.allReduceSum(&invalid, count: 1)
    if invalid[0] != 0 { return Int32(invalid[0]) }
    let outURL = URL(fileURLWithPath: out)
    // The shards' extension follows the format they are written in (--format, else --out's extension), so that the merge reads them so.
    let named = outURL.pathExtension.lowercased()
    let ext = options(args, "--format").last ?? (["csv", "jsonl", "npy"].contains(named) ? named : "csv")
    let folder = outURL.deletingLastPathComponent()
    let mine = folder.appendingPathComponent(".\(outURL.lastPathComponent).rank-\(group.rank)-of-\(group.size).\(ext)")
    if args.contains("--resume") && group.rank == 0 {
        // Parts saved under another number of ranks cannot be continued by this one.
        let stem = ".\(outURL.lastPathComponent).rank-"
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasPrefix(stem) && $0.hasSuffix(".parts") && !$0.contains("-of-\(group.size).") }
        if let o = others.first, let n = o.components(separatedBy: "-of-").last?.split(separator: ".").first {
            fail("the parts beside \(out) were saved by \(n) ranks (\(o)); resume them with `mpirun -np \(n)`, or rerun without --resume")
        }
    }
    // Only the value of --out changes (another argument may equal it).
    var local = args
    if let i = local.firstIndex(of: "--out"), i + 1 < local.count { local[i + 1] = mine.path }
    else if let i = local.firstIndex(where: { $0.hasPrefix("--out=") }) { local[i] = "--out=" + mine.path }
    local += ["--shard", "\(group.rank)/\(group.size)"]
    let own = WinnowMain.run(arguments: local)
    var status = [Double(own != 0 ? 1 : 0), Double(own == 2 ? 1 : 0)]
    group.allReduceSum(&status, count: 2)
    if status[0] != 0 {
        if group.rank == 0 {
            printError("winnow-mpi: a rank failed; nothing written to \(out)"
                       + (args[0] == "score" && status[1] == 0 ? " (after an interruption, rerun with --resume to continue the ranks' saved parts)" : ""))
        }
        return status[1] != 0 ? 2 : 1
    }
    let bytes = (try? Data(contentsOf: mine)) ?? Data()
    var sizes = [Int64](repeating: 0, count: group.size)
    var gathered: UnsafeMutableRawPointer? = nil
    let rc = bytes.withUnsafeBytes { wmpi_gather_bytes($0.baseAddress, Int64(bytes.count), &sizes, &gathered) }
    guard rc == 0 else { fail("gathering the shard outputs failed") }
    var merged = [0.0]
    if group.rank == 0, let gathered {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("winnow-mpi-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        var files: [URL] = [], problem: String? = nil
        var offset = 0
        for (r, n) in sizes.enumerated() where problem == nil {
            let f = tmp.appendingPathComponent("gathered-\(r).\(ext)")
            do { try Data(bytes: gathered + offset, count: Int(n)).write(to: f) } catch { problem = "cannot write \(f.path): \(error)" }
            files.append(f)
            offset += Int(n)
        }
        free(gathered)
        if problem == nil { do { try ShardMerge.merge(files, to: outURL) } catch { problem = "\(error)" } }
        try? FileManager.default.removeItem(at: tmp)   // before fail(), which exits
        if let problem { fail(problem) }
        printError("winnow-mpi: merged \(group.size) shard(s) into \(out)")
        // The whole file's predictions: the learning check each shard skipped.
        if args[0] == "predict", let warning = WinnowMain.learnedNothingWarning(predictions: outURL, data: option(args, "--data") ?? "the data") {
            printError(warning)
        }
        merged[0] = 1
    }
    // Once the merged file is written, every rank removes its shard, its manifest and its parts.
    group.allReduceSum(&merged, count: 1)
    if merged[0] > 0 {
        for u in [mine, ShardMerge.manifestURL(mine), URL(fileURLWithPath: mine.path + ".parts")] { try? FileManager.default.removeItem(at: u) }
    }
    return 0
}

var args = Array(CommandLine.arguments.dropFirst())
guard wmpi_available() != 0 else {
    printError("winnow-mpi: built without MPI. Install Open MPI (bash scripts/setup.sh installs libopenmpi-dev) and build with "
               + "`swift build -c release --traits MPI --product winnow-mpi`, then run `mpirun -np N .build/release/winnow-mpi COMMAND ...`.")
    exit(1)
}
guard wmpi_init() == 0 else { fail("MPI_Init failed") }
WinnowMain.tuneAllocator()
let group = MPIGroup()
Distributed.group = group
var status: Int32
let asksHelp = args.contains("--help") || args.contains("-h")
switch args.first {
case let command? where asksHelp && ["score", "predict", "train"].contains(command):
    // The command's own help, printed once (by rank 0), not once per rank.
    status = group.rank == 0 ? WinnowMain.run(arguments: args) : 0
case "score", "predict":
    status = group.size > 1 ? sharded(args, group: group) : WinnowMain.run(arguments: args)
case "train":
    status = WinnowMain.run(arguments: args)
case "--version":
    if group.rank == 0 { print(winnowVersion) }
    status = 0
case nil, "--help", "-h", "help":
    if group.rank == 0 { print("usage: mpirun -np N winnow-mpi score|predict|train OPTIONS (see `winnow COMMAND --help`)") }
    status = 0
default:
    if group.rank == 0 { printError("winnow-mpi: runs score, predict and train across ranks; run `winnow \(args[0])` in one process") }
    status = 2
}
wmpi_finalize()
exit(status)
