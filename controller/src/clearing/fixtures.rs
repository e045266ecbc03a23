//! Generated tenders and bids for the tests and the benchmark: consistent bills (every product
//! and sum holds) and the GB 50500-2013 workbook layout written with rust_xlsxwriter, so no
//! binary fixture has to be committed.

use rust_decimal::Decimal;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use witness_schemas::clearing::{
    Bill, BoqItem, FeeLine, FeeTable, ItemTable, MaterialLine, Num, Origin, Subtotal,
    UnitPriceAnalysis, UnitProject,
};

use super::round2;

fn num(value: Decimal) -> Num {
    Num::from_decimal(value)
}

fn money_num(value: Decimal) -> Num {
    Num::parse(&super::money(value)).unwrap_or_else(|| num(value))
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap_or_default()
}

fn item(code: &str, name: &str, unit: &str, quantity: &str, price: &str, measure: bool) -> BoqItem {
    BoqItem {
        seq: String::new(),
        code: code.to_string(),
        name: name.to_string(),
        features: format!("{name}，详见设计图纸"),
        unit: unit.to_string(),
        quantity: num(dec(quantity)),
        unit_price: Some(num(dec(price))),
        total: None,
        provisional: None,
        measure,
        origin: Origin::default(),
    }
}

fn fee(seq: &str, code: &str, name: &str, basis: &str, rate: Option<&str>) -> FeeLine {
    FeeLine {
        seq: seq.to_string(),
        code: code.to_string(),
        name: name.to_string(),
        basis: basis.to_string(),
        base: None,
        rate: rate.map(|r| num(dec(r))),
        amount: None,
        origin: Origin::default(),
    }
}

/// A unit project with the given items; sections of `section_len` items each end with a 小计.
fn unit(name: &str, items: Vec<BoqItem>, section_len: usize) -> UnitProject {
    let mut table = ItemTable {
        items,
        ..ItemTable::default()
    };
    let n_regular = table.items.iter().filter(|i| !i.measure).count();
    let mut start = 0;
    while start < n_regular {
        let end = (start + section_len).min(n_regular);
        table.subtotals.push(Subtotal {
            name: "小计".to_string(),
            amount: num(Decimal::ZERO),
            first_item: start,
            end_item: end,
            origin: Origin::default(),
        });
        start = end;
    }
    if n_regular < table.items.len() {
        table.subtotals.push(Subtotal {
            name: "小计".to_string(),
            amount: num(Decimal::ZERO),
            first_item: n_regular,
            end_item: table.items.len(),
            origin: Origin::default(),
        });
    }
    for (i, item) in table.items.iter_mut().enumerate() {
        item.seq = (i + 1).to_string();
    }
    let analyses = table
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| UnitPriceAnalysis {
            code: item.code.clone(),
            name: item.name.clone(),
            labor: num(Decimal::ZERO),
            material: num(Decimal::ZERO),
            machinery: num(Decimal::ZERO),
            overhead_profit: num(Decimal::ZERO),
            unit_price: None,
            materials: vec![MaterialLine {
                name: MATERIALS[i % MATERIALS.len()].0.to_string(),
                unit: MATERIALS[i % MATERIALS.len()].1.to_string(),
                quantity: Some(num(dec("0.1"))),
                unit_price: num(dec(MATERIALS[i % MATERIALS.len()].2)),
                total: None,
                origin: Origin::default(),
            }],
            origin: Origin::default(),
        })
        .collect();
    UnitProject {
        name: name.to_string(),
        items: table,
        analyses,
        lump_measures: FeeTable {
            lines: vec![
                fee(
                    "1",
                    "011707001001",
                    "安全文明施工费",
                    "分部分项工程费",
                    Some("3.5"),
                ),
                fee(
                    "2",
                    "011707002001",
                    "夜间施工增加费",
                    "分部分项工程费",
                    Some("0.5"),
                ),
            ],
            ..FeeTable::default()
        },
        others: FeeTable {
            lines: vec![
                FeeLine {
                    amount: Some(num(dec("10000.00"))),
                    ..fee("1", "", "暂列金额", "", None)
                },
                fee("2", "", "暂估价", "", None),
                fee("2.1", "", "材料（工程设备）暂估价", "", None),
                FeeLine {
                    amount: Some(num(dec("5000.00"))),
                    ..fee("2.2", "", "专业工程暂估价", "", None)
                },
                FeeLine {
                    amount: Some(num(dec("500.00"))),
                    ..fee("3", "", "计日工", "", None)
                },
                FeeLine {
                    amount: Some(num(dec("200.00"))),
                    ..fee("4", "", "总承包服务费", "", None)
                },
            ],
            ..FeeTable::default()
        },
        fees: FeeTable {
            lines: vec![
                fee("1", "", "规费", "", None),
                fee("1.1", "", "社会保险费", "分部分项工程费", Some("2.5")),
                fee("1.2", "", "住房公积金", "分部分项工程费", Some("1.0")),
                fee(
                    "2",
                    "",
                    "税金",
                    "分部分项工程费+措施项目费+其他项目费+规费",
                    Some("9"),
                ),
            ],
            ..FeeTable::default()
        },
        summary: FeeTable {
            lines: [
                ("1", "分部分项工程"),
                ("2", "措施项目"),
                ("2.1", "其中：安全文明施工费"),
                ("3", "其他项目"),
                ("3.1", "其中：暂列金额"),
                ("4", "规费"),
                ("5", "税金"),
            ]
            .iter()
            .map(|(seq, name)| fee(seq, "", name, "", None))
            .collect(),
            ..FeeTable::default()
        },
    }
}

/// Main materials named in the analyses (name, unit, tender price).
const MATERIALS: [(&str, &str, &str); 4] = [
    ("C30商品混凝土", "m3", "520.00"),
    ("HRB400钢筋 Φ12", "t", "4200.00"),
    ("标准砖 240×115×53", "千块", "480.00"),
    ("M7.5水泥砂浆", "m3", "310.00"),
];

/// The small tender of the data-driven tests: one unit project, six items, two sections and
/// the unit-price measures.
pub fn small_tender() -> Bill {
    let items = vec![
        item("010101001001", "平整场地", "m2", "1000", "2.50", false),
        item("010101002001", "挖一般土方", "m3", "350.5", "28.60", false),
        item("010401001001", "砖基础", "m3", "48.2", "480.00", false),
        item("010502001001", "矩形柱", "m3", "36.75", "620.30", false),
        item("011701001001", "综合脚手架", "m2", "1200", "18.00", true),
        item("011702001001", "基础模板", "m2", "260", "45.50", true),
    ];
    let mut bill = Bill {
        bidder: "招标控制价".to_string(),
        units: vec![unit("某小学教学楼-土建", items, 2)],
    };
    recompute(&mut bill);
    bill
}

/// A tender of `n_items` items per unit project (5 % of them unit-price measures).
pub fn tender(n_units: usize, n_items: usize) -> Bill {
    let units = (0..n_units)
        .map(|u| {
            let n_measures = (n_items / 20).max(1).min(n_items);
            let items = (0..n_items)
                .map(|i| {
                    let measure = i >= n_items - n_measures;
                    let code = if measure {
                        format!("0117{:05}{:03}", 1001 + i / 999, i % 999 + 1)
                    } else {
                        format!("01{:07}{:03}", 101001 + i / 999, i % 999 + 1)
                    };
                    let quantity = Decimal::new(((i * 7919 + u * 31) % 100_000 + 100) as i64, 2);
                    let price = Decimal::new(((i * 104_729 + u * 17) % 50_000 + 500) as i64, 2);
                    item(
                        &code,
                        &format!("清单项目{}", i + 1),
                        ["m2", "m3", "t", "m", "项"][i % 5],
                        &quantity.to_string(),
                        &price.to_string(),
                        measure,
                    )
                })
                .collect();
            unit(&format!("单位工程{}", u + 1), items, 50)
        })
        .collect();
    let mut bill = Bill {
        bidder: "招标控制价".to_string(),
        units,
    };
    recompute(&mut bill);
    bill
}

/// A clean bid: every unit price 2–9 % below the control price (varying by item and bidder,
/// so two clean bids rarely share a price), with every total recomputed.
pub fn priced_bid(tender: &Bill, bidder: &str, seed: usize) -> Bill {
    let mut bid = tender.clone();
    bid.bidder = bidder.to_string();
    for unit in &mut bid.units {
        for (i, item) in unit.items.items.iter_mut().enumerate() {
            let off = ((i * 13 + seed * 7) % 8 + 2) as i64;
            let factor = Decimal::ONE - Decimal::new(off, 2) - Decimal::new((seed % 10) as i64, 4);
            if let Some(p) = &item.unit_price {
                item.unit_price = Some(money_num(round2(p.value * factor)));
            }
        }
        for a in &mut unit.analyses {
            for m in &mut a.materials {
                m.unit_price = money_num(round2(m.unit_price.value * Decimal::new(97, 2)));
            }
        }
    }
    recompute(&mut bid);
    bid
}

/// Recomputes every derived amount of a bill from its unit prices, quantities and rates, so a
/// test can change one input and get a bill whose arithmetic holds.
pub fn recompute(bill: &mut Bill) {
    for unit in &mut bill.units {
        for item in &mut unit.items.items {
            item.total = item
                .unit_price
                .as_ref()
                .map(|p| money_num(round2(item.quantity.value * p.value)));
        }
    }
    recompute_sums(bill);
}

/// Like [`recompute`], but keeps every item's stated 合价 (right or wrong), so a test can plant
/// a wrong 合价 whose sums are otherwise consistent.
pub fn recompute_sums(bill: &mut Bill) {
    for unit in &mut bill.units {
        let prices: std::collections::HashMap<String, Decimal> = unit
            .items
            .items
            .iter()
            .map(|i| (i.code.clone(), super::value(&i.unit_price)))
            .collect();
        let items = &unit.items.items;
        for s in &mut unit.items.subtotals {
            let sum: Decimal = items[s.first_item..s.end_item]
                .iter()
                .map(|i| super::value(&i.total))
                .sum();
            s.amount = money_num(sum);
        }
        let all: Decimal = items.iter().map(|i| super::value(&i.total)).sum();
        unit.items.stated_total = Some(money_num(all));
        let regular: Decimal = items
            .iter()
            .filter(|i| !i.measure)
            .map(|i| super::value(&i.total))
            .sum();
        let unit_measures = all - regular;
        for a in &mut unit.analyses {
            let price = prices.get(&a.code).copied().unwrap_or_default();
            let labor = round2(price * Decimal::new(25, 2));
            let material = round2(price * Decimal::new(55, 2));
            let machinery = round2(price * Decimal::new(8, 2));
            a.labor = money_num(labor);
            a.material = money_num(material);
            a.machinery = money_num(machinery);
            a.overhead_profit = money_num(price - labor - material - machinery);
            a.unit_price = Some(money_num(price));
            for m in &mut a.materials {
                m.total = m
                    .quantity
                    .as_ref()
                    .map(|q| money_num(round2(q.value * m.unit_price.value)));
            }
        }
        let fill = |line: &mut FeeLine, base: Decimal| {
            if let Some(rate) = &line.rate {
                line.base = Some(money_num(base));
                line.amount = Some(money_num(round2(base * rate.value / Decimal::ONE_HUNDRED)));
            }
        };
        for line in &mut unit.lump_measures.lines {
            fill(line, regular);
        }
        let lump = super::top_level_sum(&unit.lump_measures);
        unit.lump_measures.stated_total = Some(money_num(lump));
        let measures = unit_measures + lump;
        // 暂估价 (2) is the sum of its parts; 材料暂估价 has no amount of its own.
        let parts: Decimal = unit
            .others
            .lines
            .iter()
            .filter(|l| l.seq.starts_with("2."))
            .map(|l| super::value(&l.amount))
            .sum();
        if let Some(l) = unit.others.lines.iter_mut().find(|l| l.seq == "2") {
            l.amount = Some(money_num(parts));
        }
        let others = super::top_level_sum(&unit.others);
        unit.others.stated_total = Some(money_num(others));
        let mut regulatory = Decimal::ZERO;
        for line in unit
            .fees
            .lines
            .iter_mut()
            .filter(|l| l.seq.starts_with("1."))
        {
            fill(line, regular);
            regulatory += super::value(&line.amount);
        }
        if let Some(l) = unit.fees.lines.iter_mut().find(|l| l.seq == "1") {
            l.amount = Some(money_num(regulatory));
        }
        let taxable = regular + measures + others + regulatory;
        let mut tax = Decimal::ZERO;
        if let Some(l) = unit.fees.lines.iter_mut().find(|l| l.seq == "2") {
            fill(l, taxable);
            tax = super::value(&l.amount);
        }
        unit.fees.stated_total = Some(money_num(regulatory + tax));
        let safety = super::line_named(&unit.lump_measures, "安全文明施工")
            .map(|l| super::value(&l.amount))
            .unwrap_or_default();
        let provisional = super::line_named(&unit.others, "暂列金额")
            .map(|l| super::value(&l.amount))
            .unwrap_or_default();
        for line in &mut unit.summary.lines {
            let amount = match line.seq.as_str() {
                "1" => regular,
                "2" => measures,
                "2.1" => safety,
                "3" => others,
                "3.1" => provisional,
                "4" => regulatory,
                "5" => tax,
                _ => continue,
            };
            line.amount = Some(money_num(amount));
        }
        unit.summary.stated_total = Some(money_num(regular + measures + others + regulatory + tax));
    }
}

fn number(sheet: &mut Worksheet, row: u32, col: u16, value: &Option<Num>) -> Result<(), XlsxError> {
    if let Some(n) = value {
        // Excel stores numbers as binary floats; the shortest decimal text reads back the same.
        match n.raw.parse::<f64>() {
            Ok(f) => sheet.write_number(row, col, f)?,
            Err(_) => sheet.write_string(row, col, &n.raw)?,
        };
    }
    Ok(())
}

fn title(sheet: &mut Worksheet, text: &str, unit: &str, width: u16) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    sheet.merge_range(0, 0, 0, width - 1, text, &bold)?;
    sheet.write_string(1, 0, format!("工程名称：{unit}"))?;
    sheet.write_string(1, width - 2, "标段：")?;
    Ok(())
}

/// Writes a bill in the GB 50500-2013 table layout: one sheet per table and unit project.
pub fn write_xlsx(bill: &Bill, is_tender: bool) -> Result<Vec<u8>, XlsxError> {
    let mut workbook = Workbook::new();
    for (u, unit) in bill.units.iter().enumerate() {
        let suffix = if bill.units.len() > 1 {
            format!("-{}", u + 1)
        } else {
            String::new()
        };
        let header = Format::new().set_bold();

        let sheet = workbook
            .add_worksheet()
            .set_name(format!("分部分项工程和单价措施项目清单与计价表{suffix}"))?;
        title(
            sheet,
            "分部分项工程和单价措施项目清单与计价表",
            &unit.name,
            9,
        )?;
        for (c, name) in [
            "序号",
            "项目编码",
            "项目名称",
            "项目特征描述",
            "计量单位",
            "工程量",
        ]
        .iter()
        .enumerate()
        {
            sheet.merge_range(2, c as u16, 3, c as u16, name, &header)?;
        }
        sheet.merge_range(2, 6, 2, 8, "金额（元）", &header)?;
        sheet.write_string(3, 6, "综合单价")?;
        sheet.write_string(3, 7, "合价")?;
        sheet.write_string(3, 8, "其中：暂估价")?;
        let mut row = 4u32;
        let items = &unit.items;
        let mut section = 0;
        for (i, item) in items.items.iter().enumerate() {
            if let Some(s) = items.subtotals.iter().find(|s| s.first_item == i) {
                section += 1;
                let heading = if items.items[s.first_item].measure {
                    "单价措施项目".to_string()
                } else {
                    format!("第{section}分部")
                };
                sheet.write_string(row, 2, heading)?;
                row += 1;
            }
            sheet.write_string(row, 0, &item.seq)?;
            sheet.write_string(row, 1, &item.code)?;
            sheet.write_string(row, 2, &item.name)?;
            sheet.write_string(row, 3, &item.features)?;
            sheet.write_string(row, 4, &item.unit)?;
            number(sheet, row, 5, &Some(item.quantity.clone()))?;
            number(sheet, row, 6, &item.unit_price)?;
            number(sheet, row, 7, &item.total)?;
            number(sheet, row, 8, &item.provisional)?;
            row += 1;
            if let Some(s) = items.subtotals.iter().find(|s| s.end_item == i + 1) {
                sheet.write_string(row, 2, &s.name)?;
                number(sheet, row, 7, &Some(s.amount.clone()))?;
                row += 1;
            }
        }
        sheet.write_string(row, 2, "合计")?;
        number(sheet, row, 7, &items.stated_total)?;

        let sheet = workbook
            .add_worksheet()
            .set_name(format!("综合单价分析表{suffix}"))?;
        title(sheet, "综合单价分析表", &unit.name, 13)?;
        for (c, name) in [
            "项目编码",
            "项目名称",
            "计量单位",
            "人工费",
            "材料费",
            "机械费",
            "管理费和利润",
            "综合单价",
            "材料名称",
            "材料单位",
            "材料数量",
            "材料单价",
            "材料合价",
        ]
        .iter()
        .enumerate()
        {
            sheet.write_string_with_format(2, c as u16, *name, &header)?;
        }
        let mut row = 3u32;
        for a in &unit.analyses {
            sheet.write_string(row, 0, &a.code)?;
            sheet.write_string(row, 1, &a.name)?;
            number(sheet, row, 3, &Some(a.labor.clone()))?;
            number(sheet, row, 4, &Some(a.material.clone()))?;
            number(sheet, row, 5, &Some(a.machinery.clone()))?;
            number(sheet, row, 6, &Some(a.overhead_profit.clone()))?;
            number(sheet, row, 7, &a.unit_price)?;
            row += 1;
            for m in &a.materials {
                sheet.write_string(row, 8, &m.name)?;
                sheet.write_string(row, 9, &m.unit)?;
                number(sheet, row, 10, &m.quantity)?;
                number(sheet, row, 11, &Some(m.unit_price.clone()))?;
                number(sheet, row, 12, &m.total)?;
                row += 1;
            }
        }

        let fee_sheets: [(&str, &FeeTable, &[&str]); 4] = [
            (
                "总价措施项目清单与计价表",
                &unit.lump_measures,
                &[
                    "序号",
                    "项目编码",
                    "项目名称",
                    "计算基础",
                    "计算基数",
                    "费率(%)",
                    "金额（元）",
                ],
            ),
            (
                "其他项目清单与计价汇总表",
                &unit.others,
                &["序号", "项目名称", "金额（元）"],
            ),
            (
                "规费、税金项目计价表",
                &unit.fees,
                &[
                    "序号",
                    "项目名称",
                    "计算基础",
                    "计算基数",
                    "计算费率(%)",
                    "金额（元）",
                ],
            ),
            (
                if is_tender {
                    "单位工程招标控制价汇总表"
                } else {
                    "单位工程投标报价汇总表"
                },
                &unit.summary,
                &["序号", "汇总内容", "金额（元）"],
            ),
        ];
        for (name, table, columns) in fee_sheets {
            let sheet = workbook
                .add_worksheet()
                .set_name(format!("{name}{suffix}"))?;
            title(sheet, name, &unit.name, columns.len() as u16)?;
            for (c, column) in columns.iter().enumerate() {
                sheet.write_string_with_format(2, c as u16, *column, &header)?;
            }
            let col = |field: &str| {
                columns
                    .iter()
                    .position(|c| c.starts_with(field))
                    .map(|c| c as u16)
            };
            let mut row = 3u32;
            for line in &table.lines {
                sheet.write_string(row, 0, &line.seq)?;
                if let Some(c) = col("项目编码") {
                    sheet.write_string(row, c, &line.code)?;
                }
                sheet.write_string(
                    row,
                    col("项目名称").or(col("汇总内容")).unwrap_or(1),
                    &line.name,
                )?;
                if let Some(c) = col("计算基础") {
                    sheet.write_string(row, c, &line.basis)?;
                }
                if let Some(c) = col("计算基数") {
                    number(sheet, row, c, &line.base)?;
                }
                if let Some(c) = col("费率").or(col("计算费率")) {
                    number(sheet, row, c, &line.rate)?;
                }
                if let Some(c) = col("金额") {
                    number(sheet, row, c, &line.amount)?;
                }
                row += 1;
            }
            let label_col = col("项目名称").or(col("汇总内容")).unwrap_or(1);
            sheet.write_string(
                row,
                label_col,
                if name.contains("汇总表") && name.starts_with("单位工程") {
                    if is_tender {
                        "招标控制价合计=1+2+3+4+5"
                    } else {
                        "投标报价合计=1+2+3+4+5"
                    }
                } else {
                    "合计"
                },
            )?;
            if let Some(c) = col("金额") {
                number(sheet, row, c, &table.stated_total)?;
            }
        }
    }
    workbook.save_to_buffer()
}
