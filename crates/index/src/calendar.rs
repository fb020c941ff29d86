//! Working days (methodology §2): Monday to Friday, minus public holidays and official days
//! off, plus any weekend day the government declared a make-up working day.
//!
//! Elapsed working days of a completed timing = the number of working days d with
//! submitted_on < d <= completed_on; same-day completion is 0. Answered in O(1) from prefix
//! sums, since a rebuild asks it millions of times.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Weekday};

/// What the calendar says about a date, when it is not an ordinary weekday or weekend day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// A weekday on which public offices are closed.
    Holiday,
    /// A Saturday or Sunday on which public offices work (a make-up day for a swap).
    WorkingDay,
}

/// A problem in a calendar file, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for CalendarError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "holiday calendar line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for CalendarError {}

/// A working-day calendar over a bounded range of dates.
#[derive(Debug, Clone)]
pub struct WorkingCalendar {
    exceptions: BTreeMap<NaiveDate, Exception>,
    first: NaiveDate,
    /// cumulative[i] = working days in [first, first + i days].
    cumulative: Vec<u32>,
}

/// The built-in calendar: Vietnam's public holidays, official days off and make-up working
/// days, 2020-2027 (reference/holidays-vn.csv; sources and caveats in docs/holidays.md).
const VIETNAM_CSV: &str = include_str!("../reference/holidays-vn.csv");

/// The years the built-in calendar covers. Outside them a date is treated as an ordinary
/// weekday or weekend day, which overstates working days in holiday periods.
pub const VIETNAM_YEARS: std::ops::RangeInclusive<i32> = 2020..=2027;

impl WorkingCalendar {
    /// The built-in Vietnamese calendar, precomputed for 2015-2040.
    pub fn vietnam() -> Result<Self, CalendarError> {
        let first = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or(NaiveDate::MIN);
        let last = NaiveDate::from_ymd_opt(2040, 12, 31).unwrap_or(NaiveDate::MIN);
        Self::from_csv(VIETNAM_CSV, first, last)
    }

    /// Builds a calendar from exceptions, precomputed for `first..=last`; dates outside the
    /// range are still answered, by counting.
    pub fn new(
        exceptions: BTreeMap<NaiveDate, Exception>,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Self {
        let mut calendar = WorkingCalendar {
            exceptions,
            first,
            cumulative: Vec::new(),
        };
        let mut total = 0u32;
        let mut day = first;
        while day <= last {
            total += u32::from(calendar.is_working_day(day));
            calendar.cumulative.push(total);
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        calendar
    }

    /// Parses the CSV format of `reference/holidays-vn.csv` (`date,kind,name,source`, kind
    /// `holiday` or `working_day`). A holiday on a weekend or a working day on a weekday is
    /// refused: it would mean the file says something other than what its author meant.
    pub fn from_csv(text: &str, first: NaiveDate, last: NaiveDate) -> Result<Self, CalendarError> {
        let mut exceptions = BTreeMap::new();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let err = |message: String| CalendarError { line, message };
            let record = record.map_err(|e| err(e.to_string()))?;
            let date_text = record.get(0).unwrap_or("").trim();
            let date = NaiveDate::parse_from_str(date_text, "%Y-%m-%d")
                .map_err(|e| err(format!("date {date_text:?}: {e}")))?;
            let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
            let kind = match record.get(1).unwrap_or("").trim() {
                "holiday" if weekend => {
                    return Err(err(format!(
                        "{date} is a {}: only weekdays can be holidays",
                        date.weekday()
                    )))
                }
                "holiday" => Exception::Holiday,
                "working_day" if !weekend => {
                    return Err(err(format!(
                        "{date} is a weekday: only weekends can be working days"
                    )))
                }
                "working_day" => Exception::WorkingDay,
                other => return Err(err(format!("kind {other:?}: use holiday or working_day"))),
            };
            if exceptions.insert(date, kind).is_some() {
                return Err(err(format!("{date} appears twice")));
            }
        }
        Ok(Self::new(exceptions, first, last))
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        match self.exceptions.get(&day) {
            Some(Exception::Holiday) => false,
            Some(Exception::WorkingDay) => true,
            None => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    fn index(&self, day: NaiveDate) -> Option<usize> {
        let offset = usize::try_from((day - self.first).num_days()).ok()?;
        (offset < self.cumulative.len()).then_some(offset)
    }

    /// Working days d with `from` < d <= `to`; 0 when `to` <= `from`.
    pub fn elapsed(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        if to <= from {
            return 0;
        }
        if let (Some(a), Some(b)) = (self.index(from), self.index(to)) {
            if let (Some(ca), Some(cb)) = (self.cumulative.get(a), self.cumulative.get(b)) {
                return cb - ca;
            }
        }
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn calendar(csv: &str) -> WorkingCalendar {
        WorkingCalendar::from_csv(csv, d(2024, 1, 1), d(2026, 12, 31)).unwrap()
    }

    const HEADER: &str = "date,kind,name,source\n";

    #[test]
    fn counts_days_after_submission_up_to_completion() {
        let c = calendar(HEADER);
        // Mon 2025-09-01 -> Fri 2025-09-05: Tue, Wed, Thu, Fri = 4 (no holidays given).
        assert_eq!(c.elapsed(d(2025, 9, 1), d(2025, 9, 5)), 4);
        // Same day: 0. Completion before submission: 0.
        assert_eq!(c.elapsed(d(2025, 9, 1), d(2025, 9, 1)), 0);
        assert_eq!(c.elapsed(d(2025, 9, 5), d(2025, 9, 1)), 0);
        // Fri -> next Mon: Sat and Sun do not count, Mon does = 1.
        assert_eq!(c.elapsed(d(2025, 9, 5), d(2025, 9, 8)), 1);
    }

    #[test]
    fn holidays_are_skipped_and_make_up_saturdays_count() {
        let c = calendar(&format!(
            "{HEADER}2025-09-01,holiday,National Day (adjacent),x\n2025-09-02,holiday,National Day,x\n\
             2025-08-30,working_day,make-up,x\n"
        ));
        // Fri 2025-08-29 -> Wed 2025-09-03: Sat 30 (make-up, counts), Sun 31 (no),
        // Mon 1 (holiday), Tue 2 (holiday), Wed 3 (counts) = 2.
        assert_eq!(c.elapsed(d(2025, 8, 29), d(2025, 9, 3)), 2);
        assert!(c.is_working_day(d(2025, 8, 30)));
        assert!(!c.is_working_day(d(2025, 9, 2)));
    }

    #[test]
    fn prefix_sums_agree_with_counting_everywhere() {
        let c = calendar(&format!(
            "{HEADER}2025-01-01,holiday,New Year,x\n2025-04-30,holiday,Reunification,x\n"
        ));
        let outside = WorkingCalendar::from_csv(
            &format!("{HEADER}2025-01-01,holiday,New Year,x\n2025-04-30,holiday,Reunification,x\n"),
            d(2030, 1, 1),
            d(2030, 1, 2),
        )
        .unwrap();
        let start = d(2024, 12, 1);
        for a in 0..70 {
            for len in [0, 1, 3, 7, 30, 120] {
                let from = start + chrono::Duration::days(a);
                let to = from + chrono::Duration::days(len);
                assert_eq!(
                    c.elapsed(from, to),
                    outside.elapsed(from, to),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn the_built_in_calendar_knows_2025() {
        let c = WorkingCalendar::vietnam().unwrap();
        // Tet 2025: Mon 27 Jan to Fri 31 Jan off. Fri 24 Jan -> Mon 3 Feb: only Mon 3 counts.
        assert_eq!(c.elapsed(d(2025, 1, 24), d(2025, 2, 3)), 1);
        // Sat 26 Apr 2025 was a make-up working day; 30 Apr, 1 May and 2 May were off.
        assert!(c.is_working_day(d(2025, 4, 26)));
        // Fri 25 Apr -> Mon 5 May: Sat 26 (works), Mon 28, Tue 29, Mon 5 = 4.
        assert_eq!(c.elapsed(d(2025, 4, 25), d(2025, 5, 5)), 4);
        // National Day 2025: Mon 1 and Tue 2 Sep off.
        assert_eq!(c.elapsed(d(2025, 8, 29), d(2025, 9, 3)), 1);
    }

    #[test]
    fn the_built_in_calendar_covers_every_year_it_claims() {
        let c = WorkingCalendar::vietnam().unwrap();
        for year in VIETNAM_YEARS {
            // New Year's Day, Reunification Day, Labour Day and National Day are off
            // whenever they fall on a weekday.
            for (m, day) in [(1, 1), (4, 30), (5, 1), (9, 2)] {
                let date = d(year, m, day);
                if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                    assert!(!c.is_working_day(date), "{date} should be a holiday");
                }
            }
            // Working days per year, counted independently from the CSV when it was added:
            // 2020 252, 2021 250, 2022 249, 2023 249, 2024 251, 2025 250, 2026 250, 2027 250.
            let expected = [252, 250, 249, 249, 251, 250, 250, 250];
            let days = c.elapsed(d(year - 1, 12, 31), d(year, 12, 31));
            assert_eq!(days, expected[(year - 2020) as usize], "{year}");
        }
    }

    #[test]
    fn contradictory_files_are_refused_with_their_line() {
        let err = WorkingCalendar::from_csv(
            &format!("{HEADER}2025-09-06,holiday,x,x\n"),
            d(2025, 1, 1),
            d(2025, 12, 31),
        )
        .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("Sat"), "{err}");
        assert!(WorkingCalendar::from_csv(
            &format!("{HEADER}2025-09-05,working_day,x,x\n"),
            d(2025, 1, 1),
            d(2025, 12, 31)
        )
        .is_err());
        assert!(WorkingCalendar::from_csv(
            &format!("{HEADER}2025-09-05,party,x,x\n"),
            d(2025, 1, 1),
            d(2025, 12, 31)
        )
        .is_err());
        assert!(WorkingCalendar::from_csv(
            &format!("{HEADER}2025-09-05,holiday,x,x\n2025-09-05,holiday,y,y\n"),
            d(2025, 1, 1),
            d(2025, 12, 31)
        )
        .is_err());
        assert!(WorkingCalendar::from_csv(
            &format!("{HEADER}2025-13-05,holiday,x,x\n"),
            d(2025, 1, 1),
            d(2025, 12, 31)
        )
        .is_err());
    }
}
