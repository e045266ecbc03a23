//! 详细评审: the bids side by side — price comparison, cost composition, per-item comparison
//! against a configurable base (unbalanced bids), measures and main materials, abnormally low
//! bids, and shared errors or identical prices between bids (a collusion signal).

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::Decimal;
use witness_schemas::clearing::{
    Analyses, BidPrice, Bill, ClearingConfig, CostComposition, Finding, FindingKind,
    ItemComparison, MaterialComparison, MeasureComparison, PriceBase, Threshold, UnitPrice,
};

use super::{composition, money, stated_total, stated_unit_total, Composition};

pub const RULE_UNBALANCED: &str =
    "不平衡报价分析：综合单价与评审基准的偏差超过招标文件设定的阈值（《评标委员会和评标方法暂行规定》第二十一条，GB 50500-2013 第 6.1.3 条）";
pub const RULE_ABNORMALLY_LOW: &str =
    "GB 50500-2013 第 6.1.3 条：投标报价不得低于工程成本；《评标委员会和评标方法暂行规定》第二十一条：明显低于其他投标报价或标底的，应当要求说明并提供证明材料";
pub const RULE_SHARED: &str =
    "《招标投标法实施条例》第四十条第（四）项：不同投标人的投标文件异常一致或者投标报价呈规律性差异的，视为投标人相互串通投标";

fn percent(part: Decimal, whole: Decimal) -> String {
    if whole.is_zero() {
        return String::new();
    }
    money(part * Decimal::ONE_HUNDRED / whole)
}

fn describe_base(base: &PriceBase) -> String {
    match base {
        PriceBase::ControlPrice => "招标控制价综合单价".to_string(),
        PriceBase::Average {
            drop_high,
            drop_low,
        } => format!("有效投标平均综合单价（去掉最高 {drop_high} 个、最低 {drop_low} 个）"),
        PriceBase::Lowest => "有效投标最低综合单价".to_string(),
        PriceBase::SecondLowest => "有效投标次低综合单价".to_string(),
        PriceBase::Bidder(name) => format!("投标人「{name}」的综合单价"),
    }
}

pub fn analyse(
    tender: &Bill,
    bids: &[Bill],
    config: &ClearingConfig,
    corrected_totals: &[Decimal],
    findings: &mut Vec<Finding>,
) -> Analyses {
    let control = stated_total(tender, config);
    let controls = super::control_prices(tender);
    let valid: Vec<bool> = bids
        .iter()
        .map(|b| control.is_zero() || stated_total(b, config) <= control)
        .collect();

    // Price comparison, ranked by corrected total.
    let mut order: Vec<usize> = (0..bids.len()).collect();
    order.sort_by_key(|&i| corrected_totals[i]);
    let mut rank = vec![0; bids.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r + 1;
    }
    let price_comparison = bids
        .iter()
        .enumerate()
        .map(|(i, bid)| BidPrice {
            bidder: bid.bidder.clone(),
            stated_total: money(stated_total(bid, config)),
            corrected_total: money(corrected_totals[i]),
            percent_of_control: percent(corrected_totals[i], control),
            rank: rank[i],
            valid: valid[i],
            units: bid
                .units
                .iter()
                .map(|u| UnitPrice {
                    unit: u.name.clone(),
                    stated_total: money(stated_unit_total(u, config)),
                    corrected_total: money(composition(u, Some(&controls), config).total()),
                })
                .collect(),
        })
        .collect();

    let cost_composition = cost_composition(tender, bids, config);
    let (items, base_description) =
        item_comparison(tender, bids, config, &controls, &valid, findings);
    let measures = measure_comparison(tender, bids);
    let materials = material_comparison(tender, bids, config);
    abnormally_low(bids, config, control, corrected_totals, &valid, findings);
    shared_errors(tender, bids, config, findings);

    Analyses {
        price_comparison,
        cost_composition,
        items,
        measures,
        materials,
        base: base_description,
    }
}

fn cost_composition(tender: &Bill, bids: &[Bill], config: &ClearingConfig) -> Vec<CostComposition> {
    let mut rows = Vec::new();
    for bill in std::iter::once(tender).chain(bids) {
        let mut whole = Composition::default();
        let mut whole_lmmo = [Decimal::ZERO; 4];
        let mut unit_rows = Vec::new();
        for unit in &bill.units {
            let c = composition(unit, None, config);
            let quantities: HashMap<&str, Decimal> = unit
                .items
                .items
                .iter()
                .map(|i| (i.code.as_str(), i.quantity.value))
                .collect();
            let mut lmmo = [Decimal::ZERO; 4];
            for a in &unit.analyses {
                let q = quantities.get(a.code.as_str()).copied().unwrap_or_default();
                lmmo[0] += q * a.labor.value;
                lmmo[1] += q * a.material.value;
                lmmo[2] += q * a.machinery.value;
                lmmo[3] += q * a.overhead_profit.value;
            }
            whole.items += c.items;
            whole.measures += c.measures;
            whole.safety += c.safety;
            whole.others += c.others;
            whole.regulatory_fees += c.regulatory_fees;
            whole.tax += c.tax;
            for k in 0..4 {
                whole_lmmo[k] += lmmo[k];
            }
            unit_rows.push(row(&bill.bidder, &unit.name, &c, &lmmo));
        }
        rows.push(row(&bill.bidder, "全部", &whole, &whole_lmmo));
        if bill.units.len() > 1 {
            rows.extend(unit_rows);
        }
    }
    rows
}

fn row(bidder: &str, unit: &str, c: &Composition, lmmo: &[Decimal; 4]) -> CostComposition {
    CostComposition {
        bidder: bidder.to_string(),
        unit: unit.to_string(),
        items: money(c.items),
        measures: money(c.measures),
        safety: money(c.safety),
        others: money(c.others),
        regulatory_fees: money(c.regulatory_fees),
        tax: money(c.tax),
        labor: money(lmmo[0]),
        material: money(lmmo[1]),
        machinery: money(lmmo[2]),
        overhead_profit: money(lmmo[3]),
    }
}

fn base_price(
    base: &PriceBase,
    control: Option<Decimal>,
    prices: &[Option<Decimal>],
    bidders: &[&str],
    valid: &[bool],
) -> Option<Decimal> {
    let mut valid_prices: Vec<Decimal> = prices
        .iter()
        .zip(valid)
        .filter(|(_, v)| **v)
        .filter_map(|(p, _)| *p)
        .filter(|p| *p > Decimal::ZERO)
        .collect();
    valid_prices.sort();
    match base {
        PriceBase::ControlPrice => control,
        PriceBase::Average {
            drop_high,
            drop_low,
        } => {
            if valid_prices.len() <= drop_high + drop_low {
                return None;
            }
            let kept = &valid_prices[*drop_low..valid_prices.len() - drop_high];
            let sum: Decimal = kept.iter().sum();
            Some(sum / Decimal::from(kept.len() as u64))
        }
        PriceBase::Lowest => valid_prices.first().copied(),
        PriceBase::SecondLowest => valid_prices.get(1).copied(),
        PriceBase::Bidder(name) => bidders
            .iter()
            .position(|b| b == name)
            .and_then(|i| prices[i]),
    }
}

fn item_comparison(
    tender: &Bill,
    bids: &[Bill],
    config: &ClearingConfig,
    controls: &super::ControlPrices,
    valid: &[bool],
    findings: &mut Vec<Finding>,
) -> (Vec<ItemComparison>, String) {
    let bidders: Vec<&str> = bids.iter().map(|b| b.bidder.as_str()).collect();
    // Per bid: (unit name, code) → (unit price, origin text). Units are matched by name, and
    // by position when the names differ, as in the checks.
    let mut rows = Vec::new();
    for (unit_index, unit) in tender.units.iter().enumerate() {
        let bid_units: Vec<Option<&witness_schemas::clearing::UnitProject>> = bids
            .iter()
            .map(|b| {
                b.units
                    .iter()
                    .find(|u| u.name == unit.name)
                    .or_else(|| b.units.get(unit_index))
            })
            .collect();
        let indexes: Vec<Option<HashMap<&str, usize>>> = bid_units
            .iter()
            .map(|u| {
                u.map(|u| {
                    u.items
                        .items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| (item.code.as_str(), i))
                        .collect()
                })
            })
            .collect();
        for item in &unit.items.items {
            let bid_items: Vec<Option<&witness_schemas::clearing::BoqItem>> = bid_units
                .iter()
                .zip(&indexes)
                .map(|(u, index)| {
                    let i = index.as_ref()?.get(item.code.as_str())?;
                    Some(&u.as_ref()?.items.items[*i])
                })
                .collect();
            // Compared after correction: a unit price with a misplaced point is not unbalanced.
            let prices: Vec<Option<Decimal>> = bid_items
                .iter()
                .map(|i| i.and_then(|i| super::checks::corrected_unit_price(i, controls, config)))
                .collect();
            let control = item.unit_price.as_ref().map(|n| n.value);
            let base = base_price(&config.base, control, &prices, &bidders, valid);
            if let Some(base) = base.filter(|b| *b > Decimal::ZERO) {
                let high = limit(base, &config.unbalanced_high, true);
                let low = limit(base, &config.unbalanced_low, false);
                for (b, bid_item) in bid_items.iter().enumerate() {
                    let (Some(bid_item), Some(price)) = (bid_item, prices[b]) else {
                        continue;
                    };
                    if price <= Decimal::ZERO {
                        continue;
                    }
                    let kind = if price > high {
                        FindingKind::UnbalancedHigh
                    } else if price < low {
                        FindingKind::UnbalancedLow
                    } else {
                        continue;
                    };
                    let bound = if kind == FindingKind::UnbalancedHigh {
                        format!("≤ {}", money(high))
                    } else {
                        format!("≥ {}", money(low))
                    };
                    findings.push(Finding {
                        kind,
                        bidder: bidders[b].to_string(),
                        unit: unit.name.clone(),
                        item_code: item.code.clone(),
                        item_name: item.name.clone(),
                        expected: format!("{bound}（基准 {}）", money(base)),
                        actual: bid_item
                            .unit_price
                            .as_ref()
                            .map_or_else(String::new, |n| n.raw.clone()),
                        rule: RULE_UNBALANCED.to_string(),
                        location: bid_item.origin.to_string(),
                        correction: None,
                    });
                }
            }
            rows.push(ItemComparison {
                unit: unit.name.clone(),
                code: item.code.clone(),
                name: item.name.clone(),
                item_unit: item.unit.clone(),
                quantity: item.quantity.raw.clone(),
                control_price: item.unit_price.as_ref().map(|n| n.raw.clone()),
                base: base.map(money),
                prices: bid_items
                    .iter()
                    .map(|i| i.and_then(|i| i.unit_price.as_ref()).map(|n| n.raw.clone()))
                    .collect(),
            });
        }
    }
    (rows, describe_base(&config.base))
}

fn limit(base: Decimal, threshold: &Threshold, high: bool) -> Decimal {
    let sign = if high { Decimal::ONE } else { -Decimal::ONE };
    match threshold {
        Threshold::Percent(p) => base * (Decimal::ONE + sign * p.value / Decimal::ONE_HUNDRED),
        Threshold::Yuan(y) => base + sign * y.value,
    }
}

fn measure_comparison(tender: &Bill, bids: &[Bill]) -> Vec<MeasureComparison> {
    let mut rows = Vec::new();
    for unit in &tender.units {
        let bid_units: Vec<_> = bids
            .iter()
            .map(|b| b.units.iter().find(|u| u.name == unit.name))
            .collect();
        let unit_measures = |u: &witness_schemas::clearing::UnitProject| -> String {
            money(
                u.items
                    .items
                    .iter()
                    .filter(|i| i.measure)
                    .map(|i| super::value(&i.total))
                    .sum(),
            )
        };
        rows.push(MeasureComparison {
            unit: unit.name.clone(),
            name: "单价措施项目合计".to_string(),
            control: Some(unit_measures(unit)),
            amounts: bid_units.iter().map(|u| u.map(unit_measures)).collect(),
        });
        for line in &unit.lump_measures.lines {
            rows.push(MeasureComparison {
                unit: unit.name.clone(),
                name: line.name.clone(),
                control: line.amount.as_ref().map(|n| n.raw.clone()),
                amounts: bid_units
                    .iter()
                    .map(|u| {
                        u.and_then(|u| u.lump_measures.lines.iter().find(|l| l.name == line.name))
                            .and_then(|l| l.amount.as_ref())
                            .map(|n| n.raw.clone())
                    })
                    .collect(),
            });
        }
    }
    rows
}

fn material_comparison(
    tender: &Bill,
    bids: &[Bill],
    config: &ClearingConfig,
) -> Vec<MaterialComparison> {
    // (name, unit) → first price seen in each bill.
    fn prices(bill: &Bill) -> HashMap<(String, String), Decimal> {
        let mut map = HashMap::new();
        for unit in &bill.units {
            for a in &unit.analyses {
                for m in &a.materials {
                    map.entry((m.name.clone(), m.unit.clone()))
                        .or_insert(m.unit_price.value);
                }
            }
        }
        map
    }
    let tender_prices = prices(tender);
    let bid_prices: Vec<_> = bids.iter().map(prices).collect();
    let mut keys: BTreeMap<(String, String), ()> = BTreeMap::new();
    for map in std::iter::once(&tender_prices).chain(&bid_prices) {
        for key in map.keys() {
            keys.insert(key.clone(), ());
        }
    }
    keys.into_keys()
        .map(|(name, unit)| {
            let reference = if config.information_prices.is_empty() {
                tender_prices.get(&(name.clone(), unit.clone())).copied()
            } else {
                config
                    .information_prices
                    .iter()
                    .find(|p| p.name == name && (p.unit.is_empty() || p.unit == unit))
                    .map(|p| p.price.value)
            };
            let prices: Vec<Option<Decimal>> = bid_prices
                .iter()
                .map(|m| m.get(&(name.clone(), unit.clone())).copied())
                .collect();
            MaterialComparison {
                deviations: prices
                    .iter()
                    .map(|p| {
                        let (p, r) = ((*p)?, reference?);
                        (!r.is_zero()).then(|| percent(p - r, r))
                    })
                    .collect(),
                prices: prices.iter().map(|p| p.map(money)).collect(),
                reference: reference.map(money),
                material_unit: unit,
                name,
            }
        })
        .collect()
}

fn abnormally_low(
    bids: &[Bill],
    config: &ClearingConfig,
    control: Decimal,
    corrected_totals: &[Decimal],
    valid: &[bool],
    findings: &mut Vec<Finding>,
) {
    let valid_totals: Vec<Decimal> = corrected_totals
        .iter()
        .zip(valid)
        .filter(|(_, v)| **v)
        .map(|(t, _)| *t)
        .collect();
    if valid_totals.is_empty() || control.is_zero() {
        return;
    }
    let mean = valid_totals.iter().sum::<Decimal>() / Decimal::from(valid_totals.len() as u64);
    let control_limit =
        control * config.abnormally_low_control_percent.value / Decimal::ONE_HUNDRED;
    let mean_limit = mean * config.abnormally_low_mean_percent.value / Decimal::ONE_HUNDRED;
    for (bid, total) in bids.iter().zip(corrected_totals) {
        if *total < control_limit && *total < mean_limit {
            findings.push(Finding {
                kind: FindingKind::AbnormallyLow,
                bidder: bid.bidder.clone(),
                unit: String::new(),
                item_code: String::new(),
                item_name: "投标报价（修正后）".to_string(),
                expected: format!(
                    "≥ 招标控制价的 {}%（{}）或 ≥ 有效投标平均价的 {}%（{}）",
                    config.abnormally_low_control_percent.raw,
                    money(control_limit),
                    config.abnormally_low_mean_percent.raw,
                    money(mean_limit)
                ),
                actual: money(*total),
                rule: RULE_ABNORMALLY_LOW.to_string(),
                location: String::new(),
                correction: None,
            });
        }
    }
}

fn shared_errors(
    tender: &Bill,
    bids: &[Bill],
    config: &ClearingConfig,
    findings: &mut Vec<Finding>,
) {
    // An error "signature" is the same kind of mistake on the same item with the same wrong
    // value; independent estimators rarely produce the same one twice.
    let mut signatures: Vec<HashSet<(FindingKind, String, String, String)>> =
        vec![HashSet::new(); bids.len()];
    for f in findings.iter() {
        if !(f.kind.is_arithmetic()
            || matches!(
                f.kind,
                FindingKind::ChangedName
                    | FindingKind::ChangedUnit
                    | FindingKind::ChangedQuantity
                    | FindingKind::ChangedCode
                    | FindingKind::MissingItem
                    | FindingKind::ExtraItem
            ))
        {
            continue;
        }
        if let Some(i) = bids.iter().position(|b| b.bidder == f.bidder) {
            signatures[i].insert((
                f.kind,
                f.unit.clone(),
                f.item_code.clone(),
                f.actual.clone(),
            ));
        }
    }
    // Identical unit prices that differ from the control price (copying the control price is
    // not a signal).
    let n_items: usize = tender.units.iter().map(|u| u.items.items.len()).sum();
    let price_maps: Vec<HashMap<(&str, &str), Decimal>> = bids
        .iter()
        .map(|b| {
            b.units
                .iter()
                .flat_map(|u| {
                    u.items.items.iter().filter_map(move |i| {
                        Some((
                            (u.name.as_str(), i.code.as_str()),
                            i.unit_price.as_ref()?.value,
                        ))
                    })
                })
                .collect()
        })
        .collect();
    let control_prices: HashMap<(&str, &str), Decimal> = tender
        .units
        .iter()
        .flat_map(|u| {
            u.items.items.iter().filter_map(move |i| {
                Some((
                    (u.name.as_str(), i.code.as_str()),
                    i.unit_price.as_ref()?.value,
                ))
            })
        })
        .collect();
    let mut new = Vec::new();
    for a in 0..bids.len() {
        for b in a + 1..bids.len() {
            let mut shared: Vec<_> = signatures[a].intersection(&signatures[b]).collect();
            shared.sort();
            let pair = format!("{}、{}", bids[a].bidder, bids[b].bidder);
            if !shared.is_empty() && shared.len() >= config.shared_errors_min {
                let codes: Vec<String> = shared
                    .iter()
                    .take(10)
                    .map(|(k, _, code, _)| format!("{code}（{}）", k.as_str()))
                    .collect();
                new.push(Finding {
                    kind: FindingKind::SharedErrors,
                    bidder: pair.clone(),
                    unit: String::new(),
                    item_code: codes.join("、"),
                    item_name: "相同错误".to_string(),
                    expected: "各投标人独立编制，不应出现相同的错误".to_string(),
                    actual: format!("{} 处相同错误", shared.len()),
                    rule: RULE_SHARED.to_string(),
                    location: String::new(),
                    correction: None,
                });
            }
            if n_items == 0 {
                continue;
            }
            let identical = price_maps[a]
                .iter()
                .filter(|(key, price)| {
                    price_maps[b].get(*key) == Some(price)
                        && control_prices.get(*key) != Some(price)
                })
                .count();
            let share = Decimal::from(identical as u64) * Decimal::ONE_HUNDRED
                / Decimal::from(n_items as u64);
            if identical > 0 && share >= config.identical_prices_percent.value {
                new.push(Finding {
                    kind: FindingKind::SharedErrors,
                    bidder: pair,
                    unit: String::new(),
                    item_code: String::new(),
                    item_name: "相同综合单价".to_string(),
                    expected: format!(
                        "相同综合单价（且不同于控制价）的项目少于 {}%",
                        config.identical_prices_percent.raw
                    ),
                    actual: format!("{identical} / {n_items} 项（{}%）", money(share)),
                    rule: RULE_SHARED.to_string(),
                    location: String::new(),
                    correction: None,
                });
            }
        }
    }
    findings.extend(new);
}
