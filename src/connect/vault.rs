//! The token vault: refresh tokens encrypted at rest with AES-256-GCM. Each write uses a fresh
//! random nonce; the ciphertext is bound to its account (associated data), and a key id is
//! stored beside it so keys can be rotated: the current key encrypts, any configured key
//! decrypts what it wrote.

use std::collections::HashMap;

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::Secret;

/// Why the vault refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The configured key is not base64 of 32 bytes.
    #[error(
        "TOKEN_ENCRYPTION_KEY must be base64 of exactly 32 random bytes ({0}); make one with `openssl rand -base64 32`"
    )]
    BadKey(String),
    /// The stored token was written with a key that is not configured.
    #[error(
        "the stored Microsoft authorization was encrypted with key {0}, which is not configured (was TOKEN_ENCRYPTION_KEY changed?)"
    )]
    UnknownKey(String),
    /// The ciphertext does not decrypt (wrong key material, tampering, or another account's row).
    #[error("the stored Microsoft authorization cannot be decrypted with the configured key")]
    Undecryptable,
}

/// Encrypts and decrypts refresh tokens.
#[derive(Clone)]
pub struct Vault {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("current_key_id", &self.current).finish_non_exhaustive()
    }
}

fn key_id(raw: &[u8]) -> String {
    Sha256::digest(raw).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn parse_key(b64: &str) -> Result<(String, Aes256Gcm), VaultError> {
    let raw = STANDARD.decode(b64.trim()).map_err(|_| VaultError::BadKey("not valid base64".into()))?;
    if raw.len() != 32 {
        return Err(VaultError::BadKey(format!("it decodes to {} bytes", raw.len())));
    }
    let cipher = Aes256Gcm::new_from_slice(&raw).map_err(|_| VaultError::BadKey("unusable key".into()))?;
    Ok((key_id(&raw), cipher))
}

fn aad(account_id: i64) -> Vec<u8> {
    format!("m365-refresh-token:account:{account_id}").into_bytes()
}

impl Vault {
    /// A vault from the current key and any previous keys still needed to read old rows.
    pub fn new(current: &Secret, previous: &[Secret]) -> Result<Self, VaultError> {
        let (id, cipher) = parse_key(current.expose())?;
        let mut keys = HashMap::from([(id.clone(), cipher)]);
        for old in previous {
            let (oid, c) = parse_key(old.expose())?;
            keys.entry(oid).or_insert(c);
        }
        Ok(Self { current: id, keys })
    }

    /// Encrypts a token for an account: `(key id, base64(nonce || ciphertext))`.
    pub fn encrypt(&self, account_id: i64, token: &Secret) -> (String, String) {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let cipher = &self.keys[&self.current];
        let ct = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: token.expose().as_bytes(), aad: &aad(account_id) })
            .expect("AES-GCM encryption of a short message cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        (self.current.clone(), STANDARD.encode(out))
    }

    /// Decrypts what [`Vault::encrypt`] wrote for the same account.
    pub fn decrypt(&self, account_id: i64, key_id: &str, stored: &str) -> Result<Secret, VaultError> {
        let cipher = self.keys.get(key_id).ok_or_else(|| VaultError::UnknownKey(key_id.to_owned()))?;
        let raw = STANDARD.decode(stored).map_err(|_| VaultError::Undecryptable)?;
        if raw.len() < 12 + 16 {
            return Err(VaultError::Undecryptable);
        }
        let (nonce, ct) = raw.split_at(12);
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad(account_id) })
            .map_err(|_| VaultError::Undecryptable)?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| VaultError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Secret {
        Secret::new(STANDARD.encode([byte; 32]))
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let v = Vault::new(&key(1), &[]).unwrap();
        let t = Secret::new("refresh-token-value");
        let (kid, a) = v.encrypt(7, &t);
        let (_, b) = v.encrypt(7, &t);
        assert_ne!(a, b, "a fresh nonce per write");
        assert!(!a.contains("refresh-token-value"));
        assert_eq!(v.decrypt(7, &kid, &a).unwrap().expose(), "refresh-token-value");
    }

    #[test]
    fn bound_to_the_account() {
        let v = Vault::new(&key(1), &[]).unwrap();
        let (kid, ct) = v.encrypt(7, &Secret::new("t"));
        assert_eq!(v.decrypt(8, &kid, &ct), Err(VaultError::Undecryptable));
    }

    #[test]
    fn rotation_reads_old_rows_and_writes_with_the_new_key() {
        let old = Vault::new(&key(1), &[]).unwrap();
        let (old_id, ct) = old.encrypt(1, &Secret::new("t"));
        let rotated = Vault::new(&key(2), &[key(1)]).unwrap();
        assert_eq!(rotated.decrypt(1, &old_id, &ct).unwrap().expose(), "t");
        assert_ne!(rotated.encrypt(1, &Secret::new("t")).0, old_id);
        let fresh = Vault::new(&key(2), &[]).unwrap();
        assert_eq!(fresh.decrypt(1, &old_id, &ct), Err(VaultError::UnknownKey(old_id)));
    }

    #[test]
    fn bad_keys_are_explained() {
        assert!(matches!(Vault::new(&Secret::new("not base64!"), &[]), Err(VaultError::BadKey(_))));
        let short = Secret::new(STANDARD.encode([0u8; 16]));
        let err = Vault::new(&short, &[]).unwrap_err();
        assert!(err.to_string().contains("16 bytes") && err.to_string().contains("openssl rand -base64 32"));
    }

    #[test]
    fn debug_shows_no_key() {
        let v = Vault::new(&key(9), &[]).unwrap();
        assert!(!format!("{v:?}").contains(&STANDARD.encode([9u8; 32])));
    }
}
