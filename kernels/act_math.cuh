// actforge device prelude: storage types, conversions and math helpers.
//
// Every generated module starts with this file, verbatim, so NVRTC needs no
// include paths and no CUDA headers. The same text is compiled as C++ on the
// host through kernels/host_shim.h, which is how CI runs the generated device
// code without a GPU. Keep it to plain C++11 plus the CUDA builtins that the
// shim provides: __float_as_uint, __uint_as_float and the libm functions.

#ifndef ACT_MATH_CUH
#define ACT_MATH_CUH

// The host shim checks 16-byte alignment of vector accesses; on the GPU a
// misaligned vector access faults on its own.
#ifndef ACT_ASSERT_ALIGNED
#define ACT_ASSERT_ALIGNED(p) ((void)0)
#endif

// 16-bit storage types with the layout of __nv_bfloat16 and __half.
struct act_bf16 { unsigned short bits; };
struct act_f16 { unsigned short bits; };

// 16-byte vectors: 4 floats or 8 halves per load/store.
struct alignas(16) act_f32_vec { float v[4]; };
struct alignas(16) act_bf16_vec { act_bf16 v[8]; };
struct alignas(16) act_f16_vec { act_f16 v[8]; };

__device__ __forceinline__ float act_f32_ld(float v) { return v; }
__device__ __forceinline__ float act_f32_st(float v) { return v; }

__device__ __forceinline__ float act_bf16_ld(act_bf16 h) {
    return __uint_as_float(((unsigned int)h.bits) << 16);
}

// Round to nearest even; NaN stays NaN (quiet).
__device__ __forceinline__ act_bf16 act_bf16_st(float f) {
    unsigned int u = __float_as_uint(f);
    act_bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.bits = (unsigned short)((u >> 16) | 0x40u);
        return r;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    r.bits = (unsigned short)(u >> 16);
    return r;
}

__device__ __forceinline__ float act_f16_ld(act_f16 h) {
    unsigned int s = ((unsigned int)h.bits & 0x8000u) << 16;
    unsigned int e = ((unsigned int)h.bits >> 10) & 0x1fu;
    unsigned int m = (unsigned int)h.bits & 0x3ffu;
    if (e == 0u) {
        // Zero or subnormal: m * 2^-24, exact in f32.
        float v = (float)m * 5.9604644775390625e-8f;
        return s ? -v : v;
    }
    if (e == 31u) {
        return __uint_as_float(s | 0x7f800000u | (m << 13));
    }
    return __uint_as_float(s | ((e + 112u) << 23) | (m << 13));
}

// Round to nearest even, with subnormals, overflow to infinity and NaN.
__device__ __forceinline__ act_f16 act_f16_st(float f) {
    unsigned int x = __float_as_uint(f);
    unsigned int sign = (x >> 16) & 0x8000u;
    unsigned int ax = x & 0x7fffffffu;
    act_f16 r;
    if (ax > 0x7f800000u) {
        r.bits = (unsigned short)(sign | 0x7e00u);
    } else if (ax >= 0x477ff000u) {
        // |f| >= 65520 rounds to infinity.
        r.bits = (unsigned short)(sign | 0x7c00u);
    } else if (ax < 0x38800000u) {
        // Below the smallest normal half (2^-14): a subnormal or zero.
        if (ax <= 0x33000000u) {
            r.bits = (unsigned short)sign;
        } else {
            unsigned int e = ax >> 23;
            unsigned int m = (ax & 0x7fffffu) | 0x800000u;
            unsigned int shift = 126u - e;
            unsigned int q = m >> shift;
            unsigned int rem = m & ((1u << shift) - 1u);
            unsigned int half = 1u << (shift - 1u);
            if (rem > half || (rem == half && (q & 1u))) {
                q += 1u;
            }
            r.bits = (unsigned short)(sign | q);
        }
    } else {
        unsigned int rb = ax - 0x38000000u;
        unsigned int q = rb >> 13;
        unsigned int rem = rb & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) {
            q += 1u;
        }
        r.bits = (unsigned short)(sign | q);
    }
    return r;
}

// The logistic function without overflow (same code as sigmoid_f32 in Rust).
__device__ __forceinline__ float act_sigmoid(float a) {
    if (a >= 0.0f) {
        return 1.0f / (1.0f + expf(-a));
    }
    float e = expf(a);
    return e / (1.0f + e);
}

// a^k: square-and-multiply for integer |k| <= 64 (k is a literal, so the
// loop unrolls), powf otherwise. Same operations as pow_f32 in Rust.
__device__ __forceinline__ float act_pow(float a, float k) {
    if (k == truncf(k) && fabsf(k) <= 64.0f) {
        unsigned int n = (unsigned int)fabsf(k);
        float base = a;
        float acc = 1.0f;
        while (n > 0u) {
            if (n & 1u) {
                acc *= base;
            }
            base *= base;
            n >>= 1;
        }
        return k < 0.0f ? 1.0f / acc : acc;
    }
    return powf(a, k);
}

#endif // ACT_MATH_CUH
