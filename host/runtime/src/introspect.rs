//! Parse-only introspection of a component file: its manifest, the
//! interfaces it imports and exports, the contract version it implements and
//! which of its imports Ward provides empty. Nothing is compiled, so it takes
//! a single pass over the bytes whatever the component's size.
//!
//! [`introspect`] is the one entry point; it also decides which manifest a
//! component carries ([`crate::read_manifest_section`] and the loader use
//! it): a `ward-manifest` custom section either at component level (what
//! `ward plugin pack` writes, for components from any language) or inside a
//! core module (what the Rust SDK's `export_connector!` embeds). Every
//! `ward-manifest` section found must carry the same bytes; two different
//! ones are refused, so what `inspect` shows is what the daemon loads.

use sha2::{Digest, Sha256};
use wasmparser::{Encoding, Parser, Payload};

use crate::RuntimeError;

/// The interface name prefix of the connector contract's export.
const CONTRACT_EXPORT: &str = "ward:connector/connector@";

/// Imported interfaces Ward links but provides empty: no preopened
/// directories, no sockets or name lookup, no environment variables or
/// arguments (`caps::wasi`).
const EMPTY_IMPORTS: &[&str] = &[
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:cli/environment@",
    "wasi:cli/stdin@",
];

/// Where the manifest was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManifestSource {
    /// A component-level custom section (`ward plugin pack`).
    Component,
    /// A custom section of a core module inside the component (the Rust
    /// SDK's `export_connector!`).
    CoreModule,
}

/// What a component file declares, read without compiling it.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    /// SHA-256 of the file, hex.
    pub digest: String,
    /// The manifest's bytes (TOML), when present.
    pub manifest: Option<Vec<u8>>,
    /// Where the manifest was found (component level wins for reporting
    /// when both carry the same bytes).
    pub manifest_source: Option<ManifestSource>,
    /// Interfaces the component imports, in file order.
    pub imports: Vec<String>,
    /// Interfaces the component exports, in file order.
    pub exports: Vec<String>,
    /// The version of `ward:connector/connector` it exports (`0.1.0`).
    pub contract_version: Option<String>,
    /// The imports Ward provides empty (filesystem, sockets, environment).
    pub empty_imports: Vec<String>,
    /// Imports Ward does not provide: the loader refuses the component.
    pub unsupported_imports: Vec<String>,
}

impl ComponentInfo {
    /// Whether it exports the optional `ward:connector/exchange` interface
    /// (contract 0.2, world `plugin-with-exchange`).
    fn exports_exchange_interface(&self) -> bool {
        self.exports
            .iter()
            .any(|e| e.starts_with("ward:connector/exchange@"))
    }

    /// The world the component targets, as the loader will bind it:
    /// `ward:connector/plugin@0.1.0`, `…/plugin@0.2.0` or
    /// `…/plugin-with-exchange@0.2.0`; `None` when it exports no contract.
    pub fn world(&self) -> Option<String> {
        let version = self.contract_version.as_deref()?;
        Some(if self.exports_exchange_interface() {
            format!("ward:connector/plugin-with-exchange@{version}")
        } else {
            format!("ward:connector/plugin@{version}")
        })
    }

    /// Whether raw credentials can reach the component's `exchange` (what
    /// the inspect report's risks are computed for): every 0.1 component
    /// exports it; a 0.2 component only in world `plugin-with-exchange`.
    pub fn exchange_export(&self) -> ward_manifest::ExchangeExport {
        match self.contract_version.as_deref() {
            Some(v) if v.starts_with("0.1.") => ward_manifest::ExchangeExport::Always,
            Some(_) if self.exports_exchange_interface() => {
                ward_manifest::ExchangeExport::WhenAsked
            }
            Some(_) => ward_manifest::ExchangeExport::Never,
            None => ward_manifest::ExchangeExport::Always,
        }
    }
}

/// Reads `bytes` as a component: manifest, imports, exports, contract
/// version. Fails on bytes that are not a component or do not parse, and on
/// two different `ward-manifest` sections.
pub fn introspect(bytes: &[u8]) -> Result<ComponentInfo, RuntimeError> {
    let malformed = |e: wasmparser::BinaryReaderError| RuntimeError::Malformed(e.to_string());
    let mut info = ComponentInfo {
        digest: hex::encode(Sha256::digest(bytes)),
        manifest: None,
        manifest_source: None,
        imports: Vec::new(),
        exports: Vec::new(),
        contract_version: None,
        empty_imports: Vec::new(),
        unsupported_imports: Vec::new(),
    };
    // Nesting depth: 1 is the outer component, deeper are nested modules
    // and components (parse_all walks into them).
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(malformed)? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != Encoding::Component {
                    return Err(RuntimeError::Malformed(
                        "this is a core WebAssembly module, not a component; build for wasm32-wasip2 or run `wasm-tools component new`".into(),
                    ));
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    info.imports
                        .push(import.map_err(malformed)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    info.exports
                        .push(export.map_err(malformed)?.name.name.to_string());
                }
            }
            Payload::CustomSection(reader) if reader.name() == ward_manifest::SECTION => {
                let source = if depth == 1 {
                    ManifestSource::Component
                } else {
                    ManifestSource::CoreModule
                };
                match &info.manifest {
                    None => info.manifest = Some(reader.data().to_vec()),
                    Some(previous) if previous.as_slice() == reader.data() => {}
                    Some(_) => {
                        return Err(RuntimeError::Malformed(
                            "component carries two different ward-manifest sections; re-pack it with `ward plugin pack` from one ward.toml".into(),
                        ));
                    }
                }
                if info.manifest_source != Some(ManifestSource::Component) {
                    info.manifest_source = Some(source);
                }
            }
            _ => {}
        }
    }
    info.contract_version = info
        .exports
        .iter()
        .find_map(|e| e.strip_prefix(CONTRACT_EXPORT))
        .map(str::to_string);
    info.empty_imports = info
        .imports
        .iter()
        .filter(|i| EMPTY_IMPORTS.iter().any(|p| i.starts_with(p)))
        .cloned()
        .collect();
    info.unsupported_imports = info
        .imports
        .iter()
        .filter(|i| !crate::import_allowed(i))
        .cloned()
        .collect();
    Ok(info)
}
