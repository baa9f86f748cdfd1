import Foundation
import WinnowCommands

// The `winnow` executable: every command lives in the WinnowCommands library (shared with winnow-mpi).
WinnowMain.limitOpenBLASIdleSpin()
WinnowMain.tuneAllocator()
WinnowMain.endBarLineOnSignal()
exit(WinnowMain.run())
