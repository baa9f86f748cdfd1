/*
 * dequant.c — GGUF/ggml tensor data to float32: F16, BF16, and the block formats Q8_0, Q4_0 and Q4_1
 * (32 elements a block, little-endian; ggml's layouts). Sources may be unaligned (memory-mapped files);
 * every read is a byte copy. No other ggml type (K-quants, IQ) is handled here.
 */
#include "ck_internal.h"
#include <string.h>

/* IEEE binary16 bits -> float32, subnormals, infinities and NaN included. */
static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {                              /* subnormal: normalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t read_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

float ck_half_to_float(uint16_t h) { return half_to_float(h); }

void ck_dequant_f16(float *out, const void *src, size_t n) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) out[i] = half_to_float(read_u16(p + 2 * i));
}

void ck_dequant_bf16(float *out, const void *src, size_t n) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)read_u16(p + 2 * i) << 16;
        memcpy(out + i, &bits, 4);
    }
}

/* Q8_0 block (34 bytes): f16 scale d, then 32 int8 q; x = q * d. */
void ck_dequant_q8_0(float *out, const void *src, size_t n) {
    const uint8_t *p = src;
    for (size_t b = 0; b < n / 32; b++, p += 34) {
        float d = half_to_float(read_u16(p));
        for (int j = 0; j < 32; j++) out[32 * b + j] = (float)(int8_t)p[2 + j] * d;
    }
}

/* Q4_0 block (18 bytes): f16 scale d, then 16 bytes; element j < 16 is the low nibble of byte j, element
 * j + 16 its high nibble; x = (q - 8) * d. */
void ck_dequant_q4_0(float *out, const void *src, size_t n) {
    const uint8_t *p = src;
    for (size_t b = 0; b < n / 32; b++, p += 18) {
        float d = half_to_float(read_u16(p));
        for (int j = 0; j < 16; j++) {
            out[32 * b + j] = (float)((p[2 + j] & 0x0f) - 8) * d;
            out[32 * b + j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
        }
    }
}

/* Q4_1 block (20 bytes): f16 scale d, f16 minimum m, then 16 bytes of nibbles as Q4_0; x = q * d + m,
 * two float32 roundings (no fused multiply-add), as ggml and gguf-py compute it. */
#pragma clang fp contract(off)
void ck_dequant_q4_1(float *out, const void *src, size_t n) {
    const uint8_t *p = src;
    for (size_t b = 0; b < n / 32; b++, p += 20) {
        float d = half_to_float(read_u16(p)), m = half_to_float(read_u16(p + 2));
        for (int j = 0; j < 16; j++) {
            float lo = (float)(p[4 + j] & 0x0f) * d, hi = (float)(p[4 + j] >> 4) * d;
            out[32 * b + j] = lo + m;
            out[32 * b + j + 16] = hi + m;
        }
    }
}
