//! `tap` mode against the real SMTP server: every fixture delivered once, bad ones
//! reported in the state folder, a second run sends nothing, and the tapped folder is left
//! byte-identical (content, names and modification times).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{Spool, files_in, server};
use crate::common::fixture;

/// name -> (SHA-256 of the content, modification time), for every entry of the folder.
fn snapshot(dir: &std::path::Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            let modified = e.metadata().unwrap().modified().unwrap();
            (e.file_name().into_string().unwrap(), (Sha256::digest(&bytes).to_vec(), modified))
        })
        .collect()
}

#[test]
fn a_tapped_folder_is_delivered_once_and_left_byte_identical() {
    let Some(server) = server() else { return };
    let spool = Spool::new("relay-tap", &server.port, 4);
    let state = spool.dir.parent().unwrap().join("state");
    let config = std::fs::read_to_string(&spool.config)
        .unwrap()
        .replace("mode = \"own\"", &format!("mode = \"tap\"\nstate_dir = {state:?}\nsettle = \"5s\""));
    std::fs::write(&spool.config, config).unwrap();

    let mut expected = Vec::new();
    let old = SystemTime::now() - Duration::from_secs(60);
    for path in files_in(&fixture("")).into_iter().chain(files_in(&fixture("bad"))) {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !(name.ends_with(".txt") || name.ends_with(".wav") || name.ends_with(".tif")) {
            continue;
        }
        if name.ends_with(".txt")
            && let Some(call_id) = spool.expect(&path)
        {
            expected.push(call_id);
        }
        let to = spool.dir.join(&name);
        std::fs::copy(&path, &to).unwrap();
        std::fs::File::options().append(true).open(&to).unwrap().set_modified(old).unwrap();
    }
    assert_eq!(expected.len(), 30);
    let before = snapshot(&spool.dir);

    let (code, stderr) = spool.run_once();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("relay: 30 delivered (0 sent again after a crash), 2 skipped, 11 parked, 0 deferred"), "{stderr}");
    let (code, stderr) = spool.run_once();
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("relay: 0 delivered (0 sent again after a crash), 2 skipped, 0 parked, 0 deferred"), "{stderr}");

    let delivered = spool.delivered(&server);
    for call_id in &expected {
        assert_eq!(delivered.get(&spool.message_id(call_id)), Some(&1), "call {call_id}");
    }
    assert_eq!(delivered.len(), 30);
    assert_eq!(snapshot(&spool.dir), before, "the tapped folder must be byte-identical");
    // The ledger's sent entries are history: `queue list` shows only the parked files.
    let (code, list, _) = spool.cli(&["queue", "list"]);
    assert_eq!(code, 0);
    assert_eq!(list.lines().count(), 11, "{list}");
    assert!(list.lines().all(|l| l.starts_with("parked\t")), "{list}");
    let reports = files_in(&state.join("failed"));
    assert_eq!(reports.len(), 11);
    let report = std::fs::read_to_string(state.join("failed/duplicate-keys.txt.error.txt")).unwrap();
    assert!(
        report.starts_with("reason: ")
            && report.lines().next().unwrap().ends_with("duplicate-keys.txt:4: duplicate key `CallerId` (first on line 2)"),
        "{report}"
    );
}
