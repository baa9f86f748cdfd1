import ArgumentParser
import Foundation
import Winnow

#if canImport(Glibc)
import Glibc
@_silgen_name("mallopt") func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32
// Keep freed blocks up to 32 MiB (glibc's largest mmap threshold) in the heap and never trim it, so
// per-batch tensors reuse memory instead of faulting in fresh zeroed pages every batch.
// glibc <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3 (the macros are not imported into Swift).
_ = glibcMallopt(-3, 32 << 20)
_ = glibcMallopt(-1, Int32.max)
#endif

// Exit codes (design section 7): 0 success, 1 user error (one line on stderr), 2 usage error.
do {
    var command = try WinnowCommand.parseAsRoot()
    try command.run()
} catch let error as WinnowError {
    printError("winnow: error: \(error.description)")
    exit(1)
} catch {
    let code = WinnowCommand.exitCode(for: error)
    if code == .success {
        print(WinnowCommand.fullMessage(for: error))
        exit(0)
    }
    let message = WinnowCommand.fullMessage(for: error)
    if error is CocoaError || error is DecodingError || (error as NSError).domain == NSCocoaErrorDomain {
        printError("winnow: error: \(error.localizedDescription)")
        exit(1)
    }
    printError(message)
    exit(code == .validationFailure ? 2 : 1)
}
