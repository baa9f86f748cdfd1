import Foundation
import Winnow

// libFuzzer targets for winnow's parsers of untrusted files: safetensors, jsonl, csv, vocab.
// `scripts/fuzz.sh SECONDS` builds this with `--traits Fuzz -sanitize=fuzzer,address` and runs each target
// (chosen by WINNOW_FUZZ_TARGET). The default build is a replayer: `winnow-fuzz TARGET FILE...` feeds
// files (e.g. crashes kept in Tests/Fixtures/fuzz/) through the same code.

/// Feeds one input to a parser. Every rejection must be a thrown WinnowError; a crash, a sanitizer
/// report, a hang or another error type is a bug.
func fuzzOne(_ target: String, _ data: Data) {
    guard ParserProbe.targets.contains(target) else {
        FileHandle.standardError.write(Data("winnow-fuzz: unknown target '\(target)' (\(ParserProbe.targets.joined(separator: ", ")))\n".utf8))
        exit(2)
    }
    let url = scratchURL(target)
    _ = FileManager.default.createFile(atPath: url.path, contents: data)
    if let e = ParserProbe.exercise(target, file: url), !(e is WinnowError) {
        fatalError("\(target): a parser threw \(type(of: e)) instead of WinnowError: \(e)")
    }
}

nonisolated(unsafe) var scratchURLs: [String: URL] = [:]
func scratchURL(_ target: String) -> URL {
    if let u = scratchURLs[target] { return u }
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let ext = target == "vocab" ? "txt" : target
    let u = URL(fileURLWithPath: dir).appendingPathComponent("winnow-fuzz-\(getpid())-input.\(ext)")
    scratchURLs[target] = u
    return u
}

#if Fuzz
// SwiftPM names an executable's entry point itself, so libFuzzer's own main is not used: @main hands
// control to libFuzzer's driver with the test function.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let target = ProcessInfo.processInfo.environment["WINNOW_FUZZ_TARGET"] ?? "safetensors"
        fuzzTarget = target
        exit(LLVMFuzzerRunDriver(&argc, &argv) { bytes, count in
            fuzzOne(fuzzTarget, bytes.map { Data(bytes: $0, count: count) } ?? Data())
            return 0
        })
    }
}

nonisolated(unsafe) var fuzzTarget = "safetensors"

/// libFuzzer's runtime refers to this symbol; the driver above passes the same function.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    fuzzOne(fuzzTarget, bytes.map { Data(bytes: $0, count: count) } ?? Data())
    return 0
}
#else
@main
struct Replay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        guard let target = args.first, args.count >= 2 else {
            print("usage: winnow-fuzz safetensors|jsonl|csv|vocab FILE...  (replays inputs through a parser)")
            exit(args.isEmpty ? 0 : 2)
        }
        for path in args.dropFirst() {
            guard let d = FileManager.default.contents(atPath: path) else { print("cannot read \(path)"); exit(1) }
            fuzzOne(target, d)
            print("ok \(path)")
        }
    }
}
#endif
