//! What tests/fixtures/README.md says about each good fixture, as far as intake can know it
//! (no directory lookup), and the check of a parsed event against it.

use callnote::event::{Codec, Event, Importance, Kind, PartyKind};

use crate::common::fixture;

/// What README.md says about one good fixture (what intake can know: no directory).
#[derive(Clone, Copy)]
pub struct Want {
    pub file: &'static str,
    kind: Kind,
    message_type: &'static str,
    call_id: &'static str,
    /// `caller.raw`; `None` = anonymous (no caller id at all).
    caller: Option<&'static str>,
    target: Option<&'static str>,
    address: Option<&'static str>,
    name: Option<&'static str>,
    culture: Option<&'static str>,
    sip: Option<&'static str>,
    object_guid: Option<&'static str>,
    duration: Option<u32>,
    codec: Option<Codec>,
    importance: Importance,
    private: bool,
    subject: Option<&'static str>,
    time: Option<&'static str>,
    missed_reason: Option<&'static str>,
    pages: Option<u32>,
    /// Side file name; `.wav` files are 8044 bytes (the preview fixtures' longer), the `.tif` 392.
    attachment: Option<&'static str>,
}

const NONE: Want = Want {
    file: "",
    kind: Kind::Voicemail,
    message_type: "VoiceMail",
    call_id: "",
    caller: None,
    target: None,
    address: None,
    name: None,
    culture: None,
    sip: None,
    object_guid: None,
    duration: None,
    codec: None,
    importance: Importance::Normal,
    private: false,
    subject: None,
    time: None,
    missed_reason: None,
    pages: None,
    attachment: None,
};

const HANNAH: Want = Want { address: Some("hannah.whitaker@contoso.com"), name: Some("Hannah Whitaker"), culture: Some("en-US"), ..NONE };
const AMARA: Want = Want { address: Some("amara.okafor@contoso.com"), name: Some("Amara Okafor"), culture: Some("en-US"), ..NONE };
const LIAM: Want = Want { address: Some("liam.oconnor@contoso.com"), name: Some("Liam O'Connor"), culture: Some("en-US"), ..NONE };
const MISSED: Want = Want { kind: Kind::MissedCall, message_type: "MissedCall", ..NONE };
const OCS: Want = Want { kind: Kind::MissedCall, message_type: "OCSNotification", ..NONE };

fn voicemail(
    file: &'static str,
    who: Want,
    caller: &'static str,
    call_id: &'static str,
    secs: u32,
    codec: Codec,
    wav: &'static str,
) -> Want {
    Want { file, call_id, caller: Some(caller), duration: Some(secs), codec: Some(codec), attachment: Some(wav), ..who }
}

pub fn good_fixtures() -> Vec<Want> {
    use Codec::*;
    vec![
        voicemail(
            "vm-legacy-blog-shape.txt",
            HANNAH,
            "+12895550147",
            "1c941dfb-9165-4438-930c-f7e266e92d98",
            1,
            Gsm,
            "575a75dc-3e35-4640-97c2-4c7f3f274236.wav",
        ),
        voicemail(
            "vm-legacy-wrapped-recipientaddress.txt",
            HANNAH,
            "+14255550110",
            "d700d8b9-9e95-4038-9b9c-c666a47c3d27",
            7,
            Gsm,
            "c6ca5288-9551-43df-a3f1-ebc30d96f816.wav",
        ),
        voicemail(
            "vm-legacy-lf-line-endings.txt",
            HANNAH,
            "+61491570156",
            "8f4dddab-6a5f-482f-9b84-604e5f56b767",
            23,
            Wma,
            "11db27ca-8068-43e7-bfd1-9656d3409b0f.wav",
        ),
        Want {
            address: Some("zoe.lefevre-chateau@contoso.com"),
            name: Some("Zoë Lefèvre-Château"),
            culture: Some("fr-FR"),
            ..voicemail(
                "vm-legacy-utf8-bom-fr-FR.txt",
                NONE,
                "+33199001234",
                "fc918e95-cde5-4bdf-bf7c-6b29f4eb7196",
                42,
                Wma,
                "4f92cc05-65e3-4f5d-aa79-5081581fc7d4.wav",
            )
        },
        Want {
            address: Some("juergen.groessmann@contoso.com"),
            name: Some("Jürgen Größmann"),
            culture: Some("de-DE"),
            ..voicemail(
                "vm-legacy-utf16le-bom-de-DE.txt",
                NONE,
                "+41445550178",
                "0de3fafc-6f6d-465d-a95a-8176118e783d",
                95,
                Mp3,
                "42bde80a-00b7-456c-914c-2b00063e8823.wav",
            )
        },
        Want {
            address: Some("oliver.pennington-smythe@contoso.com"),
            name: Some("Oliver Pennington-Smythe"),
            culture: Some("en-GB"),
            importance: Importance::High,
            ..voicemail(
                "vm-legacy-important-long-duration-en-GB.txt",
                NONE,
                "+447700900456",
                "f86aa28a-3364-40fe-bd0e-0102a0d0bb8a",
                1187,
                Mp3,
                "ca50021e-0267-4a26-8f3f-3d34e31433b4.wav",
            )
        },
        Want {
            address: Some("taro.yamada@contoso.com"),
            name: Some("山田 太郎"),
            culture: Some("ja-JP"),
            ..voicemail(
                "vm-legacy-ja-JP-g711.txt",
                NONE,
                "+81355550123",
                "bb6f933d-4800-43ec-9c11-39571bc14444",
                12,
                G711,
                "261c5366-8f79-4199-9871-3b02919efd9f.wav",
            )
        },
        voicemail(
            "vm-legacy-extension-caller.txt",
            AMARA,
            "4567",
            "a60c3176-7d4c-444a-aa46-3c99eb47f6d5",
            5,
            Gsm,
            "6664a172-9f1a-4adf-a279-776017e889e4.wav",
        ),
        voicemail(
            "vm-legacy-sip-caller-internal-user.txt",
            LIAM,
            "kwame.mensah@contoso.com",
            "35429be5-258c-4461-b928-8859b1f4ae40",
            18,
            Gsm,
            "359aaa14-7600-41c0-93d8-60c193daf384.wav",
        ),
        Want {
            caller: None,
            ..voicemail(
                "vm-legacy-anonymous-no-callerid.txt",
                AMARA,
                "-",
                "91e5b234-9ad6-4831-af5e-0f704c2661e2",
                3,
                Gsm,
                "cbd3f79e-1ff6-4afc-a638-25ea6ff8178a.wav",
            )
        },
        Want {
            subject: Some("Re: Q3 numbers : please call back"),
            ..voicemail(
                "vm-legacy-extra-unknown-fields.txt",
                HANNAH,
                "+14255550123",
                "31c13888-7a37-4a68-93a8-82a6943ea4ee",
                31,
                Gsm,
                "ebaaebb0-f455-4b9d-a5ea-120dfc153aad.wav",
            )
        },
        voicemail(
            "vm-legacy-outside-line-prefix-caller.txt",
            LIAM,
            "912895550163",
            "2c2f05b8-dc99-4c2e-a6bc-ed6f72cd6fad",
            9,
            Gsm,
            "672beec6-e361-42f1-b71e-7296fd70717b.wav",
        ),
        Want {
            file: "mc-legacy-blog-shape.txt",
            call_id: "6e838afc-7d1a-4ad5-b1e3-fde1990e11e7",
            caller: Some("+12895550147"),
            ..MISSED.with(HANNAH)
        },
        Want {
            file: "mc-legacy-important-subject-de-DE.txt",
            call_id: "a06a8e4a-74db-48bd-8a75-1d4143117a87",
            caller: Some("+493023125017"),
            address: Some("juergen.groessmann@contoso.com"),
            name: Some("Jürgen Größmann"),
            culture: Some("de-DE"),
            importance: Importance::High,
            subject: Some("Rückruf bitte – Angebot Größe M"),
            ..MISSED
        },
        Want {
            file: "mc-legacy-minimal-fields.txt",
            call_id: "6dae85e7-d80b-45c0-8c3c-15d3c8380b36",
            caller: Some("+14255550100"),
            address: Some("amara.okafor@contoso.com"),
            ..MISSED
        },
        Want { file: "mc-legacy-callid-not-a-guid.txt", call_id: "not-a-guid}{1234", caller: Some("+14255550199"), ..MISSED.with(AMARA) },
        Want {
            file: "ocs-legacy-blog-shape.txt",
            call_id: "7b487c48-c388-4446-b285-e6420e3073a8",
            caller: Some("sip:+12895550147@contoso.com;user=phone"),
            sip: Some("hannah.whitaker@contoso.com"),
            time: Some("2011-02-11T01:29:39Z"),
            missed_reason: Some("CallerReleased"),
            ..OCS
        },
        Want {
            file: "ocs-2013-ocsnotificationdata.txt",
            call_id: "0231630c-4011-4314-94bf-10bdd6647c36",
            caller: Some("sip:+16045550188@contoso.com;user=phone"),
            sip: Some("hannah.whitaker@contoso.com"),
            object_guid: Some("72b4ce60-5154-42c5-9a45-1687d6511d8f"),
            time: Some("2014-06-03T16:05:11Z"),
            missed_reason: Some("CallerReleased"),
            ..OCS
        },
        Want {
            file: "ocs-legacy-tel-uri-from.txt",
            call_id: "97179436-22b8-4e10-8758-c3b35ab379e8",
            caller: Some("tel:+14255550131"),
            sip: Some("liam.oconnor@contoso.com"),
            time: Some("2011-03-01T14:22:07Z"),
            missed_reason: Some("Timeout"),
            ..OCS
        },
        Want {
            file: "ocs-legacy-anonymous-from.txt",
            call_id: "299b71db-1017-4e38-a0ed-c808398ec155",
            // kept verbatim: recognising `anonymous@anonymous.invalid` is enrichment's job
            caller: Some("sip:anonymous@anonymous.invalid;user=phone"),
            sip: Some("amara.okafor@contoso.com"),
            time: Some("2011-03-02T08:00:59Z"),
            ..OCS
        },
        Want {
            file: "ocs-legacy-internal-sip-urgent-subject.txt",
            call_id: "762f0a6b-c740-4260-bf1d-b8bf8206dd97",
            caller: Some("sip:kwame.mensah@contoso.com"),
            sip: Some("zoe.lefevre-chateau@contoso.com"),
            time: Some("2011-03-03T09:15:00Z"),
            subject: Some("Réunion budget – rappel"),
            importance: Importance::High,
            missed_reason: Some("CallerReleased"),
            ..OCS
        },
        Want {
            file: "ocs-2013-answered-forwarded-primary.txt",
            kind: Kind::CallForwarded,
            call_id: "9cbd469e-f702-4e2e-ac1b-0b2e7bc25136",
            caller: Some("sip:+14255550177@contoso.com;user=phone"),
            target: Some("sip:+447700900123@contoso.com;user=phone"),
            sip: Some("hannah.whitaker@contoso.com"),
            time: Some("2014-06-04T11:30:00Z"),
            ..OCS
        },
        Want {
            file: "ocs-2013-answered-teampickup-secondary.txt",
            kind: Kind::TeamPickup,
            call_id: "80921010-c7dd-49a7-a652-4784ee40a4e7",
            caller: Some("sip:+14255550101@contoso.com;user=phone"),
            target: Some("sip:olivia.chen@contoso.com"),
            sip: Some("oliver.pennington-smythe@contoso.com"),
            time: Some("2014-06-04T11:31:45Z"),
            ..OCS
        },
        Want {
            file: "ocs-2013-forbidden-not-forwarded.txt",
            kind: Kind::CallNotForwarded,
            call_id: "0c3d78a9-5ff7-453b-92cb-c21a22af879f",
            caller: Some("sip:+14255550150@contoso.com;user=phone"),
            target: Some("sip:+16045550199@contoso.com;user=phone"),
            sip: Some("amara.okafor@contoso.com"),
            importance: Importance::Low,
            time: Some("2014-06-05T17:02:13Z"),
            ..OCS
        },
        Want {
            file: "fax-2013-three-pages.txt",
            kind: Kind::Fax,
            message_type: "Fax",
            call_id: "e0179f19-a6e5-4581-8799-32524d688d70",
            caller: Some("+14255550140"),
            name: Some("Hannah Whitaker"),
            culture: Some("en-US"),
            object_guid: Some("5e7bf87a-c77b-4f0f-820f-5f25609c7f58"),
            time: Some("2014-06-05T17:20:44Z"),
            pages: Some(3),
            attachment: Some("5c94cd03-f225-4272-8071-81eb2e385e0c.tif"),
            ..NONE
        },
        Want {
            message_type: "SMTPVoiceMail",
            name: Some("Oliver Pennington-Smythe"),
            culture: Some("en-GB"),
            object_guid: Some("e5caf65d-f722-41cb-b2f1-0b81c310d795"),
            subject: Some("Site visit tomorrow"),
            private: true,
            time: Some("2014-06-06T08:45:02Z"),
            ..voicemail(
                "vm-2013-smtpvoicemail-private.txt",
                NONE,
                "+447700900123",
                "60ba7a99-1458-4c1a-8cbf-5715078298b9",
                64,
                Mp3,
                "0452b4d7-0ba5-4c52-bd6e-689c633e0ab4.wav",
            )
        },
        Want {
            message_type: "SMTPVoiceMail",
            name: Some("Hannah Whitaker"),
            culture: Some("en-US"),
            object_guid: Some("5e7bf87a-c77b-4f0f-820f-5f25609c7f58"),
            time: Some("2014-06-10T09:12:40Z"),
            ..voicemail(
                "vm-2013-preview-mp3-phone-number.txt",
                NONE,
                "+14255550141",
                "04e4da05-2778-4ea1-aecf-c9171399ff70",
                5,
                Mp3,
                "a7b209e4-fa96-4219-9717-c5cabc82b4b8.wav",
            )
        },
        Want {
            message_type: "SMTPVoiceMail",
            name: Some("Liam O'Connor"),
            culture: Some("en-US"),
            object_guid: Some("5179ea6e-6657-4e59-a162-d9c13a14c2fc"),
            ..voicemail(
                "vm-2013-preview-low-confidence.txt",
                NONE,
                "+61491570156",
                "30096cf3-a2e2-4984-a02f-6b139eaf5420",
                5,
                Mp3,
                "4ce018f8-9547-4dfe-9b09-a5a7b1ae4f0e.wav",
            )
        },
        Want {
            message_type: "SMTPVoiceMail",
            name: Some("Oliver Pennington-Smythe"),
            culture: Some("en-GB"),
            object_guid: Some("e5caf65d-f722-41cb-b2f1-0b81c310d795"),
            ..voicemail(
                "vm-2013-preview-failed-poor-audio.txt",
                NONE,
                "+551155550150",
                "03bac188-35de-4f37-9c7f-d45e598f8694",
                5,
                Gsm,
                "6f2542f5-0b16-4284-ad65-53fc6d77eb43.wav",
            )
        },
        Want {
            file: "mc-2013-retry-contactinfo-callername.txt",
            call_id: "3767390d-9d27-4313-8501-d083ffc0bd33",
            caller: Some("+14255550102"),
            name: Some("Liam O'Connor"),
            culture: Some("en-US"),
            object_guid: Some("5179ea6e-6657-4e59-a162-d9c13a14c2fc"),
            time: Some("2014-06-06T09:12:30Z"),
            ..MISSED
        },
    ]
}

impl Want {
    /// `self` with the recipient of `who`.
    const fn with(self, who: Want) -> Want {
        Want { address: who.address, name: who.name, culture: who.culture, ..self }
    }
}

pub const SKIPPED: [(&str, &str); 2] = [("healthcheck-2013.txt", "HealthCheck"), ("xsovoicemail-2013.txt", "XSOVoiceMail")];

pub fn check(want: &Want, e: &Event) {
    let f = want.file;
    assert_eq!(e.kind, want.kind, "{f}: kind");
    assert_eq!(e.message_type, want.message_type, "{f}: message_type");
    assert_eq!(e.call_id, want.call_id, "{f}: call_id");
    assert_eq!(e.caller.raw.as_deref(), want.caller, "{f}: caller.raw");
    let caller_kind = if want.caller.is_some() { PartyKind::Number } else { PartyKind::Anonymous };
    assert_eq!(e.caller.kind, caller_kind, "{f}: caller.kind before enrichment");
    assert_eq!(e.target.as_ref().and_then(|t| t.raw.as_deref()), want.target, "{f}: target.raw");
    let r = &e.recipient;
    assert_eq!(r.address.as_deref(), want.address, "{f}: recipient.address");
    assert_eq!(r.name.as_deref(), want.name, "{f}: recipient.name");
    assert_eq!(r.culture.as_deref(), want.culture, "{f}: recipient.culture");
    assert_eq!(r.sip.as_deref(), want.sip, "{f}: recipient.sip");
    let eum = want.sip.map(|sip| format!("EUM:{sip};phone-context=ContosoDP.contoso.com"));
    assert_eq!(r.eum_proxy, eum, "{f}: recipient.eum_proxy");
    assert_eq!(r.object_guid.as_deref(), want.object_guid, "{f}: recipient.object_guid");
    assert_eq!(e.duration_secs, want.duration, "{f}: duration_secs");
    assert_eq!(e.codec, want.codec, "{f}: codec");
    assert_eq!(e.importance, want.importance, "{f}: importance");
    assert_eq!(e.private, want.private, "{f}: private");
    assert_eq!(e.subject.as_deref(), want.subject, "{f}: subject");
    assert_eq!(e.time.map(|t| t.to_string()).as_deref(), want.time, "{f}: time");
    assert_eq!(e.missed_reason.as_deref(), want.missed_reason, "{f}: missed_reason");
    assert_eq!(e.pages, want.pages, "{f}: pages");
    match (want.attachment, &e.attachment) {
        (None, None) => {}
        (Some(name), Some(a)) => {
            // the recordings of the preview fixtures are real speech, longer than the others
            let wav_size = std::fs::metadata(fixture(name)).map(|m| m.len()).unwrap_or(8044);
            let (content_type, size) = if name.ends_with(".tif") { ("image/tiff", 392) } else { ("audio/wav", wav_size) };
            assert_eq!(a.file_name, name, "{f}: attachment.file_name");
            assert_eq!(a.path, fixture(name), "{f}: attachment.path (the header's own folder)");
            assert_eq!(a.content_type, content_type, "{f}: attachment.content_type");
            assert_eq!(a.size_bytes, size, "{f}: attachment.size_bytes");
        }
        (want, got) => panic!("{f}: attachment: want {want:?}, got {got:?}"),
    }
}
