import ArgumentParser
import Foundation
import Winnow

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
