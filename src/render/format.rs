//! Localized formatting of durations and times for the reader's language: en, fr, de, es,
//! ja, pt, it, nl, ru, pl, sv, da, nb, fi, ko, zh (Simplified) and zh-Hant; anything else reads
//! as English.
//!
//! Consumes plain values (seconds, a `jiff::Timestamp` and a time zone) and a language/region;
//! produces display strings. Each language is one row of [`STYLES`] (names of days and months,
//! date patterns, clock, duration units), following the usual conventions of the language
//! (CLDR's full and short formats): a table rather than a locale-data crate, because the
//! notifications need only these few patterns and ICU's data would outweigh the rest of the
//! binary. Numbers in the mails (pages, counts) are small integers and need no grouping.
//! Pure: no I/O, no errors, never panics. The Tera filters in [`super::filters`] are thin
//! wrappers around these functions.

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

/// The reader: language (`fr`; `zh-Hant` for Traditional Chinese) and region (`CA`) of the
/// recipient's culture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub language: String,
    pub region: Option<String>,
}

impl Reader {
    /// The first row of [`STYLES`] for the reader's language and region; English otherwise.
    fn style(&self) -> &'static Style {
        let find = |language: &str| {
            STYLES.iter().find(|s| {
                s.languages.iter().any(|l| l.eq_ignore_ascii_case(language))
                    && s.regions.is_none_or(|rs| rs.iter().any(|r| r.eq_ignore_ascii_case(self.region.as_deref().unwrap_or(""))))
            })
        };
        find(&self.language).or_else(|| find("en")).unwrap_or(&STYLES[0])
    }
}

/// How one language writes dates, times and durations. Patterns name their parts in braces:
/// `{wd}` weekday, `{d}`/`{dd}` day (`dd` two digits), `{m}`/`{mm}` month number,
/// `{month}` month name, `{y}` year, `{time}` the clock, `{zone}` the zone's abbreviation;
/// clocks use `{H}`/`{HH}` (24-hour), `{h}` (12-hour) and `{mm}` minutes.
struct Style {
    /// Language subtags (lower case), and `zh-Hant` for Traditional Chinese.
    languages: &'static [&'static str],
    /// Only for these regions (`""`: no region); `None`: any.
    regions: Option<&'static [&'static str]>,
    /// Monday first.
    weekdays: [&'static str; 7],
    /// In the form a full date uses (Russian and Polish genitive, Finnish partitive).
    months: [&'static str; 12],
    long: &'static str,
    short: &'static str,
    /// Before noon and from noon (the same pattern twice for a 24-hour clock).
    clock: [&'static str; 2],
    /// Hour, minute, second.
    units: [&'static str; 3],
    /// Between a number and its unit, and between the parts of a duration.
    unit_gap: &'static str,
    part_gap: &'static str,
}

const EN_WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const EN_MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const H24: [&str; 2] = ["{HH}:{mm}", "{HH}:{mm}"];
const HMS: [&str; 3] = ["h", "min", "s"];
const ZH_WEEKDAYS: [&str; 7] = ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"];
const NUMBERED_MONTHS: [&str; 12] = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"];
const NB_DA_WEEKDAYS: [&str; 7] = ["mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag"];

/// What most rows share: any region, day-first numeric dates, a 24-hour clock, `h min s`.
const BASE: Style = Style {
    languages: &[],
    regions: None,
    weekdays: EN_WEEKDAYS,
    months: EN_MONTHS,
    long: "",
    short: "{dd}/{mm}/{y} {time}",
    clock: H24,
    units: HMS,
    unit_gap: " ",
    part_gap: " ",
};

/// One row per language (and region where it matters); the first match wins.
static STYLES: [Style; 18] = [
    Style {
        languages: &["en"],
        regions: Some(&["", "US", "CA", "PH"]),
        long: "{wd}, {month} {d}, {y}, {time} ({zone})",
        short: "{m}/{d}/{y} {time}",
        clock: ["{h}:{mm} AM", "{h}:{mm} PM"],
        ..BASE
    },
    Style { languages: &["en"], long: "{wd} {d} {month} {y}, {time} ({zone})", ..BASE },
    Style {
        languages: &["fr"],
        weekdays: ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
        months: ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"],
        long: "{wd} {d} {month} {y} à {time} ({zone})",
        ..BASE
    },
    Style {
        languages: &["de"],
        weekdays: ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
        months: ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"],
        long: "{wd}, {d}. {month} {y}, {time} ({zone})",
        short: "{dd}.{mm}.{y} {time}",
        units: ["Std.", "Min.", "Sek."],
        ..BASE
    },
    Style {
        languages: &["es"],
        weekdays: ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"],
        months: [
            "enero",
            "febrero",
            "marzo",
            "abril",
            "mayo",
            "junio",
            "julio",
            "agosto",
            "septiembre",
            "octubre",
            "noviembre",
            "diciembre",
        ],
        long: "{wd}, {d} de {month} de {y}, {time} ({zone})",
        ..BASE
    },
    Style {
        languages: &["ja"],
        weekdays: ["月", "火", "水", "木", "金", "土", "日"],
        months: NUMBERED_MONTHS,
        long: "{y}年{m}月{d}日({wd}) {time} ({zone})",
        short: "{y}/{mm}/{dd} {time}",
        units: ["時間", "分", "秒"],
        unit_gap: "",
        part_gap: "",
        ..BASE
    },
    Style {
        languages: &["pt"],
        weekdays: ["segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"],
        months: [
            "janeiro",
            "fevereiro",
            "março",
            "abril",
            "maio",
            "junho",
            "julho",
            "agosto",
            "setembro",
            "outubro",
            "novembro",
            "dezembro",
        ],
        long: "{wd}, {d} de {month} de {y} às {time} ({zone})",
        ..BASE
    },
    Style {
        languages: &["it"],
        weekdays: ["lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"],
        months: [
            "gennaio",
            "febbraio",
            "marzo",
            "aprile",
            "maggio",
            "giugno",
            "luglio",
            "agosto",
            "settembre",
            "ottobre",
            "novembre",
            "dicembre",
        ],
        long: "{wd} {d} {month} {y}, {time} ({zone})",
        ..BASE
    },
    Style {
        languages: &["nl"],
        weekdays: ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"],
        months: [
            "januari",
            "februari",
            "maart",
            "april",
            "mei",
            "juni",
            "juli",
            "augustus",
            "september",
            "oktober",
            "november",
            "december",
        ],
        long: "{wd} {d} {month} {y} om {time} ({zone})",
        short: "{dd}-{mm}-{y} {time}",
        units: ["u", "min", "s"],
        ..BASE
    },
    Style {
        languages: &["ru"],
        weekdays: ["понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"],
        months: ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября", "декабря"],
        long: "{wd}, {d} {month} {y} г., {time} ({zone})",
        short: "{dd}.{mm}.{y} {time}",
        units: ["ч", "мин", "с"],
        ..BASE
    },
    Style {
        languages: &["pl"],
        weekdays: ["poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota", "niedziela"],
        months: [
            "stycznia",
            "lutego",
            "marca",
            "kwietnia",
            "maja",
            "czerwca",
            "lipca",
            "sierpnia",
            "września",
            "października",
            "listopada",
            "grudnia",
        ],
        long: "{wd}, {d} {month} {y}, {time} ({zone})",
        short: "{dd}.{mm}.{y} {time}",
        units: ["godz.", "min", "s"],
        ..BASE
    },
    Style {
        languages: &["sv"],
        weekdays: ["måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag"],
        months: ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober", "november", "december"],
        long: "{wd} {d} {month} {y} kl. {time} ({zone})",
        short: "{y}-{mm}-{dd} {time}",
        units: ["tim", "min", "s"],
        ..BASE
    },
    Style {
        languages: &["da"],
        weekdays: NB_DA_WEEKDAYS,
        months: ["januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober", "november", "december"],
        long: "{wd} den {d}. {month} {y} kl. {time} ({zone})",
        short: "{dd}.{mm}.{y} {time}",
        clock: ["{HH}.{mm}", "{HH}.{mm}"],
        units: ["t", "min.", "sek."],
        ..BASE
    },
    Style {
        languages: &["nb", "no", "nn"],
        weekdays: NB_DA_WEEKDAYS,
        months: ["januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober", "november", "desember"],
        long: "{wd} {d}. {month} {y} kl. {time} ({zone})",
        short: "{dd}.{mm}.{y} {time}",
        units: ["t", "min", "s"],
        ..BASE
    },
    Style {
        languages: &["fi"],
        weekdays: ["maanantai", "tiistai", "keskiviikko", "torstai", "perjantai", "lauantai", "sunnuntai"],
        months: [
            "tammikuuta",
            "helmikuuta",
            "maaliskuuta",
            "huhtikuuta",
            "toukokuuta",
            "kesäkuuta",
            "heinäkuuta",
            "elokuuta",
            "syyskuuta",
            "lokakuuta",
            "marraskuuta",
            "joulukuuta",
        ],
        long: "{wd} {d}. {month} {y} klo {time} ({zone})",
        short: "{d}.{m}.{y} {time}",
        clock: ["{H}.{mm}", "{H}.{mm}"],
        units: ["t", "min", "s"],
        ..BASE
    },
    Style {
        languages: &["ko"],
        weekdays: ["월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"],
        months: NUMBERED_MONTHS,
        long: "{y}년 {m}월 {d}일 {wd} {time} ({zone})",
        short: "{y}. {m}. {d}. {time}",
        clock: ["오전 {h}:{mm}", "오후 {h}:{mm}"],
        units: ["시간", "분", "초"],
        unit_gap: "",
        ..BASE
    },
    Style {
        languages: &["zh-Hant"],
        weekdays: ZH_WEEKDAYS,
        months: NUMBERED_MONTHS,
        long: "{y}年{m}月{d}日 {wd} {time} ({zone})",
        short: "{y}/{m}/{d} {time}",
        clock: ["上午{h}:{mm}", "下午{h}:{mm}"],
        units: ["小時", "分", "秒"],
        unit_gap: "",
        part_gap: "",
        ..BASE
    },
    Style {
        languages: &["zh"],
        weekdays: ZH_WEEKDAYS,
        months: NUMBERED_MONTHS,
        long: "{y}年{m}月{d}日{wd} {time} ({zone})",
        short: "{y}/{m}/{d} {time}",
        units: ["小时", "分", "秒"],
        unit_gap: "",
        part_gap: "",
        ..BASE
    },
];

/// Fills `{name}` placeholders from `value` in one pass (a value is never re-read as a
/// pattern); an unknown or unclosed placeholder is kept as written.
fn fill(pattern: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| value(&after[..close]).map(|v| (close, v))) {
            Some((close, v)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Formats a number of seconds for the reader.
pub fn duration(secs: u64, reader: &Reader, style: DurationStyle) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if style == DurationStyle::Clock {
        return if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") };
    }
    let st = reader.style();
    let [hour, min, sec] = st.units;
    let unit = |n: String, u: &str| format!("{n}{}{u}", st.unit_gap);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(unit(h.to_string(), hour));
    }
    if h > 0 || m > 0 {
        parts.push(unit(if h > 0 { format!("{m:02}") } else { m.to_string() }, min));
    }
    parts.push(unit(if h > 0 || m > 0 { format!("{s:02}") } else { s.to_string() }, sec));
    parts.join(st.part_gap)
}

/// True when `a` and `b` fall on the same calendar day in `tz`.
pub fn same_day(a: Timestamp, b: Timestamp, tz: &TimeZone) -> bool {
    a.to_zoned(tz.clone()).date() == b.to_zoned(tz.clone()).date()
}

/// Formats an instant in `tz` for the reader.
pub fn datetime(at: Timestamp, tz: &TimeZone, reader: &Reader, style: DateStyle) -> String {
    let zoned = at.to_zoned(tz.clone());
    let (year, month, day) = (zoned.year(), zoned.month(), zoned.day());
    let (hour, minute) = (zoned.hour(), zoned.minute());
    let st = reader.style();
    let clock = fill(st.clock[usize::from(hour >= 12)], |key| match key {
        "H" => Some(hour.to_string()),
        "HH" => Some(format!("{hour:02}")),
        "h" => Some((if hour % 12 == 0 { 12 } else { hour % 12 }).to_string()),
        "mm" => Some(format!("{minute:02}")),
        _ => None,
    });
    let pattern = match style {
        DateStyle::Time => return clock,
        DateStyle::Short => st.short,
        DateStyle::Long => st.long,
    };
    let weekday = usize::from(zoned.weekday().to_monday_zero_offset().unsigned_abs()).min(6);
    let month_index = usize::from(month.unsigned_abs()).saturating_sub(1).min(11);
    fill(pattern, |key| match key {
        "wd" => Some(st.weekdays[weekday].to_owned()),
        "d" => Some(day.to_string()),
        "dd" => Some(format!("{day:02}")),
        "m" => Some(month.to_string()),
        "mm" => Some(format!("{month:02}")),
        "month" => Some(st.months[month_index].to_owned()),
        "y" => Some(year.to_string()),
        "time" => Some(clock.clone()),
        "zone" => Some(tz.to_offset_info(at).abbreviation().to_owned()),
        _ => None,
    })
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
        assert_eq!(duration(65, &reader("ko", None), DurationStyle::Long), "1분 05초");
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
    fn long_dates_in_the_new_languages() {
        let at: Timestamp = "2011-02-11T01:29:39Z".parse().unwrap();
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let long = |language: &str, region: Option<&str>, tz: &TimeZone| datetime(at, tz, &reader(language, region), DateStyle::Long);
        assert_eq!(long("pt", Some("BR"), &paris), "sexta-feira, 11 de fevereiro de 2011 às 02:29 (CET)");
        assert_eq!(long("it", Some("IT"), &paris), "venerdì 11 febbraio 2011, 02:29 (CET)");
        assert_eq!(long("nl", Some("NL"), &paris), "vrijdag 11 februari 2011 om 02:29 (CET)");
        assert_eq!(long("ru", Some("RU"), &paris), "пятница, 11 февраля 2011 г., 02:29 (CET)");
        assert_eq!(long("pl", Some("PL"), &paris), "piątek, 11 lutego 2011, 02:29 (CET)");
        assert_eq!(long("sv", Some("SE"), &paris), "fredag 11 februari 2011 kl. 02:29 (CET)");
        assert_eq!(long("da", Some("DK"), &paris), "fredag den 11. februar 2011 kl. 02.29 (CET)");
        assert_eq!(long("nb", Some("NO"), &paris), "fredag 11. februar 2011 kl. 02:29 (CET)");
        assert_eq!(long("no", None, &paris), "fredag 11. februar 2011 kl. 02:29 (CET)");
        assert_eq!(long("fi", Some("FI"), &paris), "perjantai 11. helmikuuta 2011 klo 2.29 (CET)");
        let seoul = TimeZone::get("Asia/Seoul").unwrap();
        assert_eq!(long("ko", Some("KR"), &seoul), "2011년 2월 11일 금요일 오전 10:29 (KST)");
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(long("zh", Some("CN"), &shanghai), "2011年2月11日星期五 09:29 (CST)");
        let taipei = TimeZone::get("Asia/Taipei").unwrap();
        assert_eq!(long("zh-Hant", Some("TW"), &taipei), "2011年2月11日 星期五 上午9:29 (CST)");
    }

    #[test]
    fn short_dates_times_and_durations_in_the_new_languages() {
        let at: Timestamp = "2011-02-11T13:05:00Z".parse().unwrap();
        let short = |language: &str| datetime(at, &TimeZone::UTC, &reader(language, None), DateStyle::Short);
        assert_eq!(short("pt"), "11/02/2011 13:05");
        assert_eq!(short("nl"), "11-02-2011 13:05");
        assert_eq!(short("ru"), "11.02.2011 13:05");
        assert_eq!(short("sv"), "2011-02-11 13:05");
        assert_eq!(short("da"), "11.02.2011 13.05");
        assert_eq!(short("fi"), "11.2.2011 13.05");
        assert_eq!(short("ko"), "2011. 2. 11. 오후 1:05");
        assert_eq!(short("zh"), "2011/2/11 13:05");
        assert_eq!(short("zh-Hant"), "2011/2/11 下午1:05");
        let long = |language: &str| duration(3723, &reader(language, None), DurationStyle::Long);
        assert_eq!(long("ru"), "1 ч 02 мин 03 с");
        assert_eq!(long("pl"), "1 godz. 02 min 03 s");
        assert_eq!(long("sv"), "1 tim 02 min 03 s");
        assert_eq!(long("ko"), "1시간 02분 03초");
        assert_eq!(long("zh"), "1小时02分03秒");
        assert_eq!(long("zh-Hant"), "1小時02分03秒");
        assert_eq!(duration(65, &reader("da", None), DurationStyle::Long), "1 min. 05 sek.");
        assert_eq!(duration(65, &reader("xx", None), DurationStyle::Long), "1 min 05 s");
    }

    #[test]
    fn placeholders_fill_in_one_pass() {
        assert_eq!(fill("{a} {b} {c", |k| (k == "a").then(|| "{b}".to_owned())), "{b} {b} {c");
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
