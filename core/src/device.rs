//! Device identity (spec §4.5) and pairing (§5.5): Ed25519 proofs over the connect challenge,
//! the paired-device store and per-role device tokens.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::constant_time_eq;
use crate::handshake::ClientInfo;
use crate::scopes::{Role, satisfies};
use crate::wire::{ErrorShape, details_code, error_code};

/// Largest accepted distance between `device.signedAt` and the server clock.
pub const SIGNATURE_SKEW_MS: u64 = 120_000;

/// `connect.params.device` (all fields required by the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProof {
    pub id: String,
    pub public_key: String,
    pub signature: String,
    pub signed_at: u64,
    pub nonce: String,
}

impl DeviceProof {
    /// From the schema-validated `device` object.
    pub fn from_value(v: &Value) -> Option<DeviceProof> {
        Some(DeviceProof {
            id: v.get("id")?.as_str()?.to_string(),
            public_key: v.get("publicKey")?.as_str()?.to_string(),
            signature: v.get("signature")?.as_str()?.to_string(),
            signed_at: v.get("signedAt")?.as_u64().or_else(|| v.get("signedAt")?.as_f64().map(|f| f as u64))?,
            nonce: v.get("nonce")?.as_str()?.to_string(),
        })
    }
}

/// Decode base64url (unpadded or padded), standard base64 or a PEM/SPKI-wrapped key.
pub fn decode_b64_lenient(s: &str) -> Option<Vec<u8>> {
    let t = s.trim();
    for e in [&URL_SAFE_NO_PAD, &URL_SAFE, &STANDARD, &STANDARD_NO_PAD] {
        if let Ok(b) = e.decode(t) {
            return Some(b);
        }
    }
    None
}

/// The raw 32-byte public key: base64(url) of the raw key, or a PEM / DER SPKI wrapping it.
pub fn decode_public_key(s: &str) -> Option<Vec<u8>> {
    let t = s.trim();
    let bytes = if t.starts_with("-----BEGIN") {
        let body: String = t.lines().filter(|l| !l.starts_with("-----")).collect();
        decode_b64_lenient(&body)?
    } else {
        decode_b64_lenient(t)?
    };
    // Ed25519 SPKI DER is a fixed 12-byte prefix followed by the raw key.
    const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    if bytes.len() == 44 && bytes[..12] == SPKI_PREFIX {
        return Some(bytes[12..].to_vec());
    }
    Some(bytes)
}

/// `device.id` = lowercase hex SHA-256 of the raw public key.
pub fn device_id_for_key(raw: &[u8]) -> String {
    crate::ids::hex(&Sha256::digest(raw))
}

fn normalize_meta(s: Option<&str>) -> String {
    s.map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default()
}

/// Inputs of the signed payload besides the device itself.
#[derive(Debug, Clone, Copy)]
pub struct SignedFields<'a> {
    pub client_id: &'a str,
    pub client_mode: &'a str,
    pub role: &'a str,
    pub scopes: &'a [String],
    /// `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`.
    pub token: &'a str,
    pub platform: Option<&'a str>,
    pub device_family: Option<&'a str>,
}

/// The v3 and v2 payloads a device signs (spec §4.5).
pub fn signed_payloads(device_id: &str, f: &SignedFields<'_>, signed_at: u64, nonce: &str) -> (String, String) {
    let scopes = f.scopes.join(",");
    let v2 = format!("v2|{device_id}|{}|{}|{}|{scopes}|{signed_at}|{}|{nonce}", f.client_id, f.client_mode, f.role, f.token);
    let v3 = format!(
        "v3|{device_id}|{}|{}|{}|{scopes}|{signed_at}|{}|{nonce}|{}|{}",
        f.client_id,
        f.client_mode,
        f.role,
        f.token,
        normalize_meta(f.platform),
        normalize_meta(f.device_family)
    );
    (v3, v2)
}

/// Why a device proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    DeviceIdMismatch,
    SignatureExpired,
    NonceRequired,
    NonceMismatch,
    SignatureInvalid,
    PublicKeyInvalid,
}

impl ProofError {
    fn parts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            ProofError::DeviceIdMismatch => {
                ("device identity mismatch", details_code::DEVICE_AUTH_DEVICE_ID_MISMATCH, "device-id-mismatch")
            }
            ProofError::SignatureExpired => {
                ("device signature expired", details_code::DEVICE_AUTH_SIGNATURE_EXPIRED, "device-signature-stale")
            }
            ProofError::NonceRequired => ("device nonce required", details_code::DEVICE_AUTH_NONCE_REQUIRED, "device-nonce-missing"),
            ProofError::NonceMismatch => ("device nonce mismatch", details_code::DEVICE_AUTH_NONCE_MISMATCH, "device-nonce-mismatch"),
            ProofError::SignatureInvalid => ("device signature invalid", details_code::DEVICE_AUTH_SIGNATURE_INVALID, "device-signature"),
            ProofError::PublicKeyInvalid => {
                ("device public key invalid", details_code::DEVICE_AUTH_PUBLIC_KEY_INVALID, "device-public-key")
            }
        }
    }

    /// `INVALID_REQUEST` with `{code, reason}` details (close 1008 with the message).
    pub fn to_error(self) -> ErrorShape {
        let (message, code, reason) = self.parts();
        ErrorShape::invalid_request(message).with_details(json!({"code": code, "reason": reason}))
    }
}

/// Which payload version verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVersion {
    V3,
    V2,
}

/// Verify a device proof against the challenge nonce and the server clock (checks in the
/// reference's order; the first failure wins).
pub fn verify_proof(
    proof: &DeviceProof,
    fields: &SignedFields<'_>,
    challenge_nonce: &str,
    now_unix_ms: u64,
) -> Result<PayloadVersion, ProofError> {
    let raw = decode_public_key(&proof.public_key);
    let derived = raw.as_deref().map(device_id_for_key);
    if derived.as_deref() != Some(proof.id.as_str()) {
        return Err(ProofError::DeviceIdMismatch);
    }
    if now_unix_ms.abs_diff(proof.signed_at) > SIGNATURE_SKEW_MS {
        return Err(ProofError::SignatureExpired);
    }
    let nonce = proof.nonce.trim();
    if nonce.is_empty() {
        return Err(ProofError::NonceRequired);
    }
    if nonce != challenge_nonce {
        return Err(ProofError::NonceMismatch);
    }
    let raw = raw.unwrap_or_default();
    let key = <[u8; 32]>::try_from(raw.as_slice()).ok().and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let sig = decode_b64_lenient(&proof.signature).and_then(|b| Signature::from_slice(&b).ok());
    let (Some(key), Some(sig)) = (key, sig) else {
        // An undecodable key already fails the signature step (the reference's order).
        return Err(ProofError::SignatureInvalid);
    };
    let (v3, v2) = signed_payloads(&proof.id, fields, proof.signed_at, nonce);
    if key.verify_strict(v3.as_bytes(), &sig).is_ok() {
        return Ok(PayloadVersion::V3);
    }
    if key.verify_strict(v2.as_bytes(), &sig).is_ok() {
        return Ok(PayloadVersion::V2);
    }
    Err(ProofError::SignatureInvalid)
}

/// A device token granted to one role of a paired device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceToken {
    pub token: String,
    pub issued_at_ms: u64,
    pub scopes: Vec<String>,
}

/// A paired device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    pub device_id: String,
    pub public_key: String,
    pub client_id: String,
    pub client_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub created_at_ms: u64,
    /// Role name → token and the scopes it grants.
    pub tokens: HashMap<String, DeviceToken>,
}

/// A pairing request waiting for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairingRequest {
    pub request_id: String,
    pub device_id: String,
    pub public_key: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub client_id: String,
    pub client_mode: String,
    pub reason: String,
    pub ts: u64,
}

/// Why pairing is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingReason {
    NotPaired,
    RoleUpgrade,
    ScopeUpgrade,
}

impl PairingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PairingReason::NotPaired => "not-paired",
            PairingReason::RoleUpgrade => "role-upgrade",
            PairingReason::ScopeUpgrade => "scope-upgrade",
        }
    }
}

/// Outcome of checking a device token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    Ok(DeviceToken),
    /// The token is this device's, but its grant does not cover the requested scopes.
    ScopeMismatch,
    /// Not this device's token for the role.
    Mismatch,
}

/// Paired devices and pending requests (kept by the hub, persisted by the shell).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStore {
    pub devices: HashMap<String, PairedDevice>,
    #[serde(default)]
    pub pending: HashMap<String, PairingRequest>,
}

fn covers(granted: &[String], requested: &[String]) -> bool {
    requested.iter().all(|r| satisfies(granted, r))
}

impl DeviceStore {
    /// Check a presented device token for `role` and `scopes`.
    pub fn check_token(&self, device_id: &str, role: Role, scopes: &[String], presented: &str) -> TokenCheck {
        let Some(t) = self.devices.get(device_id).and_then(|d| d.tokens.get(role.as_str())) else {
            return TokenCheck::Mismatch;
        };
        if !constant_time_eq(presented.as_bytes(), t.token.as_bytes()) {
            return TokenCheck::Mismatch;
        }
        if role == Role::Operator && !covers(&t.scopes, scopes) {
            return TokenCheck::ScopeMismatch;
        }
        TokenCheck::Ok(t.clone())
    }

    /// Is this device already paired for the role and scopes? `Err` says why not.
    pub fn pairing_state(&self, device_id: &str, public_key: &[u8], role: Role, scopes: &[String]) -> Result<DeviceToken, PairingReason> {
        let Some(d) = self.devices.get(device_id) else { return Err(PairingReason::NotPaired) };
        if decode_public_key(&d.public_key).as_deref() != Some(public_key) {
            return Err(PairingReason::NotPaired);
        }
        let Some(t) = d.tokens.get(role.as_str()) else { return Err(PairingReason::RoleUpgrade) };
        if role == Role::Operator && !covers(&t.scopes, scopes) {
            return Err(PairingReason::ScopeUpgrade);
        }
        Ok(t.clone())
    }

    /// Approve (or widen) a device for a role; returns the token for that role. A scope upgrade
    /// keeps the existing token and widens its grant.
    pub fn approve(&mut self, who: &PairingSubject<'_>, new_token: String, now_unix_ms: u64) -> DeviceToken {
        let proof = who.proof;
        let d = self.devices.entry(proof.id.clone()).or_insert_with(|| PairedDevice {
            device_id: proof.id.clone(),
            public_key: proof.public_key.clone(),
            client_id: who.client.id.clone(),
            client_mode: who.client.mode.clone(),
            display_name: who.client.display_name.clone(),
            platform: Some(who.client.platform.clone()),
            created_at_ms: now_unix_ms,
            tokens: HashMap::new(),
        });
        d.public_key = proof.public_key.clone();
        let role = who.role.as_str();
        let t = d.tokens.entry(role.to_string()).or_insert_with(|| DeviceToken {
            token: new_token,
            issued_at_ms: now_unix_ms,
            scopes: Vec::new(),
        });
        for s in who.scopes {
            if !t.scopes.contains(s) {
                t.scopes.push(s.clone());
            }
        }
        self.pending.retain(|_, r| r.device_id != proof.id || r.role != role);
        t.clone()
    }

    /// Record (or refresh) a pending request.
    pub fn request(&mut self, who: &PairingSubject<'_>, reason: PairingReason, request_id: String, now_unix_ms: u64) -> PairingRequest {
        let role = who.role.as_str();
        if let Some(existing) = self.pending.values_mut().find(|r| r.device_id == who.proof.id && r.role == role) {
            existing.scopes = who.scopes.to_vec();
            existing.ts = now_unix_ms;
            existing.reason = reason.as_str().to_string();
            return existing.clone();
        }
        let r = PairingRequest {
            request_id: request_id.clone(),
            device_id: who.proof.id.clone(),
            public_key: who.proof.public_key.clone(),
            role: role.to_string(),
            scopes: who.scopes.to_vec(),
            client_id: who.client.id.clone(),
            client_mode: who.client.mode.clone(),
            reason: reason.as_str().to_string(),
            ts: now_unix_ms,
        };
        self.pending.insert(request_id, r.clone());
        r
    }
}

/// A verified device asking to be paired for a role.
#[derive(Debug, Clone, Copy)]
pub struct PairingSubject<'a> {
    pub proof: &'a DeviceProof,
    pub role: Role,
    pub scopes: &'a [String],
    pub client: &'a ClientInfo,
}

/// `NOT_PAIRED pairing required` (spec §5.5).
pub fn pairing_required(req: &PairingRequest, approved: Option<&PairedDevice>) -> ErrorShape {
    let mut details = json!({
        "code": details_code::PAIRING_REQUIRED,
        "reason": req.reason,
        "requestId": req.request_id,
        "remediationHint": "approve this device from a paired operator (openclaw devices approve) or connect from the gateway host",
        "recommendedNextStep": "wait_for_approval",
        "retryable": true,
        "pauseReconnect": true,
        "deviceId": req.device_id,
        "requestedRole": req.role,
        "requestedScopes": req.scopes,
    });
    if let Some(d) = approved {
        let mut roles: Vec<&String> = d.tokens.keys().collect();
        roles.sort();
        details["approvedRoles"] = json!(roles);
        details["approvedScopes"] = json!(d.tokens.get(&req.role).map(|t| t.scopes.clone()).unwrap_or_default());
    }
    ErrorShape::new(error_code::NOT_PAIRED, "pairing required: device is not approved yet").with_details(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_of_the_captured_key() {
        // edge-device-v3-ok.jsonl
        let raw = decode_public_key("gI5_qdn9oBlMcxyt_PMuuaL289ll1J37JgVkA0zXiNY").unwrap();
        assert_eq!(device_id_for_key(&raw), "62f15e5dfd6509f3f929a75b93043336b16adf4e2aa154b96edd2181983e8e89");
    }

    #[test]
    fn captured_v3_signature_verifies() {
        // edge-device-v3-ok.jsonl: the exact signed payload is in its meta.observed_summary.
        let proof = DeviceProof {
            id: "62f15e5dfd6509f3f929a75b93043336b16adf4e2aa154b96edd2181983e8e89".into(),
            public_key: "gI5_qdn9oBlMcxyt_PMuuaL289ll1J37JgVkA0zXiNY".into(),
            signature: "kKDdlUeMcVkgB3l_4pZsV-4B55nWpCNtmwsiBBfrNH1fvEsBdASxxZk_bhoTpAKDdUGrE-DfQAF0jcj_YJtHAg".into(),
            signed_at: 1795602894074,
            nonce: "4aa187b0-0db4-40c5-9f9d-9b05251a5c3e".into(),
        };
        let scopes = vec!["operator.read".to_string(), "operator.write".to_string()];
        let fields = SignedFields {
            client_id: "cli",
            client_mode: "cli",
            role: "operator",
            scopes: &scopes,
            token: "testtoken123",
            platform: Some("linux"),
            device_family: Some("Linux"),
        };
        assert_eq!(verify_proof(&proof, &fields, &proof.nonce, 1795602894100), Ok(PayloadVersion::V3));
        assert_eq!(verify_proof(&proof, &fields, "other", 1795602894100), Err(ProofError::NonceMismatch));
        assert_eq!(verify_proof(&proof, &fields, &proof.nonce, 1795602894074 + 120_001), Err(ProofError::SignatureExpired));
        let wrong = SignedFields { token: "other", ..fields };
        assert_eq!(verify_proof(&proof, &wrong, &proof.nonce, 1795602894100), Err(ProofError::SignatureInvalid));
    }
}
