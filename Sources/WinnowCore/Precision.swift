import CKernels

/// The arithmetic of the dense products (`ck_gemm`) in inference: F32 (the default), or bf16 operands
/// with F32 accumulation (`--precision bf16` on `predict`, `eval` and the forward-only scores). bf16
/// needs a CPU with AVX512_BF16; training and gradient passes always run in F32.
///
///     let p = try ArithmeticPrecision.bf16.run { try model.predict(data) }
public enum ArithmeticPrecision: String, Sendable, CaseIterable, Codable {
    /// Single precision throughout.
    case f32
    /// Weights and activations rounded to bf16 (nearest even) as they enter each dense product,
    /// products accumulated in F32 (`vdpbf16ps`); attention's per-head products, norms and softmax
    /// stay in F32.
    case bf16

    /// Whether this machine can run the precision: bf16 needs AVX512_BF16 and the AVX-512 path in use
    /// (`WINNOW_ISA=avx2` asks for OpenBLAS, which has no bf16 products).
    public var isAvailable: Bool {
        self == .f32 || (ck_isa_supported(Int32(CK_ISA_AVX512_BF16)) == 1 && ck_isa() == Int32(CK_ISA_AVX512))
    }

    /// Runs `body` with the dense products in this precision, then restores the previous one. The
    /// setting belongs to the calling thread (and the workers Winnow starts for it): work on other threads
    /// keeps its own.
    ///
    /// - Throws: `WinnowError.invalidOption` when the CPU lacks AVX512_BF16; what `body` throws.
    public func run<T>(_ body: () throws -> T) throws -> T {
        guard isAvailable else {
            throw WinnowError.invalidOption(name: "precision", reason: ck_isa_supported(Int32(CK_ISA_AVX512_BF16)) == 1
                ? "bf16 runs on the AVX-512 path, and WINNOW_ISA=avx2 asks for OpenBLAS's; unset it, or use f32"
                : "bf16 needs a CPU with AVX512_BF16, which this one lacks; use f32")
        }
        let previous = ck_gemm_precision()
        _ = ck_set_gemm_precision(Int32(self == .bf16 ? CK_PRECISION_BF16 : CK_PRECISION_F32))
        defer { _ = ck_set_gemm_precision(previous) }
        return try body()
    }
}
