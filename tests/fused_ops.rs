//! The fused CPU ops of a training step against their composed chains of
//! candle ops, values and gradients through `Tensor::backward`, the way
//! `tests/candle_op.rs` checks the fused activation: layer and RMS norm,
//! the masked attention softmax, the masked cross-entropy, the MLP bias
//! folded into the fused activation, and the in-place AdamW update (bit
//! for bit). Odd shapes, populations of two, non-contiguous inputs; other
//! dtypes take the composed chains (the models train in f32).

use actforge::fitness::optim::{AdamW, AdamWConfig, Update};
use actforge::model::loss::{
    masked_cross_entropy, masked_cross_entropy_composed, tied_head_cross_entropy,
};
use actforge::op::norm::{layer_norm, layer_norm_composed, rms_norm, rms_norm_composed};
use actforge::op::softmax::{masked_softmax, masked_softmax_composed, KeyMask, ScoreMask};
use actforge::op::{Activation, ComposedActivation, FusedActivation};
use candle_core::{DType, Device, Tensor, Var};

const QA: &str = "gated_gate(safe_sin(relu_like(sigmoid_like(ARG0))), gelu_like(ARG0))";

/// Deterministic values in [-scale, scale] for `shape`.
fn values(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| {
            let h = (i
                .wrapping_mul(2654435761)
                .wrapping_add(seed.wrapping_mul(97)))
                % 100_003;
            (h as f32 / 100_003.0 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Every element within `tol · (1 + |want|)`; NaN only where NaN.
fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    for (i, (g, w)) in flat(got).into_iter().zip(flat(want)).enumerate() {
        if w.is_nan() {
            assert!(g.is_nan(), "{what}[{i}]: {g} vs NaN");
            continue;
        }
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

/// Values and gradients (of Σ y·w for fixed weights w) of `f` on the
/// inputs, for the fused and the composed form.
fn grads(
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::from_tensor(t).unwrap())
        .collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts).unwrap();
    let w = values(y.dims(), 7, 1.0);
    let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let gs = ts
        .iter()
        .map(|t| g.get(t).expect("a gradient").clone())
        .collect();
    (y, gs)
}

fn compare(
    what: &str,
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    composed: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    tol: f32,
) {
    let (yf, gf) = grads(inputs, fused);
    let (yc, gc) = grads(inputs, composed);
    assert_close(&format!("{what} y"), &yf, &yc, tol);
    for (i, (a, b)) in gf.iter().zip(&gc).enumerate() {
        assert_close(&format!("{what} d{i}"), a, b, tol);
    }
}

#[test]
fn layer_norm_matches_the_composed_chain() {
    for (p, n, d) in [(1, 5, 64), (2, 7, 37), (2, 300, 17)] {
        let x = values(&[p, n, d], 1, 3.0);
        let g = (values(&[p, 1, d], 2, 0.5) + 1.0).unwrap();
        let b = values(&[p, 1, d], 3, 0.5);
        compare(
            "layer norm",
            &[x, g, b],
            |t| layer_norm(&t[0], &t[1], &t[2], 1e-5),
            |t| layer_norm_composed(&t[0], &t[1], &t[2], 1e-5),
            2e-5,
        );
    }
    // A non-contiguous input: x transposed in its last two dimensions.
    let x = values(&[2, 9, 6], 4, 2.0).transpose(1, 2).unwrap();
    let g = values(&[2, 1, 9], 5, 1.0);
    let b = values(&[2, 1, 9], 6, 1.0);
    let fused = layer_norm(&x, &g, &b, 1e-5).unwrap();
    let composed = layer_norm_composed(&x, &g, &b, 1e-5).unwrap();
    assert_close("strided layer norm", &fused, &composed, 2e-5);
}

#[test]
fn rms_norm_matches_the_composed_chain() {
    for (p, n, d) in [(1, 5, 64), (2, 7, 37)] {
        let x = values(&[p, n, d], 11, 3.0);
        let g = values(&[p, 1, d], 12, 1.0);
        compare(
            "rms norm",
            &[x, g],
            |t| rms_norm(&t[0], &t[1], 1e-6),
            |t| rms_norm_composed(&t[0], &t[1], 1e-6),
            2e-5,
        );
    }
}

#[test]
fn norms_of_other_dtypes_take_the_composed_chain() {
    let x = values(&[1, 4, 8], 1, 2.0).to_dtype(DType::BF16).unwrap();
    let g = values(&[1, 1, 8], 2, 1.0).to_dtype(DType::BF16).unwrap();
    let b = values(&[1, 1, 8], 3, 1.0).to_dtype(DType::BF16).unwrap();
    let y = layer_norm(&x, &g, &b, 1e-5).unwrap();
    let want = layer_norm_composed(&x, &g, &b, 1e-5).unwrap();
    assert_eq!(y.dtype(), DType::BF16);
    assert_eq!(flat(&y), flat(&want));
}

/// Padding rows for 3 batch rows of `s` keys: row 1 has its last two keys
/// hidden, row 2 all of them.
fn key_rows(s: usize) -> Vec<Vec<bool>> {
    vec![
        vec![true; s],
        (0..s).map(|j| j + 2 < s).collect(),
        vec![false; s],
    ]
}

#[test]
fn masked_softmax_matches_the_composed_chain() {
    // Rows shorter than, as long as, and longer than a SIMD vector of 16.
    for s in [7, 16, 27] {
        masked_softmax_matches_for_keys(s);
    }
}

fn masked_softmax_matches_for_keys(s: usize) {
    let (p, b, h, t) = (2, 3, 2, 5);
    let scores = values(&[p, b, h, t, s], 21, 4.0);
    let masks = [
        ScoreMask::default(),
        ScoreMask {
            causal: Some(0),
            keys: None,
        },
        ScoreMask {
            causal: Some(2),
            keys: Some(KeyMask::new(&key_rows(s))),
        },
        ScoreMask {
            causal: None,
            keys: Some(KeyMask::new(&key_rows(s))),
        },
    ];
    for (k, mask) in masks.iter().enumerate() {
        for scale in [1.0, 0.25] {
            compare(
                &format!("softmax {s} keys mask {k} scale {scale}"),
                std::slice::from_ref(&scores),
                |t| masked_softmax(&t[0], scale, mask),
                |t| masked_softmax_composed(&t[0], scale, mask),
                1e-5,
            );
        }
    }
}

#[test]
fn a_row_of_hidden_keys_is_finite_and_gets_no_gradient() {
    let scores = values(&[1, 3, 1, 2, 4], 3, 2.0);
    let mask = ScoreMask {
        causal: None,
        keys: Some(KeyMask::new(&key_rows(4))),
    };
    let w = masked_softmax(&scores, 1.0, &mask).unwrap();
    let row = flat(&w.get(0).unwrap().get(2).unwrap());
    assert!(row.iter().all(|v| v.is_finite()), "{row:?}");
    // A hidden key of a partly hidden row gets weight 0 exactly.
    let partly = flat(&w.get(0).unwrap().get(1).unwrap());
    assert_eq!(partly[3], 0.0);
}

#[test]
fn a_key_mask_must_fit_the_scores() {
    let scores = values(&[1, 2, 1, 3, 3], 1, 1.0);
    let mask = ScoreMask {
        causal: None,
        keys: Some(KeyMask::new(&[vec![true; 4], vec![true; 4]])),
    };
    let e = masked_softmax(&scores, 1.0, &mask).unwrap_err().to_string();
    assert!(e.contains("key mask"), "{e}");
}

/// Targets and a loss mask `[B, T]` with masked-out positions.
fn targets(b: usize, t: usize, v: usize) -> (Tensor, Tensor) {
    let ids: Vec<u32> = (0..b * t).map(|i| ((i * 7 + 3) % v) as u32).collect();
    let mask: Vec<f32> = (0..b * t).map(|i| f32::from(i % 3 != 0)).collect();
    (
        Tensor::from_vec(ids, (b, t), &Device::Cpu).unwrap(),
        Tensor::from_vec(mask, (b, t), &Device::Cpu).unwrap(),
    )
}

#[test]
fn cross_entropy_matches_the_composed_chain() {
    for (p, b, t, v) in [(1, 2, 5, 11), (2, 3, 4, 37), (1, 4, 9, 2000)] {
        let logits = values(&[p, b, t, v], 31, 6.0);
        let (ids, mask) = targets(b, t, v);
        let (_, nf) = masked_cross_entropy(&logits, &ids, &mask).unwrap();
        let (_, nc) = masked_cross_entropy_composed(&logits, &ids, &mask).unwrap();
        assert_eq!(nf, nc);
        compare(
            "cross-entropy",
            std::slice::from_ref(&logits),
            |l| Ok(masked_cross_entropy(&l[0], &ids, &mask)?.0),
            |l| Ok(masked_cross_entropy_composed(&l[0], &ids, &mask)?.0),
            1e-5,
        );
    }
}

/// The GPT's tied output head and the loss as one op give the bits of the
/// head's matmul followed by the fused cross-entropy: the loss, and the
/// gradients of the hidden states and the embedding (with a second use of
/// the embedding, as the token lookup adds one), per member scaled
/// differently.
#[test]
fn the_tied_head_and_loss_equal_the_matmul_and_loss_bit_for_bit() {
    for (p, b, t, d, v) in [(1, 3, 5, 16, 37), (2, 4, 7, 8, 300), (1, 2, 9, 64, 2000)] {
        let h = values(&[p, b * t, d], 61, 2.0);
        let wte = values(&[p, v, d], 62, 1.0);
        let (ids, mask) = targets(b, t, v);
        let scale = Tensor::new(&[1.0f32, 0.5][..p], &Device::Cpu).unwrap();
        let run = |fused: bool| {
            let (hv, wv) = (
                Var::from_tensor(&h).unwrap(),
                Var::from_tensor(&wte).unwrap(),
            );
            let (ht, wt) = (hv.as_tensor(), wv.as_tensor());
            let (loss, count) = match fused {
                true => tied_head_cross_entropy(ht, wt, &ids, &mask),
                false => {
                    let logits = ht.matmul(&wt.transpose(1, 2).unwrap()).unwrap();
                    masked_cross_entropy(&logits, &ids, &mask)
                }
            }
            .unwrap();
            let other_use = (wt.sqr().unwrap().sum_all().unwrap() * 1e-3).unwrap();
            let total = (loss.mul(&scale).unwrap().sum_all().unwrap() + other_use).unwrap();
            let g = total.backward().unwrap();
            let grads = [g.get(ht).unwrap(), g.get(wt).unwrap()].map(flat);
            (flat(&loss), count, grads)
        };
        let (fused, composed) = (run(true), run(false));
        assert_eq!(fused.0, composed.0, "{p}x{b}x{t}x{d}x{v} loss");
        assert_eq!(fused.1, composed.1);
        assert_eq!(fused.2[0], composed.2[0], "{p}x{b}x{t}x{d}x{v} dh");
        assert_eq!(fused.2[1], composed.2[1], "{p}x{b}x{t}x{d}x{v} dwte");
    }
}

/// A NaN or +∞ logit makes the loss NaN even in a masked-out row, as
/// `0 · NaN` does in the composed chain: numerical failure stays visible.
#[test]
fn cross_entropy_keeps_nan_in_masked_rows() {
    let (b, t, v) = (2, 3, 5);
    let (ids, mask) = targets(b, t, v);
    for bad in [f32::NAN, f32::INFINITY] {
        let mut data = flat(&values(&[1, b, t, v], 3, 2.0));
        data[2] = bad; // row 0, masked out (i % 3 == 0)
        let logits = Tensor::from_vec(data, (1, b, t, v), &Device::Cpu).unwrap();
        let (lf, _) = masked_cross_entropy(&logits, &ids, &mask).unwrap();
        let (lc, _) = masked_cross_entropy_composed(&logits, &ids, &mask).unwrap();
        assert!(flat(&lc)[0].is_nan(), "composed with {bad}");
        assert!(flat(&lf)[0].is_nan(), "fused with {bad}");
    }
    // −∞ elsewhere than the target of a masked row is harmless in both.
    let mut data = flat(&values(&[1, b, t, v], 3, 2.0));
    data[(ids.flatten_all().unwrap().to_vec1::<u32>().unwrap()[0] as usize + 1) % v] =
        f32::NEG_INFINITY;
    let logits = Tensor::from_vec(data, (1, b, t, v), &Device::Cpu).unwrap();
    let (lf, _) = masked_cross_entropy(&logits, &ids, &mask).unwrap();
    let (lc, _) = masked_cross_entropy_composed(&logits, &ids, &mask).unwrap();
    assert_close("−∞ logit", &lf, &lc, 1e-5);
}

#[test]
fn the_bias_folds_into_the_fused_activation() {
    let f = FusedActivation::new(QA).unwrap();
    let c = ComposedActivation::new(QA).unwrap();
    let fused = Activation::Fused(f.clone());
    let composed = Activation::Composed(c);
    for (p, n, w) in [(1, 3, 256), (2, 5, 33), (1, 70, 1031)] {
        let x = values(&[p, n, w], 41, 4.0);
        let b = values(&[p, 1, w], 42, 1.0);
        compare(
            "bias + activation",
            &[x.clone(), b.clone()],
            |t| fused.forward_bias(&t[0], &t[1]),
            |t| composed.forward(&t[0].broadcast_add(&t[1])?),
            1e-5,
        );
        // The same bits as candle's bias add before the fused op.
        let (yf, gf) = grads(&[x.clone(), b.clone()], |t| {
            fused.forward_bias(&t[0], &t[1])
        });
        let (ya, ga) = grads(&[x, b], |t| f.forward(&t[0].broadcast_add(&t[1])?));
        assert_eq!(flat(&yf), flat(&ya));
        assert_eq!(flat(&gf[0]), flat(&ga[0]));
        assert_close("bias gradient", &gf[1], &ga[1], 1e-6);
    }
    // bf16 storage: the sum is rounded to bf16 first, as broadcast_add does.
    let x = values(&[1, 4, 40], 5, 3.0).to_dtype(DType::BF16).unwrap();
    let b = values(&[1, 1, 40], 6, 1.0).to_dtype(DType::BF16).unwrap();
    let y = f.forward_bias(&x, &b).unwrap();
    let want = f.forward(&x.broadcast_add(&b).unwrap()).unwrap();
    assert_eq!(flat(&y), flat(&want));
}

/// The linear maps' bias add (`op::bias`) gives candle's
/// `broadcast_add` bit for bit: values, the input's gradient and the
/// bias's (candle sums the rows in order, one accumulator per column).
#[test]
fn the_linear_bias_add_equals_broadcast_add_bit_for_bit() {
    for (p, n, f) in [(1, 3, 64), (2, 5, 33), (1, 300, 17), (2, 1, 1)] {
        let y = values(&[p, n, f], 51, 3.0);
        let b = values(&[p, 1, f], 52, 1.0);
        let (yf, gf) = grads(&[y.clone(), b.clone()], |t| {
            actforge::op::bias::add(&t[0], &t[1])
        });
        let (yc, gc) = grads(&[y, b], |t| t[0].broadcast_add(&t[1]));
        assert_eq!(flat(&yf), flat(&yc), "{p}x{n}x{f} values");
        assert_eq!(flat(&gf[0]), flat(&gc[0]), "{p}x{n}x{f} dy");
        assert_eq!(gf[1].dims(), gc[1].dims());
        assert_eq!(flat(&gf[1]), flat(&gc[1]), "{p}x{n}x{f} db");
    }
    // A transposed (strided) input, and bf16, which takes broadcast_add.
    let y = values(&[2, 6, 9], 53, 2.0).transpose(1, 2).unwrap();
    let b = values(&[2, 1, 6], 54, 1.0);
    let want = y.broadcast_add(&b).unwrap();
    assert_eq!(flat(&actforge::op::bias::add(&y, &b).unwrap()), flat(&want));
    let (y, b) = (
        y.to_dtype(DType::BF16).unwrap(),
        b.to_dtype(DType::BF16).unwrap(),
    );
    let got = actforge::op::bias::add(&y, &b).unwrap();
    assert_eq!(got.dtype(), DType::BF16);
    assert_eq!(flat(&got), flat(&y.broadcast_add(&b).unwrap()));
}

/// A few AdamW steps (clipping factor, weight decay, a vector without
/// decay) give the same bits in place as through the composed chain.
#[test]
fn in_place_adamw_equals_the_composed_update_bit_for_bit() {
    let run = |update: Update| -> Vec<Vec<f32>> {
        let w = Var::from_tensor(&values(&[2, 5, 7], 1, 1.0)).unwrap();
        let bias = Var::from_tensor(&values(&[2, 1, 7], 2, 0.1)).unwrap();
        let x = values(&[2, 3, 5], 3, 1.0);
        let cfg = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let params = vec![
            ("h.w".to_string(), w.clone()),
            ("h.bias".to_string(), bias.clone()),
        ];
        let mut opt = AdamW::with_update(params, cfg, update).unwrap();
        for (step, scale) in [1.0, 0.37, 1.0, 0.5].into_iter().enumerate() {
            let y = x
                .matmul(w.as_tensor())
                .unwrap()
                .broadcast_add(bias.as_tensor())
                .unwrap();
            let loss = y.sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&grads, 3e-3 * (step + 1) as f64, scale).unwrap();
        }
        let state = opt.state().unwrap();
        let mut out = vec![flat(w.as_tensor()), flat(bias.as_tensor())];
        let mut keys: Vec<_> = state.keys().cloned().collect();
        keys.sort();
        out.extend(
            keys.iter()
                .map(|k| flat(&state[k].to_dtype(DType::F32).unwrap())),
        );
        out
    };
    let fused = run(Update::Fused);
    let composed = run(Update::Composed);
    for (a, b) in fused.iter().zip(&composed) {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a), bits(b));
    }
}
