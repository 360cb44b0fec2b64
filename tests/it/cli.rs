//! The `callnote` binary as an admin meets it: exit statuses and messages of configuration
//! mistakes, a closed stdout, the closing summary of `render`, plain log text off a terminal,
//! and `--help` agreeing with the README.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::fixture;

fn callnote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callnote")).args(args).env_remove("RUST_LOG").output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn fixture_str(name: &str) -> String {
    fixture(name).to_str().expect("UTF-8 path").to_owned()
}

#[test]
fn three_config_mistakes_are_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callnote.toml");
    std::fs::write(
        &config,
        "[dialplan]\nregoin = \"US\"\n\n[mail]\nform = \"Voice Mail <vm@contoso.com>\"\n\n[delivery]\nurl = \"smtp://mail.contoso.com:587\"\nstarttls = \"of\"\n",
    )
    .unwrap();
    let out = callnote(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let path = config.display();
    assert_eq!(
        stderr(&out),
        format!(
            "error: {path}:2: unknown key `regoin` in [dialplan]; did you mean `region`?\n\
             {path}:5: unknown key `form` in [mail]; did you mean `from`?\n\
             {path}:9: delivery.starttls: `of` is not one of none, may, encrypt, verify or fingerprint (or the older off, opportunistic, required)\n"
        )
    );
}

#[test]
fn a_missing_directory_file_is_a_configuration_error() {
    let out = callnote(&["parse", "--directory", "/nonexistent/directory.ldif", &fixture_str("mc-legacy-blog-shape.txt")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out), "error: /nonexistent/directory.ldif: cannot read directory file: No such file or directory (os error 2)\n");
    assert!(out.stdout.is_empty(), "nothing is parsed without the directory");
}

#[test]
fn a_missing_templates_folder_is_a_configuration_error_named_once() {
    let expected = "error: /nonexistent/templates: cannot read the templates folder: No such file or directory (os error 2)\n";
    let check = callnote(&["check", "--templates", "/nonexistent/templates"]);
    assert_eq!((check.status.code(), stderr(&check).as_str()), (Some(2), expected));
    assert!(check.stdout.is_empty(), "no `.:1:1:` problem line");
    let out = tempfile::tempdir().unwrap();
    let render = callnote(&[
        "render",
        "--templates",
        "/nonexistent/templates",
        "--out",
        out.path().to_str().unwrap(),
        &fixture_str("mc-legacy-blog-shape.txt"),
    ]);
    assert_eq!((render.status.code(), stderr(&render).as_str()), (Some(2), expected));
}

#[test]
fn a_cause_repeated_by_a_library_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    // Nothing listens on port 1 of loopback: the connection is refused at once.
    std::fs::write(&config, "[directory]\nsource = \"ldap://127.0.0.1:1\"\nbase_dn = \"dc=contoso,dc=com\"\n").unwrap();
    let out = callnote(&["--config", config.to_str().unwrap(), "directory-check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stderr(&out);
    assert_eq!(text.matches("Connection refused").count(), 1, "{text}");
    assert!(text.starts_with("error: directory-check: cannot read the directory: ldap://127.0.0.1:1: cannot connect"), "{text}");
}

/// Runs the binary with stdout a pipe whose reading end is already closed.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_callnote")).args(args).stdout(writer).output().expect("the binary runs")
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let header = fixture_str("mc-legacy-blog-shape.txt");
    let dry_run = tempfile::tempdir().unwrap();
    let runs: [&[&str]; 4] = [
        &["parse", &header],
        &["render", "--out", "-", &header],
        &["send-test", "--to", "pat@contoso.com", "--dry-run", dry_run.path().to_str().unwrap()],
        &["--help"],
    ];
    for args in runs {
        let out = with_closed_stdout(args);
        let text = stderr(&out);
        assert!(!text.contains("panicked") && !text.contains("Broken pipe"), "{args:?}: {text}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
    }
}

#[test]
fn render_closes_with_what_it_wrote_skipped_and_failed() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = callnote(&[
        "render",
        "--out",
        out_dir.path().to_str().unwrap(),
        &fixture_str("mc-legacy-blog-shape.txt"),
        &fixture_str("vm-legacy-blog-shape.txt"),
        &fixture_str("healthcheck-2013.txt"),
        &fixture_str("bad/empty.txt"),
    ]);
    assert_eq!(out.status.code(), Some(1), "one input failed");
    let text = stderr(&out);
    assert_eq!(text.lines().last(), Some("render: 2 written, 1 skipped, 1 failed"), "{text}");
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 2);
}

#[test]
fn log_lines_carry_no_colour_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    // An unreachable directory makes every lookup log a warning.
    std::fs::write(&config, "[directory]\nsource = \"ldap://127.0.0.1:1\"\nbase_dn = \"dc=contoso,dc=com\"\n").unwrap();
    let out = callnote(&["--config", config.to_str().unwrap(), "parse", &fixture_str("mc-legacy-blog-shape.txt")]);
    let text = stderr(&out);
    assert!(text.contains(" WARN "), "{text}");
    assert!(!text.contains('\u{1b}'), "ANSI escape in a log that is not a terminal: {text:?}");
}

/// Each README row `callnote CMD [--flag …]` of the command table, as (CMD, flags).
fn readme_commands() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `callnote "))
        .map(|row| {
            let usage = row.split('`').next().unwrap_or_default();
            let command = usage.split_whitespace().next().unwrap_or_default().to_owned();
            let flags = usage
                .split(|c: char| c.is_whitespace() || c == '[' || c == ']')
                .filter(|w| w.starts_with("--"))
                .map(str::to_owned)
                .collect();
            (command, flags)
        })
        .collect()
}

#[test]
fn help_names_every_flag_the_readme_shows_and_says_templates_overlay() {
    let commands = readme_commands();
    assert!(commands.len() >= 8, "{commands:?}");
    for (command, flags) in &commands {
        let out = callnote(&[command, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{command} --help");
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in flags {
            assert!(help.contains(flag.as_str()), "`callnote {command} --help` lacks {flag}:\n{help}");
        }
        if flags.iter().any(|f| f == "--templates") {
            let squeezed = help.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(squeezed.contains("laid over the built-in set, file by file"), "{command}: {help}");
            assert!(!help.contains("replacing"), "{command}: {help}");
        }
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("**`--templates DIR` overlays**"), "the README says the folder overlays the built-in set");
}

#[test]
fn parse_says_why_a_caller_is_unresolved_and_lists_what_the_directory_load_found() {
    let dir = tempfile::tempdir().unwrap();
    let header = dir.path().join("uk-caller.txt");
    std::fs::write(
        &header,
        "MessageType : MissedCall\nCallerId : +447700900456\nRecipientAddress : hannah.whitaker@contoso.com\nCallId : 0e1d2c3b-4a59-4687-9a0b-c1d2e3f4a5b6\n",
    )
    .unwrap();
    let directory = fixture_str("directory.ldif");
    let out = callnote(&["parse", "--directory", &directory, header.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let context: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(context["caller"]["status"], "unresolved");
    let reason = &context["caller"]["reason"];
    assert_eq!(reason["tried"], serde_json::json!(["e164 +447700900456"]), "{reason}");
    let unreadable = reason["unreadable"][0].as_str().expect("an unreadable look-alike");
    assert!(unreadable.ends_with(": otherMobile `07700 900456` does not read under the US dial plan; it will never match"), "{reason}");
    assert!(
        reason["summary"].as_str().unwrap().starts_with("no directory entry holds e164 +447700900456; 1 directory value(s)"),
        "{reason}"
    );
    let warning = format!("{directory}: warning: ");
    let text = stderr(&out);
    assert!(
        text.lines().any(|l| l.starts_with(&warning)
            && l.ends_with("otherMobile `07700 900456` does not read under the US dial plan; it will never match")),
        "{text}"
    );
}
