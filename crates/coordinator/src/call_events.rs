//! What nodes tell about their calls (`CALL_EVENT`, docs/calls.md), into the call records
//! ([`crate::store::Registry::call_started`] and the rest). A node speaks only of its own
//! calls: an event for a call another node holds, or a malformed one, is logged and dropped.

use tracing::warn;

use crate::accounts::tokens;
use crate::clock::Millis;
use crate::devices::describe;
use crate::store::{CallParticipant, ChatLine, NewCall, QualityPoint, StoreError};
use crate::verbs::CallEvent;
use crate::Coordinator;

/// Whether `id` can be a call's id (the nodes' ids: letters, digits, `-`, at most 64).
pub fn valid_call_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl Coordinator {
    /// Stores `e`, from `node`.
    pub(crate) async fn record_call_event(
        &self,
        node: &str,
        e: CallEvent,
    ) -> Result<(), StoreError> {
        if !valid_call_id(&e.call) {
            warn!(node, call = %e.call.chars().take(70).collect::<String>(), "call event with a bad call id dropped");
            return Ok(());
        }
        let at = Millis::try_from(e.at_ms).unwrap_or(Millis::MAX);
        let registry = self.registry();
        if e.event == "started" {
            let call = NewCall {
                id: e.call.clone(),
                code: e.code.unwrap_or_default().chars().take(16).collect(),
                rc_name: e.rc_name.unwrap_or_default().chars().take(64).collect(),
                node: node.to_string(),
                owner_id: e.owner.and_then(|o| o.parse().ok()),
                started_ms: at,
            };
            return registry.call_started(&call).await;
        }
        match registry.call_node(&e.call).await? {
            Some(holder) if holder == node => {}
            holder => {
                warn!(node, call = %e.call, ?holder, event = %e.event, "call event for a call this node does not hold dropped");
                return Ok(());
            }
        }
        let participant = e.participant.clone().unwrap_or_default();
        match e.event.as_str() {
            "joined" => {
                let user_agent = e.user_agent.unwrap_or_default();
                let device = describe(&user_agent);
                let p = CallParticipant {
                    participant_id: participant.chars().take(64).collect(),
                    name: e.name.unwrap_or_default(),
                    role: e.role.unwrap_or_default(),
                    account_id: e.account.and_then(|a| a.parse().ok()),
                    user_agent,
                    browser: device.browser,
                    os: device.os,
                    device: device.kind,
                    consent_id: e
                        .consent
                        .filter(|c| tokens::well_formed(c))
                        .unwrap_or_default(),
                    camera: String::new(),
                    microphone: String::new(),
                };
                registry.call_joined(&e.call, &p, at).await?;
                match e.token.as_deref().filter(|t| tokens::well_formed(t)) {
                    Some(token) => {
                        registry
                            .set_participant_token(
                                &e.call,
                                &p.participant_id,
                                &tokens::token_hash(token),
                            )
                            .await
                    }
                    None => Ok(()),
                }
            }
            "left" => registry.call_left(&e.call, &participant, at).await,
            "devices" => {
                let label = |l: Option<String>| {
                    l.filter(|l| orbita_protocol::valid_device_label(l))
                        .unwrap_or_default()
                };
                registry
                    .call_devices(
                        &e.call,
                        &participant,
                        &label(e.camera),
                        &label(e.microphone),
                    )
                    .await
            }
            "recording" => match e.recording.as_deref().filter(|r| valid_call_id(r)) {
                Some(recording) => registry.call_recording(&e.call, recording, at).await,
                None => {
                    warn!(node, call = %e.call, "recording event without a well-formed recording id dropped");
                    Ok(())
                }
            },
            "chat" => {
                let line = ChatLine {
                    seq: e.seq.and_then(|s| i64::try_from(s).ok()).unwrap_or(0),
                    participant_id: participant.chars().take(64).collect(),
                    sent_ms: at,
                    body: e.text.unwrap_or_default(),
                };
                registry.call_chat(&e.call, &line).await
            }
            "quality" => {
                let source = e.source.as_deref().unwrap_or_default();
                let report = e.quality.filter(|q| q.check().is_ok());
                match (source, report) {
                    ("browser" | "server", Some(report)) => {
                        let point = QualityPoint {
                            participant_id: participant.chars().take(64).collect(),
                            source: source.to_string(),
                            at_ms: at,
                            report,
                        };
                        registry.call_quality(&e.call, &point).await
                    }
                    _ => {
                        warn!(node, call = %e.call, "quality event without a source or with figures out of range dropped");
                        Ok(())
                    }
                }
            }
            "ended" => {
                let reason = e.reason.unwrap_or_else(|| "ended".into());
                registry.call_ended(&e.call, at, &reason).await
            }
            other => {
                warn!(node, call = %e.call, event = other, "unknown call event dropped");
                Ok(())
            }
        }
    }
}
