//! Wire formats of the clearing engine (清标): priced bills of quantities as JSON, the run
//! configuration, and the findings and analyses it returns.
//!
//! Money and quantities are [`Num`]: a decimal carried as a JSON string (never a JSON number, so
//! no system on the way can turn it into a float) together with the text it was read from.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A decimal amount, quantity or rate with the text it came from. The text is kept because a
/// misplaced decimal point ("1234.5" where "12.345" was meant) is reported as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Num {
    pub value: Decimal,
    pub raw: String,
}

impl Num {
    /// Parses cell or JSON text: thousands separators and surrounding blanks are tolerated, a
    /// trailing `%` is not (rates are given in percent without the sign, as in the GB tables).
    pub fn parse(text: &str) -> Option<Num> {
        let trimmed = text.trim();
        let cleaned: String = trimmed.chars().filter(|c| *c != ',').collect();
        if cleaned.is_empty() {
            return None;
        }
        let value = Decimal::from_str(&cleaned)
            .or_else(|_| Decimal::from_scientific(&cleaned))
            .ok()?;
        Some(Num {
            value,
            raw: trimmed.to_string(),
        })
    }

    pub fn from_decimal(value: Decimal) -> Num {
        Num {
            raw: value.normalize().to_string(),
            value,
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Num, D::Error> {
        let text = String::deserialize(deserializer)?;
        Num::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("「{text}」不是十进制数 (not a decimal number)"))
        })
    }
}

impl utoipa::PartialSchema for Num {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(NUM_PATTERN))
            .description(Some("十进制数，以字符串传送（金额单位：元；费率单位：%）"))
            .into()
    }
}

impl ToSchema for Num {}

/// What a [`Num`] string must look like (also used in the hand-checked JSON Schema).
pub const NUM_PATTERN: &str = r"^\s*-?[0-9][0-9,]*(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$";

/// One workbook: the tender's bill with its control price (招标工程量清单 + 最高投标限价), or one
/// bidder's priced bill (已标价工程量清单).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Bill {
    /// 投标人 (for the tender: 招标人/控制价).
    pub bidder: String,
    /// 单位工程, in workbook order.
    pub units: Vec<UnitProject>,
}

/// One unit project (单位工程) and its GB 50500-2013 tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnitProject {
    /// 工程名称.
    pub name: String,
    /// 分部分项工程和单价措施项目清单与计价表.
    pub items: ItemTable,
    /// 综合单价分析表, one entry per 项目编码.
    #[serde(default)]
    pub analyses: Vec<UnitPriceAnalysis>,
    /// 总价措施项目清单与计价表.
    #[serde(default)]
    pub lump_measures: FeeTable,
    /// 其他项目清单与计价汇总表.
    #[serde(default)]
    pub others: FeeTable,
    /// 规费、税金项目计价表.
    #[serde(default)]
    pub fees: FeeTable,
    /// 单位工程投标报价汇总表 / 单位工程招标控制价汇总表.
    #[serde(default)]
    pub summary: FeeTable,
}

/// Where a line came from, for messages: sheet name and 1-based row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sheet: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u32>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.sheet.is_empty(), self.row) {
            (false, Some(row)) => write!(f, "工作表「{}」第 {row} 行", self.sheet),
            (false, None) => write!(f, "工作表「{}」", self.sheet),
            (true, Some(row)) => write!(f, "第 {row} 行"),
            (true, None) => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemTable {
    pub items: Vec<BoqItem>,
    /// 小计 rows, each covering the items since the previous 小计 or section heading.
    #[serde(default)]
    pub subtotals: Vec<Subtotal>,
    /// The table's 合计 row, when it has one.
    #[serde(default)]
    pub stated_total: Option<Num>,
    #[serde(default)]
    pub origin: Origin,
}

/// One line of the bill of quantities (清单项目).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BoqItem {
    /// 序号.
    #[serde(default)]
    pub seq: String,
    /// 项目编码 (12 digits in GB 50500-2013).
    pub code: String,
    /// 项目名称.
    pub name: String,
    /// 项目特征描述.
    #[serde(default)]
    pub features: String,
    /// 计量单位.
    pub unit: String,
    /// 工程量.
    pub quantity: Num,
    /// 综合单价 (absent in a bill without prices).
    #[serde(default)]
    pub unit_price: Option<Num>,
    /// 合价.
    #[serde(default)]
    pub total: Option<Num>,
    /// 其中暂估价.
    #[serde(default)]
    pub provisional: Option<Num>,
    /// 单价措施项目 (listed under a 措施 heading or with a 0117 code).
    #[serde(default)]
    pub measure: bool,
    #[serde(default)]
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Subtotal {
    pub name: String,
    pub amount: Num,
    /// Index of the first item it covers and one past the last.
    pub first_item: usize,
    pub end_item: usize,
    #[serde(default)]
    pub origin: Origin,
}

/// 综合单价分析表 for one 项目编码.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnitPriceAnalysis {
    pub code: String,
    #[serde(default)]
    pub name: String,
    /// 人工费.
    pub labor: Num,
    /// 材料费.
    pub material: Num,
    /// 机械费.
    pub machinery: Num,
    /// 管理费和利润.
    pub overhead_profit: Num,
    /// 综合单价 as stated on the analysis form.
    #[serde(default)]
    pub unit_price: Option<Num>,
    /// 主要材料 lines (材料费明细).
    #[serde(default)]
    pub materials: Vec<MaterialLine>,
    #[serde(default)]
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MaterialLine {
    /// 主要材料名称、规格、型号.
    pub name: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub quantity: Option<Num>,
    pub unit_price: Num,
    #[serde(default)]
    pub total: Option<Num>,
    #[serde(default)]
    pub origin: Origin,
}

/// The tables with one amount per named line: 总价措施项目, 其他项目, 规费税金, 汇总表.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeeTable {
    pub lines: Vec<FeeLine>,
    /// The 合计 row, when it has one.
    #[serde(default)]
    pub stated_total: Option<Num>,
    #[serde(default)]
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeeLine {
    /// 序号 ("1", "1.1", …); a line "1.1" is part of line "1".
    #[serde(default)]
    pub seq: String,
    /// 项目编码 where the table has one (总价措施项目).
    #[serde(default)]
    pub code: String,
    /// 项目名称 / 汇总内容.
    pub name: String,
    /// 计算基础 (text, e.g. 定额人工费).
    #[serde(default)]
    pub basis: String,
    /// 计算基数.
    #[serde(default)]
    pub base: Option<Num>,
    /// 计算费率 (%) / 费率 (%).
    #[serde(default)]
    pub rate: Option<Num>,
    /// 金额.
    #[serde(default)]
    pub amount: Option<Num>,
    #[serde(default)]
    pub origin: Origin,
}

/// A whole clearing run sent as JSON: the tender, the bids and the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClearingInput {
    pub tender: Bill,
    pub bids: Vec<Bill>,
    #[serde(default)]
    pub config: ClearingConfig,
}

/// Per-tender settings of the checks and analyses; every field has the usual default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct ClearingConfig {
    /// Differences up to this many yuan are rounding, not errors (tables round to 0.01 yuan).
    pub tolerance: Num,
    /// What each item's unit price is compared against.
    pub base: PriceBase,
    /// 综合单价 above base by more than this is `unbalanced_high`.
    pub unbalanced_high: Threshold,
    /// 综合单价 below base by more than this is `unbalanced_low`.
    pub unbalanced_low: Threshold,
    /// `abnormally_low` when the bid total is below this percent of the control price…
    pub abnormally_low_control_percent: Num,
    /// …and below this percent of the mean of valid bids.
    pub abnormally_low_mean_percent: Num,
    /// Two bids sharing at least this many identical errors are reported as `shared_errors`.
    pub shared_errors_min: usize,
    /// …or identical unit prices (differing from the control price) on at least this percent
    /// of the tender's items.
    pub identical_prices_percent: Num,
    /// Information price list (信息价) for main materials; empty means the tender's own
    /// material prices.
    pub information_prices: Vec<InformationPrice>,
}

impl Default for ClearingConfig {
    fn default() -> ClearingConfig {
        let num = |text: &str| Num::parse(text).expect("constant");
        ClearingConfig {
            tolerance: num("0.01"),
            base: PriceBase::ControlPrice,
            unbalanced_high: Threshold::Percent(num("20")),
            unbalanced_low: Threshold::Percent(num("20")),
            abnormally_low_control_percent: num("85"),
            abnormally_low_mean_percent: num("90"),
            shared_errors_min: 2,
            identical_prices_percent: num("30"),
            information_prices: Vec::new(),
        }
    }
}

/// The base of the per-item comparison (评审基准).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceBase {
    /// The tender's control unit price (招标控制价综合单价).
    ControlPrice,
    /// Mean of the valid bids after dropping the `drop_high` highest and `drop_low` lowest.
    Average {
        drop_high: usize,
        drop_low: usize,
    },
    Lowest,
    SecondLowest,
    /// One named bid.
    Bidder(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    Percent(Num),
    Yuan(Num),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InformationPrice {
    pub name: String,
    #[serde(default)]
    pub unit: String,
    pub price: Num,
}

/// Every kind of finding; the snake_case names are the ones in issue 7 and the report.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    MissingItem,
    ExtraItem,
    ChangedCode,
    ChangedName,
    ChangedUnit,
    ChangedQuantity,
    ProvisionalSumChanged,
    FeeRateChanged,
    AboveControlPrice,
    LineTotalMismatch,
    UnitPriceBreakdownMismatch,
    SumMismatch,
    FeeAmountMismatch,
    ZeroOrNegativePrice,
    UnbalancedHigh,
    UnbalancedLow,
    AbnormallyLow,
    SharedErrors,
}

impl FindingKind {
    pub const ALL: [FindingKind; 18] = [
        FindingKind::MissingItem,
        FindingKind::ExtraItem,
        FindingKind::ChangedCode,
        FindingKind::ChangedName,
        FindingKind::ChangedUnit,
        FindingKind::ChangedQuantity,
        FindingKind::ProvisionalSumChanged,
        FindingKind::FeeRateChanged,
        FindingKind::AboveControlPrice,
        FindingKind::LineTotalMismatch,
        FindingKind::UnitPriceBreakdownMismatch,
        FindingKind::SumMismatch,
        FindingKind::FeeAmountMismatch,
        FindingKind::ZeroOrNegativePrice,
        FindingKind::UnbalancedHigh,
        FindingKind::UnbalancedLow,
        FindingKind::AbnormallyLow,
        FindingKind::SharedErrors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::MissingItem => "missing_item",
            FindingKind::ExtraItem => "extra_item",
            FindingKind::ChangedCode => "changed_code",
            FindingKind::ChangedName => "changed_name",
            FindingKind::ChangedUnit => "changed_unit",
            FindingKind::ChangedQuantity => "changed_quantity",
            FindingKind::ProvisionalSumChanged => "provisional_sum_changed",
            FindingKind::FeeRateChanged => "fee_rate_changed",
            FindingKind::AboveControlPrice => "above_control_price",
            FindingKind::LineTotalMismatch => "line_total_mismatch",
            FindingKind::UnitPriceBreakdownMismatch => "unit_price_breakdown_mismatch",
            FindingKind::SumMismatch => "sum_mismatch",
            FindingKind::FeeAmountMismatch => "fee_amount_mismatch",
            FindingKind::ZeroOrNegativePrice => "zero_or_negative_price",
            FindingKind::UnbalancedHigh => "unbalanced_high",
            FindingKind::UnbalancedLow => "unbalanced_low",
            FindingKind::AbnormallyLow => "abnormally_low",
            FindingKind::SharedErrors => "shared_errors",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            FindingKind::MissingItem => "漏项",
            FindingKind::ExtraItem => "增项",
            FindingKind::ChangedCode => "项目编码改动",
            FindingKind::ChangedName => "项目名称改动",
            FindingKind::ChangedUnit => "计量单位改动",
            FindingKind::ChangedQuantity => "工程量改动",
            FindingKind::ProvisionalSumChanged => "暂列金额/暂估价改动",
            FindingKind::FeeRateChanged => "不可竞争费费率改动",
            FindingKind::AboveControlPrice => "超最高投标限价",
            FindingKind::LineTotalMismatch => "合价计算错误",
            FindingKind::UnitPriceBreakdownMismatch => "综合单价组成不符",
            FindingKind::SumMismatch => "汇总错误",
            FindingKind::FeeAmountMismatch => "费用金额计算错误",
            FindingKind::ZeroOrNegativePrice => "零价或负价",
            FindingKind::UnbalancedHigh => "不平衡报价（偏高）",
            FindingKind::UnbalancedLow => "不平衡报价（偏低）",
            FindingKind::AbnormallyLow => "投标报价异常偏低",
            FindingKind::SharedErrors => "雷同错误/雷同报价",
        }
    }

    /// Arithmetic findings carry a correction.
    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            FindingKind::LineTotalMismatch
                | FindingKind::UnitPriceBreakdownMismatch
                | FindingKind::SumMismatch
                | FindingKind::FeeAmountMismatch
                | FindingKind::ZeroOrNegativePrice
        )
    }
}

/// One result of the clearing: what was expected, what the bid says, and the rule behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Finding {
    pub kind: FindingKind,
    /// 投标人 (for `shared_errors`: the bidders joined by 、).
    pub bidder: String,
    /// 单位工程.
    pub unit: String,
    /// 项目编码, or the fee line's name where it has no code.
    pub item_code: String,
    pub item_name: String,
    pub expected: String,
    pub actual: String,
    /// The clause or rule, e.g. "GB 50500-2013 第 3.1.6 条".
    pub rule: String,
    /// Sheet and row in the bid, when known.
    #[serde(default)]
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
}

/// The proposed arithmetic correction (算术性修正) of one finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Correction {
    /// Which value is corrected (合价, 综合单价, 金额, …).
    pub field: String,
    pub from: String,
    pub to: String,
    /// Change of the bid total caused by this correction alone.
    pub delta: String,
    /// The bid total after every correction of this bid.
    pub corrected_bid_total: String,
    pub note: String,
}

/// Everything a run returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClearingResult {
    pub findings: Vec<Finding>,
    pub analyses: Analyses,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Analyses {
    /// 投标报价对比.
    pub price_comparison: Vec<BidPrice>,
    /// 费用构成, per bid and unit project.
    pub cost_composition: Vec<CostComposition>,
    /// 清单子目提取与单价对比 (one row per tender item).
    pub items: Vec<ItemComparison>,
    /// 措施项目费对比.
    pub measures: Vec<MeasureComparison>,
    /// 主要材料价格分析.
    pub materials: Vec<MaterialComparison>,
    /// Description of the comparison base used for the item analysis.
    pub base: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BidPrice {
    pub bidder: String,
    /// 投标报价 as stated (Σ of the unit projects' summary totals).
    pub stated_total: String,
    /// After the arithmetic corrections.
    pub corrected_total: String,
    /// Percent of the control price (corrected total).
    pub percent_of_control: String,
    /// 1 = lowest corrected total.
    pub rank: usize,
    /// Not above the control price.
    pub valid: bool,
    pub units: Vec<UnitPrice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnitPrice {
    pub unit: String,
    pub stated_total: String,
    pub corrected_total: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CostComposition {
    pub bidder: String,
    /// Unit project, or 全部 for the whole bid.
    pub unit: String,
    /// 分部分项工程费.
    pub items: String,
    /// 措施项目费 (单价措施 + 总价措施).
    pub measures: String,
    /// 其中：安全文明施工费.
    pub safety: String,
    /// 其他项目费.
    pub others: String,
    /// 规费.
    pub regulatory_fees: String,
    /// 税金.
    pub tax: String,
    /// Σ 工程量 × 人工费 / 材料费 / 机械费 / 管理费和利润 over items with an analysis.
    pub labor: String,
    pub material: String,
    pub machinery: String,
    pub overhead_profit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ItemComparison {
    pub unit: String,
    pub code: String,
    pub name: String,
    pub item_unit: String,
    pub quantity: String,
    pub control_price: Option<String>,
    pub base: Option<String>,
    /// One entry per bid, in bid order; `None` where the bid lacks the item.
    pub prices: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeasureComparison {
    pub unit: String,
    pub name: String,
    pub control: Option<String>,
    pub amounts: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MaterialComparison {
    pub name: String,
    pub material_unit: String,
    /// Information price or the tender's price.
    pub reference: Option<String>,
    /// Per bid: the (first) unit price it used for this material.
    pub prices: Vec<Option<String>>,
    /// Per bid: deviation from the reference in percent.
    pub deviations: Vec<Option<String>>,
}

/// The answer of `POST /api/projects/{number}/clearing`: the result and where the reports were
/// stored in the project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClearingRun {
    pub result: ClearingResult,
    pub bidders: Vec<String>,
    /// Project-relative paths of the stored reports (.xlsx, .html).
    pub reports: Vec<String>,
}

/// The body of `POST /api/projects/{number}/clearing`: files already uploaded to the project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClearingRequest {
    /// Project-relative path of the tender workbook (or JSON bill).
    pub tender: String,
    pub bids: Vec<BidFile>,
    #[serde(default)]
    pub config: ClearingConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BidFile {
    pub bidder: String,
    pub path: String,
}
