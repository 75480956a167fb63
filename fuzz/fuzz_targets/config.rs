//! The configuration parser on arbitrary text. Never a panic; an accepted
//! configuration is normalised: its base URL reads back unchanged, has no
//! trailing slash and is on the origin it was given, its numbers are in range,
//! its database an absolute path or a PostgreSQL URL.
#![no_main]

use std::path::Path;

use host_runner::config::{Config, ConfigFile, Database, normalize_base_url};
use libfuzzer_sys::fuzz_target;

fn check(config: &Config) {
    assert!(!config.base_url.ends_with('/'), "{}", config.base_url);
    let mut warnings = Vec::new();
    let (again, origin) =
        normalize_base_url(&config.base_url, &mut warnings).expect("a normalised URL is valid");
    assert_eq!(again, config.base_url);
    assert_eq!(origin, config.origin);
    assert!(!config.username.trim().is_empty());
    assert!((1..=10_000).contains(&config.batch_size));
    assert!(config.limits.http_timeout_seconds >= 1);
    match &config.database {
        Database::Sqlite(path) => assert!(path.is_absolute()),
        Database::Postgres(target) => assert!(target.url.starts_with("postgres"), "{}", target.url),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = Path::new("/fuzz/config");
    if let Ok(config) = Config::from_toml_str(text, dir) {
        check(&config);
    }
    if let Ok(file) = ConfigFile::from_toml_str(text, dir) {
        assert!(!file.accounts.is_empty());
        for account in &file.accounts {
            check(account);
        }
    }
});
