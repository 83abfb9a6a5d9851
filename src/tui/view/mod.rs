//! Drawing: the tab bar, the tab's body, the status line and popups.

pub mod chart;
mod compare;
mod halfblock;
mod pictures;
mod popup;
mod run;
mod runs;
mod spectrum;
mod sweeps;

pub use compare::wanted as compare_wanted;
pub use run::wanted as run_wanted;
pub use spectrum::eigen_series as spectrum_eigen_series;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use ratatui::Frame;

use super::app::{App, Mode, Tab};
use super::snapshot::Snapshot;
use crate::store::Status;

/// The smallest terminal the TUI draws in.
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// Colour of a run status.
pub fn status_color(s: Status) -> Color {
    match s {
        Status::Queued => Color::Gray,
        Status::Running => Color::Cyan,
        Status::Finished => Color::Green,
        Status::Failed => Color::Red,
        Status::Stopped => Color::Magenta,
        Status::Pruned => Color::Yellow,
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, snap: &Snapshot) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = format!(
            "terminal too small: {}x{}; the workbench needs at least {}x{} (q quits)",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        frame.render_widget(
            Paragraph::new(msg).wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let titles: Vec<String> = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()))
        .collect();
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let [tabs_area, info_area] =
        Layout::horizontal([Constraint::Min(40), Constraint::Length(30)]).areas(top);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        tabs_area,
    );
    let running = snap
        .runs
        .iter()
        .filter(|r| r.status == Status::Running)
        .count();
    frame.render_widget(
        Paragraph::new(format!("{} runs, {running} running", snap.runs.len()))
            .alignment(ratatui::layout::Alignment::Right),
        info_area,
    );
    if snap.runs.is_empty() && snap.sweeps.is_empty() && app.tab != Tab::Sweeps {
        frame.render_widget(
            Paragraph::new(format!(
                "the store {} is empty: press n to launch a sweep, or run `workbench sweep FILE`",
                snap.db()
            ))
            .wrap(ratatui::widgets::Wrap { trim: true }),
            body,
        );
    } else {
        match app.tab {
            Tab::Runs => runs::draw(frame, body, app, snap),
            Tab::Run => run::draw(frame, body, app, snap),
            Tab::Compare => compare::draw(frame, body, app, snap),
            Tab::Spectrum => spectrum::draw(frame, body, app, snap),
            Tab::Sweeps => sweeps::draw(frame, body, app, snap),
            Tab::Pictures => pictures::draw(frame, body, app, snap),
        }
    }
    frame.render_widget(status_line(app, snap), bottom);
    match &app.mode {
        Mode::Help(top) => app.help_rows.set(popup::help(frame, area, *top)),
        Mode::ConfirmStop(id) => popup::confirm_stop(frame, area, id),
        Mode::Launch(l) => popup::launcher(frame, area, l),
        _ => {}
    }
}

fn status_line<'a>(app: &'a App, snap: &'a Snapshot) -> Paragraph<'a> {
    let dim = Style::new().fg(Color::DarkGray);
    let line = if app.mode == Mode::Filter {
        Line::from(vec![
            Span::styled("filter: ", Style::new().fg(Color::Yellow)),
            Span::raw(app.filter.as_str()),
            Span::styled("▏  Enter keeps, Esc clears", dim),
        ])
    } else if let Mode::Tag(typed) = &app.mode {
        Line::from(vec![
            Span::styled("tag: ", Style::new().fg(Color::Yellow)),
            Span::raw(typed.as_str()),
            Span::styled(
                format!(
                    "▏  Enter tags {} marked run(s) (the selected one when none), Esc cancels",
                    app.marked.len()
                ),
                dim,
            ),
        ])
    } else if let Some(stale) = &snap.stale {
        Line::from(Span::styled(
            format!("showing stale data: {stale}"),
            Style::new().fg(Color::Yellow),
        ))
    } else if let Some(m) = &app.message {
        Line::from(Span::styled(m.as_str(), Style::new().fg(Color::Yellow)))
    } else {
        let chart = &app.chart;
        let w = chart.weight();
        let smooth = if w == 0.0 {
            "off".to_string()
        } else {
            format!("ema {w}")
        };
        Line::from(Span::styled(
            format!(
                "? help  q quit  n launch  / filter{}  smoothing {smooth}  y {}  x {}",
                if app.filter.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", app.filter)
                },
                if chart.log_y { "log" } else { "linear" },
                chart.x.name()
            ),
            dim,
        ))
    };
    Paragraph::new(line)
}

/// A rectangle of `w` × `h` cells centred in `area` (clipped to it).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// `0.1234`-style cell text, empty when missing.
pub fn num(v: Option<f64>, decimals: usize) -> String {
    v.filter(|x| x.is_finite())
        .map_or(String::new(), |x| format!("{x:.decimals$}"))
}

/// An accuracy in % with one decimal, empty when missing.
pub fn pct(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or(String::new(), |x| format!("{:.1}", 100.0 * x))
}
