//! CIFAR-10 / CIFAR-100 binary batches.
//!
//! CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`; records of one label
//! byte and 3072 pixel bytes (1024 R, 1024 G, 1024 B, 32×32). CIFAR-100: `train.bin`,
//! `test.bin`; records of two label bytes (coarse, fine) and 3072 pixel bytes; the fine label
//! is used.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

use super::reader::{Reader, SetBuilder, Split};
use super::ImageSet;

pub struct CifarReader {
    pub root: PathBuf,
    /// 10 or 100.
    pub classes: usize,
}

const PIXELS: usize = 3 * 32 * 32;

impl Reader for CifarReader {
    fn read(&self, split: Split, size: usize, channels: usize) -> Result<ImageSet> {
        let (files, label_bytes): (Vec<String>, usize) = match (self.classes, split) {
            (100, Split::Train) => (vec!["train.bin".into()], 2),
            (100, Split::Test) => (vec!["test.bin".into()], 2),
            (_, Split::Train) => ((1..=5).map(|i| format!("data_batch_{i}.bin")).collect(), 1),
            (_, Split::Test) => (vec!["test_batch.bin".into()], 1),
        };
        let record = label_bytes + PIXELS;
        let mut out = SetBuilder::new(size, channels, self.classes);
        for name in files {
            let path = self.root.join(&name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
            if bytes.is_empty() || bytes.len() % record != 0 {
                bail!(
                    "{}: length {} is not a multiple of the {record}-byte record (truncated at byte {})",
                    path.display(),
                    bytes.len(),
                    bytes.len() - bytes.len() % record
                );
            }
            for (i, rec) in bytes.chunks_exact(record).enumerate() {
                let label = rec[label_bytes - 1] as usize;
                if label >= self.classes {
                    bail!(
                        "{}: label {label} at byte {} is outside 0..{}",
                        path.display(),
                        i * record + label_bytes - 1,
                        self.classes
                    );
                }
                let img = rec[label_bytes..]
                    .iter()
                    .map(|&b| b as f32 / 255.0)
                    .collect();
                out.push(img, 3, 32, 32, label as u32);
            }
        }
        Ok(out.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8, label_bytes: usize) -> Vec<u8> {
        let mut r = vec![0u8; label_bytes - 1];
        r.push(label);
        r.extend(std::iter::repeat_n(fill, PIXELS));
        r
    }

    #[test]
    fn reads_cifar10_and_100_and_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let test: Vec<u8> = [record(3, 255, 1), record(7, 0, 1)].concat();
        std::fs::write(dir.path().join("test_batch.bin"), &test).unwrap();
        let r = CifarReader {
            root: dir.path().into(),
            classes: 10,
        };
        let set = r.read(Split::Test, 32, 3).unwrap();
        assert_eq!(set.labels, vec![3, 7]);
        assert!((set.pixels[0] - 1.0).abs() < 1e-6 && set.pixels[PIXELS] == 0.0);
        std::fs::write(dir.path().join("test_batch.bin"), &test[..PIXELS + 100]).unwrap();
        let e = format!("{:#}", r.read(Split::Test, 32, 3).unwrap_err());
        assert!(
            e.contains("test_batch.bin: length 3172 is not a multiple of the 3073-byte record"),
            "{e}"
        );
        std::fs::write(dir.path().join("test_batch.bin"), record(11, 0, 1)).unwrap();
        let e = format!("{:#}", r.read(Split::Test, 32, 3).unwrap_err());
        assert!(e.contains("label 11 at byte 0 is outside 0..10"), "{e}");

        std::fs::write(dir.path().join("test.bin"), record(42, 9, 2)).unwrap();
        let r100 = CifarReader {
            root: dir.path().into(),
            classes: 100,
        };
        assert_eq!(r100.read(Split::Test, 16, 1).unwrap().labels, vec![42]);
    }
}
