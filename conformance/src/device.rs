//! Device identities as the reference clients build them (protocol §4.5): an Ed25519 key, its
//! id (hex SHA-256 of the raw public key), and the `v3`/`v2` signature payloads over the
//! connect challenge.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::model::SigVersion;

/// One device key.
#[derive(Clone)]
pub struct DeviceKey {
    sk: SigningKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey").field("id", &self.device_id()).finish()
    }
}

impl DeviceKey {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        DeviceKey { sk: SigningKey::from_bytes(&seed) }
    }

    /// A fresh key from the OS RNG.
    pub fn random() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("OS randomness");
        Self::from_seed(seed)
    }

    pub fn public_raw(&self) -> [u8; 32] {
        self.sk.verifying_key().to_bytes()
    }

    /// `device.publicKey`: base64url without padding of the raw key.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_raw())
    }

    /// `device.id`: lowercase hex SHA-256 of the raw key.
    pub fn device_id(&self) -> String {
        hex(&Sha256::digest(self.public_raw()))
    }

    /// base64url (unpadded) Ed25519 signature of the UTF-8 payload.
    pub fn sign(&self, payload: &str) -> Vec<u8> {
        self.sk.sign(payload.as_bytes()).to_bytes().to_vec()
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn b64url(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// `platform'` / `deviceFamily'`: trimmed, ASCII upper case lowered, `""` when absent.
fn norm(s: Option<&str>) -> String {
    s.map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default()
}

/// The fields a device signature covers.
#[derive(Debug, Clone)]
pub struct Signed<'a> {
    pub device_id: &'a str,
    pub client_id: &'a str,
    pub mode: &'a str,
    pub role: &'a str,
    pub scopes: &'a [&'a str],
    pub signed_at: u64,
    pub token: &'a str,
    pub nonce: &'a str,
    pub platform: Option<&'a str>,
    pub device_family: Option<&'a str>,
}

/// The `|`-joined payload of this version.
pub fn payload(version: SigVersion, s: &Signed<'_>) -> String {
    let base = format!(
        "{}|{}|{}|{}|{}|{}|{}|{}|{}",
        match version {
            SigVersion::V3 => "v3",
            SigVersion::V2 => "v2",
        },
        s.device_id,
        s.client_id,
        s.mode,
        s.role,
        s.scopes.join(","),
        s.signed_at,
        s.token,
        s.nonce
    );
    match version {
        SigVersion::V3 => format!("{base}|{}|{}", norm(s.platform), norm(s.device_family)),
        SigVersion::V2 => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_payload_like_the_capture() {
        let scopes = ["operator.read", "operator.write"];
        let s = Signed {
            device_id: "62f15e5dfd6509f3f929a75b93043336b16adf4e2aa154b96edd2181983e8e89",
            client_id: "cli",
            mode: "cli",
            role: "operator",
            scopes: &scopes,
            signed_at: 1795602894074,
            token: "testtoken123",
            nonce: "4aa187b0-0db4-40c5-9f9d-9b05251a5c3e",
            platform: Some("linux"),
            device_family: Some("Linux"),
        };
        assert_eq!(
            payload(SigVersion::V3, &s),
            "v3|62f15e5dfd6509f3f929a75b93043336b16adf4e2aa154b96edd2181983e8e89|cli|cli|operator|operator.read,operator.write|1795602894074|testtoken123|4aa187b0-0db4-40c5-9f9d-9b05251a5c3e|linux|linux"
        );
    }

    #[test]
    fn id_is_sha256_of_the_raw_key() {
        let k = DeviceKey::from_seed([1; 32]);
        assert_eq!(k.device_id().len(), 64);
        assert_eq!(k.public_key().len(), 43);
        assert_eq!(k.sign("x").len(), 64);
    }
}
