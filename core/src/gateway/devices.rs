//! Paired devices (spec §5.5) as process state: the store, its generation (the shell persists
//! the store when it moves), and the token generator. Each operation returns the
//! `device.pair.*` event it raises; the hub fans it out.

use serde_json::{Value, json};

use super::connections::ConnAuth;
use crate::auth::device::{DeviceStore, DeviceToken, PairingReason, TokenCheck, pairing_required};
use crate::auth::scopes::{self, Role};
use crate::wire::ErrorShape;

/// A `device.pair.requested` / `device.pair.resolved` event to fan out.
pub(crate) type PairEvent = (&'static str, Value);

/// A verified device asking to be paired, and how it connected.
#[derive(Debug)]
pub(crate) struct PairAttempt<'a> {
    pub subject: crate::auth::device::PairingSubject<'a>,
    /// Direct-local connection whose Origin (if any) belongs to a browser UI.
    pub local_silent: bool,
    /// Authenticated by the shared secret (or auth none): may widen scopes silently.
    pub shared_secret: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Devices {
    pub(crate) store: DeviceStore,
    /// Bumped on every change of `store`.
    pub(crate) generation: u64,
    /// Counter of the token generator.
    drbg_counter: u64,
}

impl Devices {
    /// 32 bytes of secret randomness, base64url (43 characters): SHA-256 of the process seed and
    /// a counter (the seed comes from the OS; the core has no RNG).
    fn random_token(&mut self, seed: &[u8; 32], label: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.next_block(seed, label.as_bytes()))
    }

    pub(crate) fn random_uuid(&mut self, seed: &[u8; 32]) -> String {
        let d = self.next_block(seed, b"uuid");
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        crate::ids::uuid_v4(b)
    }

    fn next_block(&mut self, seed: &[u8; 32], label: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        self.drbg_counter += 1;
        let mut h = Sha256::new();
        h.update(seed);
        h.update(label);
        h.update(self.drbg_counter.to_le_bytes());
        h.finalize().into()
    }

    pub(crate) fn check_token(&self, device_id: &str, role: Role, scopes: &[String], presented: &str) -> TokenCheck {
        self.store.check_token(device_id, role, scopes, presented)
    }

    /// Pairing for a verified device: already paired → its token; local and allowed to pair
    /// silently → approved now (`device.pair.resolved`); otherwise a pending request
    /// (`device.pair.requested`) and `NOT_PAIRED pairing required`.
    pub(crate) fn pair(
        &mut self,
        seed: &[u8; 32],
        a: &PairAttempt<'_>,
        unix_ms: u64,
    ) -> (Result<DeviceToken, ErrorShape>, Option<PairEvent>) {
        let raw = crate::auth::device::decode_public_key(&a.subject.proof.public_key).unwrap_or_default();
        let reason = match self.store.pairing_state(&a.subject.proof.id, &raw, a.subject.role, a.subject.scopes) {
            Ok(t) => return (Ok(t), None),
            Err(r) => r,
        };
        let existing = self.store.devices.contains_key(&a.subject.proof.id);
        let silent =
            a.local_silent && !(existing && a.subject.role != Role::Operator) && (reason != PairingReason::ScopeUpgrade || a.shared_secret);
        if silent {
            let token = self.random_token(seed, "device-token");
            let request_id = self.random_uuid(seed);
            let grant = self.store.approve(&a.subject, token, unix_ms);
            self.generation += 1;
            let payload = json!({"requestId": request_id, "deviceId": a.subject.proof.id, "decision": "approved", "ts": unix_ms});
            return (Ok(grant), Some(("device.pair.resolved", payload)));
        }
        let request_id = self.random_uuid(seed);
        let req = self.store.request(&a.subject, reason, request_id, unix_ms);
        self.generation += 1;
        let payload = json!({
            "requestId": req.request_id, "deviceId": req.device_id, "role": req.role, "scopes": req.scopes,
            "clientId": req.client_id, "clientMode": req.client_mode, "reason": req.reason, "ts": req.ts,
        });
        let approved = self.store.devices.get(&a.subject.proof.id);
        (Err(pairing_required(&req, approved)), Some(("device.pair.requested", payload)))
    }

    /// `device.pair.approve`: an operator without `operator.admin` may approve only operator
    /// requests within its own scopes (docs `devices approve`).
    pub(crate) fn approve(
        &mut self,
        seed: &[u8; 32],
        request_id: &str,
        caller_scopes: &[String],
        unix_ms: u64,
    ) -> Result<(Value, PairEvent), ErrorShape> {
        let Some(req) = self.store.pending.get(request_id) else {
            return Err(ErrorShape::invalid_request("device pairing approval denied"));
        };
        if !caller_scopes.iter().any(|s| s == scopes::ADMIN) {
            if req.role != Role::Operator.as_str() {
                return Err(ErrorShape::invalid_request(
                    "device pairing approval denied: approving a non-operator role requires operator.admin",
                ));
            }
            if let Some(s) = req.scopes.iter().find(|s| !scopes::satisfies(caller_scopes, s)) {
                return Err(ErrorShape::invalid_request(format!("device pairing approval denied: missing scope: {s}")));
            }
        }
        let token = self.random_token(seed, "device-token");
        let Some((req, device)) = self.store.approve_request(request_id, token, unix_ms) else {
            return Err(ErrorShape::invalid_request("device pairing approval denied"));
        };
        self.generation += 1;
        let event = json!({"requestId": req.request_id, "deviceId": req.device_id, "decision": "approved", "ts": unix_ms});
        let result = json!({"requestId": req.request_id, "device": crate::auth::device::paired_json(&device)});
        Ok((result, ("device.pair.resolved", event)))
    }

    /// `device.pair.reject`: drop the pending request.
    pub(crate) fn reject(&mut self, request_id: &str, unix_ms: u64) -> Result<(Value, PairEvent), ErrorShape> {
        let Some(req) = self.store.reject_request(request_id) else {
            return Err(ErrorShape::invalid_request("unknown requestId"));
        };
        self.generation += 1;
        let event = json!({"requestId": req.request_id, "deviceId": req.device_id, "decision": "rejected", "ts": unix_ms});
        Ok((json!({"requestId": req.request_id, "deviceId": req.device_id}), ("device.pair.resolved", event)))
    }

    /// `device.pair.remove`: forget the device and revoke its tokens. A caller connected with a
    /// device token and without `operator.admin` may remove only its own device. (The hub closes
    /// the device's sockets.)
    pub(crate) fn remove(&mut self, device_id: &str, caller: Option<&ConnAuth>, caller_scopes: &[String]) -> Result<Value, ErrorShape> {
        if !self.store.devices.contains_key(device_id) {
            return Err(ErrorShape::invalid_request("unknown deviceId"));
        }
        let admin = caller_scopes.iter().any(|s| s == scopes::ADMIN);
        let own = caller.and_then(|a| a.device_id.as_deref()) == Some(device_id);
        let by_device_token = caller.is_some_and(|a| a.method == "device-token");
        if by_device_token && !admin && !own {
            return Err(ErrorShape::invalid_request("device removal denied: a device may remove only itself without operator.admin"));
        }
        self.store.remove_device(device_id);
        self.generation += 1;
        Ok(json!({"deviceId": device_id}))
    }
}

impl Devices {
    /// `device.pair.rename` (label trimmed, 1–64 characters by the params schema).
    pub(crate) fn rename(&mut self, device_id: &str, label: &str) -> Result<(Value, PairEvent), ErrorShape> {
        let label = label.trim();
        if label.is_empty() {
            return Err(ErrorShape::invalid_request("label required"));
        }
        self.store.rename(device_id, label).ok_or_else(|| ErrorShape::invalid_request("unknown deviceId"))?;
        self.generation += 1;
        Ok((json!({"deviceId": device_id, "label": label}), ("device.pair.changed", json!({}))))
    }

    /// `device.token.rotate`: the new token goes back in-band only to the device itself (the
    /// caller authenticated with that device's own token); anyone else learns that it rotated.
    pub(crate) fn rotate(
        &mut self,
        seed: &[u8; 32],
        device_id: &str,
        role: &str,
        scopes: Option<&[String]>,
        caller: Option<&ConnAuth>,
        unix_ms: u64,
    ) -> Result<Value, ErrorShape> {
        let token = self.random_token(seed, "device-token");
        let t = self
            .store
            .rotate(device_id, role, scopes, token, unix_ms)
            .ok_or_else(|| ErrorShape::invalid_request("device token rotation denied"))?;
        self.generation += 1;
        let mut v = json!({"deviceId": device_id, "role": role, "scopes": t.scopes, "rotatedAtMs": unix_ms});
        let own = caller.is_some_and(|a| a.method == "device-token" && a.device_id.as_deref() == Some(device_id));
        if own {
            v["token"] = json!(t.token);
            v["tokenDelivery"] = json!("in-band");
        } else {
            v["tokenDelivery"] = json!("withheld-cross-device");
        }
        Ok(v)
    }

    /// `device.token.revoke`.
    pub(crate) fn revoke(&mut self, device_id: &str, role: &str, unix_ms: u64) -> Result<Value, ErrorShape> {
        let at =
            self.store.revoke(device_id, role, unix_ms).ok_or_else(|| ErrorShape::invalid_request("device token revocation denied"))?;
        self.generation += 1;
        Ok(json!({"deviceId": device_id, "role": role, "revokedAtMs": at}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_generator_never_repeats_and_is_bound_to_the_seed() {
        let mut d = Devices::default();
        let (a, b) = (d.random_token(&[1; 32], "device-token"), d.random_token(&[1; 32], "device-token"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "32 bytes, base64url without padding");
        let mut other = Devices::default();
        assert_ne!(other.random_token(&[2; 32], "device-token"), a, "another process seed, other tokens");
        let u = d.random_uuid(&[1; 32]);
        assert_eq!((u.len(), &u[14..15]), (36, "4"));
    }

    #[test]
    fn unknown_requests_and_devices_are_refused_without_changing_the_store() {
        let mut d = Devices::default();
        assert_eq!(d.approve(&[0; 32], "nope", &[], 1).unwrap_err().message, "device pairing approval denied");
        assert_eq!(d.reject("nope", 1).unwrap_err().message, "unknown requestId");
        assert_eq!(d.remove("dev", None, &[]).unwrap_err().message, "unknown deviceId");
        assert_eq!(d.generation, 0, "refusals are not changes");
        assert_eq!(d.rename("dev", "  ").unwrap_err().message, "label required");
        assert_eq!(d.rename("dev", "x").unwrap_err().message, "unknown deviceId");
        assert_eq!(d.rotate(&[0; 32], "dev", "operator", None, None, 1).unwrap_err().message, "device token rotation denied");
        assert_eq!(d.revoke("dev", "operator", 1).unwrap_err().message, "device token revocation denied");
        assert_eq!(d.generation, 0);
    }

    fn paired(scopes: &[&str]) -> Devices {
        let mut d = Devices::default();
        let token = crate::auth::device::DeviceToken::issue("t0".into(), 1, scopes.iter().map(|s| s.to_string()).collect());
        let dev = crate::auth::device::PairedDevice {
            device_id: "dev".into(),
            public_key: "k".into(),
            client_id: "cli".into(),
            client_mode: "cli".into(),
            display_name: None,
            operator_label: None,
            platform: None,
            created_at_ms: 1,
            approved_at_ms: 1,
            approved_via: "local".into(),
            tokens: [("operator".to_string(), token)].into_iter().collect(),
        };
        d.store.devices.insert("dev".into(), dev);
        d
    }

    #[test]
    fn rotation_stays_within_the_approval_and_revocation_stops_the_token() {
        use crate::auth::device::TokenCheck;
        let mut d = paired(&["operator.read", "operator.write"]);
        let narrowed = d.rotate(&[1; 32], "dev", "operator", Some(&["operator.read".to_string()]), None, 5).unwrap();
        assert_eq!(narrowed["scopes"], json!(["operator.read"]));
        assert_eq!(narrowed["tokenDelivery"], "withheld-cross-device");
        assert!(narrowed.get("token").is_none(), "another device never sees the token");
        let wide = ["operator.admin".to_string()];
        assert!(d.rotate(&[1; 32], "dev", "operator", Some(&wide), None, 6).is_err(), "beyond the approval");
        assert!(d.rotate(&[1; 32], "dev", "node", None, None, 6).is_err(), "a role the device does not hold");
        // Without scopes: back to all that was approved; the device itself gets the token.
        let own = ConnAuth {
            role: Role::Operator,
            scopes: vec![],
            method: "device-token",
            origin: None,
            host: None,
            local: true,
            device_id: Some("dev".into()),
        };
        let back = d.rotate(&[1; 32], "dev", "operator", None, Some(&own), 7).unwrap();
        assert_eq!(back["scopes"], json!(["operator.read", "operator.write"]));
        assert_eq!(back["tokenDelivery"], "in-band");
        let token = back["token"].as_str().unwrap().to_string();
        let read = ["operator.read".to_string()];
        assert!(matches!(d.check_token("dev", Role::Operator, &read, &token), TokenCheck::Ok(_)));
        assert!(matches!(d.check_token("dev", Role::Operator, &read, "t0"), TokenCheck::Mismatch), "the old token is gone");
        d.revoke("dev", "operator", 8).unwrap();
        assert!(matches!(d.check_token("dev", Role::Operator, &read, &token), TokenCheck::Mismatch));
        assert!(matches!(d.check_token("dev", Role::Operator, &read, ""), TokenCheck::Mismatch));
        assert_eq!(d.revoke("dev", "operator", 9).unwrap()["revokedAtMs"], 9, "idempotent");
        assert_eq!(d.store.find_token(""), None);
        let listed = crate::auth::device::paired_json(&d.store.devices["dev"]);
        assert_eq!(listed["tokens"][0]["revokedAtMs"], 9);
        assert_eq!(listed["tokens"][0]["rotatedAtMs"], 7);
        assert_eq!(d.generation, 4);
    }
}
