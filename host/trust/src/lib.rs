//! `ward-trust`: who may vouch for a plugin file.
//!
//! Plugins are signed in the minisign format (Ed25519, prehashed with
//! BLAKE2b-512), so vendors can use either `ward plugin sign` or the
//! stock `minisign` tool, and operators can check files with either. The
//! signature covers the whole `.wasm` file (code and embedded manifest), is
//! stored next to it as `FILE.minisig`, and is checked against the public
//! keys in the daemon's [`TrustStore`].
//!
//! Secret keys written by [`generate`] are unencrypted: the vendor's signing
//! machine (or CI secret store) protects the file; a password prompt would
//! make unattended release pipelines impossible.

use std::io::Cursor;

use minisign::{PublicKey, SecretKey, SecretKeyBox, SignatureBox};
use serde::Serialize;

/// Why a key or signature could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A public key is not in minisign format.
    #[error(
        "public key {0:?} is not a minisign public key (expected the base64 line starting with `RW` or a .pub file)"
    )]
    PublicKey(String),
    /// A secret key file is not an unencrypted minisign secret key.
    #[error(
        "secret key is not an unencrypted minisign secret key ({0}); create one with `ward plugin keygen`"
    )]
    SecretKey(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A minisign public key with its key id.
#[derive(Clone)]
pub struct TrustedKey {
    key: PublicKey,
    base64: String,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey")
            .field("id", &self.id())
            .finish()
    }
}

impl TrustedKey {
    /// Parses the base64 line (`RW…`) or a whole `.pub` file.
    pub fn parse(text: &str) -> Result<TrustedKey, TrustError> {
        let text = text.trim();
        let line = if text.contains('\n') {
            // A .pub file: "untrusted comment: …" then the key line.
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
                .unwrap_or("")
        } else {
            text
        };
        let key =
            PublicKey::from_base64(line).map_err(|_| TrustError::PublicKey(line.to_string()))?;
        Ok(TrustedKey {
            key,
            base64: line.to_string(),
        })
    }

    /// Key id as minisign prints it: 16 upper-case hex digits.
    pub fn id(&self) -> String {
        key_id(self.key.keynum())
    }

    /// The base64 line.
    pub fn base64(&self) -> &str {
        &self.base64
    }
}

fn key_id(keynum: &[u8]) -> String {
    // minisign prints the 8-byte key number as a little-endian u64.
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// A freshly generated key pair, as file contents.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// Contents of the secret key file (`vendor.key`).
    pub secret_file: String,
    /// Contents of the public key file (`vendor.pub`).
    pub public_file: String,
    /// The public key's base64 line (what operators put in `trusted_keys`).
    pub public_base64: String,
    /// Key id.
    pub id: String,
}

/// Generates an unencrypted Ed25519 key pair in minisign format.
pub fn generate() -> Result<GeneratedKey, TrustError> {
    let pair = minisign::KeyPair::generate_unencrypted_keypair()
        .map_err(|e| TrustError::Sign(e.to_string()))?;
    let id = key_id(pair.pk.keynum());
    let public_box = pair
        .pk
        .to_box()
        .map_err(|e| TrustError::Sign(e.to_string()))?;
    let secret_box = pair
        .sk
        .to_box(Some(&format!("ward plugin signing key {id}")))
        .map_err(|e| TrustError::Sign(e.to_string()))?;
    Ok(GeneratedKey {
        secret_file: secret_box.into_string(),
        public_file: public_box.into_string(),
        public_base64: pair.pk.to_base64(),
        id,
    })
}

/// Signs `bytes` with the secret key file contents; returns the
/// `.minisig` file contents. The trusted comment names the file and its
/// signer so that `minisign -V` shows them too.
pub fn sign(secret_file: &str, bytes: &[u8], file_name: &str) -> Result<String, TrustError> {
    let secret = SecretKeyBox::from_string(secret_file)
        .and_then(SecretKey::from_unencrypted_box)
        .map_err(|e| TrustError::SecretKey(e.to_string()))?;
    let public =
        PublicKey::from_secret_key(&secret).map_err(|e| TrustError::Sign(e.to_string()))?;
    let trusted = format!("file:{file_name}");
    let signature = minisign::sign(
        Some(&public),
        &secret,
        Cursor::new(bytes),
        Some(&trusted),
        Some(&format!(
            "signature from ward plugin key {}",
            key_id(public.keynum())
        )),
    )
    .map_err(|e| TrustError::Sign(e.to_string()))?;
    Ok(signature.into_string())
}

/// Public key of a secret key file, as its base64 line.
pub fn public_of(secret_file: &str) -> Result<String, TrustError> {
    let secret = SecretKeyBox::from_string(secret_file)
        .and_then(SecretKey::from_unencrypted_box)
        .map_err(|e| TrustError::SecretKey(e.to_string()))?;
    let public =
        PublicKey::from_secret_key(&secret).map_err(|e| TrustError::Sign(e.to_string()))?;
    Ok(public.to_base64())
}

/// The verdict on one plugin file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum SignatureStatus {
    /// Compiled into the `ward` binary from source: trusted as the binary is.
    Bundled,
    /// Valid signature by a trusted key.
    Trusted {
        /// Key id of the signer.
        key_id: String,
    },
    /// A well-formed signature by a key that is not in the trust store.
    UntrustedKey {
        /// Key id of the signer.
        key_id: String,
    },
    /// The signature does not match the file (tampered file or signature).
    Invalid {
        /// What failed.
        reason: String,
    },
    /// No `.minisig` next to the file.
    Unsigned,
}

impl SignatureStatus {
    /// Whether a daemon outside dev mode may load the file.
    pub fn is_trusted(&self) -> bool {
        matches!(
            self,
            SignatureStatus::Bundled | SignatureStatus::Trusted { .. }
        )
    }
}

impl std::fmt::Display for SignatureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureStatus::Bundled => f.write_str("bundled (built from source into this binary)"),
            SignatureStatus::Trusted { key_id } => write!(f, "signed by trusted key {key_id}"),
            SignatureStatus::UntrustedKey { key_id } => write!(
                f,
                "signed by key {key_id}, which is not in plugins.trusted_keys"
            ),
            SignatureStatus::Invalid { reason } => {
                write!(
                    f,
                    "INVALID signature ({reason}): file or signature was altered"
                )
            }
            SignatureStatus::Unsigned => f.write_str("unsigned (no .minisig file)"),
        }
    }
}

/// The public keys whose signatures the daemon accepts.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: Vec<TrustedKey>,
}

impl TrustStore {
    /// Builds a store from base64 lines or `.pub` file contents.
    pub fn new<S: AsRef<str>>(keys: &[S]) -> Result<TrustStore, TrustError> {
        Ok(TrustStore {
            keys: keys
                .iter()
                .map(|k| TrustedKey::parse(k.as_ref()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// Checks `bytes` against the `.minisig` contents (`None`: unsigned).
    pub fn verify(&self, bytes: &[u8], signature: Option<&str>) -> SignatureStatus {
        let Some(signature) = signature else {
            return SignatureStatus::Unsigned;
        };
        let signature = match SignatureBox::from_string(signature) {
            Ok(s) => s,
            Err(e) => {
                return SignatureStatus::Invalid {
                    reason: format!("not a minisign signature: {e}"),
                };
            }
        };
        let signer = key_id(signature.keynum());
        let Some(key) = self
            .keys
            .iter()
            .find(|k| k.key.keynum() == signature.keynum())
        else {
            return SignatureStatus::UntrustedKey { key_id: signer };
        };
        // Legacy (non-prehashed) signatures are refused: minisign has
        // produced prehashed ones by default since 0.8 and `ward` always does.
        match minisign::verify(&key.key, &signature, Cursor::new(bytes), true, false, false) {
            Ok(()) => SignatureStatus::Trusted { key_id: signer },
            Err(e) => SignatureStatus::Invalid {
                reason: e.to_string(),
            },
        }
    }
}

/// Verifies against one public key only (`ward plugin verify --pubkey`).
pub fn verify_with(
    public: &str,
    bytes: &[u8],
    signature: Option<&str>,
) -> Result<SignatureStatus, TrustError> {
    Ok(TrustStore::new(&[public])?.verify(bytes, signature))
}

/// Parses just a public key (to validate configuration early).
pub fn parse_public(text: &str) -> Result<TrustedKey, TrustError> {
    TrustedKey::parse(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sign_verify_tamper() {
        let key = generate().unwrap();
        let data = b"\0asm component bytes".to_vec();
        let sig = sign(&key.secret_file, &data, "x.wasm").unwrap();
        let store = TrustStore::new(&[key.public_base64.as_str()]).unwrap();
        assert_eq!(
            store.verify(&data, Some(&sig)),
            SignatureStatus::Trusted {
                key_id: key.id.clone()
            }
        );
        let mut tampered = data.clone();
        tampered[3] ^= 1;
        assert!(matches!(
            store.verify(&tampered, Some(&sig)),
            SignatureStatus::Invalid { .. }
        ));
        assert_eq!(store.verify(&data, None), SignatureStatus::Unsigned);
        let other = generate().unwrap();
        let store = TrustStore::new(&[other.public_file.as_str()]).unwrap();
        assert_eq!(
            store.verify(&data, Some(&sig)),
            SignatureStatus::UntrustedKey {
                key_id: key.id.clone()
            }
        );
        assert_eq!(public_of(&key.secret_file).unwrap(), key.public_base64);
        assert!(TrustStore::new(&["nope"]).is_err());
    }
}
