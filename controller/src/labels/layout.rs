//! Lays a template's merge fields out on the disc face: text wrapped and shrunk with the font's
//! real glyph advances, QR codes as module grids; the PDF and the PNG are both drawn from this
//! one result, and its glyph boxes are what the ring check (and the tests) look at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use qrcode::{EcLevel, QrCode};

use super::template::{self, box_in_ring, Align, Template};
use crate::error::{io_error, Result};
use crate::{bail, err};

/// Points per millimetre.
pub const PT_PER_MM: f32 = 72.0 / 25.4;
/// Line pitch as a multiple of the font size.
const LINE_PITCH: f32 = 1.2;
/// How much smaller each fitting attempt sets the text.
const SHRINK_STEP_PT: f32 = 0.25;

/// A TrueType font file (or one face of a .ttc collection) read once per process.
pub struct Font {
    pub path: PathBuf,
    pub index: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Font {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Font({}#{})", self.path.display(), self.index)
    }
}

impl Font {
    /// Loads `path` (face 0 of a collection), caching it: the CJK fonts are 10–20 MB.
    pub fn load(path: &Path) -> Result<Arc<Font>> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Font>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Mutex::default);
        if let Some(font) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
            return Ok(Arc::clone(font));
        }
        let data = std::fs::read(path).map_err(|e| {
            let mut e = io_error(
                format!(
                    "读取盘面字体 {} (install fonts-wqy-zenhei or set [labels] font)",
                    path.display()
                ),
                e,
            );
            e.kind = crate::error::ErrorKind::Unavailable;
            e
        })?;
        let font = Font {
            path: path.to_path_buf(),
            index: 0,
            data,
        };
        let face = font.face()?;
        if face.tables().glyf.is_none() {
            bail!(
                InvalidArgument,
                "盘面字体 {} 不是 TrueType 轮廓字体 (only TrueType-outline fonts can be embedded; try fonts-wqy-zenhei)",
                path.display()
            );
        }
        let font = Arc::new(font);
        cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_path_buf(), Arc::clone(&font));
        Ok(font)
    }

    pub fn face(&self) -> Result<ttf_parser::Face<'_>> {
        ttf_parser::Face::parse(&self.data, self.index).map_err(|e| {
            err!(
                InvalidArgument,
                "盘面字体 {} 无法解析: {e} (not a usable font file)",
                self.path.display()
            )
        })
    }

    /// The family name, for the PDF's font dictionary.
    pub fn postscript_name(&self) -> String {
        // WenQuanYi Zen Hei has no Unicode PostScript name entry; its family name serves.
        let name = self.face().ok().and_then(|face| {
            [
                ttf_parser::name_id::POST_SCRIPT_NAME,
                ttf_parser::name_id::FAMILY,
            ]
            .into_iter()
            .find_map(|id| {
                face.names()
                    .into_iter()
                    .filter(|n| n.name_id == id)
                    .find_map(|n| n.to_string())
            })
        });
        name.unwrap_or_else(|| "WitnessLabelFont".into())
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    }
}

/// A rectangle in millimetres from the disc's centre, y down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RectMm {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

#[derive(Debug, Clone)]
pub struct PlacedGlyph {
    /// Glyph id in the font.
    pub id: u16,
    pub ch: char,
    /// Pen position of the glyph's origin on the baseline.
    pub x_mm: f32,
    /// Advance width in the font's units (what the PDF's width table says).
    pub advance_units: u16,
    /// The glyph's outline box; `None` for blank glyphs (spaces).
    pub ink: Option<RectMm>,
}

/// One line of text as set.
#[derive(Debug, Clone)]
pub struct Line {
    pub text: String,
    pub size_pt: f32,
    pub rgb: [u8; 3],
    pub baseline_mm: f32,
    pub glyphs: Vec<PlacedGlyph>,
}

#[derive(Debug, Clone)]
pub struct QrPlaced {
    pub content: String,
    /// Top-left corner of the symbol (without the quiet zone) and the module size.
    pub x_mm: f32,
    pub y_mm: f32,
    pub module_mm: f32,
    /// Modules per side.
    pub width: usize,
    /// Row-major, `true` = dark.
    pub dark: Vec<bool>,
}

/// What a text block became: for the tests and the UI, the size it was set at.
#[derive(Debug, Clone)]
pub struct BlockFit {
    pub text: String,
    pub size_pt: f32,
    pub lines: usize,
}

/// A laid-out disc face.
#[derive(Debug, Clone)]
pub struct Layout {
    pub template: String,
    pub diameter_mm: f32,
    pub hub_radius_mm: f32,
    /// Printable ring radii.
    pub ring_mm: (f32, f32),
    pub lines: Vec<Line>,
    pub qr_codes: Vec<QrPlaced>,
    pub blocks: Vec<BlockFit>,
    pub units_per_em: u16,
    pub font: Arc<Font>,
}

/// Lays out `template` with field values from `value` (every field the template uses must
/// have one; see [`template::FIELDS`]).
pub fn lay_out(
    template: &Template,
    font: &Arc<Font>,
    value: &dyn Fn(&str) -> String,
) -> Result<Layout> {
    let face = font.face()?;
    let units_per_em = face.units_per_em();
    let (inner, outer) = template.ring();
    let mut layout = Layout {
        template: template.name.clone(),
        diameter_mm: template.outer_diameter_mm,
        hub_radius_mm: template.hub_radius(),
        ring_mm: (inner, outer),
        lines: Vec::new(),
        qr_codes: Vec::new(),
        blocks: Vec::new(),
        units_per_em,
        font: Arc::clone(font),
    };
    for (block_index, block) in template.text.iter().enumerate() {
        let text = clean(&template::merge(&block.text, value)?);
        let area = block.area();
        let what = format!("盘面模板 {} 第 {} 个文字块", template.name, block_index + 1);
        let glyphs = glyphs_of(&face, font, &text)?;
        let mut size = block.size_pt;
        let fitted = loop {
            let size_mm = size / PT_PER_MM;
            let scale = size_mm / f32::from(units_per_em);
            let max_units = area.width_mm / scale;
            let lines = wrap(&glyphs, max_units);
            let pitch = size_mm * LINE_PITCH;
            let fits_lines = block
                .max_lines
                .is_none_or(|max| lines.len() <= max as usize);
            // A single character wider than the box makes a line of its own that still
            // overflows: only a smaller size helps.
            let fits_width = lines.iter().all(|line| {
                line.iter().map(|g| f32::from(g.advance)).sum::<f32>() <= max_units + 0.5
            });
            if fits_lines && fits_width && lines.len() as f32 * pitch <= area.height_mm + 1e-3 {
                break Some((size, lines));
            }
            if size <= block.min_size() {
                break None;
            }
            size = (size - SHRINK_STEP_PT).max(block.min_size());
        };
        let Some((size, lines)) = fitted else {
            let n = text.chars().count();
            let shown: String = text.chars().take(24).collect();
            bail!(
                InvalidArgument,
                "{what}：“{shown}{}”（{n} 个字）在最小字号 {} pt 下也放不进 {} × {} mm 的区域 (text does not fit at the minimum size)",
                if n > 24 { "…" } else { "" },
                block.min_size(),
                area.width_mm,
                area.height_mm
            );
        };
        let size_mm = size / PT_PER_MM;
        let scale = size_mm / f32::from(units_per_em);
        let pitch = size_mm * LINE_PITCH;
        let ascender = f32::from(face.ascender()) * scale;
        let descender = f32::from(face.descender()) * scale;
        let top = area.y_mm + (area.height_mm - lines.len() as f32 * pitch) / 2.0;
        layout.blocks.push(BlockFit {
            text: text.clone(),
            size_pt: size,
            lines: lines.len(),
        });
        for (i, line) in lines.iter().enumerate() {
            let width: f32 = line.iter().map(|g| f32::from(g.advance) * scale).sum();
            let mut x = match block.align {
                Align::Left => area.x_mm,
                Align::Center => area.x_mm + (area.width_mm - width) / 2.0,
                Align::Right => area.x_mm + area.width_mm - width,
            };
            let baseline =
                top + i as f32 * pitch + (pitch - (ascender - descender)) / 2.0 + ascender;
            let mut placed = Vec::new();
            for g in line {
                let ink = face
                    .glyph_bounding_box(ttf_parser::GlyphId(g.id))
                    .map(|b| RectMm {
                        x0: x + f32::from(b.x_min) * scale,
                        x1: x + f32::from(b.x_max) * scale,
                        y0: baseline - f32::from(b.y_max) * scale,
                        y1: baseline - f32::from(b.y_min) * scale,
                    });
                if let Some(r) = ink {
                    // The box is inside the ring (template check), but a glyph may reach past
                    // its line's box; such ink would be cut off at the printer's mask.
                    if !box_in_ring(r.x0, r.y0, r.x1, r.y1, inner, outer) {
                        bail!(
                            InvalidArgument,
                            "{what}: 字符 {:?} 会超出可印环 (glyph outside the printable ring); 请把区域移离边缘",
                            g.ch
                        );
                    }
                }
                placed.push(PlacedGlyph {
                    id: g.id,
                    ch: g.ch,
                    x_mm: x,
                    advance_units: g.advance,
                    ink,
                });
                x += f32::from(g.advance) * scale;
            }
            layout.lines.push(Line {
                text: line.iter().map(|g| g.ch).collect(),
                size_pt: size,
                rgb: block.rgb(),
                baseline_mm: baseline,
                glyphs: placed,
            });
        }
    }
    for qr in &template.qr {
        let content = template::merge(&qr.content, value)?;
        let code = QrCode::with_error_correction_level(content.as_bytes(), EcLevel::M)
            .map_err(|e| err!(InvalidArgument, "二维码内容过长或无效 ({e}): {content}"))?;
        let width = code.width();
        // Four blank modules on each side: the quiet zone QR readers need (ISO/IEC 18004).
        let module_mm = qr.size_mm / (width + 8) as f32;
        layout.qr_codes.push(QrPlaced {
            content,
            x_mm: qr.x_mm + 4.0 * module_mm,
            y_mm: qr.y_mm + 4.0 * module_mm,
            module_mm,
            width,
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect(),
        });
    }
    Ok(layout)
}

/// Control characters would print as boxes; tabs and carriage returns become spaces and a
/// newline stays an explicit line break.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => '\n',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct Glyph {
    id: u16,
    ch: char,
    advance: u16,
}

fn glyphs_of(face: &ttf_parser::Face<'_>, font: &Font, text: &str) -> Result<Vec<Glyph>> {
    text.chars()
        .map(|ch| {
            if ch == '\n' {
                return Ok(Glyph {
                    id: 0,
                    ch,
                    advance: 0,
                });
            }
            let id = face.glyph_index(ch).ok_or_else(|| {
                err!(
                    InvalidArgument,
                    "盘面字体 {} 中没有字符 {ch:?} (U+{:04X})，无法印在盘面上 (character missing from the font)",
                    font.path.display(),
                    ch as u32
                )
            })?;
            Ok(Glyph {
                id: id.0,
                ch,
                advance: face.glyph_hor_advance(id).unwrap_or(0),
            })
        })
        .collect()
}

/// Characters that must not start a line (Chinese line-breaking rule 避头点).
fn no_line_start(c: char) -> bool {
    "，。、；：！？）】》」』”’,.;:!?)]}%·".contains(c)
}

/// Breaks glyphs into lines no wider than `max_units`: between Chinese characters, at spaces
/// between Latin words, and inside a word only when the word alone is too wide. Closing
/// punctuation stays with the character before it.
fn wrap(glyphs: &[Glyph], max_units: f32) -> Vec<Vec<Glyph>> {
    let mut lines = Vec::new();
    for paragraph in glyphs.split(|g| g.ch == '\n') {
        // Tokens: a Latin word (run of ASCII non-space characters), one space, or one other
        // character with any closing punctuation that follows it.
        let mut tokens: Vec<Vec<Glyph>> = Vec::new();
        for g in paragraph {
            let joins = match tokens.last() {
                Some(last) => {
                    let prev = last[last.len() - 1].ch;
                    no_line_start(g.ch) && prev != ' '
                        || (g.ch.is_ascii_graphic() && prev.is_ascii_graphic())
                }
                None => false,
            };
            if joins {
                tokens.last_mut().expect("checked").push(*g);
            } else {
                tokens.push(vec![*g]);
            }
        }
        let width = |gs: &[Glyph]| gs.iter().map(|g| f32::from(g.advance)).sum::<f32>();
        let mut line: Vec<Glyph> = Vec::new();
        let finish = |line: &mut Vec<Glyph>, lines: &mut Vec<Vec<Glyph>>| {
            while line.last().is_some_and(|g| g.ch == ' ') {
                line.pop();
            }
            if !line.is_empty() {
                lines.push(std::mem::take(line));
            }
        };
        for token in tokens {
            if token[0].ch == ' ' && line.is_empty() {
                continue;
            }
            if width(&line) + width(&token) <= max_units {
                line.extend(token);
                continue;
            }
            finish(&mut line, &mut lines);
            if width(&token) <= max_units {
                line.extend(token.into_iter().skip_while(|g| g.ch == ' '));
                continue;
            }
            // A word wider than the box (a long URL): break it between characters.
            for g in token {
                if !line.is_empty() && width(&line) + f32::from(g.advance) > max_units {
                    finish(&mut line, &mut lines);
                }
                line.push(g);
            }
        }
        finish(&mut line, &mut lines);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glyphs(text: &str) -> Vec<Glyph> {
        text.chars()
            .map(|ch| Glyph {
                id: 1,
                ch,
                advance: if ch.is_ascii() { 1 } else { 2 },
            })
            .collect()
    }

    fn check(text: &str, width: f32, expected: &[&str]) {
        let lines: Vec<String> = wrap(&glyphs(text), width)
            .iter()
            .map(|l| l.iter().map(|g| g.ch).collect())
            .collect();
        assert_eq!(lines, expected, "wrapping {text:?} at {width}");
    }

    #[test]
    fn wrapping_follows_chinese_and_latin_rules() {
        check("郑州市公共资源", 6.0, &["郑州市", "公共资", "源"]);
        check("郑州，市公", 4.0, &["郑", "州，", "市公"]);
        check("ab cd ef", 5.0, &["ab cd", "ef"]);
        check("abcdefgh", 3.0, &["abc", "def", "gh"]);
        check("一\n二", 10.0, &["一", "二"]);
        check("", 10.0, &[]);
    }
}
