import ArgumentParser
import Foundation
import Winnow

// The library's option types as command-line arguments: parsed once, at the boundary, so a bad value
// is a usage error (exit 2) before any file is read. Enumerations list their values in --help.

extension ScoreMethod: ExpressibleByArgument {}
extension ArithmeticPrecision: ExpressibleByArgument {}
extension ScoreWriter.Format: ExpressibleByArgument {}
extension GradientSpace: ExpressibleByArgument {}
extension VoGTarget: ExpressibleByArgument {}
extension Similarity: ExpressibleByArgument {}
extension TargetInfluence.Aggregate: ExpressibleByArgument {}
extension Normalization: ExpressibleByArgument {}
extension SelectionOptions.Preference: ExpressibleByArgument {}
extension SelectionOptions.Sampling: ExpressibleByArgument {}

/// The end a tie-break prefers (`prune --then-select`): the two preferences that rank by a score.
enum TieEnd: String, CaseIterable, ExpressibleByArgument {
    case hard, easy
    var preference: SelectionOptions.Preference { self == .hard ? .hard : .easy }
}
extension Optimizer.Kind: ExpressibleByArgument {}
extension LMObjective: ExpressibleByArgument {}
extension PresenceOptions.Reweight: ExpressibleByArgument {}
extension PresenceOptions.Scale: ExpressibleByArgument {}
extension BertConfig.Head: ExpressibleByArgument {}

extension CheckpointSelection: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { description }
}

extension ParameterSelection.Spec: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
    public var defaultValueDescription: String { description }
}

/// Parses `--shard I/N`, keeping the reason a bad value is refused (`ExpressibleByArgument` would drop it).
func parseShard(_ s: String) throws -> Shard {
    do { return try Shard(parsing: s) } catch let e as WinnowError { throw ValidationError(cliMessage(e)) }
}

/// Parses a comma-separated list of `T` (experiment options); a bad item is a usage error naming it.
func commaList<T: ExpressibleByArgument>(_ s: String) throws -> [T] {
    let words = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard !words.isEmpty else { throw ValidationError("give at least one value") }
    return try words.map { w in
        guard let v = T(argument: w) else {
            let choices = T.allValueStrings.isEmpty ? "" : " (one of \(T.allValueStrings.joined(separator: ", ")))"
            throw ValidationError("'\(w)' is not a valid value\(choices)")
        }
        return v
    }
}

/// A library error as the one line `winnow` prints: options are named as flags (`maxLength` becomes
/// `--max-length`).
func cliMessage(_ e: WinnowError) -> String {
    // One line, whatever the message quotes (a chat template's exception, a file's text): breaks written as \n.
    func oneLine(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) else { return s }
        return s.replacingOccurrences(of: "\r\n", with: "\\r\\n").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    }
    guard case let .invalidOption(name, reason) = e else { return oneLine(e.description) }
    return oneLine("option \(flag(name)): \(reason)")
}

/// The flag of a library option name: `nullRun` -> `--null-run`; names already spelt as flags or
/// arguments (`--shard`, `METHOD`) stay as they are.
func flag(_ name: String) -> String {
    let spelt = ["method": "METHOD", "files": "FILES", "dir": "--out", "initFrom": "--init", "learningRate": "--lr",
                 "targets": "--lora-targets", "adapterBase": "--base", "run": "--run", "rank": "--lora-rank", "alpha": "--lora-alpha", "dropout": "--lora-dropout"]
    if let f = spelt[name] { return f }
    if name.hasPrefix("-") || name.uppercased() == name { return name }
    var out = "--"
    for c in name {
        if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
    }
    return out
}
