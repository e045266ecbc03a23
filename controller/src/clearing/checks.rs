//! 初步评审: the normative checks (the bid must copy the tender's bill) and the arithmetic
//! checks (every product and sum must hold), each finding with the clause behind it and, for
//! arithmetic, the proposed correction.

use std::collections::HashMap;

use rust_decimal::Decimal;
use witness_schemas::clearing::{
    Bill, BoqItem, ClearingConfig, Correction, FeeLine, FeeTable, Finding, FindingKind, Num,
    Origin, UnitProject,
};

use super::{composition, control_prices, line_named, money, round2, stated_total, ControlPrices};

pub const RULE_SAME_AS_TENDER: &str =
    "GB 50500-2013 第 6.1.4 条：项目编码、项目名称、项目特征、计量单位、工程量必须与招标工程量清单一致";
pub const RULE_PROVISIONAL: &str =
    "GB 50500-2013 第 6.2.5 条：暂列金额、专业工程暂估价应按招标工程量清单中列出的金额填写";
pub const RULE_SAFETY: &str =
    "GB 50500-2013 第 3.1.5 条：安全文明施工费必须按规定计算，不得作为竞争性费用";
pub const RULE_FEES: &str =
    "GB 50500-2013 第 3.1.6 条：规费和税金必须按规定计算，不得作为竞争性费用";
pub const RULE_CONTROL: &str =
    "GB 50500-2013 第 6.1.5 条：投标人的投标报价高于招标控制价的应予废标";
pub const RULE_UNIT_PRICE_GOVERNS: &str =
    "算术性修正：总价金额与单价金额不一致的，以单价金额为准，但单价金额小数点有明显错误的除外（《评标委员会和评标方法暂行规定》第十九条）";
pub const RULE_BREAKDOWN: &str =
    "GB 50500-2013 第 2.0.8 条：综合单价由人工费、材料费、机械费、管理费和利润（及风险费用）组成";
pub const RULE_SUM: &str =
    "GB 50500-2013 第 6.2.8 条：投标总价应与分部分项工程费、措施项目费、其他项目费和规费、税金的合计金额一致；各表小计、合计应等于其组成之和";
pub const RULE_FEE_AMOUNT: &str =
    "计算规则：金额 = 计算基数 × 计算费率（GB 50500-2013 表-11、表-13）";
pub const RULE_ZERO: &str =
    "GB 50500-2013 第 6.2.7 条：需要填写单价和合价的项目均应填写且只允许有一个报价";

/// Tolerance-aware comparison: differences up to `config.tolerance` are rounding.
fn differs(a: Decimal, b: Decimal, config: &ClearingConfig) -> bool {
    (a - b).abs() > config.tolerance.value
}

fn show(num: &Option<Num>) -> String {
    num.as_ref()
        .map_or_else(|| "空".to_string(), |n| n.raw.clone())
}

/// Names compared as the reader sees them: blanks and line breaks do not count.
fn same_text(a: &str, b: &str) -> bool {
    a.chars()
        .filter(|c| !c.is_whitespace())
        .eq(b.chars().filter(|c| !c.is_whitespace()))
}

struct Builder<'a> {
    bidder: &'a str,
    unit: &'a str,
    findings: Vec<Finding>,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: FindingKind,
        code: &str,
        name: &str,
        expected: String,
        actual: String,
        rule: &str,
        origin: &Origin,
        correction: Option<Correction>,
    ) {
        self.findings.push(Finding {
            kind,
            bidder: self.bidder.to_string(),
            unit: self.unit.to_string(),
            // Fee lines and sums have no 项目编码; their name identifies them.
            item_code: if code.is_empty() { name } else { code }.to_string(),
            item_name: name.to_string(),
            expected,
            actual,
            rule: rule.to_string(),
            location: origin.to_string(),
            correction,
        });
    }
}

fn correction(field: &str, from: String, to: String, delta: Decimal, note: &str) -> Correction {
    Correction {
        field: field.to_string(),
        from,
        to,
        delta: money(delta),
        // Filled in by `run` once every correction of the bid is known.
        corrected_bid_total: String::new(),
        note: note.to_string(),
    }
}

/// How one line's 合价 is corrected: the unit price governs (合价 := 工程量 × 综合单价), unless the
/// unit price's decimal point is obviously misplaced, i.e. moving it by 1–3 places makes the
/// product match the stated 合价; then the 合价 stands and the unit price is corrected.
enum LineVerdict {
    Ok,
    TotalCorrected { expected: Decimal },
    UnitPriceMisplaced { corrected_price: Decimal },
}

fn line_verdict(item: &BoqItem, control: Option<Decimal>, config: &ClearingConfig) -> LineVerdict {
    let Some(price) = &item.unit_price else {
        return LineVerdict::Ok;
    };
    let expected = round2(item.quantity.value * price.value);
    let Some(total) = &item.total else {
        return LineVerdict::TotalCorrected { expected };
    };
    if !differs(total.value, expected, config) {
        return LineVerdict::Ok;
    }
    for shift in [1i32, -1, 2, -2, 3, -3] {
        let factor = Decimal::from(10i64.pow(shift.unsigned_abs()));
        let candidate = if shift > 0 {
            price.value * factor
        } else {
            price.value / factor
        };
        // Moving the point must also bring the price nearer the control price; otherwise it is
        // the 合价 that is off, and the unit price governs.
        let nearer = control
            .filter(|c| *c > Decimal::ZERO)
            .is_none_or(|c| distance(candidate, c) < distance(price.value, c));
        if nearer
            && !item.quantity.value.is_zero()
            && !differs(round2(item.quantity.value * candidate), total.value, config)
        {
            return LineVerdict::UnitPriceMisplaced {
                corrected_price: candidate.normalize(),
            };
        }
    }
    LineVerdict::TotalCorrected { expected }
}

/// How far apart two positive prices are, as a ratio ≥ 1.
fn distance(a: Decimal, b: Decimal) -> Decimal {
    if a <= Decimal::ZERO || b <= Decimal::ZERO {
        return Decimal::MAX;
    }
    if a > b {
        a / b
    } else {
        b / a
    }
}

/// The 合价 of an item after the arithmetic correction.
pub fn corrected_line_total(
    item: &BoqItem,
    controls: &ControlPrices,
    config: &ClearingConfig,
) -> Decimal {
    match line_verdict(item, controls.get(&item.code).copied(), config) {
        LineVerdict::TotalCorrected { expected } => expected,
        _ => super::value(&item.total),
    }
}

/// The 综合单价 of an item after the arithmetic correction (a misplaced point moved back).
pub fn corrected_unit_price(
    item: &BoqItem,
    controls: &ControlPrices,
    config: &ClearingConfig,
) -> Option<Decimal> {
    match line_verdict(item, controls.get(&item.code).copied(), config) {
        LineVerdict::UnitPriceMisplaced { corrected_price } => Some(corrected_price),
        _ => item.unit_price.as_ref().map(|n| n.value),
    }
}

/// 计算基数 × 计算费率 / 100, when the line gives both.
pub fn expected_fee_amount(line: &FeeLine) -> Option<Decimal> {
    let base = line.base.as_ref()?;
    let rate = line.rate.as_ref()?;
    Some(round2(base.value * rate.value / Decimal::ONE_HUNDRED))
}

/// Pairs the bid's unit projects with the tender's: by name, else by position.
fn pair_units<'a>(
    tender: &'a Bill,
    bid: &'a Bill,
) -> Vec<(Option<&'a UnitProject>, Option<&'a UnitProject>)> {
    let by_name = tender
        .units
        .iter()
        .all(|t| bid.units.iter().any(|b| b.name == t.name));
    if !by_name && tender.units.len() == bid.units.len() {
        return tender
            .units
            .iter()
            .zip(&bid.units)
            .map(|(t, b)| (Some(t), Some(b)))
            .collect();
    }
    let mut pairs: Vec<_> = tender
        .units
        .iter()
        .map(|t| (Some(t), bid.units.iter().find(|b| b.name == t.name)))
        .collect();
    for b in &bid.units {
        if !tender.units.iter().any(|t| t.name == b.name) {
            pairs.push((None, Some(b)));
        }
    }
    pairs
}

/// Every normative and arithmetic finding of one bid.
pub fn check_bid(tender: &Bill, bid: &Bill, config: &ClearingConfig) -> Vec<Finding> {
    let mut all = Vec::new();
    let controls = control_prices(tender);
    for (tender_unit, bid_unit) in pair_units(tender, bid) {
        let unit_name = bid_unit.or(tender_unit).map_or("", |u| u.name.as_str());
        let mut b = Builder {
            bidder: &bid.bidder,
            unit: unit_name,
            findings: Vec::new(),
        };
        let empty = UnitProject::default();
        let t = tender_unit.unwrap_or(&empty);
        let u = bid_unit.unwrap_or(&empty);
        compare_items(&mut b, t, u);
        compare_fees(&mut b, t, u);
        if bid_unit.is_some() {
            arithmetic(&mut b, u, &controls, config);
        }
        all.extend(b.findings);
    }
    let control = stated_total(tender, config);
    let offered = stated_total(bid, config);
    if control > Decimal::ZERO && offered > control {
        all.push(Finding {
            kind: FindingKind::AboveControlPrice,
            bidder: bid.bidder.clone(),
            unit: String::new(),
            item_code: String::new(),
            item_name: "投标报价".to_string(),
            expected: format!("≤ {}", money(control)),
            actual: money(offered),
            rule: RULE_CONTROL.to_string(),
            location: String::new(),
            correction: None,
        });
    }
    all
}

fn compare_items(b: &mut Builder, tender: &UnitProject, bid: &UnitProject) {
    let bid_index: HashMap<&str, usize> = bid
        .items
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.code.as_str(), i))
        .collect();
    let mut used = vec![false; bid.items.items.len()];
    let mut unmatched_tender = Vec::new();
    for t in &tender.items.items {
        let Some(&i) = bid_index.get(t.code.as_str()) else {
            unmatched_tender.push(t);
            continue;
        };
        used[i] = true;
        let item = &bid.items.items[i];
        if !same_text(&t.name, &item.name) {
            b.push(
                FindingKind::ChangedName,
                &t.code,
                &t.name,
                t.name.clone(),
                item.name.clone(),
                RULE_SAME_AS_TENDER,
                &item.origin,
                None,
            );
        }
        if !same_text(&t.unit, &item.unit) {
            b.push(
                FindingKind::ChangedUnit,
                &t.code,
                &t.name,
                t.unit.clone(),
                item.unit.clone(),
                RULE_SAME_AS_TENDER,
                &item.origin,
                None,
            );
        }
        if t.quantity.value != item.quantity.value {
            b.push(
                FindingKind::ChangedQuantity,
                &t.code,
                &t.name,
                t.quantity.raw.clone(),
                item.quantity.raw.clone(),
                RULE_SAME_AS_TENDER,
                &item.origin,
                None,
            );
        }
    }
    // An unmatched tender item whose bid counterpart sits at the same 序号, or has the same
    // name and unit, had its code changed; it is not missing.
    for t in unmatched_tender {
        let counterpart = bid.items.items.iter().enumerate().find(|(i, item)| {
            !used[*i]
                && !bid_index.is_empty()
                && ((!t.seq.is_empty() && item.seq == t.seq)
                    || (same_text(&item.name, &t.name) && same_text(&item.unit, &t.unit)))
        });
        match counterpart {
            Some((i, item)) => {
                used[i] = true;
                b.push(
                    FindingKind::ChangedCode,
                    &t.code,
                    &t.name,
                    t.code.clone(),
                    item.code.clone(),
                    RULE_SAME_AS_TENDER,
                    &item.origin,
                    None,
                );
            }
            None => b.push(
                FindingKind::MissingItem,
                &t.code,
                &t.name,
                format!("{} {} {}", t.name, t.quantity.raw, t.unit),
                "投标清单中没有该项目".to_string(),
                RULE_SAME_AS_TENDER,
                &bid.items.origin,
                None,
            ),
        }
    }
    for (i, item) in bid.items.items.iter().enumerate() {
        if !used[i] {
            b.push(
                FindingKind::ExtraItem,
                &item.code,
                &item.name,
                "招标工程量清单中没有该项目".to_string(),
                format!("{} {} {}", item.name, item.quantity.raw, item.unit),
                RULE_SAME_AS_TENDER,
                &item.origin,
                None,
            );
        }
    }
}

fn find_line<'a>(table: &'a FeeTable, name: &str) -> Option<&'a FeeLine> {
    table.lines.iter().find(|l| same_text(&l.name, name))
}

fn compare_fees(b: &mut Builder, tender: &UnitProject, bid: &UnitProject) {
    // 暂列金额 and 专业工程暂估价 are fixed by the tender.
    for t in &tender.others.lines {
        if !(t.name.contains("暂列金额") || t.name.contains("专业工程暂估")) {
            continue;
        }
        let Some(expected) = &t.amount else { continue };
        let line = find_line(&bid.others, &t.name);
        let actual = line.and_then(|l| l.amount.as_ref());
        if actual.is_none_or(|a| a.value != expected.value) {
            b.push(
                FindingKind::ProvisionalSumChanged,
                &t.seq,
                &t.name,
                expected.raw.clone(),
                actual.map_or_else(|| "未列该项".to_string(), |a| a.raw.clone()),
                RULE_PROVISIONAL,
                line.map_or(&bid.others.origin, |l| &l.origin),
                None,
            );
        }
    }
    let non_competitive = tender
        .lump_measures
        .lines
        .iter()
        .filter(|l| l.name.contains("安全文明施工"))
        .map(|l| (l, &bid.lump_measures, RULE_SAFETY))
        .chain(tender.fees.lines.iter().map(|l| (l, &bid.fees, RULE_FEES)));
    for (t, bid_table, rule) in non_competitive {
        let Some(expected) = &t.rate else { continue };
        let line = find_line(bid_table, &t.name);
        let actual = line.and_then(|l| l.rate.as_ref());
        if actual.is_none_or(|a| a.value != expected.value) {
            b.push(
                FindingKind::FeeRateChanged,
                &t.code,
                &t.name,
                format!("{}%", expected.raw),
                actual.map_or_else(
                    || {
                        if line.is_some() {
                            "未填费率".to_string()
                        } else {
                            "未列该项".to_string()
                        }
                    },
                    |a| format!("{}%", a.raw),
                ),
                rule,
                line.map_or(&bid_table.origin, |l| &l.origin),
                None,
            );
        }
    }
}

fn arithmetic(
    b: &mut Builder,
    unit: &UnitProject,
    controls: &ControlPrices,
    config: &ClearingConfig,
) {
    for item in &unit.items.items {
        match &item.unit_price {
            Some(price) if price.value > Decimal::ZERO => {}
            price => {
                b.push(
                    FindingKind::ZeroOrNegativePrice,
                    &item.code,
                    &item.name,
                    "综合单价 > 0".to_string(),
                    show(price),
                    RULE_ZERO,
                    &item.origin,
                    Some(correction(
                        "综合单价",
                        show(price),
                        show(price),
                        Decimal::ZERO,
                        "不修正：未报价或零价视为该项费用已包含在其他项目的单价和合价之中（第 6.2.7 条），由评标委员会认定",
                    )),
                );
                continue;
            }
        }
        let stated = item.total.as_ref().map_or(Decimal::ZERO, |n| n.value);
        match line_verdict(item, controls.get(&item.code).copied(), config) {
            LineVerdict::Ok => {}
            LineVerdict::TotalCorrected { expected } => {
                let note = match &item.total {
                    Some(t) if misplaced_point(t.value, expected) => {
                        "以单价为准修正合价（合价的小数点错位）"
                    }
                    _ => "以单价为准修正合价",
                };
                b.push(
                    FindingKind::LineTotalMismatch,
                    &item.code,
                    &item.name,
                    format!(
                        "{} × {} = {}",
                        item.quantity.raw,
                        show(&item.unit_price),
                        money(expected)
                    ),
                    show(&item.total),
                    RULE_UNIT_PRICE_GOVERNS,
                    &item.origin,
                    Some(correction(
                        "合价",
                        show(&item.total),
                        money(expected),
                        expected - stated,
                        note,
                    )),
                );
            }
            LineVerdict::UnitPriceMisplaced { corrected_price } => b.push(
                FindingKind::LineTotalMismatch,
                &item.code,
                &item.name,
                format!(
                    "{} × {} = {}",
                    item.quantity.raw,
                    show(&item.unit_price),
                    money(item.quantity.value * super::value(&item.unit_price))
                ),
                show(&item.total),
                RULE_UNIT_PRICE_GOVERNS,
                &item.origin,
                Some(correction(
                    "综合单价",
                    show(&item.unit_price),
                    corrected_price.to_string(),
                    Decimal::ZERO,
                    "单价小数点明显错位：以合价为准修正单价，总价不变",
                )),
            ),
        }
    }
    let prices: HashMap<&str, &BoqItem> = unit
        .items
        .items
        .iter()
        .map(|i| (i.code.as_str(), i))
        .collect();
    for analysis in &unit.analyses {
        let Some(item) = prices.get(analysis.code.as_str()) else {
            continue;
        };
        let Some(price) = &item.unit_price else {
            continue;
        };
        let parts = analysis.labor.value
            + analysis.material.value
            + analysis.machinery.value
            + analysis.overhead_profit.value;
        let stated_on_form = analysis
            .unit_price
            .as_ref()
            .filter(|p| differs(p.value, price.value, config));
        if differs(parts, price.value, config) || stated_on_form.is_some() {
            let actual = match stated_on_form {
                Some(p) if !differs(parts, price.value, config) => {
                    format!("分析表综合单价 {}", p.raw)
                }
                _ => format!(
                    "{} + {} + {} + {} = {}",
                    analysis.labor.raw,
                    analysis.material.raw,
                    analysis.machinery.raw,
                    analysis.overhead_profit.raw,
                    money(parts)
                ),
            };
            b.push(
                FindingKind::UnitPriceBreakdownMismatch,
                &analysis.code,
                &item.name,
                format!("综合单价 {}", price.raw),
                actual,
                RULE_BREAKDOWN,
                &analysis.origin,
                Some(correction(
                    "综合单价分析表",
                    money(parts),
                    price.raw.clone(),
                    Decimal::ZERO,
                    "以清单计价表中的综合单价为准，分析表按比例调整，总价不变",
                )),
            );
        }
    }
    sums(b, unit, config);
    for (table, label) in [
        (&unit.lump_measures, "总价措施项目"),
        (&unit.fees, "规费、税金"),
    ] {
        for line in &table.lines {
            let Some(expected) = expected_fee_amount(line) else {
                continue;
            };
            let stated = line.amount.as_ref().map_or(Decimal::ZERO, |n| n.value);
            if line.amount.is_none() || differs(stated, expected, config) {
                b.push(
                    FindingKind::FeeAmountMismatch,
                    &line.code,
                    &line.name,
                    format!(
                        "{} × {}% = {}",
                        show(&line.base),
                        show(&line.rate),
                        money(expected)
                    ),
                    show(&line.amount),
                    RULE_FEE_AMOUNT,
                    &line.origin,
                    Some(correction(
                        &format!("{label}金额"),
                        show(&line.amount),
                        money(expected),
                        expected - stated,
                        "以计算基数 × 费率修正金额",
                    )),
                );
            }
        }
    }
}

/// `stated` is `expected` with its decimal point moved by 1–3 places.
fn misplaced_point(stated: Decimal, expected: Decimal) -> bool {
    if expected.is_zero() || stated == expected {
        return false;
    }
    (1..=3).any(|k| {
        let f = Decimal::from(10i64.pow(k));
        (stated - expected * f).abs() <= Decimal::new(1, 2)
            || (stated * f - expected).abs() <= Decimal::new(1, 2)
    })
}

fn sum_finding(
    b: &mut Builder,
    what: &str,
    stated: &Num,
    computed: Decimal,
    parts: &str,
    origin: &Origin,
    affects_total: bool,
) {
    b.push(
        FindingKind::SumMismatch,
        "",
        what,
        format!("{parts} = {}", money(computed)),
        stated.raw.clone(),
        RULE_SUM,
        origin,
        Some(correction(
            what,
            stated.raw.clone(),
            money(computed),
            if affects_total {
                computed - stated.value
            } else {
                Decimal::ZERO
            },
            if affects_total {
                "以各组成之和修正投标总价"
            } else {
                "以各组成之和修正该汇总金额；投标总价按各表明细重新汇总"
            },
        )),
    );
}

fn sums(b: &mut Builder, unit: &UnitProject, config: &ClearingConfig) {
    let items = &unit.items;
    for subtotal in &items.subtotals {
        let computed: Decimal = items.items
            [subtotal.first_item.min(items.items.len())..subtotal.end_item.min(items.items.len())]
            .iter()
            .map(|i| super::value(&i.total))
            .sum();
        if differs(subtotal.amount.value, computed, config) {
            sum_finding(
                b,
                &format!("分部分项{}", subtotal.name),
                &subtotal.amount,
                computed,
                "本段合价之和",
                &subtotal.origin,
                false,
            );
        }
    }
    if let Some(stated) = &items.stated_total {
        let computed: Decimal = items.items.iter().map(|i| super::value(&i.total)).sum();
        if differs(stated.value, computed, config) {
            sum_finding(
                b,
                "分部分项工程和单价措施项目合计",
                stated,
                computed,
                "各项合价之和",
                &items.origin,
                false,
            );
        }
    }
    for (table, label) in [
        (&unit.lump_measures, "总价措施项目"),
        (&unit.others, "其他项目"),
        (&unit.fees, "规费、税金"),
        (&unit.summary, "单位工程汇总"),
    ] {
        // A line "1" is the sum of its direct children "1.1", "1.2", ….
        for parent in &table.lines {
            let Some(stated) = &parent.amount else {
                continue;
            };
            if parent.seq.is_empty() {
                continue;
            }
            let children = super::fee_children(table, parent);
            if children.is_empty() {
                continue;
            }
            let computed: Decimal = children.iter().map(|l| super::value(&l.amount)).sum();
            if differs(stated.value, computed, config) {
                sum_finding(
                    b,
                    &format!("{label}：{}", parent.name),
                    stated,
                    computed,
                    "下级各项之和",
                    &parent.origin,
                    false,
                );
            }
        }
        if let Some(stated) = &table.stated_total {
            let computed: Decimal = table
                .lines
                .iter()
                .filter(|l| !l.seq.contains('.') && !l.name.contains("其中"))
                .filter_map(|l| l.amount.as_ref())
                .map(|n| n.value)
                .sum();
            let is_summary = std::ptr::eq(table, &unit.summary);
            if differs(stated.value, computed, config) {
                sum_finding(
                    b,
                    &format!("{label}合计"),
                    stated,
                    computed,
                    if is_summary {
                        "分部分项工程费 + 措施项目费 + 其他项目费 + 规费 + 税金"
                    } else {
                        "各项金额之和"
                    },
                    &table.origin,
                    is_summary,
                );
            }
        }
    }
    // The summary's lines must equal the tables they summarise.
    let parts = composition(unit, None, config);
    let checks: [(&str, Decimal, &str, bool); 5] = [
        (
            "分部分项",
            parts.items,
            "分部分项工程合价之和（不含单价措施）",
            true,
        ),
        (
            "措施",
            parts.measures,
            "单价措施项目合价 + 总价措施项目金额",
            true,
        ),
        (
            "其他项目",
            parts.others,
            "其他项目清单与计价汇总表",
            !unit.others.lines.is_empty(),
        ),
        (
            "规费",
            parts.regulatory_fees,
            "规费、税金项目计价表中的规费",
            !unit.fees.lines.is_empty(),
        ),
        (
            "税金",
            parts.tax,
            "规费、税金项目计价表中的税金",
            !unit.fees.lines.is_empty(),
        ),
    ];
    for (needle, computed, source, applicable) in checks {
        if !applicable || unit.items.items.is_empty() {
            continue;
        }
        let Some(line) =
            unit.summary.lines.iter().find(|l| {
                !l.seq.contains('.') && !l.name.contains("其中") && l.name.contains(needle)
            })
        else {
            continue;
        };
        let Some(stated) = &line.amount else { continue };
        if differs(stated.value, computed, config) {
            sum_finding(
                b,
                &format!("单位工程汇总：{}", line.name),
                stated,
                computed,
                source,
                &line.origin,
                true,
            );
        }
    }
    for (needle, table, source) in [
        (
            "安全文明施工",
            &unit.lump_measures,
            "总价措施项目中的安全文明施工费",
        ),
        ("暂列金额", &unit.others, "其他项目中的暂列金额"),
    ] {
        let (Some(summary_line), Some(source_line)) = (
            unit.summary
                .lines
                .iter()
                .find(|l| l.name.contains("其中") && l.name.contains(needle)),
            line_named(table, needle),
        ) else {
            continue;
        };
        let (Some(stated), Some(computed)) = (&summary_line.amount, &source_line.amount) else {
            continue;
        };
        if differs(stated.value, computed.value, config) {
            sum_finding(
                b,
                &format!("单位工程汇总：{}", summary_line.name),
                stated,
                computed.value,
                source,
                &summary_line.origin,
                false,
            );
        }
    }
}
