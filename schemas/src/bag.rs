//! The on-disc layout of an archive package: a BagIt bag (RFC 8493) with SHA-256 and SM3
//! manifests, a DA/T 48-style XML record and a Chinese README.
//!
//! Every disc of a set, and every hard-disk copy, is one complete bag that a standard validator
//! accepts on its own.

use std::fmt::Write as _;

/// `bagit.txt`, byte for byte as RFC 8493 §2.1.1 asks.
pub const BAGIT_TXT: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";

/// The digest algorithms of every manifest, in the order they are written.
pub const ALGORITHMS: [&str; 2] = ["sha256", "sm3"];

/// Name of the XML description (DA/T 48 style) at the top of every bag.
pub const RECORD_FILE: &str = "witness-record.xml";
/// Name of the Chinese README at the top of every bag.
pub const README_FILE: &str = "README.txt";
/// Name of the reassembly instructions for files split across discs.
pub const SPLIT_FILE: &str = "witness-split-files.txt";

#[derive(Debug, thiserror::Error)]
pub enum BagError {
    #[error("manifest line {line}: {problem}")]
    Manifest { line: usize, problem: String },
}

/// One line of a manifest: the digest of a file, by its path inside the bag (`data/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: String,
    pub digest: String,
}

/// Percent-encodes the three characters RFC 8493 §2.1.3 requires (CR, LF, `%`), and only those.
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`encode_path`].
pub fn decode_path(path: &str) -> String {
    path.replace("%0A", "\n")
        .replace("%0a", "\n")
        .replace("%0D", "\r")
        .replace("%0d", "\r")
        .replace("%25", "%")
}

/// Renders a manifest: one `digest path` line per file, sorted by path so that the same package
/// always gives the same bytes (and so the same tag-manifest digests after a crash and redo).
pub fn render_manifest(entries: &[ManifestEntry]) -> String {
    let mut sorted: Vec<&ManifestEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = String::new();
    for entry in sorted {
        let _ = writeln!(out, "{}  {}", entry.digest, encode_path(&entry.path));
    }
    out
}

/// Parses a manifest written by [`render_manifest`] or any other BagIt tool.
pub fn parse_manifest(text: &str) -> Result<Vec<ManifestEntry>, BagError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((digest, path)) = line.split_once(char::is_whitespace) else {
            return Err(BagError::Manifest {
                line: index + 1,
                problem: "expected a digest and a path".to_string(),
            });
        };
        if digest.is_empty() || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(BagError::Manifest {
                line: index + 1,
                problem: format!("digest {digest:?} is not hexadecimal"),
            });
        }
        entries.push(ManifestEntry {
            digest: digest.to_ascii_lowercase(),
            path: decode_path(path.trim_start()),
        });
    }
    Ok(entries)
}

/// `bag-info.txt`: ordered `Label: value` lines (RFC 8493 §2.2.2). Values are kept on one line.
#[derive(Debug, Clone, Default)]
pub struct BagInfo {
    fields: Vec<(String, String)>,
}

impl BagInfo {
    pub fn push(&mut self, label: &str, value: impl Into<String>) -> &mut Self {
        // A line break inside a value would start a new (bogus) label.
        let value = value.into().replace(['\r', '\n'], " ");
        self.fields.push((label.to_string(), value));
        self
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for (label, value) in &self.fields {
            let _ = writeln!(out, "{label}: {value}");
        }
        out
    }
}

/// Escapes text for XML element content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters even when escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A file of the package as the XML record describes it.
#[derive(Debug, Clone)]
pub struct RecordFile {
    /// Path inside `data/`.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub sm3: String,
    /// Discs of the set that hold the file (several for a split file).
    pub discs: Vec<u32>,
    /// `文档`, `视频`, `音频`, `其他`.
    pub kind_zh: String,
}

/// Everything the XML record and the README say about a package and one disc of it.
#[derive(Debug, Clone)]
pub struct PackageDescription {
    pub organization: String,
    pub project_number: String,
    pub project_name: String,
    pub category_zh: String,
    pub opening: String,
    pub package_id: String,
    pub created_at: String,
    pub files: Vec<RecordFile>,
    /// 1-based index of the disc being described, and the number of discs in the set;
    /// a hard-disk copy is disc 1 of 1.
    pub disc_index: u32,
    pub disc_count: u32,
    /// `光盘` or `硬盘`.
    pub medium_zh: String,
    /// Split files: original path, whole-file digests and the part paths, in order.
    pub splits: Vec<SplitFile>,
}

/// A file larger than one disc, cut into parts that are reassembled by concatenation.
#[derive(Debug, Clone)]
pub struct SplitFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub sm3: String,
    /// (part path inside `data/`, disc index) in order.
    pub parts: Vec<(String, u32)>,
}

/// Renders the DA/T 48 (《基于XML的电子文件封装规范》) style description of the package.
pub fn render_record(desc: &PackageDescription) -> String {
    let e = xml_escape;
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<电子文件封装包 xmlns=\"http://www.saac.gov.cn/standard/eep/2009\">\n");
    x.push_str("  <封装包格式描述>本封装包依据DA/T 48-2009《基于XML的电子文件封装规范》的结构生成，内容按BagIt (RFC 8493) 组织</封装包格式描述>\n");
    x.push_str("  <版本>2009</版本>\n");
    x.push_str("  <被签名对象 eep版本=\"2009\">\n");
    x.push_str("    <封装包类型>原始型</封装包类型>\n");
    x.push_str("    <封装包类型描述>本封装包包含交易项目的电子文件及其元数据，原始封装，未经修改</封装包类型描述>\n");
    let _ = writeln!(
        x,
        "    <封装包创建时间>{}</封装包创建时间>",
        e(&desc.created_at)
    );
    let _ = writeln!(
        x,
        "    <封装包创建单位>{}</封装包创建单位>",
        e(&desc.organization)
    );
    let _ = writeln!(x, "    <封装包标识>{}</封装包标识>", e(&desc.package_id));
    x.push_str("    <封装内容>\n");
    x.push_str("      <项目>\n");
    let _ = writeln!(
        x,
        "        <项目编号>{}</项目编号>",
        e(&desc.project_number)
    );
    let _ = writeln!(x, "        <项目名称>{}</项目名称>", e(&desc.project_name));
    let _ = writeln!(x, "        <项目类别>{}</项目类别>", e(&desc.category_zh));
    let _ = writeln!(x, "        <开标时间>{}</开标时间>", e(&desc.opening));
    x.push_str("      </项目>\n");
    let _ = writeln!(
        x,
        "      <载体 介质=\"{}\" 本盘序号=\"{}\" 总盘数=\"{}\"/>",
        e(&desc.medium_zh),
        desc.disc_index,
        desc.disc_count
    );
    let _ = writeln!(x, "      <文件数据 文件数=\"{}\">", desc.files.len());
    for file in &desc.files {
        let discs: Vec<String> = file.discs.iter().map(u32::to_string).collect();
        x.push_str("        <文件>\n");
        let _ = writeln!(x, "          <文件名>{}</文件名>", e(&file.path));
        let _ = writeln!(x, "          <文件类型>{}</文件类型>", e(&file.kind_zh));
        let _ = writeln!(
            x,
            "          <文件大小 单位=\"字节\">{}</文件大小>",
            file.size
        );
        let _ = writeln!(
            x,
            "          <数字摘要 算法=\"SHA-256\">{}</数字摘要>",
            file.sha256
        );
        let _ = writeln!(
            x,
            "          <数字摘要 算法=\"SM3\">{}</数字摘要>",
            file.sm3
        );
        let _ = writeln!(x, "          <所在光盘>{}</所在光盘>", discs.join(","));
        x.push_str("        </文件>\n");
    }
    x.push_str("      </文件数据>\n");
    x.push_str("    </封装内容>\n");
    x.push_str("  </被签名对象>\n");
    x.push_str("</电子文件封装包>\n");
    x
}

/// Renders the reassembly instructions for split files (a tag file of every disc of the set).
pub fn render_split_instructions(splits: &[SplitFile]) -> String {
    let mut out = String::new();
    out.push_str("# 跨盘分割文件的合并说明 (files split across discs, and how to join them)\n");
    out.push_str("# 将各分卷复制到同一目录后按顺序拼接，再核对整个文件的摘要：\n");
    out.push_str("#   cat 分卷1 分卷2 ... > 原文件 ; sha256sum 原文件\n\n");
    for split in splits {
        let _ = writeln!(out, "file: data/{}", encode_path(&split.path));
        let _ = writeln!(out, "size: {}", split.size);
        let _ = writeln!(out, "sha256: {}", split.sha256);
        let _ = writeln!(out, "sm3: {}", split.sm3);
        for (part, disc) in &split.parts {
            let _ = writeln!(out, "part: disc {disc} data/{}", encode_path(part));
        }
        out.push('\n');
    }
    out
}

/// Renders the Chinese README at the top of every disc: what it is, which disc of the set, and
/// how to verify it without Witness.
pub fn render_readme(desc: &PackageDescription) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "见证 · 公共资源交易档案包");
    let _ = writeln!(out, "==========================");
    let _ = writeln!(out);
    let _ = writeln!(out, "档案形成单位：{}", desc.organization);
    let _ = writeln!(out, "项目编号：{}", desc.project_number);
    let _ = writeln!(out, "项目名称：{}", desc.project_name);
    let _ = writeln!(out, "项目类别：{}", desc.category_zh);
    let _ = writeln!(out, "开标时间：{}", desc.opening);
    let _ = writeln!(out, "档案包标识：{}", desc.package_id);
    let _ = writeln!(out, "封装时间：{}", desc.created_at);
    let _ = writeln!(
        out,
        "载体：{}，本盘为第 {} 盘，共 {} 盘。",
        desc.medium_zh, desc.disc_index, desc.disc_count
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "本盘内容");
    let _ = writeln!(out, "--------");
    let _ = writeln!(
        out,
        "本盘是一个独立完整的 BagIt 包（RFC 8493）：data/ 目录下为本盘所载的项目文件；"
    );
    let _ = writeln!(
        out,
        "manifest-sha256.txt 与 manifest-sm3.txt 列出每个文件的 SHA-256 与 SM3（GB/T 32905）摘要；"
    );
    let _ = writeln!(out, "bag-info.txt 记录项目信息；{} 为 DA/T 48 风格的 XML 著录，列出整个项目的全部文件及其所在盘号。", RECORD_FILE);
    if !desc.splits.is_empty() {
        let _ = writeln!(
            out,
            "超过一张光盘容量的文件被分割为若干分卷（*.partNNN），合并方法与整文件摘要见 {SPLIT_FILE}。"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "如何校验");
    let _ = writeln!(out, "--------");
    let _ = writeln!(
        out,
        "1. 用任何 BagIt 校验工具，例如：bagit.py --validate <本盘挂载目录>"
    );
    let _ = writeln!(
        out,
        "2. 或在本盘根目录执行：sha256sum -c manifest-sha256.txt（Linux），全部显示“OK”即为完好。"
    );
    let _ = writeln!(
        out,
        "3. 国密校验：对每个文件计算 SM3（如 gmssl sm3 或 openssl dgst -sm3），与 manifest-sm3.txt 比对。"
    );
    if desc.files.iter().any(|f| f.path.contains('%')) {
        // bagit-python up to 1.9 does not decode the %25 that RFC 8493 §2.1.3 requires.
        let _ = writeln!(
            out,
            "注意：部分文件名含“%”，按 RFC 8493 在清单中写作“%25”。bagit-python 1.9 及更早版本不解码此写法，\n会误报这些文件缺失；请改用第 2、3 种方法或其他符合 RFC 8493 的工具校验这些文件。"
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Witness archive package: project {} — disc {} of {}. A BagIt bag; validate with `bagit.py --validate`.",
        desc.project_number, desc.disc_index, desc.disc_count
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_paths_with_percent_and_newlines() {
        let entries = vec![
            ManifestEntry {
                path: "data/b 第2册.txt".into(),
                digest: "ab".into(),
            },
            ManifestEntry {
                path: "data/a%20\nb.txt".into(),
                digest: "cd".into(),
            },
        ];
        let text = render_manifest(&entries);
        assert_eq!(text, "cd  data/a%2520%0Ab.txt\nab  data/b 第2册.txt\n");
        let parsed = parse_manifest(&text).unwrap();
        assert_eq!(parsed[0].path, "data/a%20\nb.txt");
        assert_eq!(parsed[1].path, "data/b 第2册.txt");
    }

    #[test]
    fn manifest_with_a_bad_digest_names_the_line() {
        let err = parse_manifest("ab  data/x\nzz data/y\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest line 2: digest \"zz\" is not hexadecimal"
        );
    }

    #[test]
    fn bag_info_keeps_values_on_one_line() {
        let mut info = BagInfo::default();
        info.push("Source-Organization", "兰考县\n公共资源交易中心");
        assert_eq!(
            info.render(),
            "Source-Organization: 兰考县 公共资源交易中心\n"
        );
    }

    #[test]
    fn xml_escape_handles_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{FFFD}"
        );
    }
}
