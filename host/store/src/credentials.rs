//! Credentials, encrypted at rest.

use crate::{Credentials, Store, StoreError, col, key, now_ms};

impl Store {
    /// Replaces the instance's credentials. They are serialized and sealed
    /// with XChaCha20-Poly1305 under a fresh random nonce, bound to the
    /// instance id, so no plaintext secret reaches the database.
    pub async fn put_credentials(&self, id: &str, creds: &Credentials) -> Result<(), StoreError> {
        let plaintext = serde_json::to_vec(creds).map_err(|_| StoreError::Encrypt {
            instance_id: id.to_owned(),
        })?;
        let (nonce, ciphertext) = key::seal(&self.inner.cipher, id, &plaintext)?;
        drop(plaintext);
        dispatch!(self, p => sqlx::query(
            "INSERT INTO credentials (instance_id, nonce, ciphertext, updated_ms) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (instance_id) DO UPDATE SET \
             nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
             updated_ms = excluded.updated_ms",
        )
        .bind(id)
        .bind(&nonce)
        .bind(&ciphertext)
        .bind(now_ms())
        .execute(p)
        .await
        .map(drop))
        .map_err(StoreError::db_for("storing credentials", id))?;
        Ok(())
    }

    /// The instance's decrypted credentials; `None` if none were stored (or
    /// the instance does not exist).
    ///
    /// Fails with [`StoreError::Decrypt`] when the row was written under
    /// another master key, altered, or copied from another instance.
    pub async fn credentials(&self, id: &str) -> Result<Option<Credentials>, StoreError> {
        let sealed: Option<(Vec<u8>, Vec<u8>)> = dispatch!(self, p => {
            let row = sqlx::query("SELECT nonce, ciphertext FROM credentials WHERE instance_id = $1")
                .bind(id)
                .fetch_optional(p)
                .await
                .map_err(StoreError::db("reading credentials"))?;
            row.map(|r| Ok::<_, StoreError>((col(&r, "nonce")?, col(&r, "ciphertext")?)))
                .transpose()?
        });
        let Some((nonce, ciphertext)) = sealed else {
            return Ok(None);
        };
        let plaintext = key::open(&self.inner.cipher, id, &nonce, &ciphertext)?;
        // Authentication passed, so a parse failure means a bug, not tampering;
        // the serde message could quote secret material, so it is not kept.
        serde_json::from_slice(&plaintext)
            .map(Some)
            .map_err(|_| StoreError::Corrupt {
                instance_id: id.to_owned(),
                what: "credentials",
                detail: "decrypted but not valid credentials JSON".to_owned(),
            })
    }
}
