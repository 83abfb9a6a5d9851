//! Popups: help (generated from the key table), the stop confirmation, the sweep launcher.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::centered;
use crate::tui::app::Launcher;
use crate::tui::keys::BINDINGS;

/// The key table from line `top` on; on a terminal too short for all of it (36 keys in 24
/// rows) the title says which lines show and that ↑↓ scroll (`top` is clamped so that the
/// last page stays full). Returns how many lines it showed.
pub fn help(frame: &mut Frame, area: Rect, top: usize) -> usize {
    let lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!("{:>7}  ", b.label), Style::new().fg(Color::Yellow)),
                Span::raw(b.help),
            ])
        })
        .collect();
    let total = lines.len();
    let r = centered(area, 64, total as u16 + 2);
    let shown = (r.height as usize).saturating_sub(2).min(total);
    let top = top.min(total - shown);
    let title = if shown < total {
        format!(
            "keys {}–{} of {total} (↑↓ PgUp PgDn scroll, any other key closes)",
            top + 1,
            top + shown
        )
    } else {
        "keys (any key closes)".to_string()
    };
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((top as u16, 0))
            .block(Block::bordered().title(title)),
        r,
    );
    shown
}

pub fn confirm_stop(frame: &mut Frame, area: Rect, id: &str) {
    let r = centered(area, 60, 5);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(format!("Stop run {id}?")),
            Line::from("It checkpoints at its next step and becomes `stopped`."),
            Line::from(Span::styled(
                "y / Enter: stop    any other key: cancel",
                Style::new().fg(Color::Yellow),
            )),
        ])
        .block(Block::bordered().title("confirm")),
        r,
    );
}

pub fn launcher(frame: &mut Frame, area: Rect, l: &Launcher) {
    let r = centered(area, 76, 20);
    frame.render_widget(Clear, r);
    let mut lines: Vec<Line> = l
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let style = if i == l.cursor {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            Line::from(Span::styled(f.display().to_string(), style))
        })
        .collect();
    let typed = if l.typing {
        format!("path: {}▏", l.typed)
    } else if l.typed.is_empty() {
        "type a path… (Enter)".to_string()
    } else {
        format!("path: {}", l.typed)
    };
    let style = if l.cursor == l.files.len() {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    };
    lines.push(Line::from(Span::styled(typed, style)));
    lines.push(Line::from(""));
    match &l.preview {
        Some((_, text)) => lines.extend(text.lines().map(|t| Line::from(t.to_string()))),
        None => lines.push(Line::from(Span::styled(
            "Enter: dry run of the selected file, Enter again: start it; Esc closes",
            Style::new().fg(Color::DarkGray),
        ))),
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title("launch a sweep")),
        r,
    );
}
