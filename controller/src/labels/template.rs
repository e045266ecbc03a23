//! Label templates: the TOML files of `hardware/labels/`, parsed and checked against the disc's
//! geometry before anything is drawn, so a bad template fails with its name and the problem.

use std::path::Path;

use serde::Deserialize;

use crate::bail;
use crate::error::{io_error, Result};

/// The templates shipped with the appliance (also readable in `hardware/labels/`).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "standard",
        include_str!("../../../hardware/labels/standard.toml"),
    ),
    (
        "reject",
        include_str!("../../../hardware/labels/reject.toml"),
    ),
];

/// The merge fields a template may use as `{name}` in its texts.
pub const FIELDS: &[&str] = &[
    "project_name",
    "project_number",
    "opening_date",
    "disc_index",
    "disc_count",
    "copy_kind",
    "copy_index",
    "burn_date",
    "catalog_url",
    "organization",
    "volume_id",
    "reject_reason",
];

/// Smallest text size a template may ask for: below it a face printed at 300–600 dpi on a
/// disc's coated surface is no longer readable.
pub const MIN_LEGIBLE_PT: f32 = 5.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    #[serde(skip)]
    pub name: String,
    pub description: String,
    pub outer_diameter_mm: f32,
    pub hub_diameter_mm: f32,
    /// The ring the printer can print on, as two diameters.
    pub printable_inner_diameter_mm: f32,
    pub printable_outer_diameter_mm: f32,
    #[serde(default)]
    pub text: Vec<TextBlock>,
    #[serde(default)]
    pub qr: Vec<QrBlock>,
}

/// A rectangle on the face in millimetres from the centre of the disc, y pointing down.
#[derive(Debug, Clone, Copy)]
pub struct BoxMm {
    pub x_mm: f32,
    pub y_mm: f32,
    pub width_mm: f32,
    pub height_mm: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    Left,
    #[default]
    Center,
    Right,
}

/// A text that wraps inside its box and shrinks from `size_pt` down to `min_size_pt` to fit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextBlock {
    pub text: String,
    pub x_mm: f32,
    pub y_mm: f32,
    pub width_mm: f32,
    pub height_mm: f32,
    pub size_pt: f32,
    /// Default: `size_pt` (the text never shrinks).
    pub min_size_pt: Option<f32>,
    #[serde(default)]
    pub align: Align,
    /// Default: as many lines as the box holds.
    pub max_lines: Option<u32>,
    /// `#rrggbb`; default black.
    pub color: Option<String>,
}

/// A QR code of `content` (normally `{catalog_url}`), a square of `size_mm` at (`x_mm`, `y_mm`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QrBlock {
    pub content: String,
    pub x_mm: f32,
    pub y_mm: f32,
    pub size_mm: f32,
}

impl TextBlock {
    pub fn area(&self) -> BoxMm {
        BoxMm {
            x_mm: self.x_mm,
            y_mm: self.y_mm,
            width_mm: self.width_mm,
            height_mm: self.height_mm,
        }
    }

    pub fn min_size(&self) -> f32 {
        self.min_size_pt.unwrap_or(self.size_pt)
    }

    pub fn rgb(&self) -> [u8; 3] {
        self.color
            .as_deref()
            .and_then(parse_color)
            .unwrap_or([0, 0, 0])
    }
}

fn parse_color(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

/// Loads template `name`: `<dir>/<name>.toml` when a template folder is configured and holds
/// it, else a built-in one.
pub fn load(name: &str, dir: Option<&Path>) -> Result<Template> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            InvalidArgument,
            "盘面模板名称 {name:?} 无效：只能包含字母、数字、- 和 _ (bad label template name)"
        );
    }
    if let Some(dir) = dir {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse(name, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(format!("读取盘面模板 {}", path.display()), e)),
        }
    }
    match BUILT_IN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => parse(name, text),
        None => bail!(
            NotFound,
            "盘面模板 {name:?} 不存在 (unknown label template); 内置模板: {}",
            BUILT_IN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Parses and checks a template.
pub fn parse(name: &str, text: &str) -> Result<Template> {
    let mut template: Template = toml::from_str(text).map_err(|e| {
        crate::err!(
            InvalidArgument,
            "盘面模板 {name}: {} (bad label template)",
            e.to_string().trim()
        )
    })?;
    template.name = name.to_string();
    template.check()?;
    Ok(template)
}

impl Template {
    pub fn hub_radius(&self) -> f32 {
        self.hub_diameter_mm / 2.0
    }

    pub fn ring(&self) -> (f32, f32) {
        (
            self.printable_inner_diameter_mm / 2.0,
            self.printable_outer_diameter_mm / 2.0,
        )
    }

    fn check(&self) -> Result<()> {
        let name = &self.name;
        let d = [
            self.hub_diameter_mm,
            self.printable_inner_diameter_mm,
            self.printable_outer_diameter_mm,
            self.outer_diameter_mm,
        ];
        if !(d.iter().all(|v| v.is_finite() && *v > 0.0)
            && d[0] < d[1]
            && d[1] < d[2]
            && d[2] <= d[3]
            && d[3] <= 300.0)
        {
            bail!(
                InvalidArgument,
                "盘面模板 {name}: 直径须满足 0 < 中孔 < 可印内径 < 可印外径 ≤ 盘径 ≤ 300 mm，实为 {d:?} (bad disc geometry)"
            );
        }
        for (i, block) in self.text.iter().enumerate() {
            let what = format!("盘面模板 {name} 第 {} 个文字块", i + 1);
            check_fields(&what, &block.text)?;
            self.check_box(&what, &block.area())?;
            let (size, min) = (block.size_pt, block.min_size());
            if !(size.is_finite() && min.is_finite() && MIN_LEGIBLE_PT <= min && min <= size) {
                bail!(
                    InvalidArgument,
                    "{what}: 字号须满足 {MIN_LEGIBLE_PT} ≤ min_size_pt ≤ size_pt，实为 {min} 和 {size} (bad font size)"
                );
            }
            if block.max_lines == Some(0) {
                bail!(InvalidArgument, "{what}: max_lines 不能为 0");
            }
            if block.color.is_some() && block.color.as_deref().and_then(parse_color).is_none() {
                bail!(
                    InvalidArgument,
                    "{what}: 颜色 {:?} 不是 #rrggbb 形式 (bad color)",
                    block.color.as_deref().unwrap_or_default()
                );
            }
        }
        for (i, qr) in self.qr.iter().enumerate() {
            let what = format!("盘面模板 {name} 第 {} 个二维码", i + 1);
            check_fields(&what, &qr.content)?;
            self.check_box(
                &what,
                &BoxMm {
                    x_mm: qr.x_mm,
                    y_mm: qr.y_mm,
                    width_mm: qr.size_mm,
                    height_mm: qr.size_mm,
                },
            )?;
        }
        Ok(())
    }

    /// A box must lie wholly inside the printable ring: its corners inside the outer circle
    /// and its nearest point to the centre outside the inner one.
    fn check_box(&self, what: &str, area: &BoxMm) -> Result<()> {
        let (inner, outer) = self.ring();
        let ok = [area.x_mm, area.y_mm, area.width_mm, area.height_mm]
            .iter()
            .all(|v| v.is_finite())
            && area.width_mm > 0.0
            && area.height_mm > 0.0
            && box_in_ring(
                area.x_mm,
                area.y_mm,
                area.x_mm + area.width_mm,
                area.y_mm + area.height_mm,
                inner,
                outer,
            );
        if !ok {
            bail!(
                InvalidArgument,
                "{what}: 区域 ({}, {}) 宽 {} 高 {} mm 超出可印环 {inner}–{outer} mm 半径 (box outside the printable ring)",
                area.x_mm,
                area.y_mm,
                area.width_mm,
                area.height_mm
            );
        }
        Ok(())
    }
}

/// Whether the rectangle (x0, y0)–(x1, y1), centred coordinates, lies inside the ring.
pub fn box_in_ring(x0: f32, y0: f32, x1: f32, y1: f32, inner: f32, outer: f32) -> bool {
    let corners_inside = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)]
        .iter()
        .all(|(x, y)| x.hypot(*y) <= outer);
    let nearest_x = 0f32.clamp(x0, x1);
    let nearest_y = 0f32.clamp(y0, y1);
    corners_inside && nearest_x.hypot(nearest_y) >= inner
}

/// Every `{name}` in `text` must be a known field; `{{` and `}}` are literal braces.
fn check_fields(what: &str, text: &str) -> Result<()> {
    for piece in placeholders(text)? {
        if let Piece::Field(field) = piece {
            if !FIELDS.contains(&field) {
                bail!(
                    InvalidArgument,
                    "{what}: 未知的合并字段 {{{field}}} (unknown merge field); 可用: {}",
                    FIELDS.join(", ")
                );
            }
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Literal(&'a str),
    Field(&'a str),
}

/// Splits a template text into literal text and `{field}` references.
pub fn placeholders(text: &str) -> Result<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            out.push(Piece::Literal("{"));
            rest = after;
        } else if let Some(after) = rest.strip_prefix("}}") {
            out.push(Piece::Literal("}"));
            rest = after;
        } else if let Some(after) = rest.strip_prefix('{') {
            let Some(end) = after.find('}') else {
                bail!(
                    InvalidArgument,
                    "文字 {text:?} 中的 {{ 没有对应的 }} (unclosed merge field)"
                );
            };
            out.push(Piece::Field(&after[..end]));
            rest = &after[end + 1..];
        } else if rest.starts_with('}') {
            bail!(
                InvalidArgument,
                "文字 {text:?} 中有多余的 }} (stray closing brace)"
            );
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            out.push(Piece::Literal(&rest[..end]));
            rest = &rest[end..];
        }
    }
    Ok(out)
}

/// Replaces every `{field}` by its value.
pub fn merge(text: &str, value: impl Fn(&str) -> String) -> Result<String> {
    let mut out = String::new();
    for piece in placeholders(text)? {
        match piece {
            Piece::Literal(s) => out.push_str(s),
            Piece::Field(f) => out.push_str(&value(f)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_templates_pass_their_own_checks() {
        for (name, _) in BUILT_IN {
            load(name, None).unwrap();
        }
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        let base = include_str!("../../../hardware/labels/standard.toml");
        let check = |text: &str, expected: &str| {
            let e = parse("t", text).unwrap_err();
            assert!(e.message.contains(expected), "{expected:?} not in {e}");
        };
        check(
            &base.replacen("text = \"{project_number}", "text = \"{project_numbr}", 1),
            "未知的合并字段 {project_numbr}",
        );
        check(
            &base.replacen("{project_number}\"", "{project_number\"", 1),
            "没有对应的 }",
        );
        check(
            &format!("{base}\nsurprise = 1\n"),
            "unknown field `surprise`",
        );
        check(
            &format!("{base}\n[[qr]]\ncontent = \"x\"\nx_mm = 50.0\ny_mm = 0.0\nsize_mm = 20.0\n"),
            "超出可印环",
        );
        check(
            &format!("{base}\n[[text]]\ntext = \"x\"\nx_mm = -5.0\ny_mm = -5.0\nwidth_mm = 10.0\nheight_mm = 10.0\nsize_pt = 8.0\n"),
            "超出可印环",
        );
        check(
            &format!("{base}\n[[text]]\ntext = \"x\"\nx_mm = 20.0\ny_mm = -5.0\nwidth_mm = 10.0\nheight_mm = 10.0\nsize_pt = 8.0\nmin_size_pt = 2.0\n"),
            "字号须满足",
        );
        let e = load("nonexistent", None).unwrap_err();
        assert!(e.message.contains("不存在"), "{e}");
        let e = load("../etc/passwd", None).unwrap_err();
        assert!(e.message.contains("无效"), "{e}");
    }

    #[test]
    fn a_template_folder_overrides_the_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        let text = include_str!("../../../hardware/labels/standard.toml").replacen(
            "description = ",
            "description = \"mine\"\n#",
            1,
        );
        std::fs::write(dir.path().join("standard.toml"), text).unwrap();
        assert_eq!(
            load("standard", Some(dir.path())).unwrap().description,
            "mine"
        );
        assert_ne!(
            load("reject", Some(dir.path())).unwrap().description,
            "mine"
        );
    }
}
