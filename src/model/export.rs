//! The encoder's weights under PyTorch names and layouts (issue 26): the `nn.Module` tree of
//! `scripts/mobile_former.py`, which mirrors [`MobileFormer`] module for module:
//!
//! | ours | PyTorch |
//! |---|---|
//! | `Dense` W `[in, out]`, b | `nn.Linear` `weight [out, in]` (transposed), `bias` |
//! | `Pointwise` W `[out, in]` | `nn.Conv2d(in, out, 1)` `weight [out, in, 1, 1]` |
//! | `ConvBn` W `[out, in/groups, k, k]` + BN | `.conv.weight` (same layout), `.bn.*` |
//! | `BatchNorm2d` γ, β, running mean/var | `weight`, `bias`, `running_mean`, `running_var` |
//! | `LayerNorm` γ, β | `weight`, `bias` |
//! | tokens `[m, d]` | `tokens` |

use burn::module::Param;
use burn::tensor::{backend::Backend, Tensor};

use super::batch_norm::BatchNorm2d;
use super::layers::{ConvBn, Dense, LayerNorm, Mlp, Pointwise, PointwiseBn, SelfAttention};
use super::mobile_former::MobileFormer;

/// One exported tensor: its PyTorch name, shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Collects tensors under a name prefix.
struct Out(Vec<NamedTensor>);

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> (Vec<usize>, Vec<f32>) {
    let shape = t.dims().to_vec();
    let values = t.into_data().convert::<f32>().to_vec().unwrap_or_default();
    (shape, values)
}

impl Out {
    fn put<B: Backend, const D: usize>(&mut self, name: String, t: Tensor<B, D>) {
        let (shape, values) = host(t);
        self.0.push(NamedTensor {
            name,
            shape,
            values,
        });
    }

    fn param<B: Backend, const D: usize>(&mut self, name: String, p: &Param<Tensor<B, D>>) {
        self.put(name, p.val());
    }

    /// `nn.Linear`: the weight transposed to `[out, in]`.
    fn dense<B: Backend>(&mut self, at: &str, d: &Dense<B>) {
        self.put(format!("{at}.weight"), d.weight.val().transpose());
        if let Some(b) = &d.bias {
            self.param(format!("{at}.bias"), b);
        }
    }

    /// `nn.Conv2d(in, out, 1, bias=False)`.
    fn pointwise<B: Backend>(&mut self, at: &str, p: &Pointwise<B>) {
        let [o, i] = p.weight.dims();
        self.put(format!("{at}.weight"), p.weight.val().reshape([o, i, 1, 1]));
    }

    fn batch_norm<B: Backend>(&mut self, at: &str, bn: &BatchNorm2d<B>) {
        self.param(format!("{at}.weight"), &bn.gamma);
        self.param(format!("{at}.bias"), &bn.beta);
        self.put(format!("{at}.running_mean"), bn.running_mean.value());
        self.put(format!("{at}.running_var"), bn.running_var.value());
    }

    fn conv_bn<B: Backend>(&mut self, at: &str, c: &ConvBn<B>) {
        self.param(format!("{at}.conv.weight"), &c.weight);
        self.batch_norm(&format!("{at}.bn"), &c.bn);
    }

    fn pointwise_bn<B: Backend>(&mut self, at: &str, c: &PointwiseBn<B>) {
        self.pointwise(&format!("{at}.conv"), &c.conv);
        self.batch_norm(&format!("{at}.bn"), &c.bn);
    }

    fn layer_norm<B: Backend>(&mut self, at: &str, n: &LayerNorm<B>) {
        self.param(format!("{at}.weight"), &n.gamma);
        if let Some(b) = &n.beta {
            self.param(format!("{at}.bias"), b);
        }
    }

    fn attention<B: Backend>(&mut self, at: &str, a: &SelfAttention<B>) {
        self.dense(&format!("{at}.qkv"), &a.qkv);
        self.dense(&format!("{at}.proj"), &a.proj);
    }

    fn mlp<B: Backend>(&mut self, at: &str, m: &Mlp<B>) {
        self.dense(&format!("{at}.fc1"), &m.fc1);
        self.dense(&format!("{at}.fc2"), &m.fc2);
    }
}

/// Every tensor of the encoder (BatchNorm running statistics included) under the names of
/// `scripts/mobile_former.py`'s `MobileFormer`.
pub fn encoder_tensors<B: Backend>(enc: &MobileFormer<B>) -> Vec<NamedTensor> {
    let mut out = Out(Vec::new());
    out.conv_bn("stem", &enc.stem);
    out.conv_bn("lite_dw", &enc.lite_dw);
    out.pointwise_bn("lite_pw", &enc.lite_pw);
    out.param("tokens".into(), &enc.tokens);
    for (i, b) in enc.blocks.iter().enumerate() {
        let at = |s: &str| format!("blocks.{i}.{s}");
        out.dense(&at("m2f.q"), &b.m2f.q);
        out.dense(&at("m2f.o"), &b.m2f.o);
        out.attention(&at("former.attn"), &b.former.attn);
        out.layer_norm(&at("former.norm1"), &b.former.norm1);
        out.mlp(&at("former.ffn"), &b.former.ffn);
        out.layer_norm(&at("former.norm2"), &b.former.norm2);
        out.dense(&at("dyrelu.fc1"), &b.dyrelu.fc1);
        out.dense(&at("dyrelu.fc2"), &b.dyrelu.fc2);
        out.pointwise_bn(&at("expand"), &b.expand);
        out.conv_bn(&at("depthwise"), &b.depthwise);
        out.pointwise_bn(&at("project"), &b.project);
        out.dense(&at("f2m.k"), &b.f2m.k);
        out.dense(&at("f2m.v"), &b.f2m.v);
    }
    out.pointwise_bn("head", &enc.head);
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::Init;
    use burn::module::Module;

    type Cpu = burn::backend::Flex;

    #[test]
    fn every_tensor_once_under_pytorch_names_and_layouts() {
        for preset in [crate::spec::Preset::MfMicro, crate::spec::Preset::Mf285m] {
            let spec = preset.spec();
            let enc = MobileFormer::<Cpu>::new(&spec, 3, &mut Init::new(1), &Default::default());
            let tensors = encoder_tensors(&enc);
            // nothing left out: burn counts every float tensor, running statistics included
            let values: usize = tensors.iter().map(|t| t.values.len()).sum();
            assert_eq!(values, enc.num_params(), "{}", spec.name);
            let mut names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), tensors.len(), "names are unique");
            for t in &tensors {
                assert_eq!(
                    t.shape.iter().product::<usize>(),
                    t.values.len(),
                    "{}",
                    t.name
                );
            }
            let find = |n: &str| tensors.iter().find(|t| t.name == n).unwrap();
            // nn.Linear stores [out, in]: ours [in, out] transposed
            let q = &enc.blocks[0].m2f.q.weight;
            let [d_in, d_out] = q.dims();
            let ours: Vec<f32> = q.val().into_data().to_vec().unwrap();
            let theirs = find("blocks.0.m2f.q.weight");
            assert_eq!(theirs.shape, vec![d_out, d_in]);
            for (i, j) in [(0, 0), (1, 2), (d_in - 1, d_out - 1)] {
                assert_eq!(theirs.values[j * d_in + i], ours[i * d_out + j]);
            }
            // 1×1 convs are 4-D, BatchNorm carries its running statistics
            assert_eq!(
                find("head.conv.weight").shape,
                vec![spec.wide, spec.blocks.last().unwrap().out, 1, 1]
            );
            assert_eq!(find("stem.bn.running_var").values, vec![1.0; spec.stem]);
            assert_eq!(find("tokens").shape, vec![spec.tokens, spec.token_dim]);
            assert!(names.contains(&"blocks.1.former.norm2.bias"));
        }
    }
}
