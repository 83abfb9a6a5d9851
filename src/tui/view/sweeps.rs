//! The Sweeps tab: each sweep's progress by status, compute time, throughput, ETA, and the
//! log tail of the selected sweep; for a SLURM sweep, its array jobs and each run's task with
//! SLURM's state of it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use std::path::PathBuf;

use crate::analysis::progress::format_duration;
use crate::store::{Status, SweepProgress, SweepRow};
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

/// The log the Sweeps tab tails for a sweep: its detached log, else the newest worker log
/// (a SLURM task's log, `RUNS/slurm/<job>_<task>.log`, for a SLURM sweep).
fn log_of(app: &App, snap: &Snapshot) -> Option<PathBuf> {
    let (s, _) = snap.sweeps.get(app.sweep_cursor)?;
    if let Some(log) = &s.log {
        return Some(PathBuf::from(log));
    }
    let newest = snap
        .runs
        .iter()
        .filter(|r| r.sweep == s.name && r.out_dir.is_some())
        .max_by(|a, b| {
            a.started
                .unwrap_or(0.0)
                .total_cmp(&b.started.unwrap_or(0.0))
        })?;
    match (&newest.slurm_job, &s.runs_root) {
        (Some(job), Some(root)) => {
            Some(PathBuf::from(root).join("slurm").join(format!("{job}.log")))
        }
        _ => newest
            .out_dir
            .as_ref()
            .map(|d| PathBuf::from(d).join("worker.log")),
    }
}

/// A SLURM sweep's runs: status, the task that holds (or last held) each, else the task of
/// the newest array job it is frozen to, and SLURM's state of that task.
fn slurm_lines(snap: &Snapshot, sweep: &SweepRow) -> Vec<String> {
    let newest_job = sweep
        .slurm_jobs
        .as_deref()
        .and_then(|j| j.rsplit(',').next())
        .unwrap_or("");
    snap.runs
        .iter()
        .filter(|r| r.sweep == sweep.name)
        .map(|r| {
            let frozen = snap
                .tasks
                .get(&(sweep.name.clone(), r.id.clone()))
                .map(|t| format!("{newest_job}_{t}"));
            let task = match (&r.slurm_job, r.status) {
                (Some(job), Status::Running | Status::Finished | Status::Failed) => {
                    Some(job.clone())
                }
                _ => frozen.or(r.slurm_job.clone()),
            };
            let state = task
                .as_ref()
                .and_then(|j| snap.slurm.get(j))
                .map_or("-", String::as_str);
            let task = task.unwrap_or_else(|| "-".into());
            let pre = if r.preemptions > 0 {
                format!("  preempted {}×", r.preemptions)
            } else {
                String::new()
            };
            format!(
                "{}  {:<8}  task {task:<10} {state:<10} on {}{pre}",
                &r.id[..r.id.len().min(12)],
                r.status.to_string(),
                r.host.as_deref().unwrap_or("-")
            )
        })
        .collect()
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
    let selected = snap.sweeps.get(app.sweep_cursor).map(|(s, _)| s);
    let log = match selected.filter(|s| s.executor.as_deref() == Some("slurm")) {
        Some(s) => {
            let [tasks, log] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(log);
            let title = format!(
                "SLURM jobs {}",
                s.slurm_jobs.as_deref().unwrap_or("none yet")
            );
            frame.render_widget(
                Paragraph::new(slurm_lines(snap, s).join("\n"))
                    .block(Block::bordered().title(title)),
                tasks,
            );
            log
        }
        None => log,
    };
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
