//! Partial dates: witnesses often remember only a year or a season, or "before the famine".
//! Text form (stored and typed): `[about|before|after ]YYYY[-MM[-DD]]`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::reason::Reason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Qualifier {
    Exact,
    About,
    Before,
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialDate {
    pub qualifier: Qualifier,
    pub year: u16,
    pub month: Option<u8>,
    pub day: Option<u8>,
}

// Errors are `Reason`s: a code the app translates, whose English names the problem without
// repeating the typed text (error messages can reach logs and must not carry interview content).

pub const MIN_YEAR: u16 = 1900;
pub const MAX_YEAR: u16 = 2100;

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

impl PartialDate {
    pub fn new(
        qualifier: Qualifier,
        year: u16,
        month: Option<u8>,
        day: Option<u8>,
    ) -> Result<Self, Reason> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(Reason::DateYearRange {
                min: MIN_YEAR,
                max: MAX_YEAR,
            });
        }
        if day.is_some() && month.is_none() {
            return Err(Reason::DateDayNeedsMonth);
        }
        if let Some(m) = month {
            if !(1..=12).contains(&m) {
                return Err(Reason::DateMonthRange);
            }
            if let Some(d) = day
                && (d == 0 || d > days_in_month(year, m))
            {
                return Err(Reason::DateNoSuchDay);
            }
        }
        Ok(PartialDate {
            qualifier,
            year,
            month,
            day,
        })
    }

    /// Earliest and latest full dates (year, month, day) the value can stand for, ignoring the
    /// qualifier; used to order and compare.
    pub fn bounds(&self) -> ((u16, u8, u8), (u16, u8, u8)) {
        let lo = (self.year, self.month.unwrap_or(1), self.day.unwrap_or(1));
        let hm = self.month.unwrap_or(12);
        let hi = (
            self.year,
            hm,
            self.day.unwrap_or(days_in_month(self.year, hm)),
        );
        (lo, hi)
    }
}

impl fmt::Display for PartialDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Qualifier::Exact => {}
            Qualifier::About => f.write_str("about ")?,
            Qualifier::Before => f.write_str("before ")?,
            Qualifier::After => f.write_str("after ")?,
        }
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

impl FromStr for PartialDate {
    type Err = Reason;
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let (qualifier, rest) = match s.split_once(char::is_whitespace) {
            Some((w, rest)) => {
                let q = match w.to_ascii_lowercase().as_str() {
                    "about" | "c." | "circa" | "~" => Qualifier::About,
                    "before" => Qualifier::Before,
                    "after" => Qualifier::After,
                    _ => return Err(Reason::DateQualifier),
                };
                (q, rest.trim())
            }
            None => (Qualifier::Exact, s),
        };
        let parts: Vec<&str> = rest.split('-').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(Reason::DateShape);
        }
        let num = |p: &str, len: usize| -> Result<u16, Reason> {
            if p.len() != len || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Reason::DateDigits);
            }
            Ok(p.parse().expect("digits"))
        };
        let year = num(parts[0], 4)?;
        let month = parts
            .get(1)
            .map(|p| num(p, 2))
            .transpose()?
            .map(|m| m as u8);
        let day = parts
            .get(2)
            .map(|p| num(p, 2))
            .transpose()?
            .map(|d| d as u8);
        PartialDate::new(qualifier, year, month, day)
    }
}

impl Serialize for PartialDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PartialDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A period such as a detention: either end may be unknown, not both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<PartialDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<PartialDate>,
}

impl FromStr for DateRange {
    type Err = Reason;
    /// `FROM..TO`, where either side may be empty: `about 1998..2001-05`, `..2003`.
    fn from_str(s: &str) -> Result<Self, Reason> {
        let (a, b) = s.split_once("..").ok_or(Reason::NotADateRange)?;
        let side = |x: &str| -> Result<Option<PartialDate>, Reason> {
            let x = x.trim();
            if x.is_empty() {
                Ok(None)
            } else {
                x.parse().map(Some)
            }
        };
        let r = DateRange {
            from: side(a)?,
            to: side(b)?,
        };
        r.check()?;
        Ok(r)
    }
}

impl DateRange {
    pub fn check(&self) -> Result<(), Reason> {
        match (self.from, self.to) {
            (None, None) => Err(Reason::DateRangeEmpty),
            (Some(f), Some(t)) if f.bounds().0 > t.bounds().1 => Err(Reason::DateRangeBackwards),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for DateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(a) = self.from {
            write!(f, "{a}")?;
        }
        f.write_str("..")?;
        if let Some(b) = self.to {
            write!(f, "{b}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_date() -> impl Strategy<Value = PartialDate> {
        (
            0..4u8,
            MIN_YEAR..=MAX_YEAR,
            proptest::option::of(1..=12u8),
            1..=31u8,
        )
            .prop_filter_map("valid", |(q, y, m, d)| {
                let q = [
                    Qualifier::Exact,
                    Qualifier::About,
                    Qualifier::Before,
                    Qualifier::After,
                ][q as usize];
                let day = m.and_then(|m| (d <= days_in_month(y, m)).then_some(d));
                PartialDate::new(q, y, m, day).ok()
            })
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(d in arb_date()) {
            let text = d.to_string();
            prop_assert_eq!(text.parse::<PartialDate>().unwrap(), d);
        }

        #[test]
        fn bounds_are_ordered(d in arb_date()) {
            let (lo, hi) = d.bounds();
            prop_assert!(lo <= hi);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,20}") {
            let _ = s.parse::<PartialDate>();
            let _ = s.parse::<DateRange>();
        }

        #[test]
        fn range_roundtrip(a in arb_date(), b in arb_date()) {
            let (a, b) = if a.bounds().0 <= b.bounds().1 { (a, b) } else { (b, a) };
            if let Ok(r) = format!("{a}..{b}").parse::<DateRange>() {
                prop_assert_eq!(r.to_string().parse::<DateRange>().unwrap(), r);
            }
        }
    }

    #[test]
    fn rejects_impossible_dates() {
        // Each problem has its own reason code (the app translates it).
        assert_eq!(
            "2001-02-29".parse::<PartialDate>(),
            Err(Reason::DateNoSuchDay)
        );
        assert!("2000-02-29".parse::<PartialDate>().is_ok());
        assert_eq!(
            "1998-13".parse::<PartialDate>(),
            Err(Reason::DateMonthRange)
        );
        assert_eq!("98".parse::<PartialDate>(), Err(Reason::DateDigits));
        assert_eq!(
            "1998-03-12-01".parse::<PartialDate>(),
            Err(Reason::DateShape)
        );
        assert_eq!(
            "1850".parse::<PartialDate>(),
            Err(Reason::DateYearRange {
                min: 1900,
                max: 2100
            })
        );
        assert_eq!(
            "someday 1998".parse::<PartialDate>(),
            Err(Reason::DateQualifier)
        );
        assert_eq!(
            PartialDate::new(Qualifier::Exact, 1998, None, Some(3)),
            Err(Reason::DateDayNeedsMonth)
        );
        assert_eq!(
            "2003..1998".parse::<DateRange>(),
            Err(Reason::DateRangeBackwards)
        );
        assert_eq!("..".parse::<DateRange>(), Err(Reason::DateRangeEmpty));
        assert_eq!("1998".parse::<DateRange>(), Err(Reason::NotADateRange));
        // The English the CLI prints is unchanged from before the codes.
        assert_eq!(
            "1998-13".parse::<PartialDate>().unwrap_err().to_string(),
            "not a partial date: month must be 01-12 (expected e.g. 1998, 1998-03, 1998-03-12, about 1998, before 2001-05, after 2003)"
        );
        let r: DateRange = "about 1998..".parse().unwrap();
        assert_eq!(r.to, None);
        assert_eq!(r.from.unwrap().qualifier, Qualifier::About);
    }
}
