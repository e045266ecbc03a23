//! The clearing engine (清标): checks each priced bill against the tender's bill of quantities
//! (初步评审: normative and arithmetic checks) and analyses the bids side by side (详细评审).
//!
//! Clearing is pure computation on files: [`run`] takes parsed [`Bill`]s and returns findings
//! and analyses; `xlsx` reads workbooks, `report` writes the .xlsx and printable HTML reports,
//! `cli` and `web` are the two ways in. See README.md in this folder for the accepted workbook
//! layout and the benchmark.

pub mod analysis;
pub mod checks;
pub mod cli;
pub mod fixtures;
pub mod report;
pub mod web;
pub mod xlsx;

use std::collections::{HashMap, HashSet};

use rust_decimal::{Decimal, RoundingStrategy};
use witness_schemas::clearing::{
    Bill, ClearingConfig, ClearingResult, FeeTable, Finding, Num, UnitProject,
};

use crate::bail;
use crate::error::Result;

/// Money in the GB tables is rounded to 0.01 yuan, half away from zero (四舍五入).
pub fn round2(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Money as printed in findings and reports: always two decimals.
pub fn money(value: Decimal) -> String {
    let mut rounded = round2(value);
    rounded.rescale(2);
    rounded.to_string()
}

/// Checks what the type system cannot: at least one item, no duplicate codes, amounts in range.
/// Workbooks are checked while they are read; this catches the same problems in JSON input.
pub fn validate(bill: &Bill) -> Result<()> {
    let n_items: usize = bill.units.iter().map(|u| u.items.items.len()).sum();
    if n_items == 0 {
        bail!(
            InvalidArgument,
            "「{}」的清单没有任何项目（空的投标文件或工作表）",
            bill.bidder
        );
    }
    for unit in &bill.units {
        let mut seen = HashSet::new();
        for item in &unit.items.items {
            if !seen.insert(item.code.as_str()) {
                bail!(
                    InvalidArgument,
                    "「{}」单位工程「{}」{}：项目编码 {} 重复",
                    bill.bidder,
                    unit.name,
                    item.origin,
                    item.code
                );
            }
            let nums = [
                Some(&item.quantity),
                item.unit_price.as_ref(),
                item.total.as_ref(),
            ];
            for num in nums.into_iter().flatten() {
                if num.value.abs() > xlsx::max_magnitude() {
                    bail!(
                        InvalidArgument,
                        "「{}」项目 {}：数值 {} 超出允许范围",
                        bill.bidder,
                        item.code,
                        num.raw
                    );
                }
            }
        }
    }
    Ok(())
}

/// Runs every check and analysis of one tender.
pub fn run(tender: &Bill, bids: &[Bill], config: &ClearingConfig) -> Result<ClearingResult> {
    validate(tender)?;
    let mut names = HashSet::new();
    for bid in bids {
        validate(bid)?;
        if !names.insert(bid.bidder.as_str()) {
            bail!(InvalidArgument, "投标人名称「{}」重复", bid.bidder);
        }
    }
    let mut findings: Vec<Finding> = Vec::new();
    let mut corrected_totals = Vec::new();
    let controls = control_prices(tender);
    for bid in bids {
        let mut bid_findings = checks::check_bid(tender, bid, config);
        let corrected = corrected_total(bid, &controls, config);
        for f in &mut bid_findings {
            if let Some(c) = &mut f.correction {
                c.corrected_bid_total = money(corrected);
            }
        }
        corrected_totals.push(corrected);
        findings.extend(bid_findings);
    }
    let analyses = analysis::analyse(tender, bids, config, &corrected_totals, &mut findings);
    Ok(ClearingResult { findings, analyses })
}

/// Sum of the top-level lines (序号 without a dot) of a fee table.
pub fn top_level_sum(table: &FeeTable) -> Decimal {
    table
        .lines
        .iter()
        .filter(|l| !l.seq.contains('.'))
        .filter_map(|l| l.amount.as_ref())
        .map(|n| n.value)
        .sum()
}

/// The first line whose name contains `needle` (top-level lines first).
pub fn line_named<'a>(
    table: &'a FeeTable,
    needle: &str,
) -> Option<&'a witness_schemas::clearing::FeeLine> {
    table
        .lines
        .iter()
        .filter(|l| l.name.contains(needle))
        .min_by_key(|l| l.seq.contains('.'))
}

/// The parts of a unit project's price (GB 50500-2013 表-04): 分部分项, 措施, 其他, 规费, 税金.
/// Each comes from its own table when the workbook has it, else from the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Composition {
    pub items: Decimal,
    pub measures: Decimal,
    pub safety: Decimal,
    pub others: Decimal,
    pub regulatory_fees: Decimal,
    pub tax: Decimal,
}

impl Composition {
    pub fn total(&self) -> Decimal {
        self.items + self.measures + self.others + self.regulatory_fees + self.tax
    }
}

/// Summary line amount for a category, by name.
fn summary_amount(unit: &UnitProject, needle: &str) -> Option<Decimal> {
    unit.summary
        .lines
        .iter()
        .filter(|l| !l.seq.contains('.') && !l.name.contains("其中"))
        .find(|l| l.name.contains(needle))
        .and_then(|l| l.amount.as_ref())
        .map(|n| n.value)
}

/// The tender's control unit price (招标控制价综合单价) per 项目编码; the reference that tells a
/// misplaced decimal point in a bid's unit price from one in its 合价.
pub type ControlPrices = HashMap<String, Decimal>;

pub fn control_prices(tender: &Bill) -> ControlPrices {
    let mut map = HashMap::new();
    for unit in &tender.units {
        for item in &unit.items.items {
            if let Some(p) = &item.unit_price {
                map.entry(item.code.clone()).or_insert(p.value);
            }
        }
    }
    map
}

/// The direct children of a fee line: line "1" has "1.1", "1.2", … ("其中" lines are parts
/// shown for information, not addends).
fn fee_children<'a>(
    table: &'a FeeTable,
    parent: &witness_schemas::clearing::FeeLine,
) -> Vec<&'a witness_schemas::clearing::FeeLine> {
    let prefix = format!("{}.", parent.seq);
    let depth = parent.seq.matches('.').count() + 1;
    table
        .lines
        .iter()
        .filter(|l| {
            l.seq.starts_with(&prefix)
                && l.seq.matches('.').count() == depth
                && !l.name.contains("其中")
        })
        .collect()
}

/// A fee line's amount after correction: 基数 × 费率 where both are given, else the sum of its
/// corrected direct children, else as stated.
fn corrected_fee(table: &FeeTable, line: &witness_schemas::clearing::FeeLine) -> Decimal {
    if let Some(amount) = checks::expected_fee_amount(line) {
        return amount;
    }
    if !line.seq.is_empty() {
        let children = fee_children(table, line);
        if !children.is_empty() {
            return children.iter().map(|c| corrected_fee(table, c)).sum();
        }
    }
    value(&line.amount)
}

/// The composition of a unit from its stated amounts (`corrections` = None), or with the
/// arithmetic corrections applied (unit price governs for items, 基数 × 费率 for fees).
pub fn composition(
    unit: &UnitProject,
    corrections: Option<&ControlPrices>,
    config: &ClearingConfig,
) -> Composition {
    let item_total = |item: &witness_schemas::clearing::BoqItem| -> Decimal {
        match corrections {
            Some(controls) => checks::corrected_line_total(item, controls, config),
            None => value(&item.total),
        }
    };
    let fee_amount_in = |table: &FeeTable, line: &witness_schemas::clearing::FeeLine| -> Decimal {
        match corrections {
            Some(_) => corrected_fee(table, line),
            None => value(&line.amount),
        }
    };
    let has_items = !unit.items.items.is_empty();
    let items_sum: Decimal = unit
        .items
        .items
        .iter()
        .filter(|i| !i.measure)
        .map(item_total)
        .sum();
    let unit_measures: Decimal = unit
        .items
        .items
        .iter()
        .filter(|i| i.measure)
        .map(item_total)
        .sum();
    let lump: Decimal = unit
        .lump_measures
        .lines
        .iter()
        .filter(|l| !l.seq.contains('.'))
        .map(|l| fee_amount_in(&unit.lump_measures, l))
        .sum();
    let items = if has_items {
        items_sum
    } else {
        summary_amount(unit, "分部分项").unwrap_or_default()
    };
    let measures = if has_items || !unit.lump_measures.lines.is_empty() {
        unit_measures + lump
    } else {
        summary_amount(unit, "措施").unwrap_or_default()
    };
    let safety = line_named(&unit.lump_measures, "安全文明施工")
        .map(|l| fee_amount_in(&unit.lump_measures, l))
        .unwrap_or_default();
    let others = if unit.others.lines.is_empty() {
        summary_amount(unit, "其他项目").unwrap_or_default()
    } else {
        top_level_sum(&unit.others)
    };
    let fee_or_summary = |needle: &str| -> Decimal {
        match unit
            .fees
            .lines
            .iter()
            .filter(|l| !l.seq.contains('.'))
            .find(|l| l.name.contains(needle))
        {
            Some(line) => fee_amount_in(&unit.fees, line),
            None => summary_amount(unit, needle).unwrap_or_default(),
        }
    };
    Composition {
        items,
        measures,
        safety,
        others,
        regulatory_fees: fee_or_summary("规费"),
        tax: fee_or_summary("税金"),
    }
}

/// A unit's price as the bid states it: the summary's 合计 row, else the sum of its top-level
/// lines, else the sum of its parts.
pub fn stated_unit_total(unit: &UnitProject, config: &ClearingConfig) -> Decimal {
    if let Some(total) = &unit.summary.stated_total {
        return total.value;
    }
    if !unit.summary.lines.is_empty() {
        return unit
            .summary
            .lines
            .iter()
            .filter(|l| !l.seq.contains('.') && !l.name.contains("其中"))
            .filter_map(|l| l.amount.as_ref())
            .map(|n| n.value)
            .sum();
    }
    composition(unit, None, config).total()
}

pub fn stated_total(bill: &Bill, config: &ClearingConfig) -> Decimal {
    bill.units
        .iter()
        .map(|u| stated_unit_total(u, config))
        .sum()
}

/// The bid total after every arithmetic correction, rebuilt bottom-up from the tables.
pub fn corrected_total(bill: &Bill, controls: &ControlPrices, config: &ClearingConfig) -> Decimal {
    bill.units
        .iter()
        .map(|u| composition(u, Some(controls), config).total())
        .sum()
}

/// Decimal of a [`Num`] option, zero when absent.
pub fn value(num: &Option<Num>) -> Decimal {
    num.as_ref().map_or(Decimal::ZERO, |n| n.value)
}

#[cfg(test)]
mod tests;
