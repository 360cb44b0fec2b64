//! The index cache: used only when it matches the file, rebuilt when stale or damaged,
//! never trusted blindly.

use std::fs;

use super::*;
use crate::enrich::directory::{Directory as _, Lookup};
use crate::event::{Party, PartyKind};

const LDIF: &str = "dn: cn=Ana Souza,dc=contoso,dc=com\ndisplayName: Ana Souza\nmail: ana@contoso.com\ntelephoneNumber: +1 425 555 0101\n\n\
                    dn: cn=Bo Chen,dc=contoso,dc=com\ndisplayName: Bo Chen\nmail: bo@contoso.com\ntelephoneNumber: +1 425 555 0102\n";

fn plan() -> DialPlan {
    DialPlan::new("US", Some("9"), 4, 7).expect("US")
}

/// A directory file and a cache path in a fresh folder.
fn setup(ldif: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("people.ldif");
    fs::write(&file, ldif).expect("write directory");
    let cache = dir.path().join("cache").join("people.callnote-index");
    (dir, file, cache)
}

fn load(file: &Path, cache: &Path) -> (DirectoryIndex, CacheUse) {
    load_with_cache(file, &plan(), AttributeMap::default(), Some(cache)).expect("loads")
}

fn caller_name(index: &DirectoryIndex, e164: &str) -> Option<String> {
    let party = Party { kind: PartyKind::Number, e164: Some(e164.into()), ..Party::default() };
    match index.lookup(&party).expect("lookup") {
        Lookup::Resolved(person, _) => person.display_name,
        _ => None,
    }
}

fn is_built(used: &CacheUse, because: &str) -> bool {
    matches!(used, CacheUse::Built { reason, .. } if reason.contains(because))
}

#[test]
fn a_second_load_reads_the_cache_and_answers_the_same() {
    let (_dir, file, cache) = setup(LDIF);
    let (built, used) = load(&file, &cache);
    assert_eq!(used, CacheUse::Built { reason: "none yet".into(), saved: Some(cache.clone()) });
    let (cached, used) = load(&file, &cache);
    assert_eq!(used, CacheUse::Hit(cache.clone()));
    assert_eq!(cached.len(), 2);
    assert_eq!(cached.warnings(), built.warnings());
    assert_eq!(caller_name(&cached, "+14255550102").as_deref(), Some("Bo Chen"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(fs::metadata(&cache).expect("cache").permissions().mode() & 0o777, 0o600, "personal data");
    }
}

#[test]
fn changed_content_with_the_same_size_and_time_is_rebuilt() {
    let (_dir, file, cache) = setup(LDIF);
    load(&file, &cache);
    let mtime = fs::metadata(&file).and_then(|m| m.modified()).expect("mtime");
    fs::write(&file, LDIF.replace("Bo Chen", "Bo Chan")).expect("rewrite");
    File::options().write(true).open(&file).and_then(|f| f.set_modified(mtime)).expect("same mtime");
    let (index, used) = load(&file, &cache);
    assert!(is_built(&used, "content changed"), "{used:?}");
    assert_eq!(caller_name(&index, "+14255550102").as_deref(), Some("Bo Chan"));
    assert_eq!(load(&file, &cache).1, CacheUse::Hit(cache), "the rebuilt cache is used next time");
}

#[test]
fn a_grown_file_or_another_dial_plan_is_rebuilt() {
    let (_dir, file, cache) = setup(LDIF);
    load(&file, &cache);
    fs::write(&file, format!("{LDIF}\ndn: cn=Cy,dc=contoso,dc=com\ndisplayName: Cy\ntelephoneNumber: +1 425 555 0103\n")).expect("grow");
    let (index, used) = load(&file, &cache);
    assert!(is_built(&used, "stale"), "{used:?}");
    assert_eq!(index.len(), 3);
    let gb = DialPlan::new("GB", None, 4, 7).expect("GB");
    let (_, used) = load_with_cache(&file, &gb, AttributeMap::default(), Some(&cache)).expect("loads");
    assert!(is_built(&used, "dial plan"), "{used:?}");
}

#[test]
fn a_damaged_cache_is_ignored_and_rewritten() {
    let (_dir, file, cache) = setup(LDIF);
    load(&file, &cache);
    let good = fs::read(&cache).expect("cache");
    let mut flipped = good.clone();
    *flipped.last_mut().expect("bytes") ^= 0x40;
    let truncated = good[..good.len() - 5].to_vec();
    for (damage, reason) in [(flipped, "corrupt"), (truncated, "corrupt"), (b"garbage".to_vec(), "format"), (Vec::new(), "format")] {
        fs::write(&cache, damage).expect("damage");
        let (index, used) = load(&file, &cache);
        assert!(is_built(&used, reason), "{reason}: {used:?}");
        assert_eq!(caller_name(&index, "+14255550101").as_deref(), Some("Ana Souza"));
        assert_eq!(load(&file, &cache).1, CacheUse::Hit(cache.clone()), "{reason}: rewritten whole");
    }
}

#[cfg(unix)]
#[test]
fn a_cache_others_may_write_or_a_link_is_not_trusted() {
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, file, cache) = setup(LDIF);
    load(&file, &cache);
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o666)).expect("chmod");
    assert!(is_built(&load(&file, &cache).1, "not trusted"));
    let elsewhere = dir.path().join("elsewhere");
    fs::rename(&cache, &elsewhere).expect("move");
    std::os::unix::fs::symlink(&elsewhere, &cache).expect("link");
    let (_, used) = load(&file, &cache);
    assert!(matches!(&used, CacheUse::Built { .. }), "a link is not followed: {used:?}");
}

#[test]
fn a_well_formed_cache_with_out_of_range_parts_is_refused() {
    let (_dir, file, cache) = setup(LDIF);
    load(&file, &cache);
    // A cache whose stamp and digest are right but whose spans point past its postings.
    let good = fs::read(&cache).expect("cache");
    let stamp_len = u32::from_le_bytes(good[16..20].try_into().expect("4 bytes")) as usize;
    let mut parts: Parts = postcard::from_bytes(&good[20 + stamp_len + 16..]).expect("decode");
    parts.postings.clear();
    let payload = postcard::to_allocvec(&parts).expect("encode");
    let mut forged = good[..20 + stamp_len].to_vec();
    forged.extend_from_slice(&XxHash3_128::oneshot(&payload).to_le_bytes());
    forged.extend_from_slice(&payload);
    fs::write(&cache, forged).expect("forge");
    let (index, used) = load(&file, &cache);
    assert!(is_built(&used, "unsound"), "{used:?}");
    assert_eq!(caller_name(&index, "+14255550101").as_deref(), Some("Ana Souza"));
}

#[test]
fn a_directory_file_that_fails_is_an_error_cache_or_not() {
    let (_dir, file, cache) = setup(LDIF);
    load(&file, &cache);
    fs::write(&file, "dn: cn=a\nno colon\n").expect("break");
    let error = load_with_cache(&file, &plan(), AttributeMap::default(), Some(&cache)).expect_err("syntax error");
    assert!(error.to_string().contains("people.ldif:2:"), "{error}");
}

#[test]
fn cache_names_differ_by_path_and_stay_one_component() {
    let a = cache_name(Path::new("/etc/callnote/directory.ldif"));
    let b = cache_name(Path::new("/srv/other/directory.ldif"));
    assert_ne!(a, b);
    assert!(a.starts_with("directory.ldif-") && a.ends_with(".callnote-index"), "{a}");
    assert!(!cache_name(Path::new("/x/../../a b\n.ldif")).contains(['/', ' ', '\n']));
}

#[test]
fn the_streamed_payload_is_postcards_encoding_block_for_block() {
    // Several blocks, values and numbers straddling their ends.
    let entries = (0..6000).map(|i| {
        let mut entry = crate::enrich::directory::Entry::new(format!("cn=p{i}"));
        entry.push_text("displayName", format!("Person {i} {}", "x".repeat(i % 300)));
        entry.push_text("telephoneNumber", format!("+1 425 555 {:04}", i % 10_000));
        entry
    });
    let index = DirectoryIndex::build(entries, &plan());
    let expected = postcard::to_allocvec(&index.parts()).expect("encode");
    assert!(expected.len() > 3 * WRITE_BLOCK, "{} bytes", expected.len());
    let mut file = tempfile::tempfile().expect("temp file");
    let digest = write_payload(&mut file, &index).expect("written");
    file.rewind().expect("rewind");
    let mut written = Vec::new();
    file.read_to_end(&mut written).expect("read back");
    assert!(written == expected, "the streamed payload differs from postcard's encoding");
    assert_eq!(digest, XxHash3_128::oneshot(&expected).to_le_bytes());
}
