//! Cross-attention maps of the Mobile-Former bridges (the paper's Fig. 13–14) for one image:
//! per block, per head and per token, the Mobile→Former map (softmax over pixels: where the
//! token looks) and the Mobile←Former map (softmax over tokens: how much each pixel takes
//! from the token), as figures with one column per token and one row per head.

use anyhow::Result;
use burn::tensor::{Tensor, TensorData};
use image::{imageops, Rgb, RgbImage};

use super::raster::{self, heat, pixel};
use crate::data::ImageSet;
use crate::kernels::Kernels;
use crate::model::mobile_former::MobileFormer;
use crate::store::NewPicture;

/// Picture kinds of the two bridges.
pub const M2F: &str = "attention/m2f";
pub const F2M: &str = "attention/f2m";

/// Side of one map's cell in a figure, pixels.
pub const CELL: u32 = 48;

/// One block's maps for one image, on the host.
#[derive(Debug, Clone)]
pub struct BlockMaps {
    pub block: usize,
    pub heads: usize,
    pub tokens: usize,
    /// `(h, w)` of the block's input map (Mobile→Former) and output map (Mobile←Former).
    pub input: (usize, usize),
    pub output: (usize, usize),
    /// `heads × tokens × h·w`, each row summing to 1 over the pixels.
    pub m2f: Vec<f32>,
    /// `heads × h'·w' × tokens`, each row summing to 1 over the tokens.
    pub f2m: Vec<f32>,
}

impl BlockMaps {
    /// Mobile→Former map of `head` and `token`: `h·w` weights over the input pixels.
    pub fn m2f_map(&self, head: usize, token: usize) -> &[f32] {
        let hw = self.input.0 * self.input.1;
        let at = (head * self.tokens + token) * hw;
        &self.m2f[at..at + hw]
    }

    /// Mobile←Former map of `head` and `token`: the weight of `token` at each output pixel.
    pub fn f2m_map(&self, head: usize, token: usize) -> Vec<f32> {
        let hw = self.output.0 * self.output.1;
        (0..hw)
            .map(|p| self.f2m[(head * hw + p) * self.tokens + token])
            .collect()
    }
}

/// Image `index` of `set`, normalised with `stats`, as a batch of one.
fn one_image<B: Kernels>(
    set: &ImageSet,
    index: usize,
    stats: &[(f32, f32)],
    device: &B::Device,
) -> Tensor<B, 4> {
    let (c, s) = (set.channels, set.size);
    let plane = s * s;
    let img = set.image(index);
    let pixels: Vec<f32> = (0..c * plane)
        .map(|i| {
            let (mean, std) = stats[i / plane];
            (img[i] - mean) / std
        })
        .collect();
    Tensor::from_data(TensorData::new(pixels, [1, c, s, s]), device)
}

/// Every block's maps for image `index` of `set` (normalised with `stats`, the training
/// set's channel statistics), the encoder in evaluation mode.
pub fn maps<B: Kernels>(
    encoder: &MobileFormer<B>,
    set: &ImageSet,
    index: usize,
    stats: &[(f32, f32)],
    device: &B::Device,
) -> Vec<BlockMaps> {
    let (_, blocks) = encoder.attention_maps(one_image(set, index, stats, device));
    blocks
        .into_iter()
        .enumerate()
        .map(|(block, b)| {
            let [_, heads, tokens, _] = b.m2f.dims();
            let host = |t: Tensor<B, 4>| -> Vec<f32> {
                t.into_data().convert::<f32>().to_vec().unwrap_or_default()
            };
            BlockMaps {
                block,
                heads,
                tokens,
                input: b.input,
                output: b.output,
                m2f: host(b.m2f),
                f2m: host(b.f2m),
            }
        })
        .collect()
}

/// One cell: the image in grey at [`CELL`] pixels, the map (scaled to its own maximum)
/// laid over it in the heat colours.
fn cell(map: &[f32], (h, w): (usize, usize), grey: &RgbImage) -> RgbImage {
    let peak = map.iter().copied().fold(0.0f32, f32::max).max(1e-12);
    RgbImage::from_fn(CELL, CELL, |x, y| {
        let (my, mx) = (
            y as usize * h / CELL as usize,
            x as usize * w / CELL as usize,
        );
        let hot = heat(map[my * w + mx] / peak);
        let g = grey.get_pixel(x, y)[0] as f32;
        Rgb([0, 1, 2].map(|c| (0.3 * g + 0.7 * hot[c] as f32).round() as u8))
    })
}

/// The image in grey at [`CELL`] × [`CELL`].
fn grey_cell(set: &ImageSet, index: usize) -> RgbImage {
    let (c, s) = (set.channels, set.size);
    let img = RgbImage::from_fn(s as u32, s as u32, |x, y| {
        let p = pixel(set.image(index), c, s * s, y as usize * s + x as usize);
        let g = ((p[0] as u32 + p[1] as u32 + p[2] as u32) / 3) as u8;
        Rgb([g, g, g])
    });
    imageops::resize(&img, CELL, CELL, imageops::FilterType::Triangle)
}

/// The figure of one block and one bridge: a column per token, a row per head.
pub fn figure(b: &BlockMaps, bridge: &str, grey: &RgbImage) -> RgbImage {
    let rows: Vec<RgbImage> = (0..b.heads)
        .map(|head| {
            let cells: Vec<RgbImage> = (0..b.tokens)
                .map(|t| {
                    if bridge == M2F {
                        cell(b.m2f_map(head, t), b.input, grey)
                    } else {
                        cell(&b.f2m_map(head, t), b.output, grey)
                    }
                })
                .collect();
            raster::side_by_side(&cells, 2)
        })
        .collect();
    raster::stacked(&rows, 2)
}

/// The pictures of every block's two bridges for image `index`, stored at `epoch`.
pub fn pictures(
    blocks: &[BlockMaps],
    set: &ImageSet,
    index: usize,
    epoch: i64,
) -> Result<Vec<NewPicture>> {
    let grey = grey_cell(set, index);
    let mut out = Vec::new();
    for b in blocks {
        for (kind, what, (h, w)) in [
            (
                M2F,
                "Mobile→Former, softmax over pixels: where each token looks",
                b.input,
            ),
            (
                F2M,
                "Mobile←Former, softmax over tokens: how much each pixel takes from the token",
                b.output,
            ),
        ] {
            out.push(NewPicture {
                kind: kind.to_string(),
                epoch,
                item: b.block as i64,
                caption: format!(
                    "block {} · {h}×{w} · {what} · columns: {} tokens, rows: {} heads · image {index} · each map scaled to its own maximum",
                    b.block + 1,
                    b.tokens,
                    b.heads
                ),
                value: None,
                png: raster::png(&figure(b, kind, &grey))?,
            });
        }
    }
    Ok(out)
}

/// What `workbench attention` computed for a stored run.
#[derive(Debug, Clone)]
pub struct RunAttention {
    pub run: String,
    /// Epochs of the encoder (0: a baseline's fresh encoder).
    pub epoch: i64,
    pub image: usize,
    pub blocks: Vec<BlockMaps>,
    pub pictures: Vec<NewPicture>,
}

/// The maps and figures of a stored run's encoder (its newest checkpoint; a random-init
/// baseline's fresh encoder) for validation image `image`, every block or only `block`
/// (1-based, as in the captions). Checks everything before computing: a run without a
/// checkpoint, an image index out of range or a block that does not exist is an error.
pub fn for_run(
    row: &crate::store::RunRow,
    image: usize,
    block: Option<usize>,
) -> Result<RunAttention> {
    use crate::spec::Method;
    let cfg = super::stored::config_of(row)?;
    anyhow::ensure!(
        cfg.method != Method::Supervised,
        "run {}: the supervised baseline trains its encoder inside its probe and keeps no checkpoint; no attention maps",
        row.id
    );
    let dev = Default::default();
    let (encoder, epoch) = if cfg.method.pretrains() {
        let (dir, epoch) = super::stored::require_checkpoint(row)?;
        let encoder = crate::train::checkpoint::load_encoder::<crate::backend::Cpu>(
            &cfg,
            &dir,
            cfg.data.channels,
            &dev,
        )?;
        (encoder, epoch as i64)
    } else {
        let model =
            crate::model::qbheat::QbHeat::<crate::backend::Cpu>::new(&cfg, cfg.data.channels, &dev);
        (model.encoder, 0)
    };
    let blocks_n = encoder.blocks.len();
    if let Some(b) = block {
        anyhow::ensure!(
            (1..=blocks_n).contains(&b),
            "block {b} does not exist: {} has blocks 1 to {blocks_n}",
            cfg.model.preset.spec().name
        );
    }
    let (train, val) = crate::data::load(&cfg)?;
    anyhow::ensure!(
        image < val.len(),
        "image {image} is out of range: the validation set has {} images (0 to {})",
        val.len(),
        val.len().saturating_sub(1)
    );
    let mut blocks = maps(&encoder, &val, image, &train.channel_stats(), &dev);
    if let Some(b) = block {
        blocks.retain(|m| m.block + 1 == b);
    }
    let pictures = pictures(&blocks, &val, image, epoch)?;
    Ok(RunAttention {
        run: row.id.clone(),
        epoch,
        image,
        blocks,
        pictures,
    })
}

/// Entropy of a probability row divided by the entropy of the uniform distribution over it
/// (1: spread evenly, 0: on one entry).
pub fn normalised_entropy(p: &[f32]) -> f64 {
    if p.len() < 2 {
        return 0.0;
    }
    let h: f64 = p
        .iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| -f64::from(v) * f64::from(v).ln())
        .sum();
    h / (p.len() as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::Init;

    type Cpu = burn::backend::Flex;

    #[test]
    fn maps_are_distributions_at_the_blocks_resolutions() {
        let spec = crate::spec::Preset::MfMicro.spec();
        let dev = Default::default();
        let encoder = MobileFormer::<Cpu>::new(&spec, 3, &mut Init::new(7), &dev);
        let set = crate::data::procedural::generate(2, 32, 3, 5);
        let stats = set.channel_stats();
        let blocks = maps(&encoder, &set, 1, &stats, &dev);
        assert_eq!(blocks.len(), spec.blocks.len());
        // resolutions: the input of block b is the output of the stage before it (Tab. 8)
        let shapes = encoder.stage_shapes(32, 32);
        for (b, m) in blocks.iter().enumerate() {
            let [_, hi, wi] = shapes[b + 1];
            let [_, ho, wo] = shapes[b + 2];
            assert_eq!(m.input, (hi, wi), "block {b}");
            assert_eq!(m.output, (ho, wo), "block {b}");
            assert_eq!((m.heads, m.tokens), (2, spec.tokens));
            assert_eq!(m.m2f.len(), m.heads * m.tokens * hi * wi);
            assert_eq!(m.f2m.len(), m.heads * ho * wo * m.tokens);
            for head in 0..m.heads {
                for t in 0..m.tokens {
                    let s: f32 = m.m2f_map(head, t).iter().sum();
                    assert!(
                        (s - 1.0).abs() < 1e-5,
                        "m2f block {b} head {head} token {t}: {s}"
                    );
                }
                for p in 0..ho * wo {
                    let s: f32 = (0..m.tokens).map(|t| m.f2m_map(head, t)[p]).sum();
                    assert!(
                        (s - 1.0).abs() < 1e-5,
                        "f2m block {b} head {head} pixel {p}: {s}"
                    );
                }
            }
        }
        let pics = pictures(&blocks, &set, 1, 3).unwrap();
        assert_eq!(pics.len(), 2 * blocks.len());
        let fig = raster::decode(&pics[0].png).unwrap();
        let t = spec.tokens as u32;
        assert_eq!(fig.dimensions(), (t * CELL + (t - 1) * 2, 2 * CELL + 2));
        assert!((normalised_entropy(&[0.25; 4]) - 1.0).abs() < 1e-12);
        assert_eq!(normalised_entropy(&[1.0, 0.0, 0.0]), 0.0);
    }
}
