//! One notification, one Message-ID, one file. A team call rings every member under one call
//! id, and Exchange writes one missed-call header per member: each member's notification
//! must keep its own Message-ID and its own file through `render --out`, the `.eml` and
//! pickup folders and the real SMTP server (scripts/smtp-server.sh, plain port). A file
//! name that is taken by a different message is never overwritten.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use callnote::compose::NotificationId;
use callnote::config::{Config, DeliverySettings, SmtpSettings, TlsLevel};
use callnote::deliver;
use callnote::pipeline::{Outcome, Pipeline, Prepared};
use callnote::render::Templates;
use mail_parser::MessageParser;

use crate::common::{fixture, server_env};
use crate::deliver::unique;

const CALL_ID: &str = "3f0c6a52-9d1e-4b7a-8c2f-5e4d3c2b1a09";
const MEMBERS: [&str; 3] = ["hannah.whitaker@contoso.com", "amara.okafor@contoso.com", "olivia.chen@contoso.com"];

/// One missed-call header per member, as Exchange writes them for a team call (same call
/// id, own recipient), in `dir`; their paths.
fn team_call(dir: &Path, members: &[&str]) -> Vec<PathBuf> {
    let template = std::fs::read_to_string(fixture("mc-legacy-blog-shape.txt")).unwrap();
    members
        .iter()
        .enumerate()
        .map(|(n, address)| {
            let text = template
                .replace("6e838afc-7d1a-4ad5-b1e3-fde1990e11e7", CALL_ID)
                .replace("hannah.whitaker@contoso.com", address)
                .replace("RecipientName : Hannah Whitaker", &format!("RecipientName : Member {n}"));
            let path = dir.join(format!("member-{n}.txt"));
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

fn stem(address: &str) -> String {
    NotificationId { call_id: CALL_ID, recipient: address, kind: callnote::Kind::MissedCall }.file_stem()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

/// The Message-ID and the To address of a message.
fn id_and_to(bytes: &[u8]) -> (String, String) {
    let mail = MessageParser::default().parse(bytes).expect("a MIME message");
    let to = mail.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned();
    (mail.message_id().expect("a Message-ID").to_owned(), to)
}

fn render(out: &Path, inputs: &[PathBuf]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_callnote"))
        .args(["render", "--date", "2026-01-02T03:04:05Z", "--out"])
        .arg(out)
        .args(inputs)
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn render_out_writes_one_file_and_one_message_id_per_member() {
    let dir = tempfile::tempdir().unwrap();
    let headers = team_call(dir.path(), &MEMBERS);
    let out = dir.path().join("out");
    let (code, stderr) = render(&out, &headers);
    assert_eq!((code, stderr.as_str()), (0, "render: 3 written, 0 skipped, 0 failed\n"));

    let mut expected: Vec<String> = MEMBERS.iter().map(|m| format!("{}.eml", stem(m))).collect();
    expected.sort();
    assert_eq!(names(&out), expected);
    assert_eq!(expected[0], format!("{CALL_ID}-amara.okafor_contoso.com-missed_call.eml"));
    let mut ids = BTreeSet::new();
    for member in MEMBERS {
        let bytes = std::fs::read(out.join(format!("{}.eml", stem(member)))).unwrap();
        let (id, to) = id_and_to(&bytes);
        assert_eq!(to, member, "each file holds its member's message");
        ids.insert(id);
    }
    assert_eq!(ids.len(), 3, "three Message-IDs: {ids:?}");

    // Rendering again (a resend) replaces each member's own file: still three, same bytes.
    let before: Vec<Vec<u8>> = expected.iter().map(|n| std::fs::read(out.join(n)).unwrap()).collect();
    let (code, stderr) = render(&out, &headers);
    assert_eq!((code, stderr.as_str()), (0, "render: 3 written, 0 skipped, 0 failed\n"));
    assert_eq!(names(&out), expected);
    let after: Vec<Vec<u8>> = expected.iter().map(|n| std::fs::read(out.join(n)).unwrap()).collect();
    assert_eq!(before, after);
}

#[test]
fn a_name_taken_by_a_different_message_is_kept_and_the_new_one_goes_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let headers = team_call(dir.path(), &MEMBERS[..1]);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let name = format!("{}.eml", stem(MEMBERS[0]));
    let other = b"Message-ID: <someone-else@contoso.com>\r\nSubject: not ours\r\n\r\nkeep me\r\n";
    std::fs::write(out.join(&name), other).unwrap();

    let (code, stderr) = render(&out, &headers);
    let beside = out.join(format!("{}~2.eml", stem(MEMBERS[0])));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "{}: written to {}: {name} holds a different message\nrender: 1 written, 0 skipped, 0 failed\n",
            headers[0].display(),
            beside.display()
        )
    );
    assert_eq!(std::fs::read(out.join(&name)).unwrap(), other, "never overwritten");
    assert_eq!(id_and_to(&std::fs::read(&beside).unwrap()).1, MEMBERS[0]);

    // Again: the message finds its own file beside the other one and replaces it.
    let (code, _) = render(&out, &headers);
    assert_eq!(code, 0);
    assert_eq!(names(&out), [name.clone(), format!("{}~2.eml", stem(MEMBERS[0]))]);
}

fn pipeline() -> Pipeline {
    Pipeline::new(Config::default(), Templates::builtin(), None, None)
}

fn prepare(pipeline: &Pipeline, path: &Path) -> Prepared {
    match pipeline.prepare_file(path).unwrap() {
        Outcome::Prepared(prepared) => *prepared,
        Outcome::Skipped(t) => panic!("skipped as {t}"),
    }
}

#[tokio::test]
async fn the_eml_and_pickup_folders_get_one_file_per_member() {
    let dir = tempfile::tempdir().unwrap();
    let headers = team_call(dir.path(), &MEMBERS);
    let pipeline = pipeline();
    let prepared: Vec<Prepared> = headers.iter().map(|h| prepare(&pipeline, h)).collect();
    let outbox = dir.path().join("outbox");
    let pickup = dir.path().join("pickup");
    std::fs::create_dir(&pickup).unwrap();
    for settings in [DeliverySettings::Dir(outbox.clone()), DeliverySettings::Pickup(pickup.clone())] {
        let transport = deliver::from_settings(&settings).unwrap();
        // Each twice: a resend replaces its own file.
        for p in prepared.iter().chain(&prepared) {
            transport.deliver(&p.outgoing()).await.unwrap();
        }
    }
    let mut expected: Vec<String> = MEMBERS.iter().map(|m| format!("{}.eml", stem(m))).collect();
    expected.sort();
    assert_eq!(names(&outbox), expected);
    let mut with_staging = vec![".callnote-tmp".to_owned()];
    with_staging.extend(expected.iter().cloned());
    assert_eq!(names(&pickup), with_staging);
    for folder in [&outbox, &pickup] {
        let ids: BTreeSet<String> = expected.iter().map(|n| id_and_to(&std::fs::read(folder.join(n)).unwrap()).0).collect();
        assert_eq!(ids.len(), 3, "{}: {ids:?}", folder.display());
    }
}

#[tokio::test]
async fn through_smtp_every_member_gets_their_own_message_id() {
    let (Some(host), Some(port), Some(maildir)) = (server_env("SMTP_HOST"), server_env("SMTP_PLAIN_PORT"), server_env("SMTP_MAILDIR"))
    else {
        return;
    };
    let members: Vec<String> = (0..3).map(|n| unique(&format!("team{n}"))).collect();
    let dir = tempfile::tempdir().unwrap();
    let member_refs: Vec<&str> = members.iter().map(String::as_str).collect();
    let headers = team_call(dir.path(), &member_refs);
    let pipeline = pipeline();
    let settings = SmtpSettings { tls_level: TlsLevel::None, ..crate::deliver::smtp_settings(&host, port.parse().unwrap()) };
    let transport = deliver::from_settings(&DeliverySettings::Smtp(settings)).unwrap();
    let mut sent = Vec::new();
    for header in &headers {
        let prepared = prepare(&pipeline, header);
        transport.deliver(&prepared.outgoing()).await.unwrap();
        sent.push(NotificationId::of(&prepared.event).message_id(&pipeline.config().from));
    }
    let _ = transport.close().await;

    // What arrived, by envelope recipient: every member one message, under the id it was
    // sent with.
    let maildir = Path::new(&maildir);
    let mut arrived = Vec::new();
    for member in &members {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(maildir.join("envelope")).unwrap() {
            let path = entry.unwrap().path();
            let envelope: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            if envelope["rcpt_tos"].as_array().unwrap().iter().any(|r| r == member.as_str()) {
                let bytes = std::fs::read(maildir.join("new").join(path.file_stem().unwrap())).unwrap();
                let (id, to) = id_and_to(&bytes);
                assert_eq!(to, *member);
                found.push(format!("<{id}>"));
            }
        }
        assert_eq!(found.len(), 1, "{member}: {found:?}");
        arrived.push(found.remove(0));
    }
    assert_eq!(arrived, sent);
    assert_eq!(arrived.iter().collect::<BTreeSet<_>>().len(), 3, "{arrived:?}");
}
