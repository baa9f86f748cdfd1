import Foundation
import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Every input in Tests/Fixtures/fuzz/TARGET/ (hostile inputs written by hand, and any crash that
/// scripts/fuzz.sh finds) goes through its parser: it must be rejected with a WinnowError, never crash
/// or fail with another error. Files named ok-* must be accepted.
@Suite struct FuzzRegressionTests {
    static let root = Paths.fixtures.appendingPathComponent("fuzz")

    static var inputs: [String] {
        ParserProbe.targets.flatMap { t in
            ((try? FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(t).path)) ?? []).sorted().map { "\(t)/\($0)" }
        }
    }

    @Test func thereAreInputsForEveryParser() {
        for t in ParserProbe.targets { #expect(Self.inputs.contains { $0.hasPrefix(t + "/") }, "no fuzz inputs for \(t)") }
    }

    @Test(arguments: inputs)
    func hostileInputIsRejectedCleanly(_ input: String) {
        let target = String(input.prefix { $0 != "/" })
        let url = Self.root.appendingPathComponent(input)
        let error = ParserProbe.exercise(target, file: url)
        if url.lastPathComponent.hasPrefix("ok-") {
            #expect(error == nil, "\(input) should parse: \(String(describing: error))")
        } else {
            #expect(error is WinnowError, "\(input): expected a WinnowError, got \(String(describing: error))")
            if let e = error as? WinnowError { #expect(e.description.contains(url.lastPathComponent), "\(input): the message does not name the file: \(e)") }
        }
    }
}
