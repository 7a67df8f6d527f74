// Shared math for dispatch modules (one kernel per direction and dtype for
// a whole GP generation). Each math function is compiled once per module
// as a called function instead of being inlined into every formula, and
// the formulas' calls are redirected to it. This trades a call per math
// function for NVRTC/ptxas time, which otherwise grows with every copy.

#ifndef ACT_DISPATCH_CUH
#define ACT_DISPATCH_CUH

__device__ __noinline__ float act_shared_sin(float a) { return act_sin(a); }
__device__ __noinline__ float act_shared_cos(float a) { return act_cos(a); }
__device__ __noinline__ float act_shared_tan(float a) { return act_tan(a); }
__device__ __noinline__ float act_shared_exp(float a) { return act_exp(a); }
__device__ __noinline__ float act_shared_log(float a) { return act_log(a); }
__device__ __noinline__ float act_shared_log1p(float a) { return act_log1p(a); }
__device__ __noinline__ float act_shared_tanh(float a) { return act_tanh(a); }
__device__ __noinline__ float act_shared_erf(float a) { return act_erf(a); }
__device__ __noinline__ float act_shared_sigmoid(float a) { return act_sigmoid(a); }
__device__ __noinline__ act_pair act_shared_sigmoid_pair(float a) { return act_sigmoid_pair(a); }
__device__ __noinline__ act_pair act_shared_tanh_pair(float a) { return act_tanh_pair(a); }
__device__ __noinline__ act_pair act_shared_sincos(float a) { return act_sincos(a); }

#define act_sin act_shared_sin
#define act_cos act_shared_cos
#define act_tan act_shared_tan
#define act_exp act_shared_exp
#define act_log act_shared_log
#define act_log1p act_shared_log1p
#define act_tanh act_shared_tanh
#define act_erf act_shared_erf
#define act_sigmoid act_shared_sigmoid
#define act_sigmoid_pair act_shared_sigmoid_pair
#define act_tanh_pair act_shared_tanh_pair
#define act_sincos act_shared_sincos

#endif // ACT_DISPATCH_CUH
