//! `host-runner inspect`: what a component is and what it asks for, read
//! from its bytes before anything of it is compiled or run.

use crate::capability::{Capability, Grants, Level};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::runtime::component::{declared_in, read_component};
use crate::runtime::{WIT_PACKAGE, WIT_VERSION};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// One capability the component asks for.
#[derive(Debug, Clone, Serialize)]
pub struct Asked {
    pub name: Capability,
    pub level: Level,
    pub description: &'static str,
    /// `METHODS /path-pattern` under the Nextcloud install.
    pub reach: Vec<String>,
    /// Whether a run would grant it: under the given configuration, or the
    /// default (read-only) without one.
    pub granted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub component: String,
    pub bytes: u64,
    pub sha256: String,
    /// The `nextcloud:connector` interfaces it imports and exports, with versions.
    pub interfaces: Vec<String>,
    /// The WIT versions among them.
    pub wit_versions: Vec<String>,
    /// Whether this host speaks them.
    pub compatible: bool,
    /// False when the component declares nothing and gets the read-only default.
    pub declared: bool,
    pub capabilities: Vec<Asked>,
    /// Where the grants came from: `default (read-only)` or the configuration's `grants`.
    pub grants_from: String,
    /// Everything else it imports (WASI); the host gives it no files, sockets or environment.
    pub other_imports: Vec<String>,
}

/// Reads `path`; `config` decides what would be granted.
pub fn inspect(path: &Path, config: Option<&Config>) -> Result<Inspection> {
    let wasm = read_component(path)?;
    let declared = declared_in(path, &wasm)?;
    let names = top_level_names(&wasm)
        .map_err(|e| Error::Component(format!("`{}` is not a component: {e}", path.display())))?;
    let (interfaces, other_imports): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| n.starts_with(&format!("{WIT_PACKAGE}/")));
    let mut wit_versions: Vec<String> = interfaces
        .iter()
        .map(|n| n.split_once('@').map(|(_, v)| v).unwrap_or("").to_string())
        .collect();
    wit_versions.sort();
    wit_versions.dedup();
    let operator = config.and_then(|c| c.grants.as_ref());
    // Any user id: inspect shows what is granted, not for whom.
    let base = url::Url::parse("http://host/").expect("a valid URL");
    let grants = Grants::new(&declared, operator, &base, "user");
    let capabilities = declared
        .capabilities
        .iter()
        .map(|&c| Asked {
            name: c,
            level: c.level(),
            description: c.describe(),
            reach: c.reach(),
            granted: grants.granted().contains(&c),
        })
        .collect();
    Ok(Inspection {
        component: path.display().to_string(),
        bytes: wasm.len() as u64,
        sha256: Sha256::digest(&wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        compatible: !interfaces.is_empty() && wit_versions == [WIT_VERSION],
        interfaces,
        wit_versions,
        declared: declared.explicit,
        capabilities,
        grants_from: match operator {
            Some(_) => "the configuration's `grants`".into(),
            None => "default (read-only)".into(),
        },
        other_imports,
    })
}

/// The names the component itself imports and exports (not those of the
/// modules and components nested in it).
fn top_level_names(wasm: &[u8]) -> std::result::Result<Vec<String>, String> {
    let mut depth = 0usize;
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.map_err(|e| e.to_string())? {
            wasmparser::Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != wasmparser::Encoding::Component {
                    return Err(
                        "it is a core module; build the connector with `cargo guest`".into(),
                    );
                }
                depth += 1;
            }
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    names.push(import.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            wasmparser::Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    names.push(export.map_err(|e| e.to_string())?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// The inspection for people.
pub fn render(i: &Inspection) -> String {
    let mut out = format!(
        "component  {}\nsize       {} bytes, sha256 {}\nWIT        {} {} ({})\n",
        crate::render::printable(&i.component),
        i.bytes,
        i.sha256,
        WIT_PACKAGE,
        i.wit_versions.join(", "),
        if i.compatible {
            "this host speaks it"
        } else {
            "this host does NOT speak it"
        }
    );
    out.push_str(&format!(
        "asks for   {}\ngrants     {}\n\n",
        if i.declared {
            "the capabilities below (declared)"
        } else {
            "nothing declared: the read-only default"
        },
        i.grants_from
    ));
    for c in &i.capabilities {
        out.push_str(&format!(
            "  {} {:<20} {:<5} {}\n",
            if c.granted { "+" } else { "-" },
            c.name.name(),
            match c.level {
                Level::Read => "read",
                Level::Write => "WRITE",
            },
            c.description
        ));
        for r in &c.reach {
            out.push_str(&format!("      {r}\n"));
        }
    }
    out.push_str("\n+ granted in a run, - refused. Every request outside these is refused before it is sent.\n");
    if !i.other_imports.is_empty() {
        out.push_str(&format!(
            "Also imports {} WASI interfaces; the host gives them no files, sockets, environment or arguments.\n",
            i.other_imports.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_module_is_not_a_component() {
        // `(module)`: magic, version 1.
        let err = top_level_names(b"\0asm\x01\0\0\0").unwrap_err();
        assert!(err.contains("core module"), "{err}");
        assert!(top_level_names(b"not wasm").is_err());
    }
}
