//! Where every token of the predicted feature grid comes from: the heat-equation predictions
//! z(x + sxΔx, y + syΔy) = M(sx, sy) z(x, y) (paper Eq. 5, Appendix A Eq. 9 and Eq. 12) of a
//! whole batch, written as row copies and row products so that one fused operation can run
//! them ([`super::Kernels::heat_predict`]).
//!
//! Rows are token vectors of width D. The source rows are the encoded quarters z_q
//! `[n, D, h/2, w/2]` read token-major: row `i·P + s` is sample i's cell s (P = h/2 · w/2,
//! row-major). The destination rows are the full grids as tokens `[n, h·w, D]`: row
//! `i·h·w + c`. A kept cell is copied (M = I); a predicted cell is `M_k z_q[src]` with the
//! matrix k of its move.

/// The row maps of one batch's prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeatPlan {
    /// Cells of the full grid, h·w.
    pub grid_cells: usize,
    /// (source row, destination row) of every kept cell.
    pub kept: Vec<(usize, usize)>,
    /// For each matrix k: the (source row, destination row) pairs it predicts.
    pub moved: Vec<Vec<(usize, usize)>>,
}

impl HeatPlan {
    /// True when every destination row of `samples` grids is written exactly once and every
    /// source row lies inside `samples · quarter_cells` rows.
    pub fn covers(&self, samples: usize, quarter_cells: usize) -> bool {
        let mut seen = vec![false; samples * self.grid_cells];
        let pairs = self.kept.iter().chain(self.moved.iter().flatten());
        for &(src, dst) in pairs {
            if src >= samples * quarter_cells || dst >= seen.len() || seen[dst] {
                return false;
            }
            seen[dst] = true;
        }
        seen.iter().all(|&s| s)
    }
}

/// The source row of a (source, destination) pair.
pub fn source(pair: &(usize, usize)) -> usize {
    pair.0
}

/// The destination row of a (source, destination) pair.
pub fn destination(pair: &(usize, usize)) -> usize {
    pair.1
}
