//! The clearing report (清标报告) as an .xlsx workbook and as printable HTML (print to PDF from
//! the browser). Amounts are written as text: they are decimals, and an Excel number cell is a
//! binary float.

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use witness_schemas::clearing::{ClearingResult, FindingKind};

use crate::err;
use crate::error::Result;

fn xlsx_error(e: XlsxError) -> crate::error::Error {
    err!(Internal, "生成清标报告 .xlsx 失败：{e}")
}

/// A table of the report, built once and written both into the workbook and into the HTML.
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows.collect(),
        }
    }

    /// Columns named here, then one (or more) per bidder.
    fn with_bidders(
        columns: &[&str],
        per_bidder: impl Fn(&str) -> Vec<String>,
        bidders: &[String],
        rows: impl Iterator<Item = Vec<String>>,
    ) -> Table {
        let mut all: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        all.extend(bidders.iter().flat_map(|b| per_bidder(b)));
        Table {
            columns: all,
            rows: rows.collect(),
        }
    }

    fn write(&self, sheet: &mut Worksheet, header: &Format) -> Result<(), XlsxError> {
        for (c, name) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, name, header)?;
            sheet.set_column_width(c as u16, 14)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                if !value.is_empty() {
                    sheet.write_string(r as u32 + 1, c as u16, value)?;
                }
            }
        }
        sheet.set_freeze_panes(1, 0)?;
        Ok(())
    }

    fn html(&self, out: &mut String) {
        out.push_str("<table><thead><tr>");
        for c in &self.columns {
            out.push_str(&format!("<th>{}</th>", escape(c)));
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            for v in row {
                out.push_str(&format!("<td>{}</td>", escape(v)));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
}

fn opt(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

fn price_comparison(result: &ClearingResult) -> Table {
    Table::new(
        &[
            "排名",
            "投标人",
            "投标报价",
            "修正后报价",
            "占控制价%",
            "有效",
        ],
        result.analyses.price_comparison.iter().map(|p| {
            vec![
                p.rank.to_string(),
                p.bidder.clone(),
                p.stated_total.clone(),
                p.corrected_total.clone(),
                p.percent_of_control.clone(),
                if p.valid {
                    "是"
                } else {
                    "否（超控制价）"
                }
                .to_string(),
            ]
        }),
    )
}

fn findings(result: &ClearingResult) -> Table {
    Table::new(
        &[
            "类别",
            "代码",
            "投标人",
            "单位工程",
            "项目编码",
            "项目名称",
            "应为",
            "实为",
            "依据",
            "位置",
            "修正字段",
            "修正前",
            "修正后",
            "总价影响",
            "修正后投标总价",
            "说明",
        ],
        result.findings.iter().map(|f| {
            let c = f.correction.as_ref();
            vec![
                f.kind.label_zh().to_string(),
                f.kind.as_str().to_string(),
                f.bidder.clone(),
                f.unit.clone(),
                f.item_code.clone(),
                f.item_name.clone(),
                f.expected.clone(),
                f.actual.clone(),
                f.rule.clone(),
                f.location.clone(),
                c.map(|c| c.field.clone()).unwrap_or_default(),
                c.map(|c| c.from.clone()).unwrap_or_default(),
                c.map(|c| c.to.clone()).unwrap_or_default(),
                c.map(|c| c.delta.clone()).unwrap_or_default(),
                c.map(|c| c.corrected_bid_total.clone()).unwrap_or_default(),
                c.map(|c| c.note.clone()).unwrap_or_default(),
            ]
        }),
    )
}

fn cost_composition(result: &ClearingResult) -> Table {
    Table::new(
        &[
            "投标人",
            "单位工程",
            "分部分项工程费",
            "措施项目费",
            "其中安全文明施工费",
            "其他项目费",
            "规费",
            "税金",
            "人工费",
            "材料费",
            "机械费",
            "管理费和利润",
        ],
        result.analyses.cost_composition.iter().map(|c| {
            vec![
                c.bidder.clone(),
                c.unit.clone(),
                c.items.clone(),
                c.measures.clone(),
                c.safety.clone(),
                c.others.clone(),
                c.regulatory_fees.clone(),
                c.tax.clone(),
                c.labor.clone(),
                c.material.clone(),
                c.machinery.clone(),
                c.overhead_profit.clone(),
            ]
        }),
    )
}

/// The report workbook as bytes.
pub fn xlsx(result: &ClearingResult, bidders: &[String]) -> Result<Vec<u8>> {
    build_xlsx(result, bidders).map_err(xlsx_error)
}

fn build_xlsx(result: &ClearingResult, bidders: &[String]) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    let header = Format::new().set_bold().set_background_color("#E3EFE9");
    let a = &result.analyses;
    let base = format!("基准（{}）", a.base);
    let one = |b: &str| vec![b.to_string()];
    let sheets = [
        ("投标报价对比", price_comparison(result)),
        ("问题清单", findings(result)),
        ("费用构成", cost_composition(result)),
        (
            "清单单价对比",
            Table::with_bidders(
                &[
                    "单位工程",
                    "项目编码",
                    "项目名称",
                    "计量单位",
                    "工程量",
                    "控制价综合单价",
                    &base,
                ],
                one,
                bidders,
                a.items.iter().map(|i| {
                    let mut row = vec![
                        i.unit.clone(),
                        i.code.clone(),
                        i.name.clone(),
                        i.item_unit.clone(),
                        i.quantity.clone(),
                        opt(&i.control_price),
                        opt(&i.base),
                    ];
                    row.extend(i.prices.iter().map(opt));
                    row
                }),
            ),
        ),
        (
            "措施项目对比",
            Table::with_bidders(
                &["单位工程", "措施项目", "控制价"],
                one,
                bidders,
                a.measures.iter().map(|m| {
                    let mut row = vec![m.unit.clone(), m.name.clone(), opt(&m.control)];
                    row.extend(m.amounts.iter().map(opt));
                    row
                }),
            ),
        ),
        (
            "主要材料价格",
            Table::with_bidders(
                &["材料名称", "单位", "参考价"],
                |b| vec![format!("{b} 单价"), format!("{b} 偏差%")],
                bidders,
                a.materials.iter().map(|m| {
                    let mut row = vec![m.name.clone(), m.material_unit.clone(), opt(&m.reference)];
                    for (p, d) in m.prices.iter().zip(&m.deviations) {
                        row.push(opt(p));
                        row.push(opt(d));
                    }
                    row
                }),
            ),
        ),
    ];
    for (name, table) in &sheets {
        let sheet = workbook.add_worksheet().set_name(*name)?;
        table.write(sheet, &header)?;
    }
    workbook.save_to_buffer()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A self-contained printable report: the price comparison, the findings by bidder and kind,
/// and the cost composition. The per-item comparison is only in the .xlsx (it can be 20,000
/// rows).
pub fn html(result: &ClearingResult, title: &str) -> String {
    let a = &result.analyses;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">");
    out.push_str(&format!("<title>{}</title>", escape(title)));
    out.push_str(
        "<style>body{font-family:\"Noto Sans CJK SC\",\"Microsoft YaHei\",sans-serif;margin:24px;color:#1f2523}\
         h1{font-size:20px;color:#1a4a3c}h2{font-size:16px;color:#1a4a3c;margin-top:24px}\
         table{border-collapse:collapse;width:100%;font-size:12px;margin:8px 0}\
         th,td{border:1px solid #c9d1cd;padding:3px 6px;text-align:left;vertical-align:top}\
         th{background:#e3efe9}@media print{h2{break-after:avoid}tr{break-inside:avoid}}</style></head><body>",
    );
    out.push_str(&format!("<h1>{}</h1>", escape(title)));
    out.push_str("<h2>一、投标报价对比</h2>");
    price_comparison(result).html(&mut out);
    out.push_str("<h2>二、问题清单</h2>");
    let mut bidders: Vec<&str> = result.findings.iter().map(|f| f.bidder.as_str()).collect();
    bidders.sort();
    bidders.dedup();
    for bidder in bidders {
        out.push_str(&format!("<h3>{}</h3>", escape(bidder)));
        for kind in FindingKind::ALL {
            let rows: Vec<_> = result
                .findings
                .iter()
                .filter(|f| f.bidder == bidder && f.kind == kind)
                .collect();
            if rows.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "<p><b>{}</b>（{}，{} 处）：{}</p>",
                escape(kind.label_zh()),
                kind.as_str(),
                rows.len(),
                escape(&rows[0].rule)
            ));
            Table::new(
                &[
                    "单位工程",
                    "项目编码",
                    "项目名称",
                    "应为",
                    "实为",
                    "位置",
                    "修正",
                ],
                rows.iter().map(|f| {
                    vec![
                        f.unit.clone(),
                        f.item_code.clone(),
                        f.item_name.clone(),
                        f.expected.clone(),
                        f.actual.clone(),
                        f.location.clone(),
                        f.correction.as_ref().map_or_else(String::new, |c| {
                            format!(
                                "{}：{} → {}（{}；修正后投标总价 {}）",
                                c.field, c.from, c.to, c.note, c.corrected_bid_total
                            )
                        }),
                    ]
                }),
            )
            .html(&mut out);
        }
    }
    out.push_str("<h2>三、费用构成</h2>");
    cost_composition(result).html(&mut out);
    out.push_str(&format!(
        "<p>单价对比基准：{}。清单逐项单价对比、措施项目与主要材料价格分析见同名 .xlsx 报告。</p></body></html>",
        escape(&a.base)
    ));
    out
}
