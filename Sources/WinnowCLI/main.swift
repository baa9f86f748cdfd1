import Foundation
import WinnowCommands

// The `winnow` executable: every command lives in the WinnowCommands library (shared with winnow-mpi).
WinnowMain.tuneAllocator()
exit(WinnowMain.run())
