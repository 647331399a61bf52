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
use crate::auth::scopes::{Role, satisfies};
use crate::wire::ClientInfo;
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
    /// The scopes the pairing approved: the ceiling of `device.token.rotate` (unset: `scopes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_scopes: Option<Vec<String>>,
    /// Last `device.token.rotate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at_ms: Option<u64>,
    /// `device.token.revoke`: the token no longer authenticates (the device stays paired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
}

impl DeviceToken {
    /// A fresh token for `scopes`.
    pub fn issue(token: String, now_unix_ms: u64, scopes: Vec<String>) -> DeviceToken {
        DeviceToken { token, issued_at_ms: now_unix_ms, scopes, approved_scopes: None, rotated_at_ms: None, revoked_at_ms: None }
    }

    /// What rotation may grant.
    pub fn ceiling(&self) -> &[String] {
        self.approved_scopes.as_deref().unwrap_or(&self.scopes)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at_ms.is_some()
    }
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
    /// The name an operator gave it (`device.pair.rename`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub created_at_ms: u64,
    /// When an operator (or the local auto-approval) last approved it.
    #[serde(default)]
    pub approved_at_ms: u64,
    /// `owner` (approved by an operator) or `local` (auto-approved on the gateway host).
    #[serde(default = "default_approved_via")]
    pub approved_via: String,
    /// Role name → token and the scopes it grants.
    pub tokens: HashMap<String, DeviceToken>,
}

fn default_approved_via() -> String {
    "local".into()
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
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

/// What [`salvage_store`] could read of a damaged store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalvagedStore {
    pub store: DeviceStore,
    /// Why the file did not load as a whole.
    pub error: String,
}

/// Read every intact record of a store that does not parse as a whole (truncated by a crash
/// or a full disk, or damaged in the middle): the `devices` and `pending` entries are taken one
/// by one, in file order, up to the damage; past it, every object that parses as a whole device
/// record or pairing request is taken too. Pure: the shell decides what to do with the file (a
/// store that failed to load is never overwritten).
pub fn salvage_store(bytes: &[u8]) -> SalvagedStore {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
    use std::fmt;

    /// Collects a map's entries into `out` until one fails; what was read stays.
    struct Entries<'a, T>(&'a mut HashMap<String, T>);
    impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Entries<'_, T> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Entries<'_, T> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of records")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<String>()? {
                let v = map.next_value::<T>()?;
                self.0.insert(k, v);
            }
            Ok(())
        }
    }
    /// The top level: `devices` and `pending` through [`Entries`]; anything else skipped.
    struct Top<'a>(&'a mut DeviceStore);
    impl<'de> Visitor<'de> for Top<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a device store object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<String>()? {
                match k.as_str() {
                    "devices" => map.next_value_seed(Entries(&mut self.0.devices))?,
                    "pending" => map.next_value_seed(Entries(&mut self.0.pending))?,
                    _ => {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }
    let mut out = SalvagedStore::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    if let Err(e) = de.deserialize_map(Top(&mut out.store)) {
        out.error = e.to_string();
    } else if let Err(e) = de.end() {
        out.error = e.to_string();
    }
    // A record whose key disagrees with its own id is not intact.
    out.store.devices.retain(|k, d| *k == d.device_id);
    out.store.pending.retain(|k, r| *k == r.request_id);
    if !out.error.is_empty() && bytes.len() <= MAX_SALVAGE_SCAN {
        // Past the damage: every object that is a whole device record or pairing request.
        for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'{') {
            let mut devices = serde_json::Deserializer::from_slice(&bytes[i..]).into_iter::<PairedDevice>();
            if let Some(Ok(d)) = devices.next() {
                out.store.devices.entry(d.device_id.clone()).or_insert(d);
                continue;
            }
            let mut pending = serde_json::Deserializer::from_slice(&bytes[i..]).into_iter::<PairingRequest>();
            if let Some(Ok(r)) = pending.next() {
                out.store.pending.entry(r.request_id.clone()).or_insert(r);
            }
        }
    }
    out
}

/// Largest damaged store scanned record by record (the scan is quadratic in the worst case).
const MAX_SALVAGE_SCAN: usize = 4 << 20;

fn covers(granted: &[String], requested: &[String]) -> bool {
    requested.iter().all(|r| satisfies(granted, r))
}

impl DeviceStore {
    /// Check a presented device token for `role` and `scopes`.
    pub fn check_token(&self, device_id: &str, role: Role, scopes: &[String], presented: &str) -> TokenCheck {
        let Some(t) = self.devices.get(device_id).and_then(|d| d.tokens.get(role.as_str())).filter(|t| !t.is_revoked()) else {
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
        // A revoked token grants nothing: the role pairs again (a new token).
        let Some(t) = d.tokens.get(role.as_str()).filter(|t| !t.is_revoked()) else { return Err(PairingReason::RoleUpgrade) };
        if role == Role::Operator && !covers(&t.scopes, scopes) {
            return Err(PairingReason::ScopeUpgrade);
        }
        Ok(t.clone())
    }

    /// Approve (or widen) a device for a role; returns the token for that role. A scope upgrade
    /// keeps the existing token and widens its grant.
    pub fn approve(&mut self, who: &PairingSubject<'_>, new_token: String, now_unix_ms: u64) -> DeviceToken {
        let grant = Grant {
            device_id: &who.proof.id,
            public_key: &who.proof.public_key,
            client_id: &who.client.id,
            client_mode: &who.client.mode,
            display_name: who.client.display_name.as_deref(),
            platform: Some(who.client.platform.as_str()),
            role: who.role.as_str(),
            scopes: who.scopes,
            via: "local",
        };
        self.grant(&grant, new_token, now_unix_ms)
    }

    fn grant(&mut self, g: &Grant<'_>, new_token: String, now_unix_ms: u64) -> DeviceToken {
        let d = self.devices.entry(g.device_id.to_string()).or_insert_with(|| PairedDevice {
            device_id: g.device_id.to_string(),
            public_key: g.public_key.to_string(),
            client_id: g.client_id.to_string(),
            client_mode: g.client_mode.to_string(),
            display_name: g.display_name.map(str::to_string),
            operator_label: None,
            platform: g.platform.map(str::to_string),
            created_at_ms: now_unix_ms,
            approved_at_ms: now_unix_ms,
            approved_via: g.via.to_string(),
            tokens: HashMap::new(),
        });
        d.public_key = g.public_key.to_string();
        d.approved_at_ms = now_unix_ms;
        d.approved_via = g.via.to_string();
        let t = d.tokens.entry(g.role.to_string()).or_insert_with(|| DeviceToken::issue(new_token.clone(), now_unix_ms, Vec::new()));
        if t.is_revoked() {
            // Pairing again after a revoke: a new token for what is approved now.
            *t = DeviceToken::issue(new_token, now_unix_ms, Vec::new());
        }
        let mut approved = t.ceiling().to_vec();
        for s in g.scopes {
            if !t.scopes.contains(s) {
                t.scopes.push(s.clone());
            }
            if !approved.contains(s) {
                approved.push(s.clone());
            }
        }
        t.approved_scopes = (approved != t.scopes).then_some(approved);
        let t = t.clone();
        self.pending.retain(|_, r| r.device_id != g.device_id || r.role != g.role);
        t
    }

    /// An operator approves the pending request `request_id` (`device.pair.approve`). The new
    /// token (used when the role has none yet) comes from the caller (the core has no RNG).
    pub fn approve_request(&mut self, request_id: &str, new_token: String, now_unix_ms: u64) -> Option<(PairingRequest, PairedDevice)> {
        let req = self.pending.get(request_id)?.clone();
        let grant = Grant {
            device_id: &req.device_id,
            public_key: &req.public_key,
            client_id: &req.client_id,
            client_mode: &req.client_mode,
            display_name: req.display_name.as_deref(),
            platform: req.platform.as_deref(),
            role: &req.role,
            scopes: &req.scopes,
            via: "owner",
        };
        self.grant(&grant, new_token, now_unix_ms);
        self.pending.remove(request_id);
        let device = self.devices.get(&req.device_id)?.clone();
        Some((req, device))
    }

    /// Drop a pending request (`device.pair.reject`).
    pub fn reject_request(&mut self, request_id: &str) -> Option<PairingRequest> {
        self.pending.remove(request_id)
    }

    /// Forget a paired device and every token it holds (`device.pair.remove`); its pending
    /// requests go too.
    pub fn remove_device(&mut self, device_id: &str) -> Option<PairedDevice> {
        self.pending.retain(|_, r| r.device_id != device_id);
        self.devices.remove(device_id)
    }

    /// `device.pair.rename`: the operator's name for a device (trimmed); `None` for an unknown
    /// device.
    pub fn rename(&mut self, device_id: &str, label: &str) -> Option<()> {
        self.devices.get_mut(device_id)?.operator_label = Some(label.to_string());
        Some(())
    }

    /// `device.token.rotate`: a new token for `role` with `scopes` (default: all the pairing
    /// approved; never beyond it). `None` when refused: unknown device, a role the device was
    /// not approved for, or scopes beyond the approval. Clears a revoke.
    pub fn rotate(
        &mut self,
        device_id: &str,
        role: &str,
        scopes: Option<&[String]>,
        new_token: String,
        now_unix_ms: u64,
    ) -> Option<DeviceToken> {
        let t = self.devices.get_mut(device_id)?.tokens.get_mut(role)?;
        let ceiling = t.ceiling().to_vec();
        // Only scopes the gateway knows, each within the approval (admin's implications included).
        let known = |r: &[String]| r.iter().all(|s| crate::auth::scopes::OPERATOR_SCOPES.contains(&s.as_str()));
        let granted: Vec<String> = match scopes {
            Some(requested) if known(requested) && covers(&ceiling, requested) => requested.to_vec(),
            Some(_) => return None,
            None => ceiling.clone(),
        };
        let mut granted = granted;
        granted.sort();
        granted.dedup();
        *t = DeviceToken {
            token: new_token,
            issued_at_ms: t.issued_at_ms,
            approved_scopes: (granted != ceiling).then_some(ceiling),
            scopes: granted,
            rotated_at_ms: Some(now_unix_ms),
            revoked_at_ms: None,
        };
        Some(t.clone())
    }

    /// `device.token.revoke`: the role's token stops authenticating (idempotent: a second
    /// revoke moves `revokedAtMs`). `None` for an unknown device or role.
    pub fn revoke(&mut self, device_id: &str, role: &str, now_unix_ms: u64) -> Option<u64> {
        let t = self.devices.get_mut(device_id)?.tokens.get_mut(role)?;
        t.revoked_at_ms = Some(now_unix_ms);
        // The secret itself is dropped: nothing could match it again.
        t.token = String::new();
        Some(now_unix_ms)
    }

    /// The paired device holding this device token (any role): `(device id, role, scopes)`.
    /// Constant-time per comparison; used for HTTP `Bearer <device token>`.
    pub fn find_token(&self, presented: &str) -> Option<(String, String, Vec<String>)> {
        let mut found = None;
        for d in self.devices.values() {
            for (role, t) in d.tokens.iter().filter(|(_, t)| !t.is_revoked()) {
                if constant_time_eq(presented.as_bytes(), t.token.as_bytes()) {
                    found = Some((d.device_id.clone(), role.clone(), t.scopes.clone()));
                }
            }
        }
        found
    }

    /// `device.pair.list`: `{pending, paired}` in the reference's shapes, newest request
    /// first, without any token (`connected` says whether a socket of the device is open).
    pub fn list_json(&self, connected: &dyn Fn(&str) -> bool) -> Value {
        let mut pending: Vec<&PairingRequest> = self.pending.values().collect();
        pending.sort_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.request_id.cmp(&b.request_id)));
        let mut paired: Vec<&PairedDevice> = self.devices.values().collect();
        paired.sort_by(|a, b| b.approved_at_ms.cmp(&a.approved_at_ms).then_with(|| a.device_id.cmp(&b.device_id)));
        let pending: Vec<Value> = pending
            .iter()
            .map(|r| {
                let is_repair = self.devices.contains_key(&r.device_id);
                request_json(r, is_repair)
            })
            .collect();
        let paired: Vec<Value> = paired
            .iter()
            .map(|d| {
                let mut v = paired_json(d);
                v["connected"] = json!(connected(&d.device_id));
                v
            })
            .collect();
        json!({"pending": pending, "paired": paired})
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
            display_name: who.client.display_name.clone(),
            platform: Some(who.client.platform.clone()).filter(|p| !p.is_empty()),
            reason: reason.as_str().to_string(),
            ts: now_unix_ms,
        };
        self.pending.insert(request_id, r.clone());
        r
    }
}

/// What an approval grants, from a connect or from a pending request.
struct Grant<'a> {
    device_id: &'a str,
    public_key: &'a str,
    client_id: &'a str,
    client_mode: &'a str,
    display_name: Option<&'a str>,
    platform: Option<&'a str>,
    role: &'a str,
    scopes: &'a [String],
    via: &'a str,
}

/// A pending request as `device.pair.list` shows it.
pub fn request_json(r: &PairingRequest, is_repair: bool) -> Value {
    let mut v = json!({
        "requestId": r.request_id,
        "deviceId": r.device_id,
        "publicKey": r.public_key,
    });
    if let Some(p) = &r.platform {
        v["platform"] = json!(p);
    }
    if let Some(n) = &r.display_name {
        v["displayName"] = json!(n);
    }
    v["clientId"] = json!(r.client_id);
    v["clientMode"] = json!(r.client_mode);
    v["role"] = json!(r.role);
    v["roles"] = json!([r.role]);
    v["scopes"] = json!(r.scopes);
    v["silent"] = json!(false);
    v["isRepair"] = json!(is_repair);
    v["ts"] = json!(r.ts);
    v
}

/// A paired device as `device.pair.list`/`approve` show it: roles and scopes, never tokens.
pub fn paired_json(d: &PairedDevice) -> Value {
    let mut roles: Vec<&String> = d.tokens.keys().collect();
    roles.sort_by_key(|r| (r.as_str() != "operator", r.as_str()));
    let mut scopes: Vec<String> = Vec::new();
    for r in &roles {
        for s in &d.tokens[*r].scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
    }
    let tokens: Vec<Value> = roles
        .iter()
        .map(|r| {
            let t = &d.tokens[*r];
            let mut sorted = t.scopes.clone();
            sorted.sort();
            let mut v = json!({"role": r, "scopes": sorted, "createdAtMs": t.issued_at_ms});
            if let Some(at) = t.rotated_at_ms {
                v["rotatedAtMs"] = json!(at);
            }
            if let Some(at) = t.revoked_at_ms {
                v["revokedAtMs"] = json!(at);
            }
            v
        })
        .collect();
    let mut v = json!({"deviceId": d.device_id, "publicKey": d.public_key});
    if let Some(l) = &d.operator_label {
        v["operatorLabel"] = json!(l);
    }
    if let Some(p) = &d.platform {
        v["platform"] = json!(p);
    }
    if let Some(n) = &d.display_name {
        v["displayName"] = json!(n);
    }
    v["clientId"] = json!(d.client_id);
    v["clientMode"] = json!(d.client_mode);
    if let Some(r) = roles.first() {
        v["role"] = json!(r);
    }
    v["roles"] = json!(roles);
    v["scopes"] = json!(scopes);
    v["approvedVia"] = json!(d.approved_via);
    v["createdAtMs"] = json!(d.created_at_ms);
    v["approvedAtMs"] = json!(d.approved_at_ms);
    v["tokens"] = json!(tokens);
    v
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
        "remediationHint": "Approve this device from the pending pairing requests.",
        "recommendedNextStep": "wait_then_retry",
        "retryable": true,
        "pauseReconnect": false,
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

    fn subject_parts() -> (DeviceProof, ClientInfo, Vec<String>) {
        let proof = DeviceProof {
            id: "d1".into(),
            public_key: "gI5_qdn9oBlMcxyt_PMuuaL289ll1J37JgVkA0zXiNY".into(),
            signature: String::new(),
            signed_at: 0,
            nonce: String::new(),
        };
        let client =
            ClientInfo { id: "openclaw-control-ui".into(), mode: "webchat".into(), platform: "Linux x86_64".into(), ..Default::default() };
        (proof, client, vec!["operator.read".to_string(), "operator.write".to_string()])
    }

    #[test]
    fn a_pending_request_is_approved_listed_and_removed_without_leaking_tokens() {
        let (proof, client, scopes) = subject_parts();
        let who = PairingSubject { proof: &proof, role: Role::Operator, scopes: &scopes, client: &client };
        let mut store = DeviceStore::default();
        let req = store.request(&who, PairingReason::NotPaired, "r1".into(), 10);
        // A retry refreshes the same request.
        assert_eq!(store.request(&who, PairingReason::NotPaired, "r2".into(), 20).request_id, "r1");
        let list = store.list_json(&|_| false);
        assert_eq!(list["pending"][0]["requestId"], "r1");
        assert_eq!(list["pending"][0]["platform"], "Linux x86_64");
        assert_eq!(list["pending"][0]["isRepair"], false);
        assert_eq!(list["paired"], json!([]));
        assert_eq!(req.role, "operator");

        assert!(store.approve_request("nope", "t".into(), 30).is_none());
        let (req, device) = store.approve_request("r1", "secret-token".into(), 30).expect("approved");
        assert_eq!(req.request_id, "r1");
        assert_eq!(device.approved_via, "owner");
        assert!(store.pending.is_empty());
        let list = store.list_json(&|id| id == "d1");
        assert_eq!(list["paired"][0]["deviceId"], "d1");
        assert_eq!(list["paired"][0]["connected"], true);
        assert_eq!(list["paired"][0]["tokens"][0]["scopes"], json!(["operator.read", "operator.write"]));
        assert!(!list.to_string().contains("secret-token"), "{list}");
        assert_eq!(store.find_token("secret-token"), Some(("d1".into(), "operator".into(), scopes.clone())));
        assert_eq!(store.find_token("secret-tokeX"), None);

        assert!(store.remove_device("d1").is_some());
        assert_eq!(store.find_token("secret-token"), None);
        assert!(store.remove_device("d1").is_none());
    }

    #[test]
    fn rejecting_forgets_the_request() {
        let (proof, client, scopes) = subject_parts();
        let who = PairingSubject { proof: &proof, role: Role::Operator, scopes: &scopes, client: &client };
        let mut store = DeviceStore::default();
        store.request(&who, PairingReason::NotPaired, "r1".into(), 10);
        assert_eq!(store.reject_request("r1").map(|r| r.device_id), Some("d1".into()));
        assert!(store.reject_request("r1").is_none());
        assert_eq!(store.list_json(&|_| false), json!({"pending": [], "paired": []}));
    }

    #[test]
    fn stores_written_before_these_fields_still_load() {
        let old = r#"{"devices":{"d1":{"deviceId":"d1","publicKey":"k","clientId":"cli","clientMode":"cli","createdAtMs":1,
            "tokens":{"operator":{"token":"t","issuedAtMs":1,"scopes":[]}}}},"pending":{}}"#;
        let store: DeviceStore = serde_json::from_str(old).expect("old store loads");
        assert_eq!(store.devices["d1"].approved_via, "local");
    }
}
