//! `ward plugin pack`: embeds a validated manifest into a component as a
//! component-level `ward-manifest` custom section, so a component built by
//! any toolchain (componentize-py, jco, wasm-tools) becomes a Ward plugin.
//!
//! [`pack`] is the one entry point. The output is a pure function of the
//! inputs (same component and manifest → same bytes), and re-packing
//! replaces the component-level section instead of adding a second one.

use wasmparser::BinaryReader;

use crate::RuntimeError;

/// Custom sections have id 0 in components as in modules.
const CUSTOM_SECTION: u8 = 0;

/// Validates `manifest` (the text of a `ward.toml`, checked exactly as the
/// loader checks it) and returns `component` with it as its component-level
/// `ward-manifest` section; an existing component-level section is
/// replaced. Fails when `component` is not a component, when the manifest is
/// invalid, and when a core module inside already carries a different
/// manifest (the Rust SDK's): a plugin has one manifest.
pub fn pack(component: &[u8], manifest: &str) -> Result<Vec<u8>, RuntimeError> {
    let malformed =
        |e: wasmparser::BinaryReaderError| RuntimeError::Malformed(format!("{e} (while packing)"));
    if component.get(..8) != Some(wasm_encoder::Component::HEADER.as_slice()) {
        return Err(RuntimeError::Malformed(
            "not a WebAssembly component (a core module or another file?); pack the output of wasm32-wasip2 builds, componentize-py or `wasm-tools component new`".into(),
        ));
    }
    ward_manifest::Manifest::from_section(manifest.as_bytes())?;
    let mut reader = BinaryReader::new(&component[8..], 8);
    let mut out = wasm_encoder::Component::new();
    while !reader.eof() {
        let id = reader.read_u8().map_err(malformed)?;
        let len = reader.read_var_u32().map_err(malformed)?;
        let data = reader.read_bytes(len as usize).map_err(malformed)?;
        if id == CUSTOM_SECTION {
            let name = BinaryReader::new(data, 0)
                .read_string()
                .map_err(malformed)?;
            if name == ward_manifest::SECTION {
                continue;
            }
        }
        out.section(&wasm_encoder::RawSection { id, data });
    }
    out.section(&wasm_encoder::CustomSection {
        name: ward_manifest::SECTION.into(),
        data: manifest.as_bytes().into(),
    });
    let packed = out.finish();
    // The loader's own rule: every ward-manifest section must agree.
    crate::introspect::introspect(&packed)?;
    Ok(packed)
}
