//! The Sweeps tab: each sweep's progress by status, compute time, throughput, ETA, and the
//! log tail of the selected sweep.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use std::path::PathBuf;

use crate::analysis::progress::format_duration;
use crate::store::{Status, SweepProgress};
use crate::tui::app::App;
use crate::tui::launch::tail;
use crate::tui::snapshot::Snapshot;

/// Estimated seconds until a sweep's remaining runs are done: remaining runs × mean compute
/// per finished run ÷ runs at a time (at least one).
pub fn sweep_eta(p: &SweepProgress) -> Option<f64> {
    let left = p.queued + p.running + p.stopped;
    if left == 0 || p.finished == 0 {
        return None;
    }
    let per_run = p.compute_seconds / (p.finished + p.running).max(1) as f64;
    Some(left as f64 * per_run / p.running.max(1) as f64)
}

/// The log the Sweeps tab tails for a sweep: its detached log, else the newest worker log.
fn log_of(app: &App, snap: &Snapshot) -> Option<PathBuf> {
    let (s, _) = snap.sweeps.get(app.sweep_cursor)?;
    if let Some(log) = &s.log {
        return Some(PathBuf::from(log));
    }
    snap.runs
        .iter()
        .filter(|r| r.sweep == s.name && r.out_dir.is_some())
        .max_by(|a, b| {
            a.started
                .unwrap_or(0.0)
                .total_cmp(&b.started.unwrap_or(0.0))
        })
        .and_then(|r| r.out_dir.as_ref())
        .map(|d| PathBuf::from(d).join("worker.log"))
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) {
    let [list, log] =
        Layout::vertical([Constraint::Min(5), Constraint::Percentage(40)]).areas(area);
    let header = Row::new([
        "sweep", "done", "queued", "running", "finished", "failed", "stopped", "compute", "img/s",
        "ETA",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = snap
        .sweeps
        .iter()
        .map(|(s, p)| {
            let img_s: f64 = snap
                .runs
                .iter()
                .filter(|r| r.sweep == s.name && r.status == Status::Running)
                .filter_map(|r| snap.progress.get(&r.id).and_then(|p| p.img_per_s))
                .sum();
            let bar_len = 10;
            let filled = (bar_len * p.finished).checked_div(p.total()).unwrap_or(0);
            Row::new(vec![
                s.name.clone(),
                format!(
                    "{}{} {}/{}",
                    "█".repeat(filled),
                    "░".repeat(bar_len - filled),
                    p.finished,
                    p.total()
                ),
                p.queued.to_string(),
                p.running.to_string(),
                p.finished.to_string(),
                p.failed.to_string(),
                p.stopped.to_string(),
                format_duration(p.compute_seconds),
                if img_s > 0.0 {
                    format!("{img_s:.0}")
                } else {
                    String::new()
                },
                sweep_eta(p).map_or(String::new(), format_duration),
            ])
        })
        .collect();
    let widths = [
        Constraint::Min(12),
        Constraint::Length(18),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
    ];
    let mut state = TableState::default();
    if !snap.sweeps.is_empty() {
        state.select(Some(app.sweep_cursor.min(snap.sweeps.len() - 1)));
    }
    frame.render_stateful_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title("sweeps (n launches one)"))
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        list,
        &mut state,
    );
    let (title, lines) = match log_of(app, snap) {
        Some(path) => {
            let n = log.height.saturating_sub(2) as usize;
            (path.display().to_string(), tail(&path, n.max(1)))
        }
        None => ("log".to_string(), vec!["no log yet".to_string()]),
    };
    frame.render_widget(
        Paragraph::new(lines.join("\n")).block(Block::bordered().title(title)),
        log,
    );
}
