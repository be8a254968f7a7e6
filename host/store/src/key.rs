//! The master key and the credential cipher.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::StoreError;

/// Length of a master key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an XChaCha20-Poly1305 nonce in bytes.
pub(crate) const NONCE_LEN: usize = 24;

/// Domain separation for credential ciphertexts; bumping the version lets a
/// future format coexist with rows written by this one.
const CREDENTIALS_AD_PREFIX: &[u8] = b"ward/credentials/v1\0";

/// The 32-byte key that encrypts credentials at rest.
///
/// `Debug` never prints the key material.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> MasterKey {
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        MasterKey(bytes)
    }

    /// A key from raw bytes; fails unless there are exactly 32.
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, StoreError> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| StoreError::KeyLength { len: bytes.len() })?;
        Ok(MasterKey(arr))
    }

    /// The key as standard base64, the format of key files and `from_env`.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Reads the key from environment variable `var` (standard base64 of 32 bytes).
    pub fn from_env(var: &str) -> Result<MasterKey, StoreError> {
        let value = std::env::var(var).map_err(|e| StoreError::KeyEnv {
            var: var.to_owned(),
            reason: e.to_string(),
        })?;
        decode_key(&value).map_err(|reason| StoreError::KeyEnv {
            var: var.to_owned(),
            reason,
        })
    }

    /// Loads the key stored at `path`, or generates one and writes it there
    /// (mode 0600, parent directories created) when the file does not exist.
    ///
    /// A file that exists but does not hold a valid key is refused rather
    /// than overwritten: replacing it would silently orphan every stored
    /// credential.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, StoreError> {
        let key_err = |reason: String| StoreError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_exposed(path);
                return decode_key(&text).map_err(key_err);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(key_err(format!("cannot read it: {e}"))),
        }

        let key = MasterKey::generate();
        let created = crate::create_private_file(path, format!("{}\n", key.to_base64()).as_bytes())
            .map_err(|e| key_err(format!("cannot create it: {e}")))?;
        if !created {
            // Another process created it between our read and our create:
            // theirs wins, so both end up using the same key.
            let text = std::fs::read_to_string(path)
                .map_err(|e| key_err(format!("cannot read it: {e}")))?;
            return decode_key(&text).map_err(key_err);
        }
        tracing::info!(path = %path.display(), "generated a new master key");
        Ok(key)
    }

    pub(crate) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

fn decode_key(text: &str) -> Result<MasterKey, String> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| format!("not valid base64 ({e})"))?;
    if bytes.len() != KEY_LEN {
        return Err(format!(
            "decodes to {} bytes, a master key is exactly {KEY_LEN}",
            bytes.len()
        ));
    }
    MasterKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "master key file is readable by other users; run `chmod 600` on it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path) {}

fn credentials_ad(instance_id: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(CREDENTIALS_AD_PREFIX.len() + instance_id.len());
    ad.extend_from_slice(CREDENTIALS_AD_PREFIX);
    ad.extend_from_slice(instance_id.as_bytes());
    ad
}

/// Encrypts `plaintext` for `instance_id`; returns (nonce, ciphertext).
pub(crate) fn seal(
    cipher: &XChaCha20Poly1305,
    instance_id: &str,
    plaintext: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ad = credentials_ad(instance_id);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &ad,
            },
        )
        .map_err(|_| StoreError::Encrypt {
            instance_id: instance_id.to_owned(),
        })?;
    Ok((nonce.to_vec(), ciphertext))
}

/// Decrypts a row written by [`seal`] for the same `instance_id`.
pub(crate) fn open(
    cipher: &XChaCha20Poly1305,
    instance_id: &str,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let fail = || StoreError::Decrypt {
        instance_id: instance_id.to_owned(),
    };
    if nonce.len() != NONCE_LEN {
        return Err(fail());
    }
    let ad = credentials_ad(instance_id);
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &ad,
            },
        )
        .map_err(|_| fail())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn debug_hides_key() {
        let key = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains('7'), "{shown}");
        assert!(!shown.contains(&key.to_base64()));
    }

    #[test]
    fn from_bytes_checks_length() {
        assert!(matches!(
            MasterKey::from_bytes(&[0u8; 31]),
            Err(StoreError::KeyLength { len: 31 })
        ));
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let cipher = MasterKey::generate().cipher();
        let (nonce, ct) = seal(&cipher, "a", b"secret").unwrap();
        assert_eq!(open(&cipher, "a", &nonce, &ct).unwrap(), b"secret");
        assert!(matches!(
            open(&cipher, "b", &nonce, &ct),
            Err(StoreError::Decrypt { .. })
        ));
        let other = MasterKey::generate().cipher();
        assert!(open(&other, "a", &nonce, &ct).is_err());
    }

    #[test]
    fn load_or_create_creates_then_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn processes_starting_at_once_share_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let line = std::sync::Arc::new(std::sync::Barrier::new(8));
        let keys: Vec<[u8; KEY_LEN]> = (0..8)
            .map(|_| {
                let (line, path) = (line.clone(), path.clone());
                std::thread::spawn(move || {
                    line.wait();
                    MasterKey::load_or_create(&path).unwrap().0
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(keys.iter().all(|k| *k == keys[0]));
        assert_eq!(MasterKey::load_or_create(&path).unwrap().0, keys[0]);
        // Only the key file: no temporary left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["master.key"]);
    }

    #[test]
    fn load_or_create_refuses_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "not a key").unwrap();
        let err = MasterKey::load_or_create(&path).unwrap_err();
        assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
        std::fs::write(&path, B64.encode([1u8; 16])).unwrap();
        let err = MasterKey::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("16 bytes"), "{err}");
        // The bad file must be left as it was, not replaced.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            B64.encode([1u8; 16])
        );
    }

    #[test]
    fn from_env_decodes() {
        // set_var is unsafe in edition 2024 and the workspace denies unsafe
        // code, so cover the missing-variable path plus the shared decoder.
        let var = "WARD_STORE_TEST_MASTER_KEY_UNSET";
        let key = MasterKey::generate();
        assert!(matches!(
            MasterKey::from_env(var),
            Err(StoreError::KeyEnv { .. })
        ));
        assert_eq!(decode_key(&key.to_base64()).unwrap().0, key.0);
        assert!(decode_key("@@@").is_err());
    }
}
