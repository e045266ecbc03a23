//! Writes a laid-out face as a one-page PDF the size of the disc, with the font subset and
//! embedded as a CID font (Identity-H) and a ToUnicode map, so the text stays searchable and
//! `pdftotext` gives back every field.

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use subsetter::GlyphRemapper;

use super::layout::{Layout, PT_PER_MM};
use crate::err;
use crate::error::Result;

const FONT_NAME: Name<'static> = Name(b"F1");

pub fn render(layout: &Layout, title: &str) -> Result<Vec<u8>> {
    let font = &layout.font;
    let face = font.face()?;
    let page_pt = layout.diameter_mm * PT_PER_MM;
    let radius = layout.diameter_mm / 2.0;
    // Centre-based millimetres, y down → PDF points from the bottom-left corner, y up.
    let x_pt = |x_mm: f32| (radius + x_mm) * PT_PER_MM;
    let y_pt = |y_mm: f32| (radius - y_mm) * PT_PER_MM;

    // Glyph 0 (.notdef) first, as the subset must keep it.
    let mut remapper = GlyphRemapper::new();
    remapper.remap(0);
    for glyph in layout.lines.iter().flat_map(|l| &l.glyphs) {
        remapper.remap(glyph.id);
    }
    let subset = subsetter::subset(&font.data, font.index, &remapper)
        .map_err(|e| err!(Internal, "字体子集化失败 (font subsetting failed): {e}"))?;

    let catalog_id = Ref::new(1);
    let pages_id = Ref::new(2);
    let page_id = Ref::new(3);
    let content_id = Ref::new(4);
    let type0_id = Ref::new(5);
    let cid_id = Ref::new(6);
    let descriptor_id = Ref::new(7);
    let cmap_id = Ref::new(8);
    let file_id = Ref::new(9);
    let info_id = Ref::new(10);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(pages_id);
    pdf.pages(pages_id).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, page_pt, page_pt));
    page.parent(pages_id);
    page.contents(content_id);
    page.resources().fonts().pair(FONT_NAME, type0_id);
    page.finish();
    pdf.document_info(info_id)
        .title(TextStr(title))
        .creator(TextStr("Witness 见证"));

    // A subset font is named with a six-letter tag (PDF 32000-1 §9.6.4).
    let base_font = format!("WITNES+{}", font.postscript_name());
    let system_info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    pdf.type0_font(type0_id)
        .base_font(Name(base_font.as_bytes()))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_id)
        .to_unicode(cmap_id);

    let units = f32::from(layout.units_per_em);
    let to_1000 = |v: f32| v * 1000.0 / units;
    let mut cid = pdf.cid_font(cid_id);
    cid.subtype(CidFontType::Type2)
        .base_font(Name(base_font.as_bytes()))
        .system_info(system_info)
        .font_descriptor(descriptor_id)
        .default_width(0.0)
        .cid_to_gid_map_predefined(Name(b"Identity"));
    let mut widths = cid.widths();
    for old in remapper.remapped_gids() {
        let new = remapper.get(old).expect("remapped");
        let advance = face
            .glyph_hor_advance(ttf_parser::GlyphId(old))
            .unwrap_or(0);
        widths.consecutive(new, [to_1000(f32::from(advance))]);
    }
    widths.finish();
    cid.finish();

    let bbox = face.global_bounding_box();
    pdf.font_descriptor(descriptor_id)
        .name(Name(base_font.as_bytes()))
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            to_1000(f32::from(bbox.x_min)),
            to_1000(f32::from(bbox.y_min)),
            to_1000(f32::from(bbox.x_max)),
            to_1000(f32::from(bbox.y_max)),
        ))
        .italic_angle(0.0)
        .ascent(to_1000(f32::from(face.ascender())))
        .descent(to_1000(f32::from(face.descender())))
        .cap_height(to_1000(f32::from(
            face.capital_height().unwrap_or(face.ascender()),
        )))
        .stem_v(80.0)
        .font_file2(file_id);
    pdf.stream(file_id, &subset);

    let mut cmap = pdf_writer::types::UnicodeCmap::new(Name(b"Witness-UTF16"), system_info);
    let mut seen = std::collections::HashSet::new();
    for glyph in layout.lines.iter().flat_map(|l| &l.glyphs) {
        let new = remapper.get(glyph.id).expect("remapped");
        if seen.insert(new) {
            cmap.pair(new, glyph.ch);
        }
    }
    pdf.cmap(cmap_id, &cmap.finish());

    let mut content = Content::new();
    for line in &layout.lines {
        let [r, g, b] = line.rgb.map(|c| f32::from(c) / 255.0);
        content.set_fill_rgb(r, g, b);
        content.begin_text();
        content.set_font(FONT_NAME, line.size_pt);
        let first = line.glyphs.first().map_or(0.0, |g| g.x_mm);
        content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x_pt(first), y_pt(line.baseline_mm)]);
        let bytes: Vec<u8> = line
            .glyphs
            .iter()
            .flat_map(|g| remapper.get(g.id).expect("remapped").to_be_bytes())
            .collect();
        content.show(Str(&bytes));
        content.end_text();
    }
    content.set_fill_rgb(0.0, 0.0, 0.0);
    for qr in &layout.qr_codes {
        for (i, _) in qr.dark.iter().enumerate().filter(|(_, dark)| **dark) {
            let (col, row) = ((i % qr.width) as f32, (i / qr.width) as f32);
            let x = qr.x_mm + col * qr.module_mm;
            let y = qr.y_mm + (row + 1.0) * qr.module_mm;
            let side = qr.module_mm * PT_PER_MM;
            content.rect(x_pt(x), y_pt(y), side, side);
        }
        content.fill_nonzero();
    }
    pdf.stream(content_id, &content.finish());
    Ok(pdf.finish())
}
