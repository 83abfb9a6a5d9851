//! The Compare tab: the marked runs' curves on one chart (one stable colour per run, legend)
//! and the ablation table grouped by a chosen setting: mean ± std over seeds of every final
//! metric, the best group per column highlighted (paper Tab. 2, live).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use super::chart::{self, run_color, Series};
use super::run::steps_per_epoch;
use crate::analysis::ablation::{differing_keys, one_factor, table};
use crate::tui::app::{App, COMPARE_METRICS};
use crate::tui::snapshot::{SeriesKey, Snapshot};

/// Series keys the Compare tab draws.
pub fn wanted(app: &App) -> Vec<SeriesKey> {
    let metric = COMPARE_METRICS[app.compare_metric % COMPARE_METRICS.len()];
    app.compared()
        .into_iter()
        .map(|id| (id, metric.to_string()))
        .collect()
}

/// The setting the ablation table groups by: the chosen one of the differing settings.
pub fn group_key(app: &App, snap: &Snapshot) -> Option<String> {
    let rows = app.visible(snap);
    let keys = differing_keys(&snap.params, &rows, false);
    (!keys.is_empty()).then(|| keys[app.group_key % keys.len()].clone())
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) {
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    // the marked runs' reconstructions of one image beside their curves, when they have any
    let top = if app
        .compared()
        .iter()
        .any(|id| snap.pictures.contains_key(id))
    {
        let [chart, strips] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
        if super::pictures::compare(frame, strips, app, snap) {
            chart
        } else {
            top
        }
    } else {
        top
    };
    let metric = COMPARE_METRICS[app.compare_metric % COMPARE_METRICS.len()];
    let compared = app.compared();
    if compared.is_empty() {
        frame.render_widget(
            Paragraph::new(
                "mark runs with Space on the Runs tab (p pins a baseline); m cycles the metric",
            )
            .block(Block::bordered().title(format!("{metric}: no runs marked"))),
            top,
        );
    } else {
        let series: Vec<Series> = compared
            .iter()
            .map(|id| {
                let rows = snap
                    .series
                    .get(&(id.clone(), metric.to_string()))
                    .map(|v| v.as_slice())
                    .unwrap_or(&[]);
                let t0 = snap.run(id).and_then(|r| r.started).unwrap_or(0.0);
                let pinned = app.pinned.as_ref() == Some(id);
                Series {
                    name: format!("{}{id}", if pinned { "*" } else { "" }),
                    color: run_color(id),
                    points: chart::points(
                        rows,
                        &app.chart,
                        top.width as usize,
                        steps_per_epoch(snap, id),
                        t0,
                    ),
                    scatter: false,
                }
            })
            .collect();
        // the reference runs' curves of the metric, dotted, on the first run's epoch scale
        let spe = compared.first().and_then(|id| steps_per_epoch(snap, id));
        let mut series = series;
        series.extend(chart::reference_series(
            snap,
            app,
            metric,
            top.width as usize,
            spe,
        ));
        chart::draw(
            frame,
            top,
            &format!("{metric} (m: next metric)"),
            &series,
            app.chart.x.name(),
            app.chart.log_y,
        );
    }
    let Some(key) = group_key(app, snap) else {
        frame.render_widget(
            Paragraph::new("the listed runs differ in no setting but the seed: nothing to group")
                .block(Block::bordered().title("ablation")),
            bottom,
        );
        return;
    };
    // one study of the sweep: the other differing settings at their base values
    let visible = app.visible(snap);
    let keys = differing_keys(&snap.params, &visible, false);
    let study = one_factor(&key, &keys, &visible, &snap.params);
    let t = table(&key, &study.runs, &snap.params, &snap.latest, false);
    let mut header = vec![key.clone(), "n".to_string()];
    header.extend(t.columns.iter().map(|c| c.label.to_string()));
    // only the groups that fit are formatted
    let fit = bottom.height.saturating_sub(3) as usize;
    let body: Vec<Row> = t
        .groups
        .iter()
        .enumerate()
        .take(fit)
        .map(|(gi, g)| {
            let mut cells = vec![
                Cell::from(g.value.clone()),
                Cell::from(g.runs.len().to_string()),
            ];
            for (ci, c) in t.columns.iter().enumerate() {
                let text = g.cells[ci].map_or(String::new(), |s| {
                    s.shown(c.percent, if c.percent { 1 } else { 4 })
                });
                let style = if t.best[ci] == Some(gi) {
                    Style::new().fg(Color::Green).add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                cells.push(Cell::from(text).style(style));
            }
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(16), Constraint::Length(3)];
    widths.extend(t.columns.iter().map(|_| Constraint::Length(15)));
    frame.render_widget(
        Table::new(body, widths)
            .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
            .block(Block::bordered().title(format!(
                "ablation by {key}{}: mean ± std over runs, best in green (b: next key)",
                if study.held.is_empty() {
                    String::new()
                } else {
                    format!(", others at {}", study.held.join(", "))
                }
            ))),
        bottom,
    );
}
