//! The Runs tab: a sortable, filterable table with the params that differ across the listed
//! runs (titled by the shortest tail of the dotted key that tells them apart), progress,
//! latest losses, probe accuracies, speed, elapsed time, ETA and errors.
//! Columns are kept by priority until the width is used up, so 80 columns show the essentials.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::{num, pct, status_color};
use crate::analysis::ablation::{differing_keys, unique_suffixes};
use crate::analysis::progress::{format_duration, RunProgress};
use crate::store::RunRow;
use crate::tui::app::App;
use crate::tui::snapshot::Snapshot;

/// What a cell shows.
enum Content<'a> {
    Mark,
    Id,
    Status,
    Param(&'a str),
    Epoch,
    Metric(&'static str, usize),
    Percent(&'static str),
    Speed,
    Elapsed,
    Eta,
    Tags,
    Error,
    /// "collapsed" when `analysis::collapse` flags the run.
    Collapse,
}

/// A column: header, width, priority (lower is kept first), content.
struct Column<'a> {
    header: String,
    width: u16,
    priority: u16,
    content: Content<'a>,
}

fn col<'a>(header: &str, width: u16, priority: u16, content: Content<'a>) -> Column<'a> {
    Column {
        header: header.to_string(),
        width,
        priority,
        content,
    }
}

fn cell<'a>(c: &Content, app: &App, snap: &'a Snapshot, r: &RunRow, p: &RunProgress) -> Cell<'a> {
    match c {
        Content::Mark => Cell::from(format!(
            "{}{}",
            if app.pinned.as_ref() == Some(&r.id) {
                "*"
            } else {
                " "
            },
            if app.marked.contains(&r.id) { "+" } else { " " }
        )),
        Content::Id => Cell::from(r.id.clone()),
        Content::Status => {
            Cell::from(r.status.as_str()).style(Style::new().fg(status_color(r.status)))
        }
        Content::Param(k) => Cell::from(
            snap.params
                .get(&r.id)
                .and_then(|p| p.get(*k))
                .cloned()
                .unwrap_or_default(),
        ),
        Content::Epoch => Cell::from(if p.epochs > 0 {
            format!("{}/{}", p.epoch, p.epochs)
        } else {
            String::new()
        }),
        Content::Metric(key, d) => Cell::from(num(snap.value(&r.id, key), *d)),
        Content::Percent(key) => Cell::from(pct(snap.value(&r.id, key))),
        Content::Speed => Cell::from(num(p.img_per_s, 0)),
        Content::Elapsed => Cell::from(p.elapsed.map_or(String::new(), format_duration)),
        Content::Eta => Cell::from(p.eta.map_or(String::new(), format_duration)),
        Content::Tags => Cell::from(snap.tags.get(&r.id).map_or(String::new(), |t| t.join(",")))
            .style(Style::new().fg(Color::Yellow)),
        Content::Error => {
            Cell::from(r.error.clone().unwrap_or_default()).style(Style::new().fg(Color::Red))
        }
        Content::Collapse => Cell::from(if snap.collapse.contains_key(&r.id) {
            "collapsed"
        } else {
            ""
        })
        .style(Style::new().fg(Color::Red)),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) {
    let rows = app.visible(snap);
    let [info, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let keys = differing_keys(&snap.params, &rows, true);
    let mut columns = vec![
        col("", 2, 0, Content::Mark),
        col("id", 12, 0, Content::Id),
        col("status", 8, 0, Content::Status),
    ];
    // each param titled by the shortest tail of its dotted key no other listed key has
    for (i, (k, title)) in keys.iter().zip(unique_suffixes(&keys)).enumerate() {
        // as wide as the title or the longest value shown (e.g. "random-init")
        let longest = rows
            .iter()
            .filter_map(|r| snap.params.get(&r.id)?.get(k.as_str()))
            .map(|v| v.chars().count())
            .max()
            .unwrap_or(0);
        let width = title.chars().count().max(longest).clamp(5, 13) as u16;
        columns.push(col(&title, width, 3 + i as u16, Content::Param(k)));
    }
    columns.extend([
        col("epoch", 5, 1, Content::Epoch),
        col("train", 6, 2, Content::Metric("epoch/train_loss", 3)),
        col("val", 6, 1, Content::Metric("epoch/val_loss", 3)),
        col("lin", 5, 2, Content::Percent("probe/lin/top1")),
        col("tran-1", 6, 2, Content::Percent("probe/tran-1/top1")),
        col("ft", 5, 20, Content::Percent("probe/finetune/top1")),
        col("kNN", 5, 2, Content::Percent("monitor/knn/top1")),
        col("img/s", 5, 10, Content::Speed),
        col("elapsed", 7, 12, Content::Elapsed),
        col("ETA", 6, 11, Content::Eta),
        col("error", 12, 13, Content::Error),
    ]);
    // the supervised baseline's top-1 (its own training) when a listed run has one, after ft
    const SUPERVISED: &str = "probe/supervised/top1";
    if rows.iter().any(|r| snap.value(&r.id, SUPERVISED).is_some()) {
        if let Some(at) = columns.iter().position(|c| c.header == "ft") {
            columns.insert(at + 1, col("sup", 5, 20, Content::Percent(SUPERVISED)));
        }
    }
    // tags when a listed run has some, kept right after the id and status
    if rows.iter().any(|r| snap.tags.contains_key(&r.id)) {
        columns.insert(3, col("tags", 10, 1, Content::Tags));
    }
    // the collapse badge when a listed run's features look collapsed
    if rows.iter().any(|r| snap.collapse.contains_key(&r.id)) {
        columns.insert(3, col("features", 9, 0, Content::Collapse));
    }
    // keep columns by priority while they fit (1 space between columns, 2 for the border)
    let mut budget = table_area.width.saturating_sub(2) as i32;
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| (columns[i].priority, i));
    let mut keep = vec![false; columns.len()];
    for i in order {
        let need = columns[i].width as i32 + 1;
        if need <= budget {
            keep[i] = true;
            budget -= need;
        }
    }
    let columns: Vec<Column> = columns
        .into_iter()
        .zip(keep)
        .filter_map(|(c, k)| k.then_some(c))
        .collect();
    let hidden_params = keys.len()
        - columns
            .iter()
            .filter(|c| matches!(c.content, Content::Param(_)))
            .count();
    frame.render_widget(
        Paragraph::new(format!(
            "{} of {} runs{}  sort: {}{}  marked {}{}",
            rows.len(),
            snap.runs.len(),
            app.sweep
                .as_ref()
                .map_or(String::new(), |s| format!(" of sweep {s}")),
            app.sort.name(),
            if app.descending { " ↓" } else { " ↑" },
            app.marked.len(),
            if hidden_params > 0 {
                format!("  (+{hidden_params} differing params: Enter shows them)")
            } else {
                String::new()
            }
        ))
        .style(Style::new().fg(Color::DarkGray)),
        info,
    );
    let last = columns.len().saturating_sub(1);
    let widths: Vec<Constraint> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == last {
                Constraint::Min(c.width)
            } else {
                Constraint::Length(c.width)
            }
        })
        .collect();
    let header = Row::new(columns.iter().map(|c| c.header.clone()))
        .style(Style::new().add_modifier(Modifier::BOLD));
    let empty = RunProgress::default();
    // only the rows on screen are formatted (1 000 runs cost one screenful per frame): the
    // window follows the cursor
    let height = table_area.height.saturating_sub(3).max(1) as usize;
    let cursor = app.cursor.min(rows.len().saturating_sub(1));
    let offset = (cursor + 1).saturating_sub(height);
    let body: Vec<Row> = rows
        .iter()
        .skip(offset)
        .take(height)
        .map(|r| {
            let p = snap.progress.get(&r.id).unwrap_or(&empty);
            Row::new(
                columns
                    .iter()
                    .map(|c| cell(&c.content, app, snap, r, p))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let table = Table::new(body, widths)
        .header(header)
        .block(Block::bordered().title("runs (Space mark, p pin, Enter open, S stop, r requeue)"))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .column_spacing(1);
    let mut state = TableState::default();
    if !rows.is_empty() {
        state.select(Some(cursor - offset));
    }
    frame.render_stateful_widget(table, table_area, &mut state);
}
