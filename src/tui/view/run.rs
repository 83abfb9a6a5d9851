//! The Run tab: the selected run's live charts (train / val loss, lr, probe accuracy per probe
//! epoch, and the feature monitor's kNN top-1 and effective rank per epoch when it ran), its
//! config, its error or why it was pruned, and why its features look collapsed.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::chart::{self, Series, PALETTE};
use super::status_color;
use crate::store::Status;
use crate::tui::app::App;
use crate::tui::snapshot::{SeriesKey, Snapshot};

/// The series the Run tab draws.
pub const RUN_SERIES: [&str; 9] = [
    "train/loss",
    "epoch/train_loss",
    "epoch/val_loss",
    "train/lr",
    "probe/lin/top1",
    "probe/tran-1/top1",
    "monitor/knn/top1",
    "monitor/erank",
    "monitor/feature_std",
];

/// Series keys wanted for `run`.
pub fn wanted(run: &str) -> Vec<SeriesKey> {
    RUN_SERIES
        .iter()
        .map(|k| (run.to_string(), k.to_string()))
        .collect()
}

/// Steps per epoch of a run (from its progress), to put steps on an epoch axis.
pub fn steps_per_epoch(snap: &Snapshot, run: &str) -> Option<f64> {
    let p = snap.progress.get(run)?;
    p.total_steps
        .filter(|_| p.epochs > 0)
        .map(|t| t as f64 / p.epochs as f64)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) {
    let Some(id) = app.selected(snap) else {
        frame.render_widget(Paragraph::new("no run selected (Runs tab, Enter)"), area);
        return;
    };
    let Some(row) = snap.run(&id) else {
        return;
    };
    let [left, right] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(40)]).areas(area);
    let mut lines = vec![
        Line::from(vec![
            Span::raw(format!("{} ", row.id)),
            Span::styled(
                row.status.as_str(),
                Style::new().fg(status_color(row.status)),
            ),
        ]),
        Line::from(format!("sweep {}", row.sweep)),
        Line::from(format!(
            "{} {}  attempts {}",
            row.backend.as_deref().unwrap_or("-"),
            row.device.as_deref().unwrap_or(""),
            row.attempts
        )),
    ];
    if let Some(e) = &row.error {
        let (label, color) = if row.status == Status::Pruned {
            ("why", Color::Yellow)
        } else {
            ("error", Color::Red)
        };
        lines.push(Line::from(Span::styled(
            format!("{label}: {e}"),
            Style::new().fg(color),
        )));
    }
    if let Some(why) = snap.collapse.get(&id) {
        lines.push(Line::from(Span::styled(
            format!("features collapsed: {why}"),
            Style::new().fg(Color::Red),
        )));
    }
    lines.push(Line::from(""));
    let defaults: std::collections::HashMap<String, String> =
        crate::config::identity::flatten(&crate::config::RunConfig::default())
            .into_iter()
            .collect();
    if let Some(params) = snap.params.get(&id) {
        let mut p: Vec<(&String, &String)> = params.iter().collect();
        p.sort();
        // settings that differ from the defaults first
        p.sort_by_key(|(k, v)| defaults.get(*k) == Some(*v));
        for (k, v) in p {
            let style = if defaults.get(k) == Some(v) {
                Style::new().fg(Color::DarkGray)
            } else {
                Style::new()
            };
            lines.push(Line::from(Span::styled(format!("{k} = {v}"), style)));
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title("config (non-defaults first)")),
        left,
    );
    let has_monitor = snap
        .series
        .get(&(id.clone(), "monitor/knn/top1".to_string()))
        .is_some_and(|v| !v.is_empty());
    let (right, monitor_area) = if has_monitor {
        let [charts, monitor] =
            Layout::vertical([Constraint::Percentage(67), Constraint::Percentage(33)]).areas(right);
        (charts, Some(monitor))
    } else {
        (right, None)
    };
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
    let [tl, tr] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [bl, br] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let spe = steps_per_epoch(snap, &id);
    let t0 = row.started.unwrap_or(row.created);
    let series_of = |key: &str, color_index: usize, width: u16| -> Series {
        let rows = snap
            .series
            .get(&(id.clone(), key.to_string()))
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        Series {
            name: key.to_string(),
            color: PALETTE[color_index],
            points: chart::points(rows, &app.chart, width as usize, spe, t0),
            scatter: false,
        }
    };
    let x = app.chart.x.name();
    // the reference runs' curves of the same keys, dotted (R hides them)
    let with_refs = |mut own: Vec<Series>, keys: &[&str], width: u16| {
        for key in keys {
            own.extend(chart::reference_series(snap, app, key, width as usize, spe));
        }
        own
    };
    chart::draw(
        frame,
        tl,
        "train loss",
        &with_refs(
            vec![series_of("train/loss", 0, tl.width)],
            &["train/loss", "epoch/train_loss"],
            tl.width,
        ),
        x,
        app.chart.log_y,
    );
    chart::draw(
        frame,
        tr,
        "val loss (per epoch)",
        &with_refs(
            vec![series_of("epoch/val_loss", 1, tr.width)],
            &["epoch/val_loss"],
            tr.width,
        ),
        x,
        app.chart.log_y,
    );
    chart::draw(
        frame,
        bl,
        "learning rate",
        &with_refs(
            vec![series_of("train/lr", 2, bl.width)],
            &["train/lr"],
            bl.width,
        ),
        x,
        app.chart.log_y,
    );
    // probe curves are per probe epoch: drawn against the probe epoch, unsmoothed
    let mut probe_opts = app.chart;
    probe_opts.smoothing = 0;
    probe_opts.x = crate::tui::app::XAxis::Step;
    let probe = |key: &str, name: &str, c: usize| Series {
        name: name.to_string(),
        color: PALETTE[c],
        points: chart::points(
            snap.series
                .get(&(id.clone(), key.to_string()))
                .map(|v| v.as_slice())
                .unwrap_or(&[]),
            &probe_opts,
            br.width as usize,
            None,
            t0,
        ),
        scatter: false,
    };
    chart::draw(
        frame,
        br,
        "probe top-1 per probe epoch",
        &[
            probe("probe/lin/top1", "lin", 4),
            probe("probe/tran-1/top1", "tran-1", 5),
        ],
        "probe epoch",
        app.chart.log_y,
    );
    if let Some(area) = monitor_area {
        draw_monitor(frame, area, app, snap, &id);
    }
}

/// The feature monitor's series against the epoch: kNN top-1 on the left, the effective rank
/// (RankMe) on the right.
fn draw_monitor(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, id: &str) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let by_epoch = |key: &str, c: usize| Series {
        name: key.trim_start_matches("monitor/").to_string(),
        color: PALETTE[c],
        points: snap
            .series
            .get(&(id.to_string(), key.to_string()))
            .map(|v| v.iter().map(|m| (m.epoch as f64, m.value)).collect())
            .unwrap_or_default(),
        scatter: false,
    };
    chart::draw(
        frame,
        left,
        "monitor: kNN top-1 (k=20) per epoch",
        &[by_epoch("monitor/knn/top1", 3)],
        "epoch",
        false,
    );
    chart::draw(
        frame,
        right,
        "monitor: effective rank per epoch",
        &[by_epoch("monitor/erank", 6)],
        "epoch",
        app.chart.log_y,
    );
}
