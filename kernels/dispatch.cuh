// Shared math for dispatch modules (one kernel per direction and dtype for
// a whole GP generation). Each math function is compiled once per module
// as a called function instead of being inlined into every formula, and
// the formulas' calls are redirected to it. This trades a call per math
// function for NVRTC/ptxas time, which otherwise grows with every copy.

#ifndef ACT_DISPATCH_CUH
#define ACT_DISPATCH_CUH

__device__ __noinline__ float act_shared_sinf(float a) { return sinf(a); }
__device__ __noinline__ float act_shared_cosf(float a) { return cosf(a); }
__device__ __noinline__ float act_shared_tanf(float a) { return tanf(a); }
__device__ __noinline__ float act_shared_expf(float a) { return expf(a); }
__device__ __noinline__ float act_shared_logf(float a) { return logf(a); }
__device__ __noinline__ float act_shared_log1pf(float a) { return log1pf(a); }
__device__ __noinline__ float act_shared_tanhf(float a) { return tanhf(a); }
__device__ __noinline__ float act_shared_erff(float a) { return erff(a); }
__device__ __noinline__ float act_shared_sigmoid(float a) { return act_sigmoid(a); }

#define sinf act_shared_sinf
#define cosf act_shared_cosf
#define tanf act_shared_tanf
#define expf act_shared_expf
#define logf act_shared_logf
#define log1pf act_shared_log1pf
#define tanhf act_shared_tanhf
#define erff act_shared_erff
#define act_sigmoid act_shared_sigmoid

#endif // ACT_DISPATCH_CUH
