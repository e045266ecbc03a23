//! Text of the documents a project holds: TXT/CSV/HTML/XML (UTF-8 or GB18030), DOCX (the XML
//! inside the zip), XLSX/XLS/ODS (calamine) and PDF (poppler's `pdftotext`, the extractor that
//! copes with the CID fonts of Chinese PDFs). A scanned PDF has no text layer: it is found by its
//! file name and its project's words only.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Files larger than this are indexed by name only: text extraction must never hold the
/// daemon's memory hostage (a 2 GB "document" is a scan or a video in disguise).
const MAX_FILE_BYTES: u64 = 64 << 20;
/// Text beyond this many characters of one file is not indexed.
pub const MAX_TEXT_CHARS: usize = 1_000_000;

/// Extracts the text of a file, judged by its extension; None for formats without text or
/// files that cannot be read (the item is still indexed by its name).
pub fn extract_text(path: &Path, name: &str) -> Option<String> {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let size = std::fs::metadata(path).ok()?.len();
    if size > MAX_FILE_BYTES {
        return None;
    }
    let text = match ext.as_str() {
        "txt" | "csv" | "md" | "json" | "xml" => decode(&std::fs::read(path).ok()?),
        "html" | "htm" => strip_tags(&decode(&std::fs::read(path).ok()?)),
        "docx" => docx_text(path)?,
        "xlsx" | "xlsm" | "xls" | "ods" => workbook_text(path)?,
        "pdf" => pdf_text(path)?,
        _ => return None,
    };
    Some(text.chars().take(MAX_TEXT_CHARS).collect())
}

/// UTF-8, or else GB18030 (what Chinese Windows writes as "ANSI" text).
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

/// Text of HTML without tags, scripts or styles.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let lower: String = after
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        let skip_to = if lower.starts_with("<script") {
            "</script>"
        } else if lower.starts_with("<style") {
            "</style>"
        } else {
            ">"
        };
        match after.to_ascii_lowercase().find(skip_to) {
            Some(end) => rest = &after[end + skip_to.len()..],
            None => rest = "",
        }
        // Tags end lines, so `<p>招标人：…</p>` stays a labelled line of its own.
        out.push('\n');
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The paragraphs of `word/document.xml`.
fn docx_text(path: &Path) -> Option<String> {
    use quick_xml::events::Event;
    let file = std::fs::File::open(path).ok()?;
    let mut archive = zip::ZipArchive::new(file).ok()?;
    let mut xml = Vec::new();
    archive
        .by_name("word/document.xml")
        .ok()?
        // A zip bomb inflates without bound; the XML of a real tender document stays well
        // below this.
        .take(256 << 20)
        .read_to_end(&mut xml)
        .ok()?;
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut out = String::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Text(text)) => out.push_str(&text),
            Ok(Event::GeneralRef(name)) => out.push_str(match name.as_ref() {
                "amp" => "&",
                "lt" => "<",
                "gt" => ">",
                "quot" => "\"",
                "apos" => "'",
                _ => "",
            }),
            Ok(Event::End(end)) if end.name().as_ref() == "w:p" => out.push('\n'),
            Ok(Event::Empty(tag)) if tag.name().as_ref() == "w:tab" => out.push('\t'),
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
        if out.len() > MAX_TEXT_CHARS * 4 {
            break;
        }
    }
    Some(out)
}

/// How long `pdftotext` may take over one file: a malformed PDF must not stall indexing.
const PDF_TIMEOUT: Duration = Duration::from_secs(30);

/// The text layer of a PDF through `pdftotext` (poppler-utils), page by page.
fn pdf_text(path: &Path) -> Option<String> {
    let mut child = match Command::new("pdftotext")
        .args(["-q", "-enc", "UTF-8"])
        .arg(path)
        .arg("-")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            tracing::warn!("PDF 文本无法提取：缺少 pdftotext (poppler-utils): {e}");
            return None;
        }
    };
    // Read on a thread so that a pdftotext stuck on a malformed file can be killed on time.
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = (&mut stdout)
            .take(MAX_TEXT_CHARS as u64 * 4)
            .read_to_end(&mut bytes);
        // The rest is drained, not left in the pipe, so pdftotext never blocks on a full pipe.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        bytes
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > PDF_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(path = %path.display(), "pdftotext took too long; PDF indexed by name only");
                return None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    };
    let bytes = reader.join().ok()?;
    if !status.success() {
        return None;
    }
    // Pages are separated by form feeds.
    Some(String::from_utf8_lossy(&bytes).replace('\u{c}', "\n"))
}

/// Every non-empty cell of every sheet, a row per line.
fn workbook_text(path: &Path) -> Option<String> {
    use calamine::Reader;
    let mut workbook = calamine::open_workbook_auto(path).ok()?;
    let mut out = String::new();
    for name in workbook.sheet_names() {
        let Ok(range) = workbook.worksheet_range(&name) else {
            continue;
        };
        out.push_str(&name);
        out.push('\n');
        for row in range.rows() {
            for cell in row {
                if !matches!(cell, calamine::Data::Empty) {
                    out.push_str(&cell.to_string());
                    out.push('\t');
                }
            }
            out.push('\n');
            if out.len() > MAX_TEXT_CHARS * 4 {
                return Some(out);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb18030_text_and_html_are_read() {
        let gbk = encoding_rs::GB18030.encode("招标人：兰考县交通运输局").0;
        assert_eq!(decode(&gbk), "招标人：兰考县交通运输局");
        assert_eq!(
            strip_tags("<h1>评标报告</h1><script>x()</script><p>推荐&amp;中标</p>")
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["评标报告", "推荐&中标"]
        );
    }

    #[test]
    fn docx_and_xlsx_text_is_extracted() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let docx = dir.path().join("招标文件.docx");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&docx).unwrap());
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(
            "<w:document><w:body><w:p><w:r><w:t>招标人：尉氏县水利局</w:t></w:r></w:p><w:p><w:r><w:t>A&amp;B</w:t></w:r></w:p></w:body></w:document>"
                .as_bytes(),
        )
        .unwrap();
        zip.finish().unwrap();
        assert_eq!(
            extract_text(&docx, "招标文件.docx").unwrap(),
            "招标人：尉氏县水利局\nA&B\n"
        );

        let xlsx = dir.path().join("开标记录表.xlsx");
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        sheet.write_string(0, 0, "投标人").unwrap();
        sheet
            .write_string(1, 0, "河南宏达建设工程有限公司")
            .unwrap();
        sheet.write_number(1, 1, 1234567.0).unwrap();
        workbook.save(&xlsx).unwrap();
        let text = extract_text(&xlsx, "开标记录表.xlsx").unwrap();
        assert!(text.contains("河南宏达建设工程有限公司\t1234567"), "{text}");
        // Not a PDF at all: no text, no error.
        assert_eq!(extract_text(&xlsx, "扫描件.pdf"), None);
    }

    #[test]
    fn pdf_text_layer_is_extracted() {
        // A real Chinese PDF (CID fonts, as office suites write them), printed by Chromium.
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("bid.html");
        std::fs::write(
            &html,
            "<meta charset=utf-8><p>评标报告 LKGC-2026-0318</p><p>推荐中标候选人：河南宏达建设工程有限公司</p>",
        )
        .unwrap();
        let pdf = dir.path().join("评标报告.pdf");
        let status = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
            ])
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(format!("file://{}", html.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("chromium (installed by scripts/setup-debian.sh)");
        assert!(status.success() && pdf.exists());
        let text = extract_text(&pdf, "评标报告.pdf").unwrap();
        assert!(text.contains("评标报告 LKGC-2026-0318"), "{text}");
        assert!(text.contains("河南宏达建设工程有限公司"), "{text}");
        // A truncated PDF yields no text rather than garbage or a hang.
        let bytes = std::fs::read(&pdf).unwrap();
        let cut = dir.path().join("cut.pdf");
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        let cut_text = extract_text(&cut, "cut.pdf").unwrap_or_default();
        assert!(!cut_text.contains("河南宏达"), "{cut_text}");
    }
}
