//! Finding the connector component, checking its WIT version before anything
//! runs, and compiling it through an on-disk cache.

use crate::capability::{self, Declared};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package this host implements.
pub const WIT_PACKAGE: &str = "nextcloud:connector";
/// The WIT version this host speaks.
pub const WIT_VERSION: &str = "0.1.0";
/// Names the component when `--component` is not given.
pub const COMPONENT_ENV: &str = "NEXTCLOUD_CONNECTOR_COMPONENT";
/// Where `cargo guest` puts the component, relative to a target directory.
const BUILT_COMPONENT: &str = "wasm32-wasip2/release/connector.wasm";
/// Part of the cache key: compiled code is only valid for this wasmtime.
const WASMTIME_VERSION: &str = "48.0.8";

/// Where to look, first match wins: the explicit path, `$NEXTCLOUD_CONNECTOR_COMPONENT`,
/// the target directory this executable was built into, the workspace this
/// crate was compiled in.
pub fn component_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    if let Some(p) = std::env::var_os(COMPONENT_ENV).filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.file_name().is_some_and(|n| n == "target") {
                out.push(dir.join(BUILT_COMPONENT));
            }
            out.push(dir.join("target").join(BUILT_COMPONENT));
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    out.push(workspace.join("target").join(BUILT_COMPONENT));
    let mut seen = Vec::new();
    out.retain(|p| {
        let key = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    out
}

/// The component to run, or an error that says how to get one.
pub fn locate_component(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::Component(format!(
                "`{}` (from --component) is not a file",
                p.display()
            )))
        };
    }
    if let Some(p) = std::env::var_os(COMPONENT_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Component(format!(
                "`{}` (from ${COMPONENT_ENV}) is not a file",
                p.display()
            )))
        };
    }
    let candidates = component_candidates(None);
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates
                .iter()
                .map(|p| format!("  {}", p.display()))
                .collect();
            Error::Component(format!(
                "no connector component found; build it with `cargo guest` (cargo build -p connector --target wasm32-wasip2 --release), or pass --component PATH. Looked in:\n{}",
                looked.join("\n")
            ))
        })
}

/// The WIT versions of `nextcloud:connector` interfaces a component imports
/// or exports, as `(name, version)`.
pub fn connector_interfaces(engine: &Engine, component: &Component) -> Vec<(String, String)> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .map(|(n, _)| n.to_string())
        .chain(ty.exports(engine).map(|(n, _)| n.to_string()))
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let rest = name.strip_prefix(WIT_PACKAGE)?.strip_prefix('/')?;
            let (iface, version) = match rest.split_once('@') {
                Some((i, v)) => (i.to_string(), v.to_string()),
                None => (rest.to_string(), String::new()),
            };
            Some((iface, version))
        })
        .collect()
}

/// Refuses a component built for another WIT version, before instantiation.
pub fn check_wit_version(engine: &Engine, component: &Component, path: &Path) -> Result<()> {
    let interfaces = connector_interfaces(engine, component);
    if let Some((iface, version)) = interfaces.iter().find(|(_, v)| v != WIT_VERSION) {
        let built = if version.is_empty() {
            "an unversioned WIT".to_string()
        } else {
            format!("WIT {version}")
        };
        return Err(Error::Component(format!(
            "`{}` was built for {built} ({WIT_PACKAGE}/{iface}); this host-runner speaks {WIT_VERSION}. Rebuild the connector from this workspace with `cargo guest`, or use the host-runner that matches it",
            path.display()
        )));
    }
    let exports = component.component_type();
    let lifecycle = format!("{WIT_PACKAGE}/lifecycle@{WIT_VERSION}");
    if exports.get_export(engine, &lifecycle).is_none() {
        return Err(Error::Component(format!(
            "`{}` does not export `{lifecycle}`: it is not a Nextcloud connector component",
            path.display()
        )));
    }
    Ok(())
}

/// The component file's bytes, read once for everything done before it runs.
pub fn read_component(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::Component(format!("cannot read `{}`: {e}", path.display())))
}

/// The capabilities the component at `path` declares (see
/// [`crate::capability::declared`]).
pub fn declared_in(path: &Path, wasm: &[u8]) -> Result<Declared> {
    capability::declared(wasm).map_err(|e| {
        Error::Component(format!(
            "`{}` is refused before it runs: {e}",
            path.display()
        ))
    })
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash is
/// stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

/// Where compiled components are kept, if anywhere.
pub fn cache_dir() -> Option<PathBuf> {
    cache_dir_in(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

/// `$XDG_CACHE_HOME/nextcloud-connector`, else `$HOME/.cache/…`, else none:
/// a cached component is native code this process runs, and in a shared
/// temp dir another local user could put one there first.
fn cache_dir_in(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let base = xdg_cache_home
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|p| !p.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("nextcloud-connector"))
}

/// The effective user id: what owns the files this process creates.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates the cache directory (0700) if needed and checks that nobody else
/// could have written into it: it belongs to this user and is not group or
/// world writable. Otherwise the cache is not used at all.
fn open_cache_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if meta.uid() != euid() || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "`{}` belongs to uid {} with mode {:o}: another user could plant code in it",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut h = ShaHasher(Sha256::new());
    h.0.update(WASMTIME_VERSION.as_bytes());
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.update(wasm);
    h.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiles the component, or loads it from the cache. The cache file holds
/// the SHA-256 of the compiled bytes followed by them; a file whose digest does
/// not match is compiled again and replaced. Cache trouble is never fatal.
pub fn load_component(engine: &Engine, path: &Path, wasm: &[u8]) -> Result<Component> {
    let file = cache_dir()
        .filter(|dir| match open_cache_dir(dir) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("not using the compiled-component cache: {e}");
                false
            }
        })
        .map(|dir| dir.join(format!("{}.cwasm", cache_key(engine, wasm))));
    let cached = file
        .as_deref()
        .and_then(|f| Some((f, read_cached(engine, f)?)));
    let component = match cached {
        Some((file, c)) => {
            tracing::debug!("loaded compiled component from {}", file.display());
            c
        }
        None => {
            let started = std::time::Instant::now();
            let c = Component::new(engine, wasm).map_err(|e| {
                Error::Component(format!(
                    "`{}` is not a valid WebAssembly component: {e:#}",
                    path.display()
                ))
            })?;
            tracing::debug!("compiled {} in {:?}", path.display(), started.elapsed());
            if let Some(file) = &file
                && let Err(e) = write_cached(&c, file)
            {
                tracing::debug!("could not cache the compiled component: {e}");
            }
            c
        }
    };
    check_wit_version(engine, &component, path)?;
    Ok(component)
}

fn read_cached(engine: &Engine, file: &Path) -> Option<Component> {
    let bytes = read_own(file)
        .map_err(|e| {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(
                    "compiled-component cache entry {} not used: {e}",
                    file.display()
                );
            }
        })
        .ok()?;
    let (digest, code) = bytes.split_at_checked(32)?;
    if Sha256::digest(code).as_slice() != digest {
        tracing::warn!(
            "compiled-component cache entry {} is corrupt; compiling again",
            file.display()
        );
        return None;
    }
    // SAFETY: the bytes were produced by `Component::serialize` of this engine
    // configuration (the file name holds the engine's compatibility hash) and
    // their digest matches what was written, so they are not truncated or
    // altered; wasmtime checks the header again.
    match unsafe { Component::deserialize(engine, code) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(
                "compiled-component cache entry {} does not load ({e}); compiling again",
                file.display()
            );
            None
        }
    }
}

/// A cache entry's bytes, if it is a regular file of this user's (not a
/// symlink to someone else's).
fn read_own(file: &Path) -> std::io::Result<Vec<u8>> {
    let mut f: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)?;
    let meta = f.metadata()?;
    if !meta.is_file() || meta.uid() != euid() {
        return Err(std::io::Error::other(format!(
            "it is not a regular file of uid {}",
            euid()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Writes the entry into the directory `open_cache_dir` checked: a private
/// temp file renamed over `file`.
fn write_cached(component: &Component, file: &Path) -> std::io::Result<()> {
    let code = component.serialize().map_err(std::io::Error::other)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&Sha256::digest(&code))?;
    tmp.write_all(&code)?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_path_wins_and_missing_files_are_explained() {
        assert_eq!(
            component_candidates(Some(Path::new("/x/c.wasm"))),
            vec![PathBuf::from("/x/c.wasm")]
        );
        let msg = locate_component(Some(Path::new("/nonexistent/c.wasm")))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("/nonexistent/c.wasm") && msg.contains("--component"),
            "{msg}"
        );
    }

    #[test]
    fn search_covers_the_target_dir_of_the_executable_and_the_workspace() {
        if std::env::var_os(COMPONENT_ENV).is_some() {
            return;
        }
        let c = component_candidates(None);
        let exe = std::env::current_exe().unwrap();
        // Test binaries live in target/debug/deps/.
        let target = exe
            .ancestors()
            .find(|d| d.file_name().is_some_and(|n| n == "target"))
            .unwrap();
        assert!(c.contains(&target.join(BUILT_COMPONENT)), "{c:?}");
        assert!(
            c.iter().any(
                |p| p.ends_with("target/wasm32-wasip2/release/connector.wasm")
                    && p.starts_with(env!("CARGO_MANIFEST_DIR"))
            ),
            "{c:?}"
        );
    }

    #[test]
    fn junk_is_not_a_component() {
        let engine = super::super::engine::engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.wasm");
        std::fs::write(&path, b"\0asm not really").unwrap();
        let err = load_component(&engine, &path, &read_component(&path).unwrap())
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), crate::error::exit_code::COMPONENT);
        assert!(err.to_string().contains("junk.wasm"), "{err}");
    }

    #[test]
    fn the_cache_lives_under_the_users_cache_home_or_nowhere() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            cache_dir_in(os("/x/cache"), os("/home/u")),
            Some(PathBuf::from("/x/cache/nextcloud-connector"))
        );
        assert_eq!(
            cache_dir_in(os(""), os("/home/u")),
            Some(PathBuf::from("/home/u/.cache/nextcloud-connector"))
        );
        assert_eq!(cache_dir_in(None, os("")), None, "never the temp dir");
        assert_eq!(cache_dir_in(None, None), None);
    }

    #[test]
    fn the_cache_dir_is_made_private_and_refused_when_others_can_write() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("cache/nextcloud-connector");
        open_cache_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
        let err = open_cache_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("another user could plant"), "{err}");
    }

    #[test]
    fn a_cache_entry_behind_a_symlink_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.cwasm");
        std::fs::write(&real, b"bytes").unwrap();
        let link = dir.path().join("link.cwasm");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(read_own(&real).unwrap(), b"bytes");
        assert!(read_own(&link).is_err());
    }

    #[test]
    fn corrupt_cache_entries_are_ignored() {
        let engine = super::super::engine::engine().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.cwasm");
        std::fs::write(&file, [0u8; 10]).unwrap();
        assert!(read_cached(&engine, &file).is_none());
        let mut bytes = Sha256::digest(b"hello").to_vec();
        bytes.extend_from_slice(b"hello");
        std::fs::write(&file, &bytes).unwrap();
        assert!(
            read_cached(&engine, &file).is_none(),
            "valid digest, not a component"
        );
        bytes[33] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert!(read_cached(&engine, &file).is_none());
    }
}
