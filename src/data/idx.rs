//! IDX files (MNIST / Fashion-MNIST layout), plain or gzip-compressed:
//! `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-…` for the test split.
//!
//! Header: two zero bytes, type byte 0x08 (unsigned byte), number of dimensions, then one
//! big-endian u32 per dimension; then the data. Offsets in errors count bytes of the
//! decompressed stream.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::reader::{Reader, SetBuilder, Split};
use super::ImageSet;

pub struct IdxReader {
    pub root: PathBuf,
    pub classes: usize,
}

/// Reads a file, gunzipping `.gz` files.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| {
                format!(
                    "{}: corrupt gzip stream (after {} bytes)",
                    path.display(),
                    out.len()
                )
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX buffer with `ndim` dimensions; returns the dimensions and the data.
pub fn parse(path: &Path, bytes: &[u8], ndim: u8) -> Result<(Vec<usize>, Vec<u8>)> {
    let p = path.display();
    let header = 4 + 4 * ndim as usize;
    if bytes.len() < 4 {
        bail!("{p}: truncated at byte {}: no IDX header", bytes.len());
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let expected = 0x0800 | ndim as u32;
    if magic != expected {
        bail!("{p}: bad magic number 0x{magic:08x} at byte 0 (expected 0x{expected:08x})");
    }
    if bytes.len() < header {
        bail!(
            "{p}: truncated at byte {}: header needs {header} bytes",
            bytes.len()
        );
    }
    let dims: Vec<usize> = (0..ndim as usize)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    if let Some(k) = dims.iter().position(|&d| d == 0) {
        bail!(
            "{p}: dimension {k} is 0 at byte {} (dimensions {dims:?})",
            4 + 4 * k
        );
    }
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize - header)
        .ok_or_else(|| anyhow::anyhow!("{p}: dimensions {dims:?} overflow the address space"))?;
    if bytes.len() < header + len {
        bail!(
            "{p}: truncated at byte {}: dimensions {dims:?} need {} bytes",
            bytes.len(),
            header + len
        );
    }
    if bytes.len() > header + len {
        bail!(
            "{p}: {} unexpected bytes after byte {}",
            bytes.len() - header - len,
            header + len
        );
    }
    Ok((dims, bytes[header..].to_vec()))
}

/// The first existing file among `name` and `name.gz` in `root`.
fn find(root: &Path, name: &str) -> Result<PathBuf> {
    for candidate in [root.join(name), root.join(format!("{name}.gz"))] {
        if candidate.exists() {
            return Ok(candidate);
        }
    }
    bail!("{}: neither {name} nor {name}.gz exists", root.display())
}

impl Reader for IdxReader {
    fn read(&self, split: Split, size: usize, channels: usize) -> Result<ImageSet> {
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let img_path = find(&self.root, &format!("{prefix}-images-idx3-ubyte"))?;
        let lbl_path = find(&self.root, &format!("{prefix}-labels-idx1-ubyte"))?;
        let (dims, pixels) = parse(&img_path, &read_maybe_gz(&img_path)?, 3)?;
        let (ldims, labels) = parse(&lbl_path, &read_maybe_gz(&lbl_path)?, 1)?;
        if dims[0] != ldims[0] {
            bail!(
                "{}: {} labels for {} images in {}",
                lbl_path.display(),
                ldims[0],
                dims[0],
                img_path.display()
            );
        }
        let (h, w) = (dims[1], dims[2]);
        let mut out = SetBuilder::new(size, channels, self.classes);
        out.reserve(labels.len());
        for (i, &label) in labels.iter().enumerate() {
            if label as usize >= self.classes {
                bail!(
                    "{}: label {label} at byte {} is outside 0..{}",
                    lbl_path.display(),
                    8 + i,
                    self.classes
                );
            }
            let img = pixels[i * h * w..(i + 1) * h * w]
                .iter()
                .map(|&b| b as f32 / 255.0)
                .collect();
            out.push(img, 1, h, w, label as u32);
        }
        Ok(out.finish())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a tiny IDX pair (`n` images of 4×4) into `dir` under the `prefix` names.
    pub fn write_idx(dir: &Path, prefix: &str, n: usize, labels: &[u8], gz: bool) {
        let mut img = vec![0, 0, 8, 3];
        for d in [n as u32, 4, 4] {
            img.extend(d.to_be_bytes());
        }
        img.extend((0..n * 16).map(|i| (i * 7 % 256) as u8));
        let mut lbl = vec![0, 0, 8, 1];
        lbl.extend((labels.len() as u32).to_be_bytes());
        lbl.extend(labels);
        for (name, bytes) in [("images-idx3-ubyte", img), ("labels-idx1-ubyte", lbl)] {
            if gz {
                let f = std::fs::File::create(dir.join(format!("{prefix}-{name}.gz"))).unwrap();
                let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
                std::io::Write::write_all(&mut e, &bytes).unwrap();
                e.finish().unwrap();
            } else {
                std::fs::write(dir.join(format!("{prefix}-{name}")), bytes).unwrap();
            }
        }
    }

    fn reader(dir: &Path) -> IdxReader {
        IdxReader {
            root: dir.to_path_buf(),
            classes: 10,
        }
    }

    #[test]
    fn reads_plain_and_gz() {
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            write_idx(dir.path(), "train", 3, &[0, 9, 4], gz);
            let set = reader(dir.path()).read(Split::Train, 8, 3).unwrap();
            assert_eq!(set.len(), 3);
            assert_eq!(set.labels, vec![0, 9, 4]);
            assert_eq!(set.pixels.len(), 3 * 3 * 64);
            assert!(set.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    fn error(dir: &Path) -> String {
        format!("{:#}", reader(dir).read(Split::Train, 8, 1).unwrap_err())
    }

    #[test]
    fn zero_and_overflowing_dimensions_are_errors() {
        let mut zero = vec![0u8, 0, 8, 3];
        for d in [2u32, 0, 28] {
            zero.extend(d.to_be_bytes());
        }
        let e = parse(Path::new("z"), &zero, 3).unwrap_err().to_string();
        assert!(e.contains("dimension 1 is 0 at byte 8"), "{e}");
        let mut huge = vec![0u8, 0, 8, 3];
        for d in [u32::MAX, u32::MAX, u32::MAX] {
            huge.extend(d.to_be_bytes());
        }
        let e = parse(Path::new("h"), &huge, 3).unwrap_err().to_string();
        assert!(e.contains("overflow"), "{e}");
    }

    #[test]
    fn multi_member_gzip_is_one_stream() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "train", 3, &[0, 9, 4], false);
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"] {
            let bytes = std::fs::read(dir.path().join(name)).unwrap();
            let mut out = Vec::new();
            for part in [&bytes[..7], &bytes[7..]] {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                std::io::Write::write_all(&mut e, part).unwrap();
                out.extend(e.finish().unwrap());
            }
            std::fs::remove_file(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(format!("{name}.gz")), out).unwrap();
        }
        let set = reader(dir.path()).read(Split::Train, 8, 1).unwrap();
        assert_eq!(set.labels, vec![0, 9, 4]);
    }

    #[test]
    fn bad_files_name_file_and_byte() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "train", 3, &[0, 1, 2], false);
        let img = dir.path().join("train-images-idx3-ubyte");
        let bytes = std::fs::read(&img).unwrap();
        // truncated
        std::fs::write(&img, &bytes[..30]).unwrap();
        let e = error(dir.path());
        assert!(
            e.contains("train-images-idx3-ubyte: truncated at byte 30"),
            "{e}"
        );
        // wrong magic
        let mut bad = bytes.clone();
        bad[2] = 9;
        std::fs::write(&img, &bad).unwrap();
        let e = error(dir.path());
        assert!(e.contains("bad magic number 0x00000903 at byte 0"), "{e}");
        std::fs::write(&img, &bytes).unwrap();
        // count mismatch
        write_idx(dir.path(), "train", 3, &[0, 1], false);
        let e = error(dir.path());
        assert!(e.contains("2 labels for 3 images"), "{e}");
        // label out of range
        write_idx(dir.path(), "train", 3, &[0, 12, 1], false);
        let e = error(dir.path());
        assert!(e.contains("label 12 at byte 9 is outside 0..10"), "{e}");
        // missing file
        let empty = tempfile::tempdir().unwrap();
        let e = error(empty.path());
        assert!(e.contains("neither train-images-idx3-ubyte"), "{e}");
    }
}
