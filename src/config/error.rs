//! Configuration errors that point at `FILE:LINE:COL`, and the helpers that find the place.

use std::fmt;
use std::path::Path;

/// A configuration error that points at the offending place of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error at byte `offset` of `source`.
    pub fn at(file: &str, source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, col) = line_col(source, offset);
        ConfigError {
            file: file.to_string(),
            line,
            col,
            message: message.into().replace('\n', " ").trim().to_string(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Turns a `toml` deserialisation error into a one-line, located [`ConfigError`].
pub fn toml_error(file: &str, source: &str, err: &toml::de::Error) -> ConfigError {
    let offset = err.span().map_or(0, |s| s.start);
    ConfigError::at(file, source, offset, err.message())
}

/// Reads a TOML file as UTF-8; a file that is not UTF-8 is an error at the first bad byte.
pub fn read_source(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read {what}: {e}", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let good = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..good]).to_string();
            Err(ConfigError::at(
                &path.display().to_string(),
                &prefix,
                good,
                format!("the file is not UTF-8 text (invalid byte at offset {good})"),
            )
            .into())
        }
    }
}

/// Byte offset where the dotted key `dotted` is written in the TOML text `source`, looked up
/// under the table path `prefix` (`""` for a run config, `"base"` for a sweep's base config).
/// Falls back to the deepest enclosing table that is written, then to the start of the file.
pub fn locate_key(source: &str, prefix: &str, dotted: &str) -> usize {
    let Ok(doc) = toml_edit::ImDocument::parse(source) else {
        return 0;
    };
    let path = format!("{prefix}.{dotted}");
    walk(doc.as_table(), &path).unwrap_or(0)
}

/// Like [`locate_key`], inside entry `index` of an array of tables (`[[runs]]`).
pub fn locate_in_array(source: &str, array: &str, index: usize, dotted: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(source).ok()?;
    let entry = doc.get(array)?.as_array_of_tables()?.get(index)?;
    walk(entry, dotted)
}

/// Offset of the deepest written part of `dotted` under `table`.
fn walk(table: &dyn toml_edit::TableLike, dotted: &str) -> Option<usize> {
    let mut best = None;
    let mut table = table;
    for part in dotted.split('.').filter(|p| !p.is_empty()) {
        let Some((key, item)) = table.get_key_value(part) else {
            break;
        };
        if let Some(span) = key.span().or_else(|| item.span()) {
            best = Some(span.start);
        }
        match item.as_table_like() {
            Some(inner) => table = inner,
            None => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_every_spelling() {
        let src = "seed = 1\n[train]\nepochs = 2\nmin_lr = -1\n[base.train]\nmin_lr = 3\n";
        assert_eq!(line_col(src, locate_key(src, "", "train.min_lr")), (4, 1));
        assert_eq!(
            line_col(src, locate_key(src, "base", "train.min_lr")),
            (6, 1)
        );
        let src = "train.batch_size = 3\ndecoder = { depth = 3 }\n";
        assert_eq!(
            line_col(src, locate_key(src, "", "train.batch_size")),
            (1, 7)
        );
        assert_eq!(line_col(src, locate_key(src, "", "decoder.depth")), (2, 13));
        // an unwritten key falls back to its table, then to the file start
        let src = "[data]\nsize = 1\n";
        assert_eq!(
            line_col(src, locate_key(src, "", "data.image_size")),
            (1, 2)
        );
        assert_eq!(line_col(src, locate_key(src, "", "train.epochs")), (1, 1));
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("a = \"é\"\nb", 9), (2, 1));
        assert_eq!(line_col("é = 1", 2), (1, 2));
    }
}
