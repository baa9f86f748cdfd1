// The Winnow library: one import for programs that embed it. Each layer is a module of its own, so a
// lower layer cannot reach a higher one (README, "Layout"); this module re-exports them all.
@_exported import WinnowCore
@_exported import WinnowData
@_exported import WinnowModels
@_exported import WinnowTraining
@_exported import WinnowScores
@_exported import WinnowExperiment
