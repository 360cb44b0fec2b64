//! Localized formatting of durations and times for the reader's language (en, fr, de, es,
//! ja; anything else reads as English).
//!
//! Consumes plain values (seconds, a `jiff::Timestamp` and a time zone) and a language/region;
//! produces display strings. Pure: no I/O, no errors, never panics. The Tera filters in
//! [`super::filters`] are thin wrappers around these functions.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// How a duration is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationStyle {
    /// `1 min 05 s`, `19 Min. 47 Sek.`, `1分05秒`.
    Long,
    /// `1:05`, `19:47`, `1:02:03` (subjects).
    Clock,
}

/// How a point in time is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateStyle {
    /// Weekday, date, time and zone: `Thursday, February 10, 2011, 8:29 PM (EST)`.
    Long,
    /// Numeric date and time: `2/10/2011 8:29 PM`, `10.02.2011 20:29`.
    Short,
    /// Time of day only: `8:29 PM`, `20:29`.
    Time,
}

/// The reader: language (`fr`) and region (`CA`) of the recipient's culture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub language: String,
    pub region: Option<String>,
}

impl Reader {
    fn lang(&self) -> Lang {
        match self.language.as_str() {
            "fr" => Lang::Fr,
            "de" => Lang::De,
            "es" => Lang::Es,
            "ja" => Lang::Ja,
            _ => Lang::En,
        }
    }

    /// Month-first dates and a 12-hour clock (`en` in the US, Canada, the Philippines or with
    /// no region).
    fn us_style(&self) -> bool {
        self.lang() == Lang::En && matches!(self.region.as_deref(), None | Some("US" | "CA" | "PH"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Fr,
    De,
    Es,
    Ja,
}

/// Formats a number of seconds for the reader.
pub fn duration(secs: u64, reader: &Reader, style: DurationStyle) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if style == DurationStyle::Clock {
        return if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") };
    }
    let (hour, min, sec, sep) = match reader.lang() {
        Lang::De => ("Std.", "Min.", "Sek.", " "),
        Lang::Ja => ("時間", "分", "秒", ""),
        Lang::En | Lang::Fr | Lang::Es => ("h", "min", "s", " "),
    };
    let unit = |n: String, u: &str| if sep.is_empty() { format!("{n}{u}") } else { format!("{n}{sep}{u}") };
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(unit(h.to_string(), hour));
    }
    if h > 0 || m > 0 {
        parts.push(unit(if h > 0 { format!("{m:02}") } else { m.to_string() }, min));
    }
    parts.push(unit(if h > 0 || m > 0 { format!("{s:02}") } else { s.to_string() }, sec));
    parts.join(sep)
}

const WEEKDAYS: [[&str; 7]; 5] = [
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
    ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
    ["月", "火", "水", "木", "金", "土", "日"],
];

const MONTHS: [[&str; 12]; 4] = [
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
    ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"],
    ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"],
    ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"],
];

/// Formats an instant in `tz` for the reader.
pub fn datetime(at: Timestamp, tz: &TimeZone, reader: &Reader, style: DateStyle) -> String {
    let zoned = at.to_zoned(tz.clone());
    let (year, month, day) = (zoned.year(), zoned.month(), zoned.day());
    let (hour, minute) = (zoned.hour(), zoned.minute());
    let lang = reader.lang();
    let us = reader.us_style();
    let clock = if us {
        let h12 = if hour % 12 == 0 { 12 } else { hour % 12 };
        format!("{h12}:{minute:02} {}", if hour < 12 { "AM" } else { "PM" })
    } else {
        format!("{hour:02}:{minute:02}")
    };
    match style {
        DateStyle::Time => clock,
        DateStyle::Short => match lang {
            Lang::En if us => format!("{month}/{day}/{year} {clock}"),
            Lang::De => format!("{day:02}.{month:02}.{year} {clock}"),
            Lang::Ja => format!("{year}/{month:02}/{day:02} {clock}"),
            Lang::En | Lang::Fr | Lang::Es => format!("{day:02}/{month:02}/{year} {clock}"),
        },
        DateStyle::Long => {
            let weekday = usize::from(zoned.weekday().to_monday_zero_offset().unsigned_abs());
            let month_index = usize::from(month.unsigned_abs()).saturating_sub(1).min(11);
            let zone = tz.to_offset_info(at).abbreviation().to_owned();
            let lang_index = lang as usize;
            let wd = WEEKDAYS[lang_index][weekday.min(6)];
            let date = match lang {
                Lang::En if us => format!("{wd}, {} {day}, {year}", MONTHS[0][month_index]),
                Lang::En => format!("{wd} {day} {} {year}", MONTHS[0][month_index]),
                Lang::Fr => format!("{wd} {day} {} {year} à", MONTHS[1][month_index]),
                Lang::De => format!("{wd}, {day}. {} {year},", MONTHS[2][month_index]),
                Lang::Es => format!("{wd}, {day} de {} de {year},", MONTHS[3][month_index]),
                Lang::Ja => format!("{year}年{month}月{day}日({wd})"),
            };
            match lang {
                Lang::En => format!("{date}, {clock} ({zone})"),
                _ => format!("{date} {clock} ({zone})"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(language: &str, region: Option<&str>) -> Reader {
        Reader { language: language.to_owned(), region: region.map(str::to_owned) }
    }

    #[test]
    fn durations_in_each_language() {
        let en = reader("en", Some("US"));
        assert_eq!(duration(1, &en, DurationStyle::Long), "1 s");
        assert_eq!(duration(65, &en, DurationStyle::Long), "1 min 05 s");
        assert_eq!(duration(3723, &en, DurationStyle::Long), "1 h 02 min 03 s");
        assert_eq!(duration(1187, &reader("de", None), DurationStyle::Long), "19 Min. 47 Sek.");
        assert_eq!(duration(42, &reader("de", Some("DE")), DurationStyle::Long), "42 Sek.");
        assert_eq!(duration(65, &reader("fr", Some("FR")), DurationStyle::Long), "1 min 05 s");
        assert_eq!(duration(95, &reader("es", None), DurationStyle::Long), "1 min 35 s");
        assert_eq!(duration(65, &reader("ja", None), DurationStyle::Long), "1分05秒");
        assert_eq!(duration(3600, &reader("ja", None), DurationStyle::Long), "1時間00分00秒");
        assert_eq!(duration(65, &reader("pt", None), DurationStyle::Long), "1 min 05 s");
    }

    #[test]
    fn clock_durations() {
        let any = reader("fr", None);
        assert_eq!(duration(0, &any, DurationStyle::Clock), "0:00");
        assert_eq!(duration(42, &any, DurationStyle::Clock), "0:42");
        assert_eq!(duration(1187, &any, DurationStyle::Clock), "19:47");
        assert_eq!(duration(3723, &any, DurationStyle::Clock), "1:02:03");
    }

    #[test]
    fn dates_in_each_language_and_zone() {
        let at: Timestamp = "2011-02-11T01:29:39Z".parse().unwrap();
        let toronto = TimeZone::get("America/Toronto").unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        assert_eq!(datetime(at, &toronto, &reader("en", Some("US")), DateStyle::Long), "Thursday, February 10, 2011, 8:29 PM (EST)");
        assert_eq!(datetime(at, &toronto, &reader("en", Some("GB")), DateStyle::Long), "Thursday 10 February 2011, 20:29 (EST)");
        assert_eq!(datetime(at, &paris, &reader("fr", Some("FR")), DateStyle::Long), "vendredi 11 février 2011 à 02:29 (CET)");
        assert_eq!(datetime(at, &paris, &reader("de", Some("DE")), DateStyle::Long), "Freitag, 11. Februar 2011, 02:29 (CET)");
        assert_eq!(datetime(at, &paris, &reader("es", Some("ES")), DateStyle::Long), "viernes, 11 de febrero de 2011, 02:29 (CET)");
        assert_eq!(datetime(at, &tokyo, &reader("ja", Some("JP")), DateStyle::Long), "2011年2月11日(金) 10:29 (JST)");
        assert_eq!(datetime(at, &TimeZone::UTC, &reader("en", None), DateStyle::Short), "2/11/2011 1:29 AM");
        assert_eq!(datetime(at, &paris, &reader("de", None), DateStyle::Short), "11.02.2011 02:29");
        assert_eq!(datetime(at, &tokyo, &reader("ja", None), DateStyle::Short), "2011/02/11 10:29");
        assert_eq!(datetime(at, &toronto, &reader("en", Some("US")), DateStyle::Time), "8:29 PM");
        assert_eq!(datetime(at, &toronto, &reader("fr", Some("CA")), DateStyle::Time), "20:29");
    }

    #[test]
    fn noon_and_midnight_on_a_12_hour_clock() {
        let us = reader("en", Some("US"));
        let noon: Timestamp = "2024-06-01T12:05:00Z".parse().unwrap();
        let midnight: Timestamp = "2024-06-01T00:05:00Z".parse().unwrap();
        assert_eq!(datetime(noon, &TimeZone::UTC, &us, DateStyle::Time), "12:05 PM");
        assert_eq!(datetime(midnight, &TimeZone::UTC, &us, DateStyle::Time), "12:05 AM");
    }
}
