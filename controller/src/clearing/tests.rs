//! Data-driven tests of the clearing engine (清标): each case plants one kind of finding in a
//! generated bid and lists the exact findings expected; clean bids must produce none.
//! Workbook reading, bad input and the CLI are tested in `controller/tests/clearing.rs`.

use crate::clearing::{self, fixtures};
use rust_decimal::Decimal;
use witness_schemas::clearing::{Bill, BoqItem, ClearingConfig, Num, PriceBase, Threshold};

fn num(text: &str) -> Num {
    Num::parse(text).expect("test number")
}

/// One clearing scenario: the small tender, bid 甲 changed by `plant`, and two clean bids 乙
/// and 丙 (unless `plant` changes them too).
struct Case {
    plant: fn(&mut Vec<Bill>),
    config: ClearingConfig,
}

fn case(plant: fn(&mut Vec<Bill>)) -> Case {
    Case {
        plant,
        config: ClearingConfig::default(),
    }
}

/// Runs a case and renders each finding as `kind 投标人 编码 | 应为 | 实为 [| 修正]`.
fn check(case: Case) -> Vec<String> {
    let tender = fixtures::small_tender();
    let mut bids = vec![
        fixtures::priced_bid(&tender, "甲", 1),
        fixtures::priced_bid(&tender, "乙", 2),
        fixtures::priced_bid(&tender, "丙", 3),
    ];
    (case.plant)(&mut bids);
    let result = clearing::run(&tender, &bids, &case.config).expect("run");
    let mut lines: Vec<String> = result
        .findings
        .iter()
        .map(|f| {
            let mut line = format!(
                "{} {} {} | {} | {}",
                f.kind.as_str(),
                f.bidder,
                f.item_code,
                f.expected,
                f.actual
            );
            if let Some(c) = &f.correction {
                line.push_str(&format!(
                    " | {}: {} -> {} (Δ{}, 修正后 {}; {})",
                    c.field, c.from, c.to, c.delta, c.corrected_bid_total, c.note
                ));
            }
            line
        })
        .collect();
    lines.sort();
    lines
}

fn item<'a>(bill: &'a mut Bill, code: &str) -> &'a mut BoqItem {
    bill.units[0]
        .items
        .items
        .iter_mut()
        .find(|i| i.code == code)
        .expect("item in fixture")
}

fn assert_findings(case: Case, expected: &[&str]) {
    let actual = check(case);
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(actual, expected, "\nactual:\n{}\n", actual.join("\n"));
}

#[test]
fn clean_bids_produce_no_findings() {
    assert_findings(case(|_| {}), &[]);
}

#[test]
fn clean_bids_of_a_large_tender_produce_no_findings() {
    let tender = fixtures::tender(2, 600);
    let bids: Vec<Bill> = (0..5)
        .map(|i| fixtures::priced_bid(&tender, &format!("投标人{i}"), i))
        .collect();
    let result = clearing::run(&tender, &bids, &ClearingConfig::default()).expect("run");
    assert_eq!(result.findings, vec![]);
    assert_eq!(result.analyses.items.len(), 1200);
}

#[test]
fn the_tender_itself_is_a_clean_bid() {
    let tender = fixtures::small_tender();
    let mut bid = tender.clone();
    bid.bidder = "甲".to_string();
    let result = clearing::run(&tender, &[bid], &ClearingConfig::default()).expect("run");
    assert_eq!(result.findings, vec![]);
}

#[test]
fn missing_item() {
    assert_findings(
        case(|bids| {
            let unit = &mut bids[0].units[0];
            unit.items.items.remove(0);
            unit.items.subtotals[0].end_item = 1;
            for s in &mut unit.items.subtotals[1..] {
                s.first_item -= 1;
                s.end_item -= 1;
            }
            unit.analyses.remove(0);
            fixtures::recompute(&mut bids[0]);
        }),
        &["missing_item 甲 010101001001 | 平整场地 1000 m2 | 投标清单中没有该项目"],
    );
}

#[test]
fn extra_item() {
    assert_findings(
        case(|bids| {
            let unit = &mut bids[0].units[0];
            let mut extra = unit.items.items[1].clone();
            extra.code = "010101003001".to_string();
            extra.name = "挖沟槽土方".to_string();
            extra.quantity = num("12");
            unit.items.items.insert(2, extra);
            unit.items.subtotals[0].end_item = 3;
            for s in &mut unit.items.subtotals[1..] {
                s.first_item += 1;
                s.end_item += 1;
            }
            fixtures::recompute(&mut bids[0]);
        }),
        &["extra_item 甲 010101003001 | 招标工程量清单中没有该项目 | 挖沟槽土方 12 m3"],
    );
}

#[test]
fn changed_code() {
    assert_findings(
        case(|bids| {
            item(&mut bids[0], "010101002001").code = "010101002002".to_string();
            bids[0].units[0].analyses[1].code = "010101002002".to_string();
        }),
        &["changed_code 甲 010101002001 | 010101002001 | 010101002002"],
    );
}

#[test]
fn changed_name() {
    assert_findings(
        case(|bids| item(&mut bids[0], "010502001001").name = "构造柱".to_string()),
        &["changed_name 甲 010502001001 | 矩形柱 | 构造柱"],
    );
}

#[test]
fn changed_name_ignores_blanks() {
    assert_findings(
        case(|bids| item(&mut bids[0], "010502001001").name = "矩形 柱\n".to_string()),
        &[],
    );
}

#[test]
fn changed_unit() {
    assert_findings(
        case(|bids| item(&mut bids[0], "010101001001").unit = "m3".to_string()),
        &["changed_unit 甲 010101001001 | m2 | m3"],
    );
}

#[test]
fn changed_quantity() {
    assert_findings(
        case(|bids| {
            item(&mut bids[0], "010101002001").quantity = num("305.5");
            fixtures::recompute(&mut bids[0]);
        }),
        &["changed_quantity 甲 010101002001 | 350.5 | 305.5"],
    );
}

#[test]
fn provisional_sum_changed() {
    assert_findings(
        case(|bids| {
            let others = &mut bids[0].units[0].others;
            others.lines[0].amount = Some(num("9000.00"));
            fixtures::recompute(&mut bids[0]);
        }),
        &["provisional_sum_changed 甲 1 | 10000 | 9000.00"],
    );
}

#[test]
fn specialist_provisional_sum_changed() {
    assert_findings(
        case(|bids| {
            let others = &mut bids[0].units[0].others;
            others.lines[3].amount = Some(num("4500.00"));
            fixtures::recompute(&mut bids[0]);
        }),
        &["provisional_sum_changed 甲 2.2 | 5000 | 4500.00"],
    );
}

#[test]
fn safety_fee_rate_changed() {
    assert_findings(
        case(|bids| {
            bids[0].units[0].lump_measures.lines[0].rate = Some(num("3.0"));
            fixtures::recompute(&mut bids[0]);
        }),
        &["fee_rate_changed 甲 011707001001 | 3.5% | 3.0%"],
    );
}

#[test]
fn tax_rate_changed() {
    assert_findings(
        case(|bids| {
            bids[0].units[0].fees.lines[3].rate = Some(num("3"));
            fixtures::recompute(&mut bids[0]);
        }),
        &["fee_rate_changed 甲 税金 | 9% | 3%"],
    );
}

#[test]
fn competitive_fee_rate_may_change() {
    assert_findings(
        case(|bids| {
            bids[0].units[0].lump_measures.lines[1].rate = Some(num("0.3"));
            fixtures::recompute(&mut bids[0]);
        }),
        &[],
    );
}

#[test]
fn above_control_price() {
    assert_findings(
        case(|bids| {
            for i in &mut bids[0].units[0].items.items {
                let p = i.unit_price.as_ref().expect("priced").value;
                i.unit_price = Some(Num::from_decimal(clearing::round2(
                    p * Decimal::new(118, 2),
                )));
            }
            fixtures::recompute(&mut bids[0]);
        }),
        &["above_control_price 甲  | ≤ 122047.90 | 134609.36"],
    );
}

#[test]
fn line_total_mismatch() {
    assert_findings(
        case(|bids| {
            item(&mut bids[0], "010502001001").total = Some(num("21000.00"));
            fixtures::recompute_sums(&mut bids[0]);
        }),
        &[
            "line_total_mismatch 甲 010502001001 | 36.75 × 570.61 = 20969.92 | 21000.00 | 合价: 21000.00 -> 20969.92 (Δ-30.08, 修正后 116686.20; 以单价为准修正合价)",
        ],
    );
}

#[test]
fn line_total_with_misplaced_decimal_point() {
    assert_findings(
        case(|bids| {
            item(&mut bids[0], "010401001001").total = Some(num("2243.95"));
            fixtures::recompute_sums(&mut bids[0]);
        }),
        &[
            "line_total_mismatch 甲 010401001001 | 48.2 × 465.55 = 22439.51 | 2243.95 | 合价: 2243.95 -> 22439.51 (Δ20195.56, 修正后 113212.46; 以单价为准修正合价（合价的小数点错位）)",
        ],
    );
}

#[test]
fn unit_price_with_misplaced_decimal_point() {
    assert_findings(
        case(|bids| {
            let it = item(&mut bids[0], "010101002001");
            let p = it.unit_price.as_ref().expect("priced").value;
            it.unit_price = Some(Num::from_decimal(p / Decimal::TEN));
            fixtures::recompute_sums(&mut bids[0]);
        }),
        &[
            "line_total_mismatch 甲 010101002001 | 350.5 × 2.688 = 942.14 | 9421.44 | 综合单价: 2.688 -> 26.88 (Δ0.00, 修正后 116681.04; 单价小数点明显错位：以合价为准修正单价，总价不变)",
        ],
    );
}

#[test]
fn unit_price_breakdown_mismatch() {
    assert_findings(
        case(|bids| bids[0].units[0].analyses[2].labor = num("150.00")),
        &[
            "unit_price_breakdown_mismatch 甲 010401001001 | 综合单价 465.55 | 150.00 + 256.05 + 37.24 + 55.87 = 499.16 | 综合单价分析表: 499.16 -> 465.55 (Δ0.00, 修正后 116681.04; 以清单计价表中的综合单价为准，分析表按比例调整，总价不变)",
        ],
    );
}

#[test]
fn subtotal_sum_mismatch() {
    assert_findings(
        case(|bids| {
            let s = &mut bids[0].units[0].items.subtotals[1];
            s.amount = Num::from_decimal(s.amount.value + Decimal::ONE_HUNDRED);
        }),
        &[
            "sum_mismatch 甲 分部分项小计 | 本段合价之和 = 43409.43 | 43509.43 | 分部分项小计: 43509.43 -> 43409.43 (Δ0.00, 修正后 116681.04; 以各组成之和修正该汇总金额；投标总价按各表明细重新汇总)",
        ],
    );
}

#[test]
fn bid_total_sum_mismatch() {
    assert_findings(
        case(|bids| {
            let summary = &mut bids[0].units[0].summary;
            let total = summary.stated_total.as_ref().expect("total").value;
            summary.stated_total = Some(Num::from_decimal(total - Decimal::new(100000, 2)));
        }),
        &[
            "sum_mismatch 甲 单位工程汇总合计 | 分部分项工程费 + 措施项目费 + 其他项目费 + 规费 + 税金 = 116681.04 | 115681.04 | 单位工程汇总合计: 115681.04 -> 116681.04 (Δ1000.00, 修正后 116681.04; 以各组成之和修正投标总价)",
        ],
    );
}

#[test]
fn summary_line_sum_mismatch() {
    assert_findings(
        case(|bids| {
            let line = &mut bids[0].units[0].summary.lines[5];
            assert_eq!(line.name, "规费");
            line.amount = Some(num("0"));
            // The bidder also "fixed" the total, so only the 规费 line is wrong.
            let parts: Decimal = bids[0].units[0]
                .summary
                .lines
                .iter()
                .filter(|l| !l.seq.contains('.'))
                .map(|l| l.amount.as_ref().expect("amount").value)
                .sum();
            bids[0].units[0].summary.stated_total = Some(Num::from_decimal(parts));
        }),
        &[
            "sum_mismatch 甲 单位工程汇总：规费 | 规费、税金项目计价表中的规费 = 1928.53 | 0 | 单位工程汇总：规费: 0 -> 1928.53 (Δ1928.53, 修正后 116681.04; 以各组成之和修正投标总价)",
        ],
    );
}

#[test]
fn fee_amount_mismatch() {
    assert_findings(
        case(|bids| {
            let line = &mut bids[0].units[0].fees.lines[1];
            line.base = Some(num("80000.00"));
        }),
        &[
            "fee_amount_mismatch 甲 社会保险费 | 80000.00 × 2.5% = 2000.00 | 1377.52 | 规费、税金金额: 1377.52 -> 2000.00 (Δ622.48, 修正后 117303.52; 以计算基数 × 费率修正金额)",
        ],
    );
}

#[test]
fn zero_price() {
    assert_findings(
        case(|bids| {
            item(&mut bids[0], "010101001001").unit_price = Some(num("0"));
            fixtures::recompute(&mut bids[0]);
        }),
        &[
            "zero_or_negative_price 甲 010101001001 | 综合单价 > 0 | 0 | 综合单价: 0 -> 0 (Δ0.00, 修正后 114021.17; 不修正：未报价或零价视为该项费用已包含在其他项目的单价和合价之中（第 6.2.7 条），由评标委员会认定)",
        ],
    );
}

#[test]
fn negative_price() {
    assert_findings(
        case(|bids| {
            item(&mut bids[0], "010101001001").unit_price = Some(num("-2.00"));
            fixtures::recompute(&mut bids[0]);
        }),
        &[
            "zero_or_negative_price 甲 010101001001 | 综合单价 > 0 | -2.00 | 综合单价: -2.00 -> -2.00 (Δ0.00, 修正后 111677.67; 不修正：未报价或零价视为该项费用已包含在其他项目的单价和合价之中（第 6.2.7 条），由评标委员会认定)",
        ],
    );
}

#[test]
fn unbalanced_high() {
    assert_findings(
        case(|bids| {
            item(&mut bids[0], "011702001001").unit_price = Some(num("60.00"));
            fixtures::recompute(&mut bids[0]);
        }),
        &["unbalanced_high 甲 011702001001 | ≤ 54.60（基准 45.50） | 60.00"],
    );
}

#[test]
fn unbalanced_low_in_yuan() {
    let mut c = case(|bids| {
        item(&mut bids[0], "010502001001").unit_price = Some(num("560.00"));
        fixtures::recompute(&mut bids[0]);
    });
    c.config.unbalanced_low = Threshold::Yuan(num("50"));
    assert_findings(
        c,
        &["unbalanced_low 甲 010502001001 | ≥ 570.30（基准 620.30） | 560.00"],
    );
}

#[test]
fn unbalanced_against_the_average_of_valid_bids() {
    let mut c = case(|bids| {
        item(&mut bids[1], "010101002001").unit_price = Some(num("40.00"));
        fixtures::recompute(&mut bids[1]);
    });
    c.config.base = PriceBase::Average {
        drop_high: 0,
        drop_low: 0,
    };
    c.config.unbalanced_high = Threshold::Percent(num("15"));
    assert_findings(
        c,
        &["unbalanced_high 乙 010101002001 | ≤ 36.16（基准 31.44） | 40.00"],
    );
}

#[test]
fn unbalanced_against_a_named_bid() {
    let mut c = case(|bids| {
        item(&mut bids[2], "010401001001").unit_price = Some(num("300.00"));
        fixtures::recompute(&mut bids[2]);
    });
    c.config.base = PriceBase::Bidder("乙".to_string());
    assert_findings(
        c,
        &["unbalanced_low 丙 010401001001 | ≥ 376.24（基准 470.30） | 300.00"],
    );
}

#[test]
fn unbalanced_against_the_second_lowest() {
    let mut c = case(|bids| {
        item(&mut bids[0], "010101001001").unit_price = Some(num("1.50"));
        fixtures::recompute(&mut bids[0]);
    });
    c.config.base = PriceBase::SecondLowest;
    assert_findings(
        c,
        &["unbalanced_low 甲 010101001001 | ≥ 1.84（基准 2.30） | 1.50"],
    );
}

#[test]
fn abnormally_low() {
    let mut c = case(|bids| {
        for i in &mut bids[0].units[0].items.items {
            let p = i.unit_price.as_ref().expect("priced").value;
            i.unit_price = Some(Num::from_decimal(clearing::round2(p / Decimal::TWO)));
        }
        fixtures::recompute(&mut bids[0]);
    });
    // Halving every price is also unbalanced; this case looks at the total only.
    c.config.unbalanced_low = Threshold::Percent(num("60"));
    assert_findings(c, &[
            "abnormally_low 甲  | ≥ 招标控制价的 85%（103740.72）或 ≥ 有效投标平均价的 90%（89745.80） | 66904.81",
        ]);
}

#[test]
fn shared_errors() {
    assert_findings(
        case(|bids| {
            for bid in &mut bids[..2] {
                item(bid, "010502001001").total = Some(num("21000.00"));
                item(bid, "011701001001").total = Some(num("19000.00"));
                fixtures::recompute_sums(bid);
            }
        }),
        &[
            "line_total_mismatch 乙 010502001001 | 36.75 × 576.75 = 21195.56 | 21000.00 | 合价: 21000.00 -> 21195.56 (Δ195.56, 修正后 116505.43; 以单价为准修正合价)",
            "line_total_mismatch 乙 011701001001 | 1200 × 17.28 = 20736.00 | 19000.00 | 合价: 19000.00 -> 20736.00 (Δ1736.00, 修正后 116505.43; 以单价为准修正合价)",
            "line_total_mismatch 甲 010502001001 | 36.75 × 570.61 = 20969.92 | 21000.00 | 合价: 21000.00 -> 20969.92 (Δ-30.08, 修正后 116549.40; 以单价为准修正合价)",
            "line_total_mismatch 甲 011701001001 | 1200 × 17.10 = 20520.00 | 19000.00 | 合价: 19000.00 -> 20520.00 (Δ1520.00, 修正后 116549.40; 以单价为准修正合价)",
            "shared_errors 甲、乙 010502001001（line_total_mismatch）、011701001001（line_total_mismatch） | 各投标人独立编制，不应出现相同的错误 | 2 处相同错误",
        ],
    );
}

#[test]
fn identical_unit_prices() {
    assert_findings(
        case(|bids| {
            let copy = bids[0].clone();
            bids[1] = Bill {
                bidder: "乙".to_string(),
                ..copy
            };
        }),
        &[
            "shared_errors 甲、乙  | 相同综合单价（且不同于控制价）的项目少于 30% | 6 / 6 项（100.00%）",
        ],
    );
}
