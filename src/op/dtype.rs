//! The element types the fused ops take (f32, bf16, f16) and the error
//! for any other: one message for the CPU and CUDA paths of the activation
//! and population ops. A leaf of `op`.

use candle_core::DType;

/// The error for a tensor of a type the fused ops do not take.
pub(crate) fn unsupported(dtype: DType) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "actforge fused activations support f32, bf16 and f16 tensors, not {dtype:?}"
    ))
}
