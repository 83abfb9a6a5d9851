//! The Pictures tab: the selected run's reconstruction strips (input · visible quarter ·
//! reconstruction · error), stepping through the stored epochs (←/→) and the images of the
//! fixed batch ([/]); and the marked runs' strips of one image for the Compare tab.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::chart::run_color;
use super::halfblock;
use crate::analysis::raster;
use crate::store::Picture;
use crate::tui::app::App;
use crate::tui::snapshot::Snapshot;

/// The picture of `image` at `epoch` (`None`: the newest epoch that has it).
fn find(pictures: &[Picture], epoch: Option<i64>, image: usize) -> Option<&Picture> {
    pictures
        .iter()
        .rfind(|p| p.item as usize == image && epoch.is_none_or(|e| p.epoch == e))
}

/// Draws a stored strip into `area`; a picture that does not decode says so.
fn strip(frame: &mut Frame, area: Rect, p: &Picture, max_zoom: f64) -> Rect {
    match raster::decode(&p.png) {
        Ok(img) => halfblock::draw(frame.buffer_mut(), &img, area, max_zoom),
        Err(e) => {
            frame.render_widget(Paragraph::new(format!("{e:#}")), area);
            area
        }
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) {
    let Some(id) = app.selected(snap) else {
        frame.render_widget(Paragraph::new("no run selected (Runs tab, Enter)"), area);
        return;
    };
    let block = Block::bordered().title(format!(
        "reconstructions of {id}: input | visible quarter | reconstruction | error (←/→ epoch, [/] image)"
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let pictures = snap.pictures.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    let epochs = app.picture_epochs(snap);
    let Some(&newest) = epochs.last() else {
        frame.render_widget(
            Paragraph::new(
                "no reconstructions stored for this run yet: they are written after each epoch \
                 when analysis.pictures_every > 0 (runs from before pictures existed have none)",
            )
            .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    };
    let epoch = app
        .picture_epoch
        .filter(|e| epochs.contains(e))
        .unwrap_or(newest);
    let images = pictures
        .iter()
        .map(|p| p.item as usize + 1)
        .max()
        .unwrap_or(1);
    let image = app.picture_image.min(images - 1);
    let Some(p) = find(pictures, Some(epoch), image) else {
        return;
    };
    let k = epochs.iter().position(|e| *e == epoch).unwrap_or(0);
    let [head, caption, body, history] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Min(4),
        Constraint::Length(2),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(format!("epoch {epoch}"), Style::new().fg(Color::Yellow)),
            Span::raw(format!(" ({}/{})  ", k + 1, epochs.len())),
            Span::styled(
                format!("image {}", image + 1),
                Style::new().fg(Color::Yellow),
            ),
            Span::raw(format!(" of {images}  ")),
            Span::raw(
                p.value
                    .map_or(String::new(), |v| format!("masked error {v:.4}")),
            ),
        ])),
        head,
    );
    frame.render_widget(
        Paragraph::new(p.caption.as_str())
            .style(Style::new().fg(Color::DarkGray))
            .wrap(Wrap { trim: true }),
        caption,
    );
    // the strip, and under it the first stored epoch's of the same image when there is room
    let first = epochs
        .first()
        .filter(|&&e| e != epoch)
        .and_then(|&e| find(pictures, Some(e), image));
    let used = strip(frame, body, p, 8.0);
    if let Some(first) = first {
        let below = Rect::new(
            body.x,
            used.y + used.height + 1,
            body.width,
            (body.y + body.height).saturating_sub(used.y + used.height + 1),
        );
        if below.height >= 3 {
            frame.render_widget(
                Paragraph::new(format!(
                    "epoch {} (the first stored), for comparison{}",
                    first.epoch,
                    first
                        .value
                        .map_or(String::new(), |v| format!(": masked error {v:.4}"))
                ))
                .style(Style::new().fg(Color::DarkGray)),
                Rect::new(below.x, below.y, below.width, 1),
            );
            let room = Rect::new(below.x, below.y + 1, below.width, below.height - 1);
            strip(frame, room, first, 8.0);
        }
    }
    // the chosen image's masked error at every stored epoch
    let trend: Vec<String> = epochs
        .iter()
        .filter_map(|e| find(pictures, Some(*e), image))
        .filter_map(|p| p.value.map(|v| format!("e{} {v:.3}", p.epoch)))
        .collect();
    frame.render_widget(
        Paragraph::new(format!("masked error per epoch: {}", trend.join("  ")))
            .wrap(Wrap { trim: true }),
        history,
    );
}

/// The marked runs' strips of the chosen image at their newest epoch, one above another
/// (the Compare tab); `false` when none of them has pictures.
pub fn compare(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) -> bool {
    let runs = app.compared();
    let shown: Vec<(&String, &Picture)> = runs
        .iter()
        .filter_map(|id| {
            let p = find(snap.pictures.get(id)?, None, app.picture_image)?;
            Some((id, p))
        })
        .collect();
    if shown.is_empty() {
        return false;
    }
    let block = Block::bordered().title(format!(
        "image {} at each run's newest epoch ([/] image)",
        app.picture_image + 1
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let each = (inner.height / shown.len() as u16).max(2);
    for (i, (id, p)) in shown.iter().enumerate() {
        let y = inner.y + i as u16 * each;
        if y + 1 >= inner.y + inner.height {
            break;
        }
        let label = Rect::new(inner.x, y, inner.width, 1);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(id.as_str(), Style::new().fg(run_color(id))),
                Span::raw(format!(
                    " epoch {}{}",
                    p.epoch,
                    p.value.map_or(String::new(), |v| format!("  error {v:.4}"))
                )),
            ])),
            label,
        );
        let room = Rect::new(
            inner.x,
            y + 1,
            inner.width,
            each.saturating_sub(1).min(inner.y + inner.height - y - 1),
        );
        strip(frame, room, p, 4.0);
    }
    true
}
