//! Image folders: `root/<class>/*.png|jpg|jpeg`, classes in name order. With `root/train/`
//! and `root/val/` (or `root/test/`) the split comes from the folders, otherwise a seeded
//! fraction of each class is held out.

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

use super::reader::{Reader, SetBuilder, Split};
use super::ImageSet;

pub struct FolderReader {
    pub root: PathBuf,
    pub val_fraction: f64,
    pub seed: u64,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list folder", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    v.sort();
    Ok(v)
}

/// (class names, files per class) of a `root/<class>/*` tree.
fn scan(root: &Path) -> Result<(Vec<String>, Vec<Vec<PathBuf>>)> {
    let mut names = Vec::new();
    let mut files = Vec::new();
    for dir in sorted_entries(root)?.into_iter().filter(|p| p.is_dir()) {
        let imgs: Vec<PathBuf> = sorted_entries(&dir)?
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
        if let Some(bad) = imgs.iter().find(|p| {
            !p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        }) {
            bail!(
                "{}: not an image file (expected .png, .jpg or .jpeg)",
                bad.display()
            );
        }
        if imgs.is_empty() {
            bail!("{}: class folder holds no images", dir.display());
        }
        names.push(
            dir.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        files.push(imgs);
    }
    if names.is_empty() {
        bail!(
            "{}: no class folders (expected root/<class>/*.png)",
            root.display()
        );
    }
    Ok((names, files))
}

fn load_image(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let img = image::open(path)
        .with_context(|| format!("{}: cannot decode image", path.display()))?
        .to_rgb32f();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.into_raw();
    let plane = h * w;
    let mut planar = vec![0f32; 3 * plane];
    for p in 0..plane {
        for c in 0..3 {
            planar[c * plane + p] = raw[p * 3 + c];
        }
    }
    Ok((planar, h, w))
}

impl Reader for FolderReader {
    fn read(&self, split: Split, size: usize, channels: usize) -> Result<ImageSet> {
        let explicit_val = ["val", "test"]
            .iter()
            .map(|d| self.root.join(d))
            .find(|p| p.is_dir());
        let (names, mut files) = match (&explicit_val, split) {
            (Some(_), Split::Train) => scan(&self.root.join("train"))?,
            (Some(v), Split::Test) => {
                // labels are class indices in name order: both splits must name the same
                // classes, or every label after the first difference would shift
                let (train_names, _) = scan(&self.root.join("train"))?;
                let (names, files) = scan(v)?;
                if names != train_names {
                    let only = |a: &[String], b: &[String]| -> Vec<String> {
                        a.iter().filter(|n| !b.contains(n)).cloned().collect()
                    };
                    bail!(
                        "{}: class folders differ from {} (only in train: {:?}; only in {}: {:?})",
                        v.display(),
                        self.root.join("train").display(),
                        only(&train_names, &names),
                        v.file_name()
                            .map_or(String::new(), |n| n.to_string_lossy().to_string()),
                        only(&names, &train_names)
                    );
                }
                (names, files)
            }
            (None, _) => scan(&self.root)?,
        };
        if explicit_val.is_none() {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.seed ^ 0xf01d);
            for class in files.iter_mut() {
                class.shuffle(&mut rng);
                let n_val = ((class.len() as f64 * self.val_fraction).round() as usize)
                    .min(class.len() - 1);
                *class = match split {
                    Split::Test => class[..n_val].to_vec(),
                    Split::Train => class[n_val..].to_vec(),
                };
            }
        }
        let mut out = SetBuilder::new(size, channels, names.len());
        for (label, class) in files.iter().enumerate() {
            for path in class {
                let (img, h, w) = load_image(path)?;
                out.push(img, 3, h, w, label as u32);
            }
        }
        Ok(out.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(path: &Path, w: u32, h: u32, v: u8) {
        image::RgbImage::from_pixel(w, h, image::Rgb([v, v / 2, 255 - v]))
            .save(path)
            .unwrap();
    }

    #[test]
    fn reads_classes_and_splits() {
        let dir = tempfile::tempdir().unwrap();
        for (c, name) in ["cat", "dog"].iter().enumerate() {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            for i in 0..5 {
                png(
                    &dir.path().join(name).join(format!("{i}.png")),
                    10 + i,
                    7,
                    40 * c as u8,
                );
            }
        }
        let r = FolderReader {
            root: dir.path().into(),
            val_fraction: 0.2,
            seed: 1,
        };
        let train = r.read(Split::Train, 8, 3).unwrap();
        let val = r.read(Split::Test, 8, 3).unwrap();
        assert_eq!((train.len(), val.len()), (8, 2));
        assert_eq!(train.classes, 2);
        assert_eq!(val.labels, vec![0, 1]);
        assert_eq!(train.pixels.len(), 8 * 3 * 64);
    }

    #[test]
    fn train_and_val_must_name_the_same_classes() {
        let dir = tempfile::tempdir().unwrap();
        for (split, classes) in [("train", ["cat", "dog"]), ("val", ["cat", "emu"])] {
            for c in classes {
                let d = dir.path().join(split).join(c);
                std::fs::create_dir_all(&d).unwrap();
                png(&d.join("0.png"), 4, 4, 9);
            }
        }
        let r = FolderReader {
            root: dir.path().into(),
            val_fraction: 0.2,
            seed: 1,
        };
        assert_eq!(r.read(Split::Train, 8, 3).unwrap().len(), 2);
        let e = format!("{:#}", r.read(Split::Test, 8, 3).unwrap_err());
        assert!(
            e.contains("class folders differ") && e.contains("emu") && e.contains("dog"),
            "{e}"
        );
    }

    #[test]
    fn non_image_and_empty_class_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        png(&dir.path().join("a").join("x.png"), 4, 4, 1);
        std::fs::write(dir.path().join("a").join("notes.txt"), "hi").unwrap();
        let r = FolderReader {
            root: dir.path().into(),
            val_fraction: 0.2,
            seed: 1,
        };
        let e = format!("{:#}", r.read(Split::Train, 8, 3).unwrap_err());
        assert!(e.contains("notes.txt: not an image file"), "{e}");
        std::fs::remove_file(dir.path().join("a").join("notes.txt")).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        let e = format!("{:#}", r.read(Split::Train, 8, 3).unwrap_err());
        assert!(e.contains("b: class folder holds no images"), "{e}");
        std::fs::write(dir.path().join("b").join("broken.png"), "not a png").unwrap();
        let e = format!("{:#}", r.read(Split::Train, 8, 3).unwrap_err());
        assert!(e.contains("broken.png: cannot decode image"), "{e}");
    }
}
