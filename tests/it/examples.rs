//! The shipped examples stay valid: the reference configuration loads.

use callnote::config::{Config, DeliverySettings, DirectorySource, SpoolMode};
use std::path::Path;

#[test]
fn reference_config_loads_with_paths_relative_to_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/callnote.toml");
    let config = Config::load(&path).expect("examples/callnote.toml is valid");
    let examples = path.parent().unwrap();
    assert_eq!(config.directory, Some(DirectorySource::File(examples.join("directory.ldif"))));
    assert_eq!(config.delivery, Some(DeliverySettings::Dir(examples.join("../out/outbox"))));
    assert_eq!(config.spool.mode, SpoolMode::Tap);
    assert_eq!(config.default_locale, "en-US");
    assert_eq!(config.from.email.to_string(), "voicemail@contoso.com");
    assert_eq!(config.dialplan.outside_line_code.as_deref(), Some("9"));
    assert_eq!(config.server_listen, Some("127.0.0.1:9925".parse().unwrap()));
}
