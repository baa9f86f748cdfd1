import Testing
@testable import Winnow
@testable import WinnowCore
@testable import WinnowData
@testable import WinnowModels
@testable import WinnowTraining
@testable import WinnowScores
@testable import WinnowExperiment

/// Writes through `ParameterStore`'s subscript go into the stored tensor (no copy of a uniquely held
/// buffer), and copy-on-write still protects a store that shares its buffers.
@Suite struct ParameterStoreTests {
    func store() -> ParameterStore {
        var s = ParameterStore()
        _ = s.add("embeddings.word_embeddings.weight", Tensor(shape: [1000, 64]))
        _ = s.add("classifier.bias", Tensor(shape: [2]))
        return s
    }

    @Test func writingThroughTheSubscriptDoesNotCopyAUniqueBuffer() {
        var s = store()
        let before = s[0].ptr
        let p = s[0].mptr
        p[5] = 3
        #expect(UnsafePointer(p) == before, "the write went to a copy of the tensor")
        #expect(s[0].ptr == before)
        #expect(s[0].ptr[5] == 3)
    }

    @Test func aSharedStoreIsCopiedOnWriteAndKeepsItsValues() {
        var s = store()
        let other = s
        s[0].mptr[7] = 2
        #expect(s[0].ptr[7] == 2)
        #expect(other[0].ptr[7] == 0, "the copy saw a write made through the other store")
        #expect(other[0].ptr != s[0].ptr)
    }
}
