//! Quarter masking geometry (DESIGN §2), independent of tensors so it can be property-tested.
//!
//! Coordinates are (row, col) on the feature grid h×w; `sx` steps along x (columns, +1 = right)
//! and `sy` along y (rows, +1 = down).

use crate::spec::Position;

/// An axis-aligned rectangle of grid cells (or pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    pub row: usize,
    pub col: usize,
    pub rows: usize,
    pub cols: usize,
}

impl Rect {
    pub fn contains(&self, r: usize, c: usize) -> bool {
        r >= self.row && r < self.row + self.rows && c >= self.col && c < self.col + self.cols
    }

    fn shifted(&self, dy: isize, dx: isize) -> Rect {
        Rect {
            row: (self.row as isize + dy) as usize,
            col: (self.col as isize + dx) as usize,
            ..*self
        }
    }
}

/// Which quarter of one sample stays visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quarter {
    /// Corner `row, col` ∈ {0, 1}: 0/0 top-left, 0/1 top-right, 1/0 bottom-left, 1/1 bottom-right.
    Corner {
        row: usize,
        col: usize,
    },
    Center,
}

impl Quarter {
    pub const CORNERS: [Quarter; 4] = [
        Quarter::Corner { row: 0, col: 0 },
        Quarter::Corner { row: 0, col: 1 },
        Quarter::Corner { row: 1, col: 0 },
        Quarter::Corner { row: 1, col: 1 },
    ];

    /// Scale index of the generators this quarter uses: 0 = corner (Δ = ½), 1 = centre (Δ = ¼).
    pub fn scale(self) -> usize {
        match self {
            Quarter::Corner { .. } => 0,
            Quarter::Center => 1,
        }
    }

    /// Name of the scale: "corner" (Δ = ½) or "center" (Δ = ¼).
    pub fn scale_name(self) -> &'static str {
        match self {
            Quarter::Corner { .. } => "corner",
            Quarter::Center => "center",
        }
    }

    /// Side of one step Δ as a fraction of the image side.
    pub fn delta_fraction(self) -> f64 {
        match self {
            Quarter::Corner { .. } => 0.5,
            Quarter::Center => 0.25,
        }
    }

    /// Where the visible quarter sits on an `h × w` grid (or image).
    pub fn kept(self, h: usize, w: usize) -> Rect {
        let (rows, cols) = (h / 2, w / 2);
        match self {
            Quarter::Corner { row, col } => Rect {
                row: row * rows,
                col: col * cols,
                rows,
                cols,
            },
            Quarter::Center => Rect {
                row: h / 4,
                col: w / 4,
                rows,
                cols,
            },
        }
    }
}

/// One prediction: the cells `src` of the encoded quarter z_q (in z_q's own coordinates) are
/// mapped by the linear model of direction (sx, sy) to the cells `dst` of the full grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub sx: i32,
    pub sy: i32,
    pub src: Rect,
    pub dst: Rect,
}

/// The predictions that fill the three masked quarters of an `h × w` grid.
///
/// Corner: z_q predicts its horizontal neighbour, its vertical neighbour and the diagonal one,
/// each position (i, j) to the same (i, j) of the neighbour quarter (3 moves).
/// Centre: z_q is split into 4 sub-blocks of h/4 × w/4; each predicts its three *outward*
/// neighbours (12 moves), filling the ring around the centre.
pub fn moves(q: Quarter, h: usize, w: usize) -> Vec<Move> {
    let kept = q.kept(h, w);
    let dirs = |sx: i32, sy: i32| [(sx, 0), (0, sy), (sx, sy)];
    match q {
        Quarter::Corner { row, col } => {
            let sx = if col == 0 { 1 } else { -1 };
            let sy = if row == 0 { 1 } else { -1 };
            let src = Rect {
                row: 0,
                col: 0,
                rows: kept.rows,
                cols: kept.cols,
            };
            dirs(sx, sy)
                .into_iter()
                .map(|(dx, dy)| Move {
                    sx: dx,
                    sy: dy,
                    src,
                    dst: kept.shifted(
                        dy as isize * kept.rows as isize,
                        dx as isize * kept.cols as isize,
                    ),
                })
                .collect()
        }
        Quarter::Center => {
            let (bh, bw) = (h / 4, w / 4);
            let mut out = Vec::with_capacity(12);
            for a in 0..2 {
                for b in 0..2 {
                    let src = Rect {
                        row: a * bh,
                        col: b * bw,
                        rows: bh,
                        cols: bw,
                    };
                    let on_grid = src.shifted(kept.row as isize, kept.col as isize);
                    let sx = if b == 0 { -1 } else { 1 };
                    let sy = if a == 0 { -1 } else { 1 };
                    for (dx, dy) in dirs(sx, sy) {
                        out.push(Move {
                            sx: dx,
                            sy: dy,
                            src,
                            dst: on_grid
                                .shifted(dy as isize * bh as isize, dx as isize * bw as isize),
                        });
                    }
                }
            }
            out
        }
    }
}

/// Block size of the assembly layout: the grid is a `k × k` mosaic of equal blocks.
pub fn block_layout(q: Quarter, h: usize, w: usize) -> (usize, usize, usize) {
    match q {
        Quarter::Corner { .. } => (2, h / 2, w / 2),
        Quarter::Center => (4, h / 4, w / 4),
    }
}

/// What fills one block of the mosaic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSource {
    /// The cells `src` of the encoded quarter itself.
    Kept(Rect),
    /// The output of `moves(..)[i]`.
    Predicted(usize),
}

/// The mosaic of an `h × w` grid: `layout[i][j]` says what fills block (i, j).
pub fn mosaic(q: Quarter, h: usize, w: usize) -> Vec<Vec<BlockSource>> {
    let (k, bh, bw) = block_layout(q, h, w);
    let kept = q.kept(h, w);
    let mv = moves(q, h, w);
    (0..k)
        .map(|i| {
            (0..k)
                .map(|j| {
                    let (r, c) = (i * bh, j * bw);
                    if kept.contains(r, c) {
                        BlockSource::Kept(Rect {
                            row: r - kept.row,
                            col: c - kept.col,
                            rows: bh,
                            cols: bw,
                        })
                    } else {
                        // every masked block is the destination of exactly one move (the
                        // property test `every_cell_covered_exactly_once`)
                        let idx = mv
                            .iter()
                            .position(|m| m.dst.row == r && m.dst.col == c)
                            .unwrap_or(0);
                        BlockSource::Predicted(idx)
                    }
                })
                .collect()
        })
        .collect()
}

/// Per-cell mask of an `h × w` grid, row-major: `true` where the cell is masked (the loss is
/// taken there).
pub fn masked_cells(q: Quarter, h: usize, w: usize) -> Vec<bool> {
    let kept = q.kept(h, w);
    (0..h * w).map(|i| !kept.contains(i / w, i % w)).collect()
}

/// The quarters of a batch of `n` samples, in batch order. Corner samples come first so that
/// each corner's samples form one contiguous slice.
pub fn assign_quarters(
    position: Position,
    n: usize,
    mut corner: impl FnMut() -> usize,
) -> Vec<Quarter> {
    let n_corner = match position {
        Position::Corner => n,
        Position::Center => 0,
        Position::CornerCenter => n / 2,
    };
    let mut qs: Vec<Quarter> = (0..n_corner)
        .map(|_| Quarter::CORNERS[corner() % 4])
        .collect();
    qs.sort_by_key(|q| match q {
        Quarter::Corner { row, col } => row * 2 + col,
        Quarter::Center => 4,
    });
    qs.extend(std::iter::repeat_n(Quarter::Center, n - n_corner));
    qs
}

/// Checks that an image side gives a feature grid divisible by 4 (needed by centre mode and
/// by the quarter split).
pub fn check_image_size(size: usize, stride: usize) -> Result<(), String> {
    if size == 0 || !size.is_multiple_of(stride) || !(size / stride).is_multiple_of(4) {
        let step = 4 * stride;
        let lo = (size / step) * step;
        let hint = if lo == 0 {
            format!("{step}")
        } else {
            format!("{lo} or {}", lo + step)
        };
        return Err(format!(
            "image size {size} with encoder stride {stride} gives a feature grid not divisible by 4; \
             use a multiple of {step} (e.g. {hint})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_quarters() -> Vec<Quarter> {
        let mut v = Quarter::CORNERS.to_vec();
        v.push(Quarter::Center);
        v
    }

    proptest! {
        #[test]
        fn every_cell_covered_exactly_once(k in 1usize..8, m in 1usize..8) {
            let (h, w) = (4 * k, 4 * m);
            for q in all_quarters() {
                let mut count = vec![0u32; h * w];
                let kept = q.kept(h, w);
                for r in 0..h { for c in 0..w { if kept.contains(r, c) { count[r * w + c] += 1; } } }
                for mv in moves(q, h, w) {
                    prop_assert_eq!(mv.src.rows, mv.dst.rows);
                    prop_assert_eq!(mv.src.cols, mv.dst.cols);
                    for r in 0..mv.dst.rows { for c in 0..mv.dst.cols {
                        count[(mv.dst.row + r) * w + mv.dst.col + c] += 1;
                    }}
                }
                prop_assert!(count.iter().all(|&n| n == 1), "{:?} {}x{}", q, h, w);
                // the mask is exactly the complement of the kept quarter: 75 % masked
                let masked = masked_cells(q, h, w).iter().filter(|&&m| m).count();
                prop_assert_eq!(masked * 4, 3 * h * w);
            }
        }

        #[test]
        fn kept_quarter_lands_where_it_was_cut(k in 1usize..8, m in 1usize..8) {
            let (h, w) = (4 * k, 4 * m);
            for q in all_quarters() {
                let kept = q.kept(h, w);
                prop_assert_eq!((kept.rows, kept.cols), (h / 2, w / 2));
                let layout = mosaic(q, h, w);
                let (n, bh, bw) = block_layout(q, h, w);
                for (i, row) in layout.iter().enumerate() {
                    for (j, block) in row.iter().enumerate() {
                        if let BlockSource::Kept(src) = block {
                            // the block at (i, j) shows z_q's cells at exactly that offset
                            prop_assert_eq!(src.row + kept.row, i * bh);
                            prop_assert_eq!(src.col + kept.col, j * bw);
                        }
                    }
                }
                prop_assert_eq!(layout.len(), n);
                let kept_blocks = layout.iter().flatten().filter(|b| matches!(b, BlockSource::Kept(_))).count();
                prop_assert_eq!(kept_blocks * 4, n * n);
            }
        }

        #[test]
        fn each_move_steps_by_one_delta(k in 1usize..8, m in 1usize..8) {
            let (h, w) = (4 * k, 4 * m);
            for q in all_quarters() {
                let kept = q.kept(h, w);
                let (_, bh, bw) = block_layout(q, h, w);
                for mv in moves(q, h, w) {
                    prop_assert!(mv.sx.abs() <= 1 && mv.sy.abs() <= 1 && (mv.sx, mv.sy) != (0, 0));
                    let src_row = (kept.row + mv.src.row) as isize;
                    let src_col = (kept.col + mv.src.col) as isize;
                    prop_assert_eq!(mv.dst.row as isize - src_row, mv.sy as isize * bh as isize);
                    prop_assert_eq!(mv.dst.col as isize - src_col, mv.sx as isize * bw as isize);
                }
            }
        }
    }

    #[test]
    fn center_sub_blocks_predict_only_outward() {
        let (h, w) = (8, 8);
        let mv = moves(Quarter::Center, h, w);
        assert_eq!(mv.len(), 12);
        for m in &mv {
            // outward: the step points away from the centre of the grid
            let r_mid = 2.0 * m.src.row as f64 + m.src.rows as f64 - h as f64 / 2.0;
            let c_mid = 2.0 * m.src.col as f64 + m.src.cols as f64 - w as f64 / 2.0;
            assert!(m.sy == 0 || (m.sy as f64) * r_mid > 0.0, "{m:?}");
            assert!(m.sx == 0 || (m.sx as f64) * c_mid > 0.0, "{m:?}");
        }
        // top-left sub-block predicts left, up and up-left
        let tl: Vec<(i32, i32)> = mv
            .iter()
            .filter(|m| m.src.row == 0 && m.src.col == 0)
            .map(|m| (m.sx, m.sy))
            .collect();
        assert_eq!(tl, vec![(-1, 0), (0, -1), (-1, -1)]);
    }

    #[test]
    fn corner_moves_point_away_from_the_kept_corner() {
        let mv = moves(Quarter::Corner { row: 1, col: 0 }, 4, 4);
        let dirs: Vec<(i32, i32)> = mv.iter().map(|m| (m.sx, m.sy)).collect();
        assert_eq!(dirs, vec![(1, 0), (0, -1), (1, -1)]);
        assert_eq!(
            mv[2].dst,
            Rect {
                row: 0,
                col: 2,
                rows: 2,
                cols: 2
            }
        );
    }

    #[test]
    fn sizes_not_divisible_by_four_are_rejected() {
        assert!(check_image_size(32, 4).is_ok());
        assert!(check_image_size(64, 16).is_ok());
        let e = check_image_size(224, 16).unwrap_err();
        assert!(e.contains("192 or 256"), "{e}");
        assert!(check_image_size(36, 4).is_err());
        assert!(check_image_size(0, 4).is_err());
        assert!(check_image_size(30, 4).is_err());
    }

    #[test]
    fn mixed_batches_split_in_half_with_corners_grouped() {
        let mut i = 0;
        let qs = assign_quarters(Position::CornerCenter, 9, || {
            i += 3;
            i
        });
        assert_eq!(qs.iter().filter(|q| **q == Quarter::Center).count(), 5);
        let key = |q: &Quarter| match q {
            Quarter::Corner { row, col } => row * 2 + col,
            Quarter::Center => 4,
        };
        assert!(qs.windows(2).all(|w| key(&w[0]) <= key(&w[1])), "{qs:?}");
        assert!(qs[..4].iter().all(|q| *q != Quarter::Center));
    }
}
