import ArgumentParser
import Foundation
import Winnow

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the self-contained HTML report of an experiment folder (inline SVG, no network).")

    @Option(help: "Experiment folder written by `winnow experiment`.") var experiment: String
    @Option(help: "HTML file to write (default: EXPERIMENT/report.html).") var out: String?

    func validate() throws {
        // Inside the experiment folder, an existing file other than an HTML page is the experiment's own.
        guard let out else { return }
        let dir = URL(fileURLWithPath: experiment).standardizedFileURL.resolvingSymlinksInPath().path
        let o = URL(fileURLWithPath: out).standardizedFileURL.resolvingSymlinksInPath()
        if o.path.hasPrefix(dir + "/") && o.pathExtension.lowercased() != "html" && FileManager.default.fileExists(atPath: o.path) {
            throw ValidationError("--out \(out) is a file of the experiment folder; write the report elsewhere (or to its report.html)")
        }
        // Anywhere, an existing file that is not an HTML page (the experiment's training or test file, say) is not replaced.
        if o.pathExtension.lowercased() != "html" && o.pathExtension.lowercased() != "htm" && FileManager.default.fileExists(atPath: o.path) {
            throw ValidationError("--out \(out) exists and is not an HTML page; write the report to a new file or an .html path")
        }
        try refuseOverwriting(out, inputs: [])
    }

    func run() throws {
        let dir = URL(fileURLWithPath: experiment)
        let url = URL(fileURLWithPath: out ?? dir.appendingPathComponent("report.html").path)
        try ExperimentReport(dir: dir).write(to: url)
        print("report: \(url.path)")
    }
}
