// Host shim: compiles actforge's generated CUDA C as ordinary C++ so that
// CI can run the device code on the CPU. Kernels become plain functions;
// the launch wrappers that codegen emits for the shim loop over every
// (block, thread) pair and set the index variables below. Threads of a
// grid-stride kernel never communicate, so running them one after another
// computes exactly what the GPU computes, up to libm differences.

#ifndef ACT_HOST_SHIM_H
#define ACT_HOST_SHIM_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACT_ASSERT_ALIGNED(p)                                                   \
    do {                                                                        \
        if (((unsigned long long)(p)) & 15ull) {                                \
            fprintf(stderr, "misaligned vector access at %p (%s:%d)\n",         \
                    (const void*)(p), __FILE__, __LINE__);                      \
            abort();                                                            \
        }                                                                       \
    } while (0)

#define __global__
#define __device__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))

struct act_dim3 { unsigned int x, y, z; };
static thread_local act_dim3 threadIdx, blockIdx, blockDim, gridDim;

static inline float __uint_as_float(unsigned int u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline unsigned int __float_as_uint(float f) {
    unsigned int u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline void act_shim_set(unsigned int grid, unsigned int block, unsigned int b, unsigned int t) {
    gridDim.x = grid; gridDim.y = 1; gridDim.z = 1;
    blockDim.x = block; blockDim.y = 1; blockDim.z = 1;
    blockIdx.x = b; blockIdx.y = 0; blockIdx.z = 0;
    threadIdx.x = t; threadIdx.y = 0; threadIdx.z = 0;
}

// A two-dimensional grid (population kernels: blockIdx.y is the slice).
static inline void act_shim_set_2d(unsigned int grid, unsigned int slices, unsigned int block,
                                   unsigned int b, unsigned int slice, unsigned int t) {
    act_shim_set(grid, block, b, t);
    gridDim.y = slices;
    blockIdx.y = slice;
}

#endif // ACT_HOST_SHIM_H
