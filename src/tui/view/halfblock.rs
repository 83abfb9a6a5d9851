//! Pictures in any terminal: each cell shows two pixels stacked, the upper half block `▀`
//! with the top pixel as foreground colour and the bottom one as background. Works in tmux
//! and in ratatui's `TestBackend`.

use image::{imageops, RgbImage};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

/// The size (columns, rows) `img` takes when scaled to fit `area`, keeping its aspect ratio
/// (one column per pixel across, two pixels per row), never enlarged past `max_zoom`.
pub fn fitted(img: &RgbImage, area: Rect, max_zoom: f64) -> (u16, u16) {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    if w == 0.0 || h == 0.0 || area.width == 0 || area.height == 0 {
        return (0, 0);
    }
    let zoom = (f64::from(area.width) / w)
        .min(2.0 * f64::from(area.height) / h)
        .min(max_zoom);
    let cols = (w * zoom).floor().max(1.0) as u16;
    let rows = ((h * zoom) / 2.0).ceil().max(1.0) as u16;
    (cols.min(area.width), rows.min(area.height))
}

/// Draws `img` scaled to fit `area` (top-left aligned); returns the rectangle it used.
pub fn draw(buf: &mut Buffer, img: &RgbImage, area: Rect, max_zoom: f64) -> Rect {
    let (cols, rows) = fitted(img, area, max_zoom);
    if cols == 0 || rows == 0 {
        return Rect::default();
    }
    let filter = if u32::from(cols) < img.width() {
        imageops::FilterType::Triangle
    } else {
        imageops::FilterType::Nearest
    };
    let scaled = imageops::resize(img, u32::from(cols), 2 * u32::from(rows), filter);
    for row in 0..rows {
        for col in 0..cols {
            let top = scaled.get_pixel(u32::from(col), 2 * u32::from(row));
            let bottom = scaled.get_pixel(u32::from(col), 2 * u32::from(row) + 1);
            if let Some(cell) = buf.cell_mut((area.x + col, area.y + row)) {
                cell.set_symbol("▀")
                    .set_fg(Color::Rgb(top[0], top[1], top[2]))
                    .set_bg(Color::Rgb(bottom[0], bottom[1], bottom[2]));
            }
        }
    }
    Rect {
        x: area.x,
        y: area.y,
        width: cols,
        height: rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn two_pixels_per_cell_top_as_foreground() {
        // 4 × 4: top half red, bottom half blue, left column green
        let img = RgbImage::from_fn(4, 4, |x, y| {
            if x == 0 {
                Rgb([0, 255, 0])
            } else if y < 2 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let area = Rect::new(1, 1, 10, 10);
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 12));
        let used = draw(&mut buf, &img, area, 1.0);
        assert_eq!(used, Rect::new(1, 1, 4, 2));
        let c = &buf[(2, 1)];
        assert_eq!(c.symbol(), "▀");
        assert_eq!(c.fg, Color::Rgb(255, 0, 0));
        assert_eq!(c.bg, Color::Rgb(255, 0, 0));
        assert_eq!(buf[(2, 2)].fg, Color::Rgb(0, 0, 255));
        assert_eq!(buf[(1, 1)].fg, Color::Rgb(0, 255, 0));
        // outside the picture nothing is drawn
        assert_eq!(buf[(5, 1)].symbol(), " ");
        // a wide picture is scaled down to the area's width, aspect kept
        assert_eq!(
            fitted(&RgbImage::new(200, 40), Rect::new(0, 0, 100, 50), 4.0),
            (100, 10)
        );
        assert_eq!(
            fitted(&RgbImage::new(10, 10), Rect::new(0, 0, 100, 50), 2.0),
            (20, 10)
        );
    }
}
