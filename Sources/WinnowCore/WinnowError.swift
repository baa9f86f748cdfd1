import Foundation

/// Errors a user can cause: bad files, bad options, bad data. Each case names the file and, where one
/// exists, the line or tensor, so one line on stderr tells the user what to fix.
///
///     throw WinnowError.invalidFile(path: url.path, line: 12, reason: "label 'maybe' is not one of [neg, pos]")
public enum WinnowError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A file that exists but cannot be read as what it should be.
    case invalidFile(path: String, line: Int?, reason: String)
    /// A tensor in a checkpoint that is missing, mistyped or mis-shaped.
    case invalidTensor(path: String, tensor: String, reason: String)
    /// A file or folder that does not exist.
    case missingFile(path: String, reason: String)
    /// An option with a value that cannot work. `name` is the option as the library spells it (the
    /// property of its options type, e.g. `maxLength`); the command line shows its flag (`--max-length`).
    case invalidOption(name: String, reason: String)
    /// Training or scoring hit a numeric fault (NaN/Inf) it cannot recover from.
    case numericFault(reason: String)
    /// A model learned nothing useful, so what would be computed from it means nothing.
    case learnedNothing(reason: String)

    public var description: String {
        switch self {
        case let .invalidFile(path, line, reason):
            if let line { return "\(path):\(line): \(reason)" }
            return "\(path): \(reason)"
        case let .invalidTensor(path, tensor, reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case let .missingFile(path, reason):
            return "\(path): \(reason)"
        case let .invalidOption(name, reason):
            return "option \(name): \(reason)"
        case let .numericFault(reason), let .learnedNothing(reason):
            return reason
        }
    }
}

extension WinnowError: LocalizedError {
    public var errorDescription: String? { description }
}

/// JSON object files (configs), read with errors naming the file.
package enum JSONObjectFile {
    /// The JSON object in `url`; nil when the file does not exist.
    ///
    /// - Throws: `WinnowError.invalidFile` when the file exists but does not hold a JSON object.
    package static func read(_ url: URL) throws -> [String: Any]? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        guard let d = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw WinnowError.invalidFile(path: url.path, line: nil, reason: "not a JSON object")
        }
        return d
    }

    /// `v` as an integer when it is a JSON number with an integral value in `range` (by default the sizes
    /// and counts the C kernels index with 32 bits); nil for anything else, 1e300 and 2^62 included.
    package static func integer(_ v: Any?, in range: ClosedRange<Int> = 0...Int(Int32.max)) -> Int? {
        guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), range.contains(i) else { return nil }
        return i
    }
}
