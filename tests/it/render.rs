//! Integration tests for the render stage: the shipped templates rendered against the built-in
//! samples (exact subjects, numbers, names, escaping, locale fallback, time zone), `check` on
//! the shipped set and on broken admin folders, and templates/README.md kept in step with the
//! context.

use std::collections::BTreeSet;
use std::path::Path;

use callnote::event::Event;
use callnote::render::{RenderError, RenderSettings, Rendered, Templates, check, context};
use callnote::samples;

fn settings(zone: &str, default_locale: &str) -> RenderSettings {
    RenderSettings { timezone: jiff::tz::TimeZone::get(zone).unwrap(), default_locale: default_locale.to_owned() }
}

fn sample(name: &str) -> Event {
    samples::by_name(name).unwrap_or_else(|| panic!("no sample {name}")).event
}

fn render(name: &str) -> Rendered {
    Templates::builtin().render(&sample(name), &settings("America/Toronto", "en-US")).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn the_shipped_templates_pass_check() {
    let problems = check::check(&Templates::builtin());
    assert!(problems.is_empty(), "{}", problems.iter().map(|p| format!("{p}\n")).collect::<String>());
}

#[test]
fn every_kind_ships_every_language() {
    let templates = Templates::builtin();
    for kind in callnote::Kind::ALL {
        assert_eq!(
            templates.locales(kind),
            ["da", "de", "en", "es", "fi", "fr", "it", "ja", "ko", "nb", "nl", "pl", "pt", "ru", "sv", "zh-Hans", "zh-Hant"],
            "{kind}"
        );
    }
}

#[test]
fn english_subjects_name_the_caller_with_label_and_number() {
    assert_eq!(render("missed_call/resolved-mobile/en-US").subject, "Missed call from Priya Raman (mobile), (289) 555-0147");
    assert_eq!(render("voicemail/resolved-work/en-US").subject, "Voice mail from Mateo García Núñez (work), (425) 555-0110 (0:42)");
    assert_eq!(render("missed_call/extension/en-GB").subject, "Missed call from Siobhán Ní Bhriain (work), 4567");
    assert_eq!(
        render("call_forwarded/ambiguous/en-US").subject,
        "Call from (425) 555-0100 (2 possible callers) answered by Siobhán Ní Bhriain"
    );
    assert_eq!(render("team_pickup/unresolved/en-US").subject, "Call from (425) 555-0199 picked up by Olivia Chen");
    assert_eq!(render("call_not_forwarded/anonymous/en-US").subject, "Call from an anonymous caller not forwarded to (604) 555-0199");
    assert_eq!(render("fax/sip/en-US").subject, "Fax from Kwame Mensah (work), kwame.mensah@contoso.com (2 pages)");
    assert_eq!(render("fax/resolved-mobile/en-GB").subject, "Fax from Priya Raman (mobile), +1 289-555-0147 (1 page)");
}

#[test]
fn subjects_in_other_languages() {
    assert_eq!(render("missed_call/unresolved/de-DE").subject, "Verpasster Anruf von +1 425-555-0199");
    assert_eq!(render("missed_call/directory-unavailable/de-CH").subject, "Verpasster Anruf von 044 555 01 78");
    assert_eq!(render("missed_call/ambiguous/fr-FR").subject, "Appel manqué : +1 425-555-0100 (2 appelants possibles)");
    assert_eq!(render("voicemail/resolved-mobile/fr-FR").subject, "Message vocal : Amélie Dubois (portable), 06 12 34 56 78 (1:05)");
    assert_eq!(render("missed_call/anonymous/es-ES").subject, "Llamada perdida de un número oculto");
}

#[test]
fn text_and_html_show_name_number_and_directory_details() {
    let r = render("missed_call/resolved-mobile/en-US");
    assert_eq!(r.locale, "en");
    assert!(r.text.starts_with("Missed call\n\nFrom: Priya Raman (mobile), (289) 555-0147\nTitle: Product Manager\n"), "{}", r.text);
    assert!(r.text.contains("\nEmail: priya.raman@contoso.com\n"), "{}", r.text);
    assert!(!r.text.contains("Directory match") && !r.html.contains("Directory match"), "the label beside the name says it: {}", r.text);
    assert!(r.html.contains("<strong>Priya Raman</strong> <span style=\"color:#57606a;\">(mobile)</span>"), "{}", r.html);
    assert!(
        r.html.contains("<a href=\"tel:+12895550147\" style=\"color:#0b62d6;text-decoration:none;font-size:16px;\">(289) 555-0147</a>"),
        "{}",
        r.html
    );
    assert!(r.html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"), "{}", r.html);
    assert!(!r.html.contains("src=") && !r.html.contains("<link"), "no external assets");

    let sip = render("voicemail/sip/en-GB");
    assert!(sip.html.contains("href=\"sip:kwame.mensah@contoso.com\""), "{}", sip.html);
    assert!(sip.text.contains("Private: please do not forward.\nThe recording is attached.\n"), "{}", sip.text);
}

#[test]
fn unresolved_ambiguous_and_anonymous_say_so() {
    let unresolved = render("team_pickup/unresolved/en-US");
    assert!(unresolved.text.contains("From: (425) 555-0199\nThis number is not in the directory.\n"), "{}", unresolved.text);
    assert!(unresolved.text.contains("\nPicked up by: Olivia Chen (work), olivia.chen@contoso.com\n"), "{}", unresolved.text);

    let ambiguous = render("voicemail/ambiguous/de-DE");
    assert!(ambiguous.text.contains(
        "Von: +1 425-555-0100 (2 mögliche Anrufer)\nDiese Rufnummer gehört mehreren Personen im Verzeichnis:\n  - Olivia Chen (geschäftlich) <olivia.chen@contoso.com>\n  - Darnell Brooks (geschäftlich) <darnell.brooks@contoso.com>\n"
    ), "{}", ambiguous.text);
    assert!(ambiguous.html.contains("<li>Darnell Brooks <span style=\"color:#57606a;\">(geschäftlich)</span>"), "{}", ambiguous.html);
    assert!(ambiguous.text.contains("Dauer: 19 Min. 47 Sek.\n"), "{}", ambiguous.text);

    let anonymous = render("missed_call/anonymous/es-ES");
    assert!(anonymous.text.contains("De: Número oculto\nLa persona que llamó ocultó su número.\n"), "{}", anonymous.text);
    assert!(!anonymous.html.contains("href=\"tel:"), "{}", anonymous.html);
}

#[test]
fn html_escapes_a_malicious_display_name() {
    let mut event = sample("missed_call/resolved-mobile/en-US");
    event.caller.name = Some("<script>alert('x')</script> & Co".to_owned());
    event.subject = Some("\"><img src=x onerror=alert(1)>".to_owned());
    let r = Templates::builtin().render(&event, &settings("UTC", "en-US")).unwrap();
    assert!(r.html.contains("<strong>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co</strong>"), "{}", r.html);
    assert!(r.html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), "{}", r.html);
    assert!(!r.html.contains("<script") && !r.html.contains("<img"), "{}", r.html);
    assert_eq!(r.subject, "Missed call from <script>alert('x')</script> & Co (mobile), (289) 555-0147");
    assert!(r.text.contains("From: <script>alert('x')</script> & Co (mobile), (289) 555-0147\n"), "{}", r.text);
}

#[test]
fn locale_falls_back_from_region_to_language_to_default() {
    let templates = Templates::builtin();
    let toronto = settings("America/Toronto", "en-US");

    let r = render("voicemail/extension/fr-CA");
    assert_eq!(r.locale, "fr");
    assert!(r.text.contains("\nCourriel : siobhan.nibhriain@contoso.com\n"), "fr-CA words over fr: {}", r.text);
    assert!(r.text.contains("\nDe : Siobhán Ní Bhriain (bureau), 4567\n"), "{}", r.text);

    let mut event = sample("missed_call/resolved-mobile/en-US");
    event.recipient.culture = Some("fr-CA".to_owned());
    let r = templates.render(&event, &toronto).unwrap();
    assert_eq!((r.locale.as_str(), r.subject.as_str()), ("fr", "Appel manqué : Priya Raman (cellulaire), (289) 555-0147"));

    event.recipient.culture = Some("tr-TR".to_owned());
    assert_eq!(templates.render(&event, &toronto).unwrap().locale, "en");
    event.recipient.culture = None;
    let r = templates.render(&event, &settings("Europe/Berlin", "de-DE")).unwrap();
    assert_eq!((r.locale.as_str(), r.subject.as_str()), ("de", "Verpasster Anruf von Priya Raman (mobil), +1 289-555-0147"));
    event.recipient.culture = Some("xx-INVALID".to_owned());
    assert_eq!(templates.render(&event, &settings("UTC", "es-ES")).unwrap().locale, "es");
}

/// The cultures of the languages added beside en, fr, de, es and ja, each with a time zone
/// of its country.
const NEW_CULTURES: [(&str, &str); 13] = [
    ("pt-BR", "America/Sao_Paulo"),
    ("pt-PT", "Europe/Lisbon"),
    ("it-IT", "Europe/Rome"),
    ("nl-NL", "Europe/Amsterdam"),
    ("zh-CN", "Asia/Shanghai"),
    ("zh-TW", "Asia/Taipei"),
    ("ko-KR", "Asia/Seoul"),
    ("ru-RU", "Europe/Moscow"),
    ("pl-PL", "Europe/Warsaw"),
    ("sv-SE", "Europe/Stockholm"),
    ("da-DK", "Europe/Copenhagen"),
    ("nb-NO", "Europe/Oslo"),
    ("fi-FI", "Europe/Helsinki"),
];

/// Per new culture, one snapshot: the subject of every kind (a named and an anonymous
/// caller), then a voice mail (resolved caller with directory details, urgent, with a
/// subject) and a missed call from an ambiguous number in full, text and HTML.
#[test]
fn every_new_language_renders_every_kind() {
    let templates = Templates::builtin();
    for (culture, zone) in NEW_CULTURES {
        let settings = settings(zone, "en-US");
        let in_culture = |name: &str| {
            let mut event = sample(name);
            event.recipient.culture = Some(culture.to_owned());
            templates.render(&event, &settings).unwrap_or_else(|e| panic!("{culture} {name}: {e}"))
        };
        let mut out = String::new();
        for kind in callnote::Kind::ALL {
            for outcome in ["resolved-work", "anonymous"] {
                let name = samples::NAMES.iter().find(|n| n.starts_with(&format!("{kind}/{outcome}/"))).unwrap();
                let r = in_culture(name);
                out.push_str(&format!("{kind}/{outcome} [{}]: {}\n", r.locale, r.subject));
            }
        }
        for name in ["voicemail/resolved-mobile/fr-FR", "missed_call/ambiguous/fr-FR"] {
            let r = in_culture(name);
            out.push_str(&format!("\n===== {name}\nSubject: {}\n\n{}\n{}", r.subject, r.text, r.html));
        }
        insta::assert_snapshot!(format!("language__{culture}"), out);
    }
}

#[test]
fn chinese_and_portuguese_regions_pick_their_folder_and_words() {
    let templates = Templates::builtin();
    let mut event = sample("missed_call/resolved-mobile/en-US");
    let mut folder_and_label = |culture: &str| {
        event.recipient.culture = Some(culture.to_owned());
        let r = templates.render(&event, &settings("UTC", "en-US")).unwrap();
        let label = r.subject.split(['(', '（']).nth(1).and_then(|l| l.split([')', '）']).next()).unwrap_or_default().to_owned();
        (r.locale, label)
    };
    for (culture, folder, label) in [
        ("zh-TW", "zh-Hant", "行動電話"),
        ("zh-HK", "zh-Hant", "行動電話"),
        ("zh-MO", "zh-Hant", "行動電話"),
        ("zh-CN", "zh-Hans", "手机"),
        ("zh-SG", "zh-Hans", "手机"),
        ("zh", "zh-Hans", "手机"),
        ("zh-CHT", "zh-Hant", "行動電話"),
        ("pt-BR", "pt", "celular"),
        ("pt-PT", "pt", "telemóvel"),
        ("no", "nb", "mobil"),
        ("nn-NO", "nb", "mobil"),
    ] {
        assert_eq!(folder_and_label(culture), (folder.to_owned(), label.to_owned()), "{culture}");
    }
}

#[test]
fn every_language_file_translates_every_english_word() {
    fn keys(prefix: &str, value: &toml::Value, out: &mut BTreeSet<String>) {
        if let Some(table) = value.as_table() {
            for (k, v) in table {
                keys(&format!("{prefix}{k}."), v, out);
            }
        } else {
            out.insert(prefix.trim_end_matches('.').to_owned());
        }
    }
    let read = |name: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/_i18n").join(name);
        let mut out = BTreeSet::new();
        keys("", &std::fs::read_to_string(path).unwrap().parse::<toml::Table>().unwrap().into(), &mut out);
        out
    };
    let english = read("en.toml");
    for lang in ["da", "fi", "it", "ko", "nb", "nl", "pl", "pt", "ru", "sv", "zh-Hans", "zh-Hant"] {
        let words = read(&format!("{lang}.toml"));
        assert_eq!(english.difference(&words).collect::<Vec<_>>(), Vec::<&String>::new(), "{lang}.toml lacks these");
        assert_eq!(words.difference(&english).collect::<Vec<_>>(), Vec::<&String>::new(), "{lang}.toml has unknown keys");
    }
}

#[test]
fn japanese_rendering() {
    let r = Templates::builtin().render(&sample("fax/resolved-work/ja-JP"), &settings("Asia/Tokyo", "en-US")).unwrap();
    assert_eq!(r.locale, "ja");
    assert_eq!(r.subject, "FAX：佐藤 花子（勤務先） 03-5555-0123（3 ページ）");
    assert!(r.text.starts_with("新しい FAX\n\n発信者：佐藤 花子（勤務先） 03-5555-0123\n役職：購買部長\n"), "{}", r.text);
    assert!(r.text.contains("\n日時：2014年6月6日(金) 06:20 (JST)\nページ数：3\n"), "{}", r.text);
    assert!(r.html.contains("<html lang=\"ja\">") && r.html.contains("href=\"tel:+81355550123\""), "{}", r.html);
}

#[test]
fn times_are_shown_in_the_configured_zone() {
    let templates = Templates::builtin();
    let event = sample("call_forwarded/ambiguous/en-US");
    let toronto = templates.render(&event, &settings("America/Toronto", "en-US")).unwrap();
    assert!(toronto.text.contains("\nTime: Thursday, February 10, 2011, 8:29 PM (EST)\n"), "{}", toronto.text);
    let utc = templates.render(&event, &settings("UTC", "en-US")).unwrap();
    assert!(utc.text.contains("\nTime: Friday, February 11, 2011, 1:29 AM (UTC)\n"), "{}", utc.text);
}

#[test]
fn an_admin_folder_overlays_single_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "missed_call/fr/subject.txt", "Appel de {{ caller | phone(style=\"e164\") }}");
    write(dir.path(), "README.md", "notes");
    let templates = Templates::from_dir(dir.path()).unwrap();
    let r = templates.render(&sample("missed_call/ambiguous/fr-FR"), &settings("UTC", "en-US")).unwrap();
    assert_eq!(r.subject, "Appel de +14255550100");
    assert!(r.text.starts_with("Appel manqué\n"), "built-in body kept: {}", r.text);
    assert!(check::check(&templates).is_empty());
}

#[test]
fn check_locates_every_problem_in_a_broken_folder() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "missed_call/fr/subject.txt", "Appel manqué :\n  {{ caller.nom }}");
    write(dir.path(), "voicemail/de/body.txt", "Neue Nachricht\n{{ duration_secs | dauer }}");
    write(dir.path(), "fax/es/body.html", "<p>{% if pages %}{{ pages }}</p>");
    write(dir.path(), "_i18n/tr.toml", "from = \"Kimden\"\nto = 'x");
    write(dir.path(), "team_pickup/tr/subject.txt", "Arama");
    let shown: Vec<String> = check::check_dir(dir.path()).iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 6, "{shown:#?}");
    assert_eq!(shown[0], "_i18n/tr.toml:2:8: invalid TOML: invalid literal string, expected `'`");
    assert_eq!(shown[1], "fax/es/body.html:1:33: unexpected end of input");
    assert_eq!(shown[2], "voicemail/de/body.txt:2:20: unknown filter `dauer`");
    assert_eq!(shown[3], "team_pickup/tr/body.txt:1:1: missing: every locale folder needs subject.txt, body.txt, body.html");
    assert_eq!(shown[4], "team_pickup/tr/body.html:1:1: missing: every locale folder needs subject.txt, body.txt, body.html");
    assert!(
        shown[5].starts_with("missed_call/fr/subject.txt:2:13: field `nom` is not defined. Available fields: candidates, e164, ")
            && shown[5].ends_with(" (sample missed_call/resolved-work/es-MX)"),
        "{shown:#?}"
    );

    let problems = Templates::from_dir(dir.path()).unwrap_err();
    assert_eq!(problems.len(), 5, "load problems only: {problems:#?}");
}

#[test]
fn render_errors_carry_file_line_column_and_excerpt() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "_partials/party_short.txt", "{{ p.name }}\n{{ p.person.title }}");
    let (templates, problems) = Templates::from_dir_lenient(dir.path());
    assert!(problems.is_empty(), "{problems:?}");
    let err = templates.render(&sample("missed_call/unresolved/de-DE"), &settings("UTC", "en-US")).unwrap_err();
    let RenderError::Template(problem) = &err else { panic!("{err}") };
    assert_eq!((problem.file.as_str(), problem.line, problem.col), ("_partials/party_short.txt", 2, 13));
    assert_eq!(problem.message, "field `title` is not defined.");
    assert_eq!(problem.excerpt.as_deref(), Some("2 | {{ p.person.title }}\n  |             ^"));
    assert_eq!(err.problem(), Some(problem));
}

#[test]
fn an_unreadable_folder_is_a_problem_not_a_panic() {
    let problems = Templates::from_dir(Path::new("/nonexistent/callnote-templates")).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].to_string().starts_with(".:1:1: cannot read folder /nonexistent/callnote-templates: "), "{}", problems[0]);
}

/// The rows of the "Context variables" table in templates/README.md.
fn documented_variables() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/README.md")).unwrap();
    let table = readme.split("## Context variables").nth(1).expect("a Context variables section");
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let name = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
            assert_eq!(cells.len(), 3, "variable, type and example: {line}");
            assert!(cells.iter().all(|c| !c.trim_matches(['|', ' ']).is_empty()), "empty cell: {line}");
            Some(name.to_owned())
        })
        .collect()
}

#[test]
fn readme_lists_exactly_the_context_variables() {
    let templates = Templates::builtin();
    let settings = settings("UTC", "en-US");
    let mut seen = BTreeSet::new();
    for s in samples::all() {
        let json = templates.context_json(&s.event, &settings, "en").unwrap();
        seen.extend(context::variable_paths(&json));
    }
    // `target` and the callers of `calls` and `earlier_attempts` are documented as "same
    // fields as `caller`".
    let used: BTreeSet<String> = seen
        .into_iter()
        .map(|p| match ["target.", "calls[].caller.", "earlier_attempts[].caller."].iter().find_map(|pre| p.strip_prefix(pre)) {
            Some(rest) => format!("caller.{rest}"),
            None => p,
        })
        .collect();
    let documented = documented_variables();
    let undocumented: Vec<_> = used.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&used).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "missing from README: {undocumented:?}; in README but not in the context: {stale:?}"
    );
}

#[test]
fn every_sample_shows_the_number_and_the_resolved_name_in_both_parts() {
    let templates = Templates::builtin();
    let settings = settings("Europe/Paris", "en-US");
    for s in samples::all() {
        let r = templates.render(&s.event, &settings).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        let c = &s.event.caller;
        let shown: Vec<&str> = [&c.national, &c.international, &c.sip, &c.extension].into_iter().flatten().map(String::as_str).collect();
        if c.raw.is_some() {
            for part in [&r.subject, &r.text, &r.html] {
                assert!(shown.iter().any(|n| part.contains(n)), "{}: no caller number in {part}", s.name);
            }
        }
        if let Some(name) = c.name.as_deref() {
            for part in [&r.subject, &r.text, &r.html] {
                assert!(part.contains(name), "{}: no caller name in {part}", s.name);
            }
        }
        if s.event.caller.status == callnote::event::CallerStatus::Ambiguous {
            assert!(r.text.contains("Olivia Chen") && r.text.contains("Darnell Brooks"), "{}", s.name);
        }
        if let Some(target) = s.event.target.as_ref().and_then(|t| t.name.as_deref()) {
            assert!(r.subject.contains(target) && r.text.contains(target), "{}: no target", s.name);
        }
        assert!(!r.subject.is_empty() && !r.subject.contains('\n'), "{}", s.name);
        assert!(r.text.ends_with('\n') && !r.text.contains("\n\n\n"), "{}", s.name);
    }
}

#[test]
fn a_digest_says_how_many_calls_and_lists_each_time_and_number() {
    let r = render("missed_call_digest/resolved-mobile/en-US");
    assert_eq!(r.subject, "3 more calls from Priya Raman (mobile), (289) 555-0147");
    assert!(r.text.starts_with("More missed calls from the same caller\n\nFrom: Priya Raman (mobile), (289) 555-0147\n"), "{}", r.text);
    assert!(
        r.text.contains(
            "\nTime: Thursday, June 5, 2014, 10:09 AM (EDT)\nCalls:\n  - 10:05 AM – (289) 555-0147 (mobile)\n  \
             - 10:07 AM – (289) 555-0147 (mobile)\n  - 10:09 AM – (425) 555-0147 (work)\n"
        ),
        "{}",
        r.text
    );
    assert!(r.html.contains(">Calls</td>"), "{}", r.html);
    assert!(
        r.html.contains(
            "<div>10:05 AM – <a href=\"tel:+12895550147\" style=\"color:#0b62d6;text-decoration:none;\">(289) 555-0147</a> \
             <span style=\"color:#57606a;\">(mobile)</span></div>"
        ),
        "{}",
        r.html
    );
    assert!(r.html.contains("<a href=\"tel:+14255550147\" style=\"color:#0b62d6;text-decoration:none;\">(425) 555-0147</a>"), "{}", r.html);

    let unresolved = render("missed_call_digest/unresolved/es-ES");
    assert_eq!(unresolved.subject, "4 llamadas perdidas más de +1 425-555-0199");
    assert!(unresolved.text.contains("\nLlamadas:\n  - 10:05 – +1 425-555-0199\n"), "{}", unresolved.text);
    assert_eq!(unresolved.text.matches("  - ").count(), 4, "{}", unresolved.text);
}

#[test]
fn a_digest_in_french_and_japanese() {
    let paris = settings("Europe/Paris", "en-US");
    let r = Templates::builtin().render(&sample("missed_call_digest/resolved-work/fr-FR"), &paris).unwrap();
    assert_eq!(r.subject, "3 autres appels manqués : Élodie Marchand (bureau), 01 99 00 12 34");
    assert!(r.text.starts_with("Autres appels manqués du même appelant\n\nDe : Élodie Marchand (bureau), 01 99 00 12 34\n"), "{}", r.text);
    assert!(
        r.text.contains(
            "\nAppels :\n  - 16:05 – 01 99 00 12 34 (bureau)\n  - 16:07 – 01 99 00 12 34 (bureau)\n  - 16:09 – 01 99 00 12 34 (bureau)\n"
        ),
        "{}",
        r.text
    );
    let tokyo = settings("Asia/Tokyo", "en-US");
    let r = Templates::builtin().render(&sample("missed_call_digest/anonymous/ja-JP"), &tokyo).unwrap();
    assert_eq!(r.subject, "不在着信（さらに 2 件）：非通知");
    assert!(r.text.contains("\n着信：\n  - 23:05 – 非通知\n  - 23:07 – 非通知\n"), "{}", r.text);
}

#[test]
fn a_digest_of_one_call_and_calls_on_another_day() {
    let templates = Templates::builtin();
    let mut event = sample("missed_call_digest/resolved-mobile/en-US");
    event.calls[0].time = Some("2014-06-04T23:55:00Z".parse().unwrap()); // the evening before, in Toronto
    let r = templates.render(&event, &settings("America/Toronto", "en-US")).unwrap();
    assert!(r.text.contains("\nCalls:\n  - 6/4/2014 7:55 PM – (289) 555-0147 (mobile)\n  - 10:07 AM – "), "{}", r.text);
    event.calls[0].time = None;
    let r = templates.render(&event, &settings("America/Toronto", "en-US")).unwrap();
    assert!(r.text.contains("\nCalls:\n  - (289) 555-0147 (mobile)\n  - 10:07 AM – "), "a call without a time: {}", r.text);

    event.calls.truncate(1);
    let r = templates.render(&event, &settings("America/Toronto", "en-US")).unwrap();
    assert_eq!(r.subject, "1 more call from Priya Raman (mobile), (289) 555-0147");
    let r = templates
        .render(
            &{
                event.recipient.culture = Some("ru-RU".to_owned());
                event
            },
            &settings("Europe/Moscow", "en-US"),
        )
        .unwrap();
    assert_eq!(r.subject, "Ещё пропущенный звонок от Priya Raman (мобильный), +1 289-555-0147");
}

#[test]
fn a_digest_escapes_what_a_call_says_in_html() {
    let mut event = sample("missed_call_digest/unresolved/es-ES");
    let sip = callnote::event::Party {
        raw: Some("<b>x</b>@evil.example".to_owned()),
        kind: callnote::event::PartyKind::Sip,
        sip: Some("<b>x</b>@evil.example".to_owned()),
        ..Default::default()
    };
    event.calls[1].caller = sip;
    let r = Templates::builtin().render(&event, &settings("UTC", "en-US")).unwrap();
    assert!(
        r.html.contains("&lt;b&gt;x&lt;&#x2f;b&gt;@evil.example") || r.html.contains("&lt;b&gt;x&lt;/b&gt;@evil.example"),
        "{}",
        r.html
    );
    assert!(!r.html.contains("<b>x"), "{}", r.html);
    assert!(r.text.contains("  - 14:07 – <b>x</b>@evil.example\n"), "{}", r.text);
}

#[test]
fn a_voice_mail_says_when_its_caller_also_called_and_from_which_other_number() {
    let templates = Templates::builtin();
    let toronto = settings("America/Toronto", "en-US");
    let with = templates.render(&sample("voicemail/earlier-attempts/en-US"), &toronto).unwrap();
    assert!(
        with.text
            .contains("\nTime: Thursday, June 5, 2014, 5:20 PM (EDT)\nAlso called:\n  - 5:12 PM\n  - 5:16 PM – (425) 555-0147 (work)\n"),
        "the same number is not repeated: {}",
        with.text
    );
    assert!(with.html.contains(">Also called</td>") && with.html.contains("<div>5:12 PM</div>"), "{}", with.html);
    assert!(
        with.html.contains("<div>5:16 PM – <a href=\"tel:+14255550147\" style=\"color:#0b62d6;text-decoration:none;\">(425) 555-0147</a>"),
        "{}",
        with.html
    );
    let mut de = sample("voicemail/earlier-attempts/en-US");
    de.recipient.culture = Some("de-DE".to_owned());
    let r = templates.render(&de, &settings("Europe/Berlin", "en-US")).unwrap();
    assert!(r.text.contains("\nHat auch angerufen:\n  - 23:12\n  - 23:16 – +1 425-555-0147 (geschäftlich)\n"), "{}", r.text);

    // Without earlier attempts, the mail is exactly what it was before they existed.
    let mut without = sample("voicemail/earlier-attempts/en-US");
    without.earlier_attempts.clear();
    let plain = templates.render(&without, &toronto).unwrap();
    assert_eq!(plain.text, with.text.replace("Also called:\n  - 5:12 PM\n  - 5:16 PM – (425) 555-0147 (work)\n", ""));
    assert!(!plain.html.contains("Also called") && !plain.html.contains("5:12 PM"), "{}", plain.html);
    assert_eq!(plain.subject, with.subject);
}

#[test]
fn check_names_a_digest_template_that_uses_an_unknown_variable() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "missed_call_digest/en/body.txt", "{% for c in calls %}{{ c.number }}{% endfor %}");
    let shown: Vec<String> = check::check_dir(dir.path()).iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    assert!(
        shown[0].starts_with("missed_call_digest/en/body.txt:1:26: field `number` is not defined.")
            && shown[0].ends_with(" (sample missed_call_digest/resolved-work/fr-FR)"),
        "{shown:#?}"
    );
}
