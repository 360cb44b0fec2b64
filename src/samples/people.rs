//! The people and numbers the samples are made of (Contoso's directory, in five languages), and
//! the recipients of the samples, one or two per shipped language.
//! Numbers carry the formats libphonenumber gives them, written out by hand: samples never
//! call the number formatter, so they stay fixed whatever the dial plan.

use crate::event::{CallerStatus, Candidate, Party, PartyKind, PartySource, Person, PhoneLabel, Recipient};

/// A directory entry as the samples use it.
pub(crate) struct Someone {
    pub name: &'static str,
    pub given: &'static str,
    pub surname: &'static str,
    pub mail: &'static str,
    pub title: &'static str,
    pub department: &'static str,
    pub office: &'static str,
}

/// A number in its three written forms.
pub struct Number {
    pub e164: &'static str,
    pub national: &'static str,
    pub international: &'static str,
}

/// Who calls from the office (label work, `telephoneNumber`) and from a mobile, per language.
pub(crate) fn work_and_mobile(language: &str) -> [(Someone, Number); 2] {
    match language {
        "fr" => [
            (
                Someone {
                    name: "Élodie Marchand",
                    given: "Élodie",
                    surname: "Marchand",
                    mail: "elodie.marchand@contoso.com",
                    title: "Responsable des achats",
                    department: "Achats",
                    office: "Paris – La Défense",
                },
                Number { e164: "+33199001234", national: "01 99 00 12 34", international: "+33 1 99 00 12 34" },
            ),
            (
                Someone {
                    name: "Amélie Dubois",
                    given: "Amélie",
                    surname: "Dubois",
                    mail: "amelie.dubois@contoso.com",
                    title: "Chargée de clientèle",
                    department: "Ventes",
                    office: "Lyon",
                },
                Number { e164: "+33612345678", national: "06 12 34 56 78", international: "+33 6 12 34 56 78" },
            ),
        ],
        "de" => [
            (
                Someone {
                    name: "Lukas Brunner",
                    given: "Lukas",
                    surname: "Brunner",
                    mail: "lukas.brunner@contoso.com",
                    title: "Leiter Einkauf",
                    department: "Einkauf",
                    office: "Zürich",
                },
                Number { e164: "+41445550178", national: "044 555 01 78", international: "+41 44 555 01 78" },
            ),
            (
                Someone {
                    name: "Anneliese Vogt",
                    given: "Anneliese",
                    surname: "Vogt",
                    mail: "anneliese.vogt@contoso.com",
                    title: "Außendienst",
                    department: "Vertrieb",
                    office: "Berlin",
                },
                Number { e164: "+4915123456789", national: "01512 3456789", international: "+49 1512 3456789" },
            ),
        ],
        "es" => [
            (
                Someone {
                    name: "José Ángel Peña",
                    given: "José Ángel",
                    surname: "Peña",
                    mail: "jose.pena@contoso.com",
                    title: "Jefe de compras",
                    department: "Compras",
                    office: "Madrid",
                },
                Number { e164: "+34915550123", national: "915 55 01 23", international: "+34 915 55 01 23" },
            ),
            (
                Someone {
                    name: "Lucía Fernández",
                    given: "Lucía",
                    surname: "Fernández",
                    mail: "lucia.fernandez@contoso.com",
                    title: "Gestora de cuentas",
                    department: "Ventas",
                    office: "Sevilla",
                },
                Number { e164: "+34612345678", national: "612 34 56 78", international: "+34 612 34 56 78" },
            ),
        ],
        "ja" => [
            (
                Someone {
                    name: "佐藤 花子",
                    given: "花子",
                    surname: "佐藤",
                    mail: "hanako.sato@contoso.com",
                    title: "購買部長",
                    department: "購買部",
                    office: "東京本社",
                },
                Number { e164: "+81355550123", national: "03-5555-0123", international: "+81 3-5555-0123" },
            ),
            (
                Someone {
                    name: "鈴木 一郎",
                    given: "一郎",
                    surname: "鈴木",
                    mail: "ichiro.suzuki@contoso.com",
                    title: "営業担当",
                    department: "営業部",
                    office: "大阪支店",
                },
                Number { e164: "+819012345678", national: "090-1234-5678", international: "+81 90-1234-5678" },
            ),
        ],
        _ => [
            (
                Someone {
                    name: "Mateo García Núñez",
                    given: "Mateo",
                    surname: "García Núñez",
                    mail: "mateo.garcia@contoso.com",
                    title: "Account Executive",
                    department: "Sales",
                    office: "Redmond B2",
                },
                Number { e164: "+14255550110", national: "(425) 555-0110", international: "+1 425-555-0110" },
            ),
            (
                Someone {
                    name: "Priya Raman",
                    given: "Priya",
                    surname: "Raman",
                    mail: "priya.raman@contoso.com",
                    title: "Product Manager",
                    department: "Product",
                    office: "Toronto",
                },
                Number { e164: "+12895550147", national: "(289) 555-0147", international: "+1 289-555-0147" },
            ),
        ],
    }
}

/// The desk number of the person who calls from a mobile in [`work_and_mobile`].
pub(crate) fn desk_of_mobile_caller(language: &str) -> Number {
    match language {
        "fr" => Number { e164: "+33472001234", national: "04 72 00 12 34", international: "+33 4 72 00 12 34" },
        "de" => Number { e164: "+49305550123", national: "030 5550123", international: "+49 30 5550123" },
        "es" => Number { e164: "+34954550123", national: "954 55 01 23", international: "+34 954 55 01 23" },
        "ja" => Number { e164: "+81665550123", national: "06-6555-0123", international: "+81 6-6555-0123" },
        _ => Number { e164: "+14255550147", national: "(425) 555-0147", international: "+1 425-555-0147" },
    }
}

/// The recipient for a culture (names with accents, apostrophes and other scripts).
pub fn recipient(culture: &str) -> Recipient {
    let (name, address, sip_user) = match culture {
        "fr-FR" => ("Zoë Lefèvre-Château", "zoe.lefevre-chateau@contoso.com", "zoe.lefevre-chateau"),
        "fr-CA" => ("Gabrielle Tremblay", "gabrielle.tremblay@contoso.com", "gabrielle.tremblay"),
        "de-DE" => ("Jürgen Größmann", "juergen.groessmann@contoso.com", "juergen.groessmann"),
        "de-CH" => ("Céline Müller", "celine.mueller@contoso.com", "celine.mueller"),
        "es-ES" => ("Carmen Ruiz", "carmen.ruiz@contoso.com", "carmen.ruiz"),
        "es-MX" => ("Alejandro Hernández", "alejandro.hernandez@contoso.com", "alejandro.hernandez"),
        "ja-JP" => ("山田 太郎", "taro.yamada@contoso.com", "taro.yamada"),
        "en-GB" => ("Liam O'Connor", "liam.oconnor@contoso.com", "liam.oconnor"),
        "pt-BR" => ("João Conceição", "joao.conceicao@contoso.com", "joao.conceicao"),
        "pt-PT" => ("Inês Gonçalves", "ines.goncalves@contoso.com", "ines.goncalves"),
        "it-IT" => ("Niccolò Ferrà", "niccolo.ferra@contoso.com", "niccolo.ferra"),
        "nl-NL" => ("Sjoerd van 't Hooft", "sjoerd.vanthooft@contoso.com", "sjoerd.vanthooft"),
        "zh-CN" => ("王晓明", "xiaoming.wang@contoso.com", "xiaoming.wang"),
        "zh-TW" => ("陳怡君", "yijun.chen@contoso.com", "yijun.chen"),
        "ko-KR" => ("김민준", "minjun.kim@contoso.com", "minjun.kim"),
        "ru-RU" => ("Ольга Соколова", "olga.sokolova@contoso.com", "olga.sokolova"),
        "pl-PL" => ("Łukasz Wójcik", "lukasz.wojcik@contoso.com", "lukasz.wojcik"),
        "sv-SE" => ("Åsa Lindström", "asa.lindstrom@contoso.com", "asa.lindstrom"),
        "da-DK" => ("Søren Østergaard", "soren.ostergaard@contoso.com", "soren.ostergaard"),
        "nb-NO" => ("Bjørn Håkonsen", "bjorn.hakonsen@contoso.com", "bjorn.hakonsen"),
        "fi-FI" => ("Päivi Mäkelä", "paivi.makela@contoso.com", "paivi.makela"),
        _ => ("Hannah Whitaker", "hannah.whitaker@contoso.com", "hannah.whitaker"),
    };
    Recipient {
        name: Some(name.to_owned()),
        address: Some(address.to_owned()),
        culture: Some(culture.to_owned()),
        sip: Some(format!("{sip_user}@contoso.com")),
        eum_proxy: None,
        object_guid: None,
    }
}

/// A number party with no lookup outcome yet.
pub fn number(raw: &str, n: &Number, status: CallerStatus) -> Party {
    Party {
        raw: Some(raw.to_owned()),
        kind: PartyKind::Number,
        e164: Some(n.e164.to_owned()),
        national: Some(n.national.to_owned()),
        international: Some(n.international.to_owned()),
        status,
        ..Party::default()
    }
}

/// Marks `party` as resolved to `who`, found by `attribute` with `label`.
pub fn resolve(mut party: Party, who: &Someone, label: PhoneLabel, attribute: &str, value: &str) -> Party {
    let mut attributes = indexmap::IndexMap::new();
    attributes.insert("displayName".to_owned(), vec![who.name.to_owned()]);
    attributes.insert("mail".to_owned(), vec![who.mail.to_owned()]);
    attributes.insert(attribute.to_owned(), vec![value.to_owned()]);
    party.status = CallerStatus::Resolved;
    party.source = Some(PartySource::Directory);
    party.name = Some(who.name.to_owned());
    party.label = Some(label);
    party.matched_attribute = Some(attribute.to_owned());
    party.person = Some(Person {
        display_name: Some(who.name.to_owned()),
        given_name: Some(who.given.to_owned()),
        surname: Some(who.surname.to_owned()),
        mail: Some(who.mail.to_owned()),
        title: Some(who.title.to_owned()),
        department: Some(who.department.to_owned()),
        company: Some("Contoso".to_owned()),
        office: Some(who.office.to_owned()),
        sip: Some(who.mail.to_owned()),
        preferred_language: None,
        attributes,
    });
    party.candidates = vec![Candidate {
        display_name: Some(who.name.to_owned()),
        mail: Some(who.mail.to_owned()),
        label: Some(label),
        matched_attribute: attribute.to_owned(),
    }];
    party
}

/// +1 425-555-0100: Olivia Chen's desk number and Darnell Brooks's other telephone.
pub fn ambiguous() -> Party {
    let n = Number { e164: "+14255550100", national: "(425) 555-0100", international: "+1 425-555-0100" };
    let mut party = number("+14255550100", &n, CallerStatus::Ambiguous);
    party.source = Some(PartySource::Directory);
    party.candidates = vec![
        Candidate {
            display_name: Some("Olivia Chen".to_owned()),
            mail: Some("olivia.chen@contoso.com".to_owned()),
            label: Some(PhoneLabel::Work),
            matched_attribute: "telephoneNumber".to_owned(),
        },
        Candidate {
            display_name: Some("Darnell Brooks".to_owned()),
            mail: Some("darnell.brooks@contoso.com".to_owned()),
            label: Some(PhoneLabel::Work),
            matched_attribute: "otherTelephone".to_owned(),
        },
    ];
    party
}

/// A number in nobody's entry.
pub fn unresolved() -> Party {
    let n = Number { e164: "+14255550199", national: "(425) 555-0199", international: "+1 425-555-0199" };
    number("+14255550199", &n, CallerStatus::Unresolved)
}

/// Siobhán, the Dublin office manager: reached by extension, and on her mobile.
const SIOBHAN: Someone = Someone {
    name: "Siobhán Ní Bhriain",
    given: "Siobhán",
    surname: "Ní Bhriain",
    mail: "siobhan.nibhriain@contoso.com",
    title: "Office Manager",
    department: "Facilities",
    office: "Dublin",
};

/// A Lync party as the header names it (`raw`), resolved to `who` by SIP address.
fn by_sip(raw: &str, who: &Someone) -> Party {
    let party = Party { raw: Some(raw.to_owned()), kind: PartyKind::Sip, sip: Some(who.mail.to_owned()), ..Party::default() };
    resolve(party, who, PhoneLabel::Work, "msRTCSIP-PrimaryUserAddress", &format!("sip:{}", who.mail))
}

/// An internal Lync caller, known by SIP address.
pub(crate) fn sip_caller() -> Party {
    let kwame = Someone {
        name: "Kwame Mensah",
        given: "Kwame",
        surname: "Mensah",
        mail: "kwame.mensah@contoso.com",
        title: "Solutions Architect",
        department: "Consulting",
        office: "Accra",
    };
    by_sip("kwame.mensah@contoso.com", &kwame)
}

/// An internal caller known by extension only.
pub(crate) fn extension_caller() -> Party {
    let party = Party { raw: Some("4567".to_owned()), kind: PartyKind::Extension, extension: Some("4567".to_owned()), ..Party::default() };
    resolve(party, &SIOBHAN, PhoneLabel::Work, "ipPhone", "4567")
}

/// Where a forwarded call was answered: a colleague's mobile.
pub(crate) fn forwarding_target() -> Party {
    let n = Number { e164: "+447700900123", national: "07700 900123", international: "+44 7700 900123" };
    resolve(
        number("sip:+447700900123@contoso.com;user=phone", &n, CallerStatus::NotLookedUp),
        &SIOBHAN,
        PhoneLabel::Mobile,
        "mobile",
        "+44 7700 900123",
    )
}

/// Who picked up a team call: a colleague known by SIP address.
pub(crate) fn pickup_target() -> Party {
    let olivia = Someone {
        name: "Olivia Chen",
        given: "Olivia",
        surname: "Chen",
        mail: "olivia.chen@contoso.com",
        title: "Team Lead",
        department: "Customer Care",
        office: "Redmond B2",
    };
    by_sip("sip:olivia.chen@contoso.com", &olivia)
}

/// Where a call could not be forwarded to: a number in nobody's entry.
pub(crate) fn blocked_target() -> Party {
    let n = Number { e164: "+16045550199", national: "(604) 555-0199", international: "+1 604-555-0199" };
    number("sip:+16045550199@contoso.com;user=phone", &n, CallerStatus::Unresolved)
}
