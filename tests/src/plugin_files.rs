//! Plugin files for tests: a component with its embedded manifest edited,
//! written to a plugin directory and signed like a vendor would.

use std::path::{Path, PathBuf};

/// Rewrites the `ward-manifest` custom section(s) of a component, keeping
/// everything else byte for byte. Components nest the core module (where
/// the section lives) in a module section, so both levels are re-encoded
/// with new sizes.
pub fn rewrite_manifest(bytes: &[u8], edit: &dyn Fn(&str) -> String) -> Vec<u8> {
    rewrite(bytes, &|text| Some(edit(text)))
}

/// Removes every `ward-manifest` custom section: what a component built by
/// another toolchain looks like before `ward plugin pack`.
pub fn strip_manifest(bytes: &[u8]) -> Vec<u8> {
    rewrite(bytes, &|_| None)
}

/// Rewrites (`Some`) or drops (`None`) each `ward-manifest` section.
fn rewrite(bytes: &[u8], edit: &dyn Fn(&str) -> Option<String>) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn walk(bytes: &[u8], component: bool, edit: &dyn Fn(&str) -> Option<String>) -> Vec<u8> {
        let mut out = bytes[..8].to_vec();
        let mut reader = wasmparser::BinaryReader::new(&bytes[8..], 8);
        while !reader.eof() {
            let id = reader.read_u8().unwrap();
            let size = reader.read_var_u32().unwrap() as usize;
            let start = reader.original_position();
            let content = &bytes[start..start + size];
            reader.read_bytes(size).unwrap();
            let new_content = if id == 0 {
                let mut r = wasmparser::BinaryReader::new(content, 0);
                let name = r.read_string().unwrap();
                if name == ward_manifest::SECTION {
                    let data = &content[r.original_position()..];
                    let Some(text) = edit(std::str::from_utf8(data).unwrap()) else {
                        continue;
                    };
                    let mut c = Vec::new();
                    leb(name.len(), &mut c);
                    c.extend_from_slice(name.as_bytes());
                    c.extend_from_slice(text.as_bytes());
                    c
                } else {
                    content.to_vec()
                }
            } else if component && id == 1 {
                walk(content, false, edit)
            } else {
                content.to_vec()
            };
            out.push(id);
            leb(new_content.len(), &mut out);
            out.extend_from_slice(&new_content);
        }
        out
    }
    walk(bytes, true, edit)
}

/// Appends a component-level custom section `name` of `size` bytes: a
/// component as large as a Python one (componentize-py embeds the
/// interpreter and standard library) without changing what it does.
pub fn pad(bytes: &[u8], name: &str, size: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    wasm_encoder::ComponentSection::append_to_component(
        &wasm_encoder::CustomSection {
            name: name.into(),
            data: vec![0x5a; size].into(),
        },
        &mut out,
    );
    out
}

/// Writes `bytes` as `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Signs `path` with a minisign secret key file's text; writes `path.minisig`.
pub fn sign(secret: &str, path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let sig = ward_trust::sign(secret, &bytes, "x.wasm").unwrap();
    let mut sig_path = path.as_os_str().to_owned();
    sig_path.push(".minisig");
    std::fs::write(PathBuf::from(sig_path), sig).unwrap();
}

/// The Okta connector with a higher version and one more host granted.
pub fn widened_okta() -> Vec<u8> {
    rewrite_manifest(crate::OKTA_WASM, &|text| {
        let mut out: String = text
            .lines()
            .map(|l| {
                if l.starts_with("version =") {
                    "version = \"9.9.9\"".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        out.push_str("\n\n[[http]]\nurl = \"https://exfil.example/\"\nmethods = [\"POST\"]\n");
        out
    })
}
