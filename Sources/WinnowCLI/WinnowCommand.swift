import ArgumentParser

struct WinnowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "winnow",
        abstract: "Score how much each training example matters, and prune, sample or reweight training data.",
        subcommands: [TrainCommand.self, EvalCommand.self, PredictCommand.self, ScoreCommand.self, PruneCommand.self, MergeCommand.self, ExperimentCommand.self, PretrainCommand.self, ReportCommand.self, InspectCommand.self, BenchCommand.self]
    )
}
