//! Import of GB 50500-2013 pricing workbooks (.xlsx) into [`Bill`]s.
//!
//! Sheets are matched by name (the table title, e.g. `分部分项工程和单价措施项目清单与计价表`,
//! possibly with a prefix or suffix naming the unit project); columns by their header text
//! anywhere in the first rows, so one- and two-row headers both work. Every error names the
//! sheet, row and column, because the person fixing it has the workbook open in Excel.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use calamine::{Data, Dimensions, Range, Reader, Xlsx};
use witness_schemas::clearing::{
    Bill, BoqItem, FeeLine, FeeTable, ItemTable, MaterialLine, Num, Origin, Subtotal,
    UnitPriceAnalysis, UnitProject,
};

use crate::error::Result;
use crate::{bail, err};

/// Workbooks larger than this are refused before parsing: calamine holds a whole sheet in
/// memory, and a bill of this size is far beyond any county tender (20,000 items ≈ 2 MB).
pub const MAX_WORKBOOK_BYTES: u64 = 100 * 1024 * 1024;

/// Headers are looked for in this many rows at the top of a sheet (title, 工程名称, two header rows).
const HEADER_SCAN_ROWS: usize = 12;

/// Amounts beyond 一千亿 are refused: no county bill has them, and the bound keeps every product
/// and sum of the checks inside `Decimal`'s range, so arithmetic can never overflow.
pub fn max_magnitude() -> rust_decimal::Decimal {
    rust_decimal::Decimal::from(100_000_000_000i64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TableKind {
    Items,
    Analysis,
    LumpMeasures,
    Others,
    Fees,
    Summary,
}

impl TableKind {
    const ALL: [TableKind; 6] = [
        TableKind::Items,
        TableKind::Analysis,
        TableKind::LumpMeasures,
        TableKind::Others,
        TableKind::Fees,
        TableKind::Summary,
    ];

    /// Sheet-name markers (any one matches).
    fn titles(self) -> &'static [&'static str] {
        match self {
            TableKind::Items => &["分部分项工程和单价措施项目清单与计价表"],
            TableKind::Analysis => &["综合单价分析表"],
            TableKind::LumpMeasures => &["总价措施项目清单与计价表"],
            TableKind::Others => &["其他项目清单与计价汇总表"],
            TableKind::Fees => &["规费、税金项目计价表", "规费税金项目计价表"],
            TableKind::Summary => &[
                "单位工程投标报价汇总表",
                "单位工程招标控制价汇总表",
                "单位工程最高投标限价汇总表",
            ],
        }
    }

    /// Column names (the field name first, then accepted spellings after normalising) and
    /// whether the column is required.
    fn columns(self) -> &'static [(&'static str, &'static [&'static str], bool)] {
        match self {
            TableKind::Items => &[
                ("序号", &["序号"], false),
                ("项目编码", &["项目编码"], true),
                ("项目名称", &["项目名称"], true),
                ("项目特征描述", &["项目特征描述", "项目特征"], false),
                ("计量单位", &["计量单位", "单位"], true),
                ("工程量", &["工程量", "工程数量"], true),
                ("综合单价", &["综合单价"], true),
                ("合价", &["合价"], true),
                ("其中暂估价", &["暂估价"], false),
            ],
            TableKind::Analysis => &[
                ("项目编码", &["项目编码"], true),
                ("项目名称", &["项目名称"], false),
                ("人工费", &["人工费"], true),
                ("材料费", &["材料费"], true),
                ("机械费", &["机械费", "施工机具使用费"], true),
                ("管理费和利润", &["管理费和利润"], true),
                ("综合单价", &["综合单价"], false),
                (
                    "材料名称",
                    &["材料名称", "主要材料名称、规格、型号", "主要材料名称"],
                    false,
                ),
                ("材料单位", &["材料单位"], false),
                ("材料数量", &["材料数量"], false),
                ("材料单价", &["材料单价"], false),
                ("材料合价", &["材料合价"], false),
            ],
            TableKind::LumpMeasures => &[
                ("序号", &["序号"], false),
                ("项目编码", &["项目编码"], false),
                ("项目名称", &["项目名称"], true),
                ("计算基础", &["计算基础"], false),
                ("计算基数", &["计算基数"], false),
                ("费率", &["费率", "计算费率"], false),
                ("金额", &["金额"], true),
            ],
            TableKind::Others => &[
                ("序号", &["序号"], false),
                ("项目名称", &["项目名称"], true),
                ("金额", &["金额"], true),
            ],
            TableKind::Fees => &[
                ("序号", &["序号"], false),
                ("项目名称", &["项目名称"], true),
                ("计算基础", &["计算基础"], false),
                ("计算基数", &["计算基数"], false),
                ("费率", &["计算费率", "费率"], false),
                ("金额", &["金额"], true),
            ],
            TableKind::Summary => &[
                ("序号", &["序号"], false),
                ("项目名称", &["汇总内容", "项目名称"], true),
                ("金额", &["金额"], true),
            ],
        }
    }

    fn required(self) -> bool {
        matches!(self, TableKind::Items | TableKind::Summary)
    }

    fn match_sheet(sheet: &str) -> Option<(TableKind, &'static str)> {
        TableKind::ALL.into_iter().find_map(|kind| {
            kind.titles()
                .iter()
                .find(|title| sheet.contains(*title))
                .map(|title| (kind, *title))
        })
    }
}

/// Normalises header text: blanks removed, full-width punctuation made ASCII, units and the
/// 其中 prefix dropped, so `金额（元）`, `计算费率(%)` and `其中：暂估价` match their field names.
fn normalize_header(text: &str) -> String {
    let mut s: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '：' => ':',
            '％' => '%',
            c => c,
        })
        .collect();
    for suffix in ["(元)", "(%)", "%", "(元/m)"] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            s = stripped.to_string();
        }
    }
    for prefix in ["其中:", "其中"] {
        if let Some(stripped) = s.strip_prefix(prefix) {
            s = stripped.to_string();
        }
    }
    s
}

/// Excel column letters of a 0-based column index (0 → A, 26 → AA).
pub fn column_letters(mut col: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (col % 26) as u8);
        if col < 26 {
            break;
        }
        col = col / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// One sheet with its column map, ready to read cells with good error messages.
struct Sheet<'a> {
    name: &'a str,
    range: &'a Range<Data>,
    /// Absolute row and column of the range's first cell.
    start: (u32, u32),
    /// Field name → absolute column.
    columns: HashMap<&'static str, u32>,
    /// Absolute row of the first data row.
    first_data_row: u32,
    unit_name: Option<String>,
}

impl<'a> Sheet<'a> {
    fn open(name: &'a str, range: &'a Range<Data>, kind: TableKind) -> Result<Sheet<'a>> {
        let start = range.start().unwrap_or((0, 0));
        let mut columns: HashMap<&'static str, u32> = HashMap::new();
        let mut header_end = None;
        let mut unit_name = None;
        for (i, row) in range.rows().take(HEADER_SCAN_ROWS).enumerate() {
            for (j, cell) in row.iter().enumerate() {
                let Data::String(text) = cell else { continue };
                if unit_name.is_none() {
                    unit_name = project_name_in(text);
                }
                let header = normalize_header(text);
                for (field, aliases, _) in kind.columns() {
                    if !columns.contains_key(field) && aliases.iter().any(|a| *a == header) {
                        columns.insert(field, start.1 + j as u32);
                        header_end = Some(start.0 + i as u32);
                        break;
                    }
                }
            }
        }
        let missing: Vec<&str> = kind
            .columns()
            .iter()
            .filter(|(field, _, required)| *required && !columns.contains_key(field))
            .map(|(field, _, _)| *field)
            .collect();
        if !missing.is_empty() {
            bail!(
                InvalidArgument,
                "工作表「{name}」前 {HEADER_SCAN_ROWS} 行中找不到列「{}」（列名被改动或缺少表头）",
                missing.join("」「")
            );
        }
        Ok(Sheet {
            name,
            range,
            start,
            columns,
            first_data_row: header_end.map_or(start.0, |r| r + 1),
            unit_name,
        })
    }

    fn cell(&self, row: u32, field: &str) -> Option<&Data> {
        let col = *self.columns.get(field)?;
        self.range
            .get_value((row, col))
            .filter(|d| !matches!(d, Data::Empty))
    }

    fn where_(&self, row: u32, field: &str) -> String {
        match self.columns.get(field) {
            Some(col) => format!(
                "工作表「{}」第 {} 行 {} 列（{field}）",
                self.name,
                row + 1,
                column_letters(*col)
            ),
            None => format!("工作表「{}」第 {} 行", self.name, row + 1),
        }
    }

    fn origin(&self, row: u32) -> Origin {
        Origin {
            sheet: self.name.to_string(),
            row: Some(row + 1),
        }
    }

    fn text(&self, row: u32, field: &str) -> Result<String> {
        Ok(match self.cell(row, field) {
            None => String::new(),
            Some(Data::String(s)) => s.trim().to_string(),
            Some(Data::Int(i)) => i.to_string(),
            Some(Data::Float(f)) => float_text(*f),
            Some(Data::Bool(b)) => b.to_string(),
            Some(other) => bail!(
                InvalidArgument,
                "{}：不能识别的单元格内容 {other:?}",
                self.where_(row, field)
            ),
        })
    }

    /// A number cell: numbers, or text that reads as a decimal (many exports store text);
    /// empty, "—" and "/" mean no value.
    fn num(&self, row: u32, field: &str) -> Result<Option<Num>> {
        let num = match self.cell(row, field) {
            None => return Ok(None),
            Some(Data::Int(i)) => Num::parse(&i.to_string()),
            Some(Data::Float(f)) => Num::parse(&float_text(*f)),
            Some(Data::String(s)) => {
                let t = s.trim();
                if t.is_empty() || ["—", "-", "/", "——", "－"].contains(&t) {
                    return Ok(None);
                }
                match Num::parse(t) {
                    Some(n) => Some(n),
                    None => bail!(
                        InvalidArgument,
                        "{}：「{t}」不是数字（数字单元格中有文字）",
                        self.where_(row, field)
                    ),
                }
            }
            Some(other) => bail!(
                InvalidArgument,
                "{}：{other} 不是数字",
                self.where_(row, field)
            ),
        };
        let Some(num) = num else {
            bail!(
                InvalidArgument,
                "{}：不是有效的十进制数",
                self.where_(row, field)
            )
        };
        if num.value.abs() > max_magnitude() {
            bail!(
                InvalidArgument,
                "{}：数值 {} 超出允许范围（绝对值不超过 1000 亿）",
                self.where_(row, field),
                num.raw
            );
        }
        Ok(Some(num))
    }

    fn data_rows(&self) -> std::ops::Range<u32> {
        let end = self.range.end().map_or(0, |(r, _)| r + 1);
        self.first_data_row..end.max(self.first_data_row)
    }

    fn row_is_empty(&self, row: u32) -> bool {
        let width = self.range.width() as u32;
        (0..width).all(|j| {
            matches!(
                self.range.get_value((row, self.start.1 + j)),
                None | Some(Data::Empty)
            ) || matches!(self.range.get_value((row, self.start.1 + j)), Some(Data::String(s)) if s.trim().is_empty())
        })
    }

    /// Merged cells below the header hide values from every row but the first; they are
    /// refused, except a heading merged across columns on a row without a number.
    fn check_merges(&self, merges: &[Dimensions], kind: TableKind) -> Result<()> {
        for merge in merges {
            if merge.end.0 < self.first_data_row {
                continue;
            }
            let numeric_fields: Vec<&str> = kind
                .columns()
                .iter()
                .map(|(f, _, _)| *f)
                .filter(|f| {
                    matches!(
                        *f,
                        "工程量" | "综合单价" | "合价" | "金额" | "人工费" | "材料费" | "机械费"
                    )
                })
                .collect();
            let covers_number = numeric_fields.iter().any(|f| {
                self.columns
                    .get(f)
                    .is_some_and(|c| (merge.start.1..=merge.end.1).contains(c))
            });
            if merge.start.0 != merge.end.0 || covers_number {
                bail!(
                    InvalidArgument,
                    "工作表「{}」单元格 {}{}:{}{} 是合并单元格：数据区不允许合并单元格，请取消合并并在每一行填写",
                    self.name,
                    column_letters(merge.start.1),
                    merge.start.0 + 1,
                    column_letters(merge.end.1),
                    merge.end.0 + 1
                );
            }
        }
        Ok(())
    }
}

/// The text Excel shows for a number cell: shortest round-trip decimal, never an exponent.
fn float_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// `工程名称：某某小学教学楼-土建  标段：` → `某某小学教学楼-土建`.
fn project_name_in(text: &str) -> Option<String> {
    let t = text.trim();
    let rest = t.strip_prefix("工程名称")?;
    let rest = rest.trim_start_matches([':', '：', ' ']);
    let name = rest.split("标段").next().unwrap_or("").trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Item codes typed as numbers lose their leading zero (010101001001 → 10101001001); GB codes
/// are 12 digits (9 for the national part), so short numeric codes are padded back.
fn normalize_code(text: &str) -> String {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if t.chars().all(|c| c.is_ascii_digit()) && (9..12).contains(&t.len()) && t.len() != 9 {
        format!("{t:0>12}")
    } else {
        t
    }
}

/// Reads one workbook file (.xlsx, or a [`Bill`] as .json) as the bill of `bidder`.
pub fn read_bill(path: &Path, bidder: &str) -> Result<Bill> {
    let meta = std::fs::metadata(path)
        .map_err(|e| crate::error::io_error(format!("读取 {}", path.display()), e))?;
    if meta.len() > MAX_WORKBOOK_BYTES {
        bail!(
            InvalidArgument,
            "{}：文件 {} 字节，超过清标允许的 {} 字节",
            path.display(),
            meta.len(),
            MAX_WORKBOOK_BYTES
        );
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bill = match ext.as_str() {
        "json" => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| crate::error::io_error(format!("读取 {}", path.display()), e))?;
            let mut bill: Bill = serde_json::from_str(&text).map_err(|e| {
                err!(
                    InvalidArgument,
                    "{}：不是有效的清单 JSON：{e}",
                    path.display()
                )
            })?;
            if bill.bidder.is_empty() {
                bill.bidder = bidder.to_string();
            }
            bill
        }
        "xlsx" | "xlsm" => {
            let bytes = std::fs::read(path)
                .map_err(|e| crate::error::io_error(format!("读取 {}", path.display()), e))?;
            read_xlsx(&bytes, bidder).map_err(|e| e.context(path.display()))?
        }
        "xls" | "et" => bail!(
            InvalidArgument,
            "{}：旧版 .xls 格式暂不支持 (not supported yet)，请另存为 .xlsx",
            path.display()
        ),
        _ => bail!(
            InvalidArgument,
            "{}：清标只接受 .xlsx 或 .json 文件",
            path.display()
        ),
    };
    super::validate(&bill).map_err(|e| e.context(path.display()))?;
    Ok(bill)
}

/// Parses an .xlsx workbook held in memory.
pub fn read_xlsx(bytes: &[u8], bidder: &str) -> Result<Bill> {
    // calamine is robust, but a hostile zip must never take the daemon down with it.
    let outcome = std::panic::catch_unwind(|| read_xlsx_inner(bytes, bidder));
    match outcome {
        Ok(result) => result,
        Err(_) => Err(err!(
            InvalidArgument,
            "工作簿已损坏，无法解析（读取器异常终止）"
        )),
    }
}

fn read_xlsx_inner(bytes: &[u8], bidder: &str) -> Result<Bill> {
    let mut workbook = Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| err!(InvalidArgument, "不是有效的 .xlsx 工作簿：{e}"))?;
    let sheet_names = workbook.sheet_names().to_vec();
    // Unit key → tables, in the order units first appear.
    let mut units: Vec<(String, UnitProject)> = Vec::new();
    let mut found: BTreeMap<TableKind, usize> = BTreeMap::new();
    for sheet_name in &sheet_names {
        let Some((kind, title)) = TableKind::match_sheet(sheet_name) else {
            continue;
        };
        let range = workbook
            .worksheet_range(sheet_name)
            .map_err(|e| err!(InvalidArgument, "工作表「{sheet_name}」无法读取：{e}"))?;
        let merges = workbook
            .merge_cells_by_sheet_name(sheet_name)
            .map_err(|e| {
                err!(
                    InvalidArgument,
                    "工作表「{sheet_name}」合并单元格无法读取：{e}"
                )
            })?;
        let sheet = Sheet::open(sheet_name, &range, kind)?;
        sheet.check_merges(&merges, kind)?;
        let key = sheet.unit_name.clone().unwrap_or_else(|| {
            let rest = sheet_name
                .replace(title, "")
                .trim_matches(|c: char| "-_ ()（）·.".contains(c) || c.is_ascii_digit())
                .to_string();
            if rest.is_empty() {
                "单位工程".to_string()
            } else {
                rest
            }
        });
        let index = match units.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                units.push((
                    key.clone(),
                    UnitProject {
                        name: key.clone(),
                        ..UnitProject::default()
                    },
                ));
                units.len() - 1
            }
        };
        *found.entry(kind).or_default() += 1;
        let unit = &mut units[index].1;
        match kind {
            TableKind::Items => read_items(&sheet, &mut unit.items)?,
            TableKind::Analysis => read_analyses(&sheet, &mut unit.analyses)?,
            TableKind::LumpMeasures => read_fees(&sheet, &mut unit.lump_measures, true)?,
            TableKind::Others => read_fees(&sheet, &mut unit.others, false)?,
            TableKind::Fees => read_fees(&sheet, &mut unit.fees, false)?,
            TableKind::Summary => read_fees(&sheet, &mut unit.summary, false)?,
        }
    }
    for kind in TableKind::ALL {
        if kind.required() && !found.contains_key(&kind) {
            bail!(
                InvalidArgument,
                "缺少工作表「{}」（工作表按名称识别；现有工作表：{}）",
                kind.titles()[0],
                sheet_names.join("、")
            );
        }
    }
    Ok(Bill {
        bidder: bidder.to_string(),
        units: units.into_iter().map(|(_, u)| u).collect(),
    })
}

fn read_items(sheet: &Sheet, table: &mut ItemTable) -> Result<()> {
    if table.origin.sheet.is_empty() {
        table.origin = Origin {
            sheet: sheet.name.to_string(),
            row: None,
        };
    }
    let mut seen: HashMap<String, u32> = table
        .items
        .iter()
        .map(|i| (i.code.clone(), i.origin.row.unwrap_or(0)))
        .collect();
    let mut measure = false;
    let mut section_start = table.items.len();
    for row in sheet.data_rows() {
        if sheet.row_is_empty(row) {
            continue;
        }
        let code = normalize_code(&sheet.text(row, "项目编码")?);
        let name = sheet.text(row, "项目名称")?;
        let seq = sheet.text(row, "序号")?;
        if code.is_empty() {
            let label = if name.is_empty() {
                seq.clone()
            } else {
                name.clone()
            };
            if label.contains("合计") {
                table.stated_total = sheet.num(row, "合价")?;
            } else if label.contains("小计") {
                if let Some(amount) = sheet.num(row, "合价")? {
                    table.subtotals.push(Subtotal {
                        name: label,
                        amount,
                        first_item: section_start,
                        end_item: table.items.len(),
                        origin: sheet.origin(row),
                    });
                }
                section_start = table.items.len();
            } else if sheet.num(row, "工程量")?.is_some() || sheet.num(row, "综合单价")?.is_some()
            {
                bail!(
                    InvalidArgument,
                    "{}：有工程量或单价但缺少项目编码",
                    sheet.where_(row, "项目编码")
                );
            } else {
                // A section heading (分部): later items belong to it.
                measure = label.contains("措施");
                section_start = table.items.len();
            }
            continue;
        }
        if let Some(first) = seen.insert(code.clone(), row + 1) {
            bail!(
                InvalidArgument,
                "{}：项目编码 {code} 重复（第 {first} 行已有）",
                sheet.where_(row, "项目编码")
            );
        }
        let Some(quantity) = sheet.num(row, "工程量")? else {
            bail!(
                InvalidArgument,
                "{}：项目 {code} 缺少工程量",
                sheet.where_(row, "工程量")
            );
        };
        table.items.push(BoqItem {
            seq,
            measure: measure || code.starts_with("0117"),
            name,
            features: sheet.text(row, "项目特征描述")?,
            unit: sheet.text(row, "计量单位")?,
            quantity,
            unit_price: sheet.num(row, "综合单价")?,
            total: sheet.num(row, "合价")?,
            provisional: sheet.num(row, "其中暂估价")?,
            origin: sheet.origin(row),
            code,
        });
    }
    Ok(())
}

fn read_analyses(sheet: &Sheet, analyses: &mut Vec<UnitPriceAnalysis>) -> Result<()> {
    for row in sheet.data_rows() {
        if sheet.row_is_empty(row) {
            continue;
        }
        let code = normalize_code(&sheet.text(row, "项目编码")?);
        if !code.is_empty() {
            let need = |field: &str| -> Result<Num> {
                sheet
                    .num(row, field)?
                    .ok_or_else(|| err!(InvalidArgument, "{}：缺少数值", sheet.where_(row, field)))
            };
            analyses.push(UnitPriceAnalysis {
                name: sheet.text(row, "项目名称")?,
                labor: need("人工费")?,
                material: need("材料费")?,
                machinery: need("机械费")?,
                overhead_profit: need("管理费和利润")?,
                unit_price: sheet.num(row, "综合单价")?,
                materials: Vec::new(),
                origin: sheet.origin(row),
                code,
            });
            continue;
        }
        let material = sheet.text(row, "材料名称")?;
        if material.is_empty() {
            continue;
        }
        let Some(current) = analyses.last_mut() else {
            bail!(
                InvalidArgument,
                "{}：材料行「{material}」前没有项目编码行",
                sheet.where_(row, "材料名称")
            );
        };
        let Some(unit_price) = sheet.num(row, "材料单价")? else {
            bail!(
                InvalidArgument,
                "{}：材料「{material}」缺少单价",
                sheet.where_(row, "材料单价")
            );
        };
        current.materials.push(MaterialLine {
            name: material,
            unit: sheet.text(row, "材料单位")?,
            quantity: sheet.num(row, "材料数量")?,
            unit_price,
            total: sheet.num(row, "材料合价")?,
            origin: sheet.origin(row),
        });
    }
    Ok(())
}

fn read_fees(sheet: &Sheet, table: &mut FeeTable, has_code: bool) -> Result<()> {
    if table.origin.sheet.is_empty() {
        table.origin = Origin {
            sheet: sheet.name.to_string(),
            row: None,
        };
    }
    for row in sheet.data_rows() {
        if sheet.row_is_empty(row) {
            continue;
        }
        let seq = sheet.text(row, "序号")?;
        let name = sheet.text(row, "项目名称")?;
        let label = if name.is_empty() {
            seq.clone()
        } else {
            name.clone()
        };
        if label.is_empty() {
            continue;
        }
        if label.contains("合计") && !label.contains("其中") {
            table.stated_total = sheet.num(row, "金额")?;
            continue;
        }
        table.lines.push(FeeLine {
            seq,
            code: if has_code {
                normalize_code(&sheet.text(row, "项目编码")?)
            } else {
                String::new()
            },
            name,
            basis: sheet.text(row, "计算基础")?,
            base: sheet.num(row, "计算基数")?,
            rate: sheet.num(row, "费率")?,
            amount: sheet.num(row, "金额")?,
            origin: sheet.origin(row),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_normalise() {
        assert_eq!(normalize_header("金额（元）"), "金额");
        assert_eq!(normalize_header("计算费率(%)"), "计算费率");
        assert_eq!(normalize_header("其中：暂估价"), "暂估价");
        assert_eq!(normalize_header(" 项目\n编码 "), "项目编码");
    }

    #[test]
    fn column_letters_match_excel() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }

    #[test]
    fn numeric_codes_get_their_zero_back() {
        assert_eq!(normalize_code("10101001001"), "010101001001");
        assert_eq!(normalize_code("010101001001"), "010101001001");
        assert_eq!(normalize_code("B-1"), "B-1");
    }
}
