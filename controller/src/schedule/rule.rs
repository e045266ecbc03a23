//! Schedule rules as time arithmetic: when a daily, weekly or monthly rule fires next, in China
//! Standard Time (Asia/Shanghai has had no daylight saving since 1991, so wall time is UTC+8).

use time::{Date, Month, OffsetDateTime, Time};
use witness_schemas::schedule::{NewSchedule, RuleKind};

use crate::bail;
use crate::clock::CHINA;
use crate::error::Result;

/// A checked rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    /// Minutes after midnight, China Standard Time.
    pub at_minute: u16,
    /// Weekly: 1 = Monday … 7 = Sunday.
    pub weekday: Option<u8>,
    /// Monthly: 1 … 31; a day the month lacks means its last day.
    pub month_day: Option<u8>,
}

const WEEKDAYS_ZH: [&str; 7] = ["一", "二", "三", "四", "五", "六", "日"];

impl Rule {
    /// Checks the rule part of a schedule; errors name the field.
    pub fn from_new(new: &NewSchedule) -> Result<Rule> {
        let at_minute = match (new.rule != RuleKind::Immediate, new.time.as_deref()) {
            (false, _) => 0,
            (true, None) => bail!(
                InvalidArgument,
                "缺少运行时间 time（HH:MM，北京时间）(time is required)"
            ),
            (true, Some(text)) => parse_time(text)?,
        };
        let weekday = match new.rule {
            RuleKind::Weekly => match new.weekday {
                Some(day @ 1..=7) => Some(day),
                other => bail!(
                    InvalidArgument,
                    "每周运行需要星期 weekday（1=周一 … 7=周日），收到 {other:?} (weekday must be 1..=7)"
                ),
            },
            _ => None,
        };
        let month_day = match new.rule {
            RuleKind::Monthly => match new.month_day {
                Some(day @ 1..=31) => Some(day),
                other => bail!(
                    InvalidArgument,
                    "每月运行需要日期 month_day（1 … 31；超过当月天数按月末最后一天），收到 {other:?} (month_day must be 1..=31)"
                ),
            },
            _ => None,
        };
        Ok(Rule {
            kind: new.rule,
            at_minute,
            weekday,
            month_day,
        })
    }

    fn at(&self) -> Time {
        Time::from_hms((self.at_minute / 60) as u8, (self.at_minute % 60) as u8, 0)
            .unwrap_or(Time::MIDNIGHT)
    }

    /// Whether the rule fires on this (China Standard Time) date.
    fn fires_on(&self, date: Date) -> bool {
        match self.kind {
            RuleKind::Immediate => false,
            RuleKind::Daily => true,
            RuleKind::Weekly => Some(date.weekday().number_from_monday()) == self.weekday,
            RuleKind::Monthly => {
                let wanted = self.month_day.unwrap_or(1);
                let last = days_in_month(date.year(), date.month());
                date.day() == wanted.min(last)
            }
        }
    }

    /// The first fire instant strictly after `t`; none for `immediate` (it fires once, when
    /// saved, and is handled by the scheduler).
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        if self.kind == RuleKind::Immediate {
            return None;
        }
        let local = t.to_offset(CHINA);
        let mut date = local.date();
        // Every rule fires at least once in any 31 consecutive days; 62 is a safe bound.
        for _ in 0..62 {
            if self.fires_on(date) {
                let instant = date.with_time(self.at()).assume_offset(CHINA);
                if instant > local {
                    return Some(instant);
                }
            }
            date = date.next_day()?;
        }
        None
    }

    /// The fire instants in `(since, now]`: the latest one and how many there were. A run fires
    /// only for the latest; the others are the ones missed while the appliance was off.
    pub fn due_between(
        &self,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<(OffsetDateTime, u64)> {
        let mut latest = None;
        let mut count = 0u64;
        let mut cursor = since;
        while let Some(next) = self.next_after(cursor) {
            if next > now {
                break;
            }
            latest = Some(next);
            count += 1;
            cursor = next;
        }
        latest.map(|l| (l, count))
    }

    /// The rule in words, e.g. 每月最后一天 02:00.
    pub fn describe_zh(&self) -> String {
        let time = format!("{:02}:{:02}", self.at_minute / 60, self.at_minute % 60);
        match self.kind {
            RuleKind::Immediate => "立即（保存后运行一次）".to_string(),
            RuleKind::Daily => format!("每天 {time}"),
            RuleKind::Weekly => {
                let day = self.weekday.unwrap_or(1).clamp(1, 7) as usize;
                format!("每周{} {time}", WEEKDAYS_ZH[day - 1])
            }
            RuleKind::Monthly => match self.month_day.unwrap_or(1) {
                31 => format!("每月最后一天 {time}"),
                day @ 29..=30 => {
                    format!("每月{day}日 {time}（无此日的月份在月末最后一天）")
                }
                day => format!("每月{day}日 {time}"),
            },
        }
    }

    /// `HH:MM` for storage and the API.
    pub fn time_text(&self) -> String {
        format!("{:02}:{:02}", self.at_minute / 60, self.at_minute % 60)
    }
}

/// Parses `HH:MM` (24-hour, China Standard Time) into minutes after midnight.
pub fn parse_time(text: &str) -> Result<u16> {
    let bad = || {
        crate::err!(
            InvalidArgument,
            "运行时间 {text:?} 无效：应为 HH:MM（24 小时制，北京时间），如 02:00 (time must be HH:MM)"
        )
    };
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 || text.trim().len() != 5 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn days_in_month(year: i32, month: Month) -> u8 {
    month.length(year)
}
