// actforge device prelude: storage types, conversions and math helpers.
//
// Every generated module starts with this file, verbatim, so NVRTC needs no
// include paths and no CUDA headers. The same text is compiled as C++ on the
// host through kernels/host_shim.h, which is how CI runs the generated device
// code without a GPU. Keep it to plain C++11 plus the CUDA builtins that the
// shim provides: __float_as_uint, __uint_as_float and the libm functions.
//
// Two switches, both set by the code generator before this file:
//
//   ACT_APPROX_MATH  1: exp, the sigmoid, tanh and division use the GPU's
//                    approximate instructions (ex2.approx, rcp.approx,
//                    div.full) within the error bounds the PTX ISA documents;
//                    0: CUDA's libm and IEEE division ("exact" mode).
//   ACT_APPROX_PUSH  host shim only: each approximate instruction returns
//                    the exact value moved by its documented worst-case error,
//                    away from zero (+1) or towards zero (-1); 0 = exact.
//
// On the GPU (__CUDA_ARCH__ defined) conversions and approximations are
// inline PTX; the host keeps portable code with the same semantics.

#ifndef ACT_MATH_CUH
#define ACT_MATH_CUH

#ifndef ACT_APPROX_MATH
#define ACT_APPROX_MATH 0
#endif
#ifndef ACT_APPROX_PUSH
#define ACT_APPROX_PUSH 0
#endif
#if defined(__CUDA_ARCH__)
#define ACT_PTX 1
#define ACT_SM __CUDA_ARCH__
#else
#define ACT_PTX 0
#define ACT_SM 0
#endif

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

// bf16 -> f32 is exact: the bf16 bits are the top half of the f32 (one
// shift; cvt.f32.bf16 needs sm_90 and gains nothing).
__device__ __forceinline__ float act_bf16_ld(act_bf16 h) {
    return __uint_as_float(((unsigned int)h.bits) << 16);
}

// Round to nearest even; NaN stays NaN (quiet).
__device__ __forceinline__ act_bf16 act_bf16_st(float f) {
    act_bf16 r;
#if ACT_PTX && ACT_SM >= 800
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(r.bits) : "f"(f));
#else
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.bits = (unsigned short)((u >> 16) | 0x40u);
        return r;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    r.bits = (unsigned short)(u >> 16);
#endif
    return r;
}

// Exact, subnormals included.
__device__ __forceinline__ float act_f16_ld(act_f16 h) {
#if ACT_PTX
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
    return f;
#else
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
#endif
}

// Round to nearest even, with subnormals, overflow to infinity and NaN.
__device__ __forceinline__ act_f16 act_f16_st(float f) {
    act_f16 r;
#if ACT_PTX
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(r.bits) : "f"(f));
#else
    unsigned int x = __float_as_uint(f);
    unsigned int sign = (x >> 16) & 0x8000u;
    unsigned int ax = x & 0x7fffffffu;
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
#endif
    return r;
}

// Two values rounded into one 32-bit word, `lo` in bits 0-15: one packed
// conversion on sm_80+ (cvt.rn.{bf16x2,f16x2}.f32), the same bits as two
// scalar stores.
__device__ __forceinline__ unsigned int act_bf16x2_st(float lo, float hi) {
#if ACT_PTX && ACT_SM >= 800
    unsigned int r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (unsigned int)act_bf16_st(lo).bits | ((unsigned int)act_bf16_st(hi).bits << 16);
#endif
}

__device__ __forceinline__ unsigned int act_f16x2_st(float lo, float hi) {
#if ACT_PTX && ACT_SM >= 800
    unsigned int r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
#else
    return (unsigned int)act_f16_st(lo).bits | ((unsigned int)act_f16_st(hi).bits << 16);
#endif
}

// A vector of results, rounded for storage.
__device__ __forceinline__ act_f32_vec act_f32_pack(const float* o) {
    act_f32_vec r;
    for (int k = 0; k < 4; ++k) {
        r.v[k] = o[k];
    }
    return r;
}

__device__ __forceinline__ act_bf16_vec act_bf16_pack(const float* o) {
    act_bf16_vec r;
    for (int k = 0; k < 8; k += 2) {
        unsigned int w = act_bf16x2_st(o[k], o[k + 1]);
        r.v[k].bits = (unsigned short)(w & 0xffffu);
        r.v[k + 1].bits = (unsigned short)(w >> 16);
    }
    return r;
}

__device__ __forceinline__ act_f16_vec act_f16_pack(const float* o) {
    act_f16_vec r;
    for (int k = 0; k < 8; k += 2) {
        unsigned int w = act_f16x2_st(o[k], o[k + 1]);
        r.v[k].bits = (unsigned short)(w & 0xffffu);
        r.v[k + 1].bits = (unsigned short)(w >> 16);
    }
    return r;
}

// ---- Approximate instructions -------------------------------------------
//
// Bounds from the PTX ISA: ex2.approx.f32 2 ulp from the correctly rounded
// result over the full range; rcp.approx.f32 1 ulp; div.full.f32 2 ulp over
// the full range. The .ftz forms flush subnormal inputs and results to a
// signed zero. The host versions return the exact value moved by that
// bound (ACT_APPROX_PUSH), so tests can show the formulas meet the
// PRIMITIVES.md tolerance under the worst case.

#if !ACT_PTX
// `v` moved by `n` ulps away from zero (push > 0) or towards it (< 0).
static inline float act_host_push(float v, int n) {
    if (ACT_APPROX_PUSH == 0 || v != v || v == 0.0f || v - v != 0.0f) {
        return v;
    }
    float to = ACT_APPROX_PUSH > 0 ? copysignf(INFINITY, v) : 0.0f;
    for (int i = 0; i < n; ++i) {
        v = nextafterf(v, to);
    }
    return v;
}

static inline float act_host_ftz(float v) {
    return fabsf(v) < 1.17549435e-38f ? copysignf(0.0f, v) : v;
}
#endif

// 2^t, subnormal results kept.
__device__ __forceinline__ float act_ex2_approx(float t) {
#if ACT_PTX
    float r;
    asm("ex2.approx.f32 %0, %1;" : "=f"(r) : "f"(t));
    return r;
#else
    return act_host_push(exp2f(t), 2);
#endif
}

// 2^t, subnormal inputs and results flushed to zero.
__device__ __forceinline__ float act_ex2_approx_ftz(float t) {
#if ACT_PTX
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(t));
    return r;
#else
    return act_host_ftz(act_host_push(exp2f(act_host_ftz(t)), 2));
#endif
}

// 1/d, subnormals flushed (callers pass d in [1, 2]).
__device__ __forceinline__ float act_rcp_approx_ftz(float d) {
#if ACT_PTX
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
    return r;
#else
    return act_host_ftz(act_host_push(1.0f / act_host_ftz(d), 1));
#endif
}

// a / b over the full range (operands scaled as needed).
__device__ __forceinline__ float act_div_full(float a, float b) {
#if ACT_PTX
    float r;
    asm("div.full.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
#else
    return act_host_push(a / b, 2);
#endif
}

// ---- The op table's math (CUDA spellings in src/ir/ops.rs) ---------------

// Two results computed from shared work.
struct act_pair { float first, second; };

#if ACT_APPROX_MATH

// e^a = 2^(a log2 e): relative error <= 2.5 ulp + |a| 2^-24 * 1.5 (the
// rounding of a log2 e), i.e. below 1e-5 for every finite result.
__device__ __forceinline__ float act_exp(float a) {
    return act_ex2_approx(a * 1.44269504088896341f);
}

__device__ __forceinline__ float act_div(float a, float b) { return act_div_full(a, b); }

// [sigmoid(a), sigmoid(-a)] from one exp and one reciprocal: e = e^-|a| in
// (0, 1], r = 1/(1+e); the larger value is r, the smaller e r. A NaN
// propagates through e.
__device__ __forceinline__ act_pair act_sigmoid_pair(float a) {
    const float e = act_ex2_approx_ftz(fabsf(a) * -1.44269504088896341f);
    const float r = act_rcp_approx_ftz(1.0f + e);
    const float small = e * r;
    act_pair p;
    p.first = a >= 0.0f ? r : small;
    p.second = a >= 0.0f ? small : r;
    return p;
}

// [tanh(z), 1 - tanh(z)^2] from one exp and one reciprocal: with
// e = e^-2|z| and r = 1/(1+e), tanh|z| = (1-e) r and 1 - tanh^2 = 4 e r^2
// (no cancellation). Below |z| = 0.25, where 1 - e cancels, tanh is its odd
// Taylor polynomial to z^7 (truncation error under 4e-7 relative).
__device__ __forceinline__ act_pair act_tanh_pair(float z) {
    const float a = fabsf(z);
    const float e = act_ex2_approx_ftz(a * -2.88539008177792682f);
    const float r = act_rcp_approx_ftz(1.0f + e);
    const float a2 = a * a;
    const float poly = fmaf(a2, fmaf(a2, -0.0539682540f, 0.133333333f), -0.333333333f);
    const float t = a < 0.25f ? fmaf(a * a2, poly, a) : (1.0f - e) * r;
    act_pair p;
    p.first = copysignf(t, z);
    p.second = (4.0f * e) * (r * r);
    return p;
}

#else // exact mode: CUDA's libm and IEEE division

__device__ __forceinline__ float act_exp(float a) { return expf(a); }
__device__ __forceinline__ float act_div(float a, float b) { return a / b; }

// One exp for both values; each is one IEEE division, so they equal two
// separate sigmoid evaluations bit for bit (as sigmoid_pair in Rust).
__device__ __forceinline__ act_pair act_sigmoid_pair(float a) {
    const float e = expf(-fabsf(a));
    const float d = 1.0f + e;
    act_pair p;
    p.first = (a >= 0.0f ? 1.0f : e) / d;
    p.second = (a <= 0.0f ? 1.0f : e) / d;
    return p;
}

__device__ __forceinline__ act_pair act_tanh_pair(float z) {
    act_pair p;
    p.first = tanhf(z);
    p.second = 1.0f - p.first * p.first;
    return p;
}

#endif // ACT_APPROX_MATH

// The logistic function without overflow.
__device__ __forceinline__ float act_sigmoid(float a) { return act_sigmoid_pair(a).first; }
__device__ __forceinline__ float act_tanh(float a) { return act_tanh_pair(a).first; }

// [sin(a), cos(a)] from one range reduction.
__device__ __forceinline__ act_pair act_sincos(float a) {
    act_pair p;
#if ACT_PTX
    sincosf(a, &p.first, &p.second);
#else
    p.first = sinf(a);
    p.second = cosf(a);
#endif
    return p;
}

__device__ __forceinline__ float act_sin(float a) { return sinf(a); }
__device__ __forceinline__ float act_cos(float a) { return cosf(a); }
__device__ __forceinline__ float act_tan(float a) { return tanf(a); }
__device__ __forceinline__ float act_log(float a) { return logf(a); }
__device__ __forceinline__ float act_log1p(float a) { return log1pf(a); }
__device__ __forceinline__ float act_erf(float a) { return erff(a); }

// a^K for a literal integer K, |K| <= 64: square-and-multiply unrolled at
// compile time, the same operations as pow_f32 in Rust (acc starts at 1).
template <unsigned int N>
__device__ __forceinline__ float act_powu(float acc, float base) {
    if constexpr (N == 0u) {
        return acc;
    } else {
        return act_powu<(N >> 1)>((N & 1u) ? acc * base : acc, base * base);
    }
}

template <int K>
__device__ __forceinline__ float act_powi(float a) {
    if constexpr (K < 0) {
        return act_div(1.0f, act_powu<(unsigned int)(-K)>(1.0f, a));
    } else {
        return act_powu<(unsigned int)K>(1.0f, a);
    }
}

// a^k for any k (the op table's spelling; the code generator writes
// act_powi<K> for literal integer exponents): square-and-multiply for
// integer |k| <= 64, powf otherwise. Same operations as pow_f32 in Rust.
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
        return k < 0.0f ? act_div(1.0f, acc) : acc;
    }
    return powf(a, k);
}

#endif // ACT_MATH_CUH
