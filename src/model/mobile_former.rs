//! Mobile-Former encoder (Chen et al. 2022; DESIGN §3).
//!
//! A MobileNet stream of inverted bottlenecks runs in parallel with a Former stream of a few
//! global tokens. Per block:
//! 1. Mobile→Former: tokens attend to the pixels (keys/values are the raw feature map, 2 heads),
//!    residual into the tokens.
//! 2. Former: token self-attention + FFN, post-LN.
//! 3. Mobile: pw → dw (stride 1 or 2) → pw, with a dynamic ReLU whose coefficients come from
//!    token 0 (DY-ReLU: y = max(a₁x + b₁, a₂x + b₂)).
//! 4. Former→Mobile: pixels attend to the tokens, residual into the feature map.

use burn::module::{Module, Param};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{backend::Backend, Tensor};

use super::init::Init;
use super::layers::{
    layer_norm, merge_heads, sdpa, split_heads, ConvBn, Dense, LayerNorm, Mlp, PointwiseBn,
    SelfAttention,
};
use crate::kernels::{add, Kernels};
use crate::spec::{BlockSpec, PresetSpec};

/// Heads of the two cross-attention bridges.
const BRIDGE_HEADS: usize = 2;

/// Output of the encoder.
#[derive(Debug, Clone)]
pub struct EncoderOutput<B: Backend> {
    /// Feature map after the final 1×1 conv: `[n, wide, h, w]`.
    pub features: Tensor<B, 4>,
    /// Global tokens: `[n, tokens, token_dim]`.
    pub tokens: Tensor<B, 3>,
}

impl<B: Backend> EncoderOutput<B> {
    /// Classifier features: concat(avgpool(features), token 0) — e.g. 720 + 192 for mf-285m.
    pub fn pooled(&self) -> Tensor<B, 2> {
        let [n, c, h, w] = self.features.dims();
        let pooled = self
            .features
            .clone()
            .reshape([n, c, h * w])
            .mean_dim(2)
            .reshape([n, c]);
        let [_, _, d] = self.tokens.dims();
        let t0 = self.tokens.clone().narrow(1, 0, 1).reshape([n, d]);
        Tensor::cat(vec![pooled, t0], 1)
    }
}

/// Dynamic ReLU coefficient generator (from token 0) for `channels` channels, two activations.
#[derive(Module, Debug)]
pub struct DynamicRelu<B: Backend> {
    pub fc1: Dense<B>,
    pub fc2: Dense<B>,
    pub channels: usize,
}

impl<B: Kernels> DynamicRelu<B> {
    fn new(
        init: &mut Init,
        token_dim: usize,
        reduction: usize,
        channels: usize,
        device: &B::Device,
    ) -> Self {
        let hidden = (token_dim / reduction.max(1)).max(8);
        Self {
            fc1: Dense::new(init, token_dim, hidden, true, device),
            fc2: Dense::new(init, hidden, 8 * channels, true, device),
            channels,
        }
    }

    /// Coefficient logits `[n, 8·C]`: two sets of (Δa₁, Δb₁, Δa₂, Δb₂) per channel, each
    /// Δ = 2σ(ℓ) − 1 ∈ (−1, 1), the map applied inside the fused dynamic ReLU.
    fn coefficients(&self, token0: Tensor<B, 2>) -> Tensor<B, 2> {
        self.fc2.forward(relu(self.fc1.forward(token0)))
    }

    /// y = max(a₁x + b₁, a₂x + b₂), a₁ = 1 + Δa₁, b₁ = ½Δb₁, a₂ = Δa₂, b₂ = ½Δb₂ (DY-ReLU-B),
    /// one fused operation with its own backward ([`crate::kernels::dynamic_relu`]).
    fn apply(x: Tensor<B, 4>, coef: Tensor<B, 2>, set: usize) -> Tensor<B, 4> {
        crate::kernels::dynamic_relu(x, coef, set)
    }

    fn macs(&self, n: usize) -> u64 {
        self.fc1.macs(n) + self.fc2.macs(n)
    }
}

/// A channel-first map `[n, c, h, w]` as per-head pixel sequences `[n, heads, h·w, c/heads]`:
/// a free reshape plus a strided view (the matmuls read the strides directly), instead of
/// transposing the whole map into `[n, h·w, c]` first.
fn pixel_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, BRIDGE_HEADS, c / BRIDGE_HEADS, h * w])
        .swap_dims(2, 3)
}

/// softmax(QKᵀ/√d) over the last axis, per batch entry and head: the probabilities the fused
/// attention kernel weighs V with (Vaswani et al. 2017, Eq. 1), computed with burn's own ops
/// for inspection (no gradient is taken through them).
fn attention_probabilities<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>) -> Tensor<B, 4> {
    let d = q.dims()[3] as f64;
    softmax(q.matmul(k.swap_dims(2, 3)).div_scalar(d.sqrt()), 3)
}

/// The cross-attention probabilities of one block (the paper's Fig. 13–14).
#[derive(Debug, Clone)]
pub struct BlockAttention<B: Backend> {
    /// Mobile→Former `[n, heads, tokens, h·w]`: where each token looks, a softmax over the
    /// block's input pixels.
    pub m2f: Tensor<B, 4>,
    /// `(h, w)` of the block's input map.
    pub input: (usize, usize),
    /// Mobile←Former `[n, heads, h'·w', tokens]`: which token each pixel takes from, a
    /// softmax over the tokens, at the block's output resolution.
    pub f2m: Tensor<B, 4>,
    /// `(h', w')` of the block's output map.
    pub output: (usize, usize),
}

/// Tokens attend to pixels: Q = z W_q, K = V = x (raw feature map), output W_o.
#[derive(Module, Debug)]
pub struct MobileToFormer<B: Backend> {
    pub q: Dense<B>,
    pub o: Dense<B>,
}

impl<B: Kernels> MobileToFormer<B> {
    fn forward(&self, x: Tensor<B, 4>, z: Tensor<B, 3>) -> Tensor<B, 3> {
        let kv = pixel_heads(x);
        let q = split_heads(self.q.forward(z.clone()), BRIDGE_HEADS);
        let attended = merge_heads(sdpa(q, kv.clone(), kv));
        add(z, self.o.forward(attended))
    }

    /// Where each token looks: softmax over pixels, `[n, heads, tokens, h·w]`.
    fn probabilities(&self, x: Tensor<B, 4>, z: Tensor<B, 3>) -> Tensor<B, 4> {
        let q = split_heads(self.q.forward(z), BRIDGE_HEADS);
        attention_probabilities(q, pixel_heads(x))
    }

    fn macs(&self, n: usize, tokens: usize, c: usize, hw: usize) -> u64 {
        self.q.macs(n * tokens) + self.o.macs(n * tokens) + (2 * n * tokens * hw * c) as u64
    }
}

/// Pixels attend to tokens: Q = x, K = z W_k, V = z W_v; residual into x.
#[derive(Module, Debug)]
pub struct FormerToMobile<B: Backend> {
    pub k: Dense<B>,
    pub v: Dense<B>,
}

impl<B: Kernels> FormerToMobile<B> {
    fn forward(&self, x: Tensor<B, 4>, z: Tensor<B, 3>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let q = pixel_heads(x.clone());
        let k = split_heads(self.k.forward(z.clone()), BRIDGE_HEADS);
        let v = split_heads(self.v.forward(z), BRIDGE_HEADS);
        let out = sdpa(q, k, v); // [n, heads, hw, c/heads]
                                 // x seen head-major (a free reshape) plus the heads' outputs read through their strides
        let x = x.reshape([n, BRIDGE_HEADS, c / BRIDGE_HEADS, h * w]);
        add(x, out.swap_dims(2, 3)).reshape([n, c, h, w])
    }

    /// Which token each pixel takes from: softmax over tokens, `[n, heads, h·w, tokens]`.
    fn probabilities(&self, x: Tensor<B, 4>, z: Tensor<B, 3>) -> Tensor<B, 4> {
        let k = split_heads(self.k.forward(z), BRIDGE_HEADS);
        attention_probabilities(pixel_heads(x), k)
    }

    fn macs(&self, n: usize, tokens: usize, c: usize, hw: usize) -> u64 {
        self.k.macs(n * tokens) + self.v.macs(n * tokens) + (2 * n * tokens * hw * c) as u64
    }
}

/// Post-LN transformer over the tokens.
#[derive(Module, Debug)]
pub struct Former<B: Backend> {
    pub attn: SelfAttention<B>,
    pub norm1: LayerNorm<B>,
    pub ffn: Mlp<B>,
    pub norm2: LayerNorm<B>,
}

impl<B: Kernels> Former<B> {
    fn new(init: &mut Init, d: usize, ffn_ratio: usize, device: &B::Device) -> Self {
        let heads = if d.is_multiple_of(4) { 4 } else { 2 };
        Self {
            attn: SelfAttention::new(init, d, heads, device),
            norm1: layer_norm(d, device),
            ffn: Mlp::new(init, d, ffn_ratio * d, device),
            norm2: layer_norm(d, device),
        }
    }

    fn forward(&self, z: Tensor<B, 3>) -> Tensor<B, 3> {
        let z = self.norm1.forward(add(z.clone(), self.attn.forward(z)));
        self.norm2.forward(add(z.clone(), self.ffn.forward(z)))
    }

    fn macs(&self, n: usize, tokens: usize) -> u64 {
        self.attn.macs(n, tokens) + self.ffn.macs(n * tokens)
    }
}

/// One Mobile-Former block.
#[derive(Module, Debug)]
pub struct MobileFormerBlock<B: Backend> {
    pub m2f: MobileToFormer<B>,
    pub former: Former<B>,
    pub dyrelu: DynamicRelu<B>,
    pub expand: PointwiseBn<B>,
    pub depthwise: ConvBn<B>,
    pub project: PointwiseBn<B>,
    pub f2m: FormerToMobile<B>,
    pub residual: bool,
}

impl<B: Kernels> MobileFormerBlock<B> {
    fn new(
        init: &mut Init,
        c_in: usize,
        spec: BlockSpec,
        preset: &PresetSpec,
        device: &B::Device,
    ) -> Self {
        let d = preset.token_dim;
        Self {
            m2f: MobileToFormer {
                q: Dense::new(init, d, c_in, true, device),
                o: Dense::new(init, c_in, d, true, device),
            },
            former: Former::new(init, d, preset.ffn_ratio, device),
            dyrelu: DynamicRelu::new(init, d, preset.dyrelu_reduction, spec.expand, device),
            expand: PointwiseBn::new(init, c_in, spec.expand, device),
            depthwise: ConvBn::new(init, spec.expand, spec.expand, 3, spec.stride, true, device),
            project: PointwiseBn::new(init, spec.expand, spec.out, device),
            f2m: FormerToMobile {
                k: Dense::new(init, d, spec.out, true, device),
                v: Dense::new(init, d, spec.out, true, device),
            },
            residual: spec.stride == 1 && c_in == spec.out,
        }
    }

    /// The block's forward pass; with `record`, also its two bridges' attention
    /// probabilities.
    fn forward_recorded(
        &self,
        x: Tensor<B, 4>,
        z: Tensor<B, 3>,
        record: bool,
    ) -> (Tensor<B, 4>, Tensor<B, 3>, Option<BlockAttention<B>>) {
        let m2f = record.then(|| self.m2f.probabilities(x.clone(), z.clone()));
        let [_, _, h, w] = x.dims();
        let z = self.former.forward(self.m2f.forward(x.clone(), z));
        let [n, _, d] = z.dims();
        let coef = self
            .dyrelu
            .coefficients(z.clone().narrow(1, 0, 1).reshape([n, d]));
        let y = DynamicRelu::apply(self.expand.forward(x.clone()), coef.clone(), 0);
        let y = DynamicRelu::apply(self.depthwise.forward(y), coef, 1);
        let y = self.project.forward(y);
        let y = if self.residual { y + x } else { y };
        let maps = m2f.map(|m2f| {
            let [_, _, ho, wo] = y.dims();
            BlockAttention {
                m2f,
                input: (h, w),
                f2m: self.f2m.probabilities(y.clone(), z.clone()),
                output: (ho, wo),
            }
        });
        (self.f2m.forward(y, z.clone()), z, maps)
    }

    /// Multiply-adds on an `n × c_in × h × w` input; returns (macs, out h, out w).
    fn macs(&self, n: usize, h: usize, w: usize, tokens: usize) -> (u64, usize, usize) {
        let c_in = self.expand.conv.weight.dims()[1];
        let c_out = self.project.conv.weight.dims()[0];
        let (ho, wo) = (self.depthwise.out_side(h), self.depthwise.out_side(w));
        let m = self.m2f.macs(n, tokens, c_in, h * w)
            + self.former.macs(n, tokens)
            + self.dyrelu.macs(n)
            + self.expand.macs(n * h * w)
            + n as u64 * self.depthwise.macs(h, w)
            + self.project.macs(n * ho * wo)
            + self.f2m.macs(n, tokens, c_out, ho * wo);
        (m, ho, wo)
    }
}

/// The Mobile-Former encoder.
#[derive(Module, Debug)]
pub struct MobileFormer<B: Backend> {
    pub stem: ConvBn<B>,
    pub lite_dw: ConvBn<B>,
    pub lite_pw: PointwiseBn<B>,
    pub tokens: Param<Tensor<B, 2>>,
    pub blocks: Vec<MobileFormerBlock<B>>,
    pub head: PointwiseBn<B>,
}

impl<B: Kernels> MobileFormer<B> {
    pub fn new(spec: &PresetSpec, in_channels: usize, init: &mut Init, device: &B::Device) -> Self {
        let stem = ConvBn::new(init, in_channels, spec.stem, 3, 2, false, device);
        // bneck-lite: depthwise 3×3 with a channel multiplier (stem → lite_expand), pointwise
        let lite_dw = ConvBn::new(init, spec.stem, spec.lite_expand, 3, 1, true, device);
        let lite_pw = PointwiseBn::new(init, spec.lite_expand, spec.lite_out, device);
        let tokens = super::init::param(
            init.normal_vec(spec.tokens * spec.token_dim, 1.0),
            [spec.tokens, spec.token_dim],
            device,
        );
        let mut c = spec.lite_out;
        let mut blocks = Vec::with_capacity(spec.blocks.len());
        for b in &spec.blocks {
            blocks.push(MobileFormerBlock::new(init, c, *b, spec, device));
            c = b.out;
        }
        let head = PointwiseBn::new(init, c, spec.wide, device);
        Self {
            stem,
            lite_dw,
            lite_pw,
            tokens,
            blocks,
            head,
        }
    }

    pub fn forward(&self, images: Tensor<B, 4>) -> EncoderOutput<B> {
        self.forward_recorded(images, false).0
    }

    /// The forward pass and every block's cross-attention probabilities (Fig. 13–14), in
    /// block order.
    pub fn attention_maps(
        &self,
        images: Tensor<B, 4>,
    ) -> (EncoderOutput<B>, Vec<BlockAttention<B>>) {
        self.forward_recorded(images, true)
    }

    fn forward_recorded(
        &self,
        images: Tensor<B, 4>,
        record: bool,
    ) -> (EncoderOutput<B>, Vec<BlockAttention<B>>) {
        let n = images.dims()[0];
        let x = relu(self.stem.forward(images));
        // bneck-lite: depthwise 3×3 + pointwise, residual when widths agree
        let y = self.lite_pw.forward(relu(self.lite_dw.forward(x.clone())));
        let mut x = if y.dims() == x.dims() { y + x } else { y };
        let [m, d] = self.tokens.dims();
        let mut z = self.tokens.val().reshape([1, m, d]).repeat_dim(0, n);
        let mut maps = Vec::new();
        for block in &self.blocks {
            let recorded;
            (x, z, recorded) = block.forward_recorded(x, z, record);
            maps.extend(recorded);
        }
        let out = EncoderOutput {
            features: relu(self.head.forward(x)),
            tokens: z,
        };
        (out, maps)
    }

    /// Multiply-adds of one forward pass on `n` images of `h × w`.
    pub fn macs(&self, n: usize, h: usize, w: usize) -> u64 {
        let tokens = self.tokens.dims()[0];
        let mut total = n as u64 * self.stem.macs(h, w);
        let (mut h, mut w) = (self.stem.out_side(h), self.stem.out_side(w));
        total += n as u64 * self.lite_dw.macs(h, w) + self.lite_pw.macs(n * h * w);
        for block in &self.blocks {
            let (m, ho, wo) = block.macs(n, h, w, tokens);
            total += m;
            (h, w) = (ho, wo);
        }
        total + self.head.macs(n * h * w)
    }

    /// `[channels, h, w]` after the stem, the bneck-lite and every block for an `h × w` input
    /// (read off the weights, so it checks what was built).
    pub fn stage_shapes(&self, h: usize, w: usize) -> Vec<[usize; 3]> {
        let mut out = Vec::new();
        let (mut h, mut w) = (self.stem.out_side(h), self.stem.out_side(w));
        out.push([self.stem.weight.dims()[0], h, w]);
        out.push([self.lite_pw.conv.weight.dims()[0], h, w]);
        for b in &self.blocks {
            (h, w) = (b.depthwise.out_side(h), b.depthwise.out_side(w));
            out.push([b.project.conv.weight.dims()[0], h, w]);
        }
        out.push([self.head.conv.weight.dims()[0], h, w]);
        out
    }

    /// Width of the feature map and of the pooled classifier features.
    pub fn widths(&self) -> (usize, usize) {
        let wide = self.head.conv.weight.dims()[0];
        (wide, wide + self.tokens.dims()[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    type Cpu = burn::backend::Flex;

    #[test]
    fn inspected_probabilities_are_the_ones_the_fused_attention_uses() {
        let dev = Default::default();
        let q = Tensor::<Cpu, 4>::random([2, 2, 3, 8], Distribution::Normal(0.0, 1.0), &dev);
        let k = Tensor::<Cpu, 4>::random([2, 2, 16, 8], Distribution::Normal(0.0, 1.0), &dev);
        let v = Tensor::<Cpu, 4>::random([2, 2, 16, 8], Distribution::Normal(0.0, 1.0), &dev);
        let p = attention_probabilities(q.clone(), k.clone());
        let mine: Vec<f32> = p.matmul(v.clone()).into_data().to_vec().unwrap();
        let fused: Vec<f32> = sdpa(q, k, v).into_data().to_vec().unwrap();
        let worst = mine
            .iter()
            .zip(&fused)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(worst < 1e-5, "{worst}");
    }
}
