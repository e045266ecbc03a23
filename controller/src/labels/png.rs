//! Rasterises a laid-out face to a PNG (the preview, and the input of raster-only printers):
//! the printable ring white, the hub and the outside transparent, glyph outlines from the font.

use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Transform};

use super::layout::Layout;
use crate::err;
use crate::error::Result;

/// Resolution of the preview and of raster prints: what disc printers print at (Epson PP-100,
/// Primera Bravo: 300 dpi and up).
pub const DEFAULT_DPI: f32 = 300.0;

/// Renders `layout` at `dpi`.
pub fn render(layout: &Layout, dpi: f32) -> Result<Vec<u8>> {
    let px_per_mm = dpi / 25.4;
    let side = (layout.diameter_mm * px_per_mm).round() as u32;
    let mut pixmap = Pixmap::new(side, side)
        .ok_or_else(|| err!(InvalidArgument, "预览尺寸无效 ({side}×{side} px)"))?;
    let radius = layout.diameter_mm / 2.0;
    let to_px = |mm: f32| (radius + mm) * px_per_mm;

    // The printable ring, white: what the printer can print on. Outside it stays transparent, so
    // a glance (and a test) shows that nothing lies beyond it.
    let (inner, outer) = layout.ring_mm;
    let mut ring = PathBuilder::new();
    ring.push_circle(to_px(0.0), to_px(0.0), outer * px_per_mm);
    ring.push_circle(to_px(0.0), to_px(0.0), inner * px_per_mm);
    if let Some(ring) = ring.finish() {
        let mut paint = Paint::default();
        paint.set_color(Color::WHITE);
        pixmap.fill_path(
            &ring,
            &paint,
            FillRule::EvenOdd,
            Transform::identity(),
            None,
        );
    }

    let font = &layout.font;
    let face = font.face()?;
    let units = f32::from(layout.units_per_em);
    for line in &layout.lines {
        let mut paint = Paint::default();
        let [r, g, b] = line.rgb;
        paint.set_color_rgba8(r, g, b, 255);
        paint.anti_alias = true;
        let scale = line.size_pt / super::layout::PT_PER_MM / units * px_per_mm;
        for glyph in &line.glyphs {
            let mut builder = Outline(PathBuilder::new());
            if face
                .outline_glyph(ttf_parser::GlyphId(glyph.id), &mut builder)
                .is_none()
            {
                continue;
            }
            let Some(path) = builder.0.finish() else {
                continue;
            };
            // Font units are y-up from the glyph origin on the baseline.
            let transform = Transform::from_row(
                scale,
                0.0,
                0.0,
                -scale,
                to_px(glyph.x_mm),
                to_px(line.baseline_mm),
            );
            pixmap.fill_path(&path, &paint, FillRule::Winding, transform, None);
        }
    }

    let mut black = Paint::default();
    black.set_color(Color::BLACK);
    // Modules on whole pixels: soft module edges make QR readers misjudge the grid.
    black.anti_alias = false;
    for qr in &layout.qr_codes {
        for (i, _) in qr.dark.iter().enumerate().filter(|(_, dark)| **dark) {
            let (col, row) = ((i % qr.width) as f32, (i / qr.width) as f32);
            let x0 = to_px(qr.x_mm + col * qr.module_mm).round();
            let y0 = to_px(qr.y_mm + row * qr.module_mm).round();
            let x1 = to_px(qr.x_mm + (col + 1.0) * qr.module_mm).round();
            let y1 = to_px(qr.y_mm + (row + 1.0) * qr.module_mm).round();
            if let Some(rect) = tiny_skia::Rect::from_ltrb(x0, y0, x1, y1) {
                pixmap.fill_rect(rect, &black, Transform::identity(), None);
            }
        }
    }
    pixmap
        .encode_png()
        .map_err(|e| err!(Internal, "PNG 编码失败 (PNG encoding failed): {e}"))
}

struct Outline(PathBuilder);

impl ttf_parser::OutlineBuilder for Outline {
    fn move_to(&mut self, x: f32, y: f32) {
        self.0.move_to(x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        self.0.line_to(x, y);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        self.0.quad_to(x1, y1, x, y);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        self.0.cubic_to(x1, y1, x2, y2, x, y);
    }
    fn close(&mut self) {
        self.0.close();
    }
}
