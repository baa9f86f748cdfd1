import ArgumentParser
import Foundation
import Winnow

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write the self-contained HTML report of an experiment folder (inline SVG, no network).")

    @Option(help: "Experiment folder written by `winnow experiment`.") var experiment: String
    @Option(help: "HTML file to write (default: EXPERIMENT/report.html).") var out: String?

    func run() throws {
        let dir = URL(fileURLWithPath: experiment)
        let url = URL(fileURLWithPath: out ?? dir.appendingPathComponent("report.html").path)
        try ExperimentReport(dir: dir).write(to: url)
        print("report: \(url.path)")
    }
}
