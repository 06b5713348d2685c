//! The backplane port: fan-out between gateway nodes.
//!
//! A node hands its own connections their deliveries directly (local first) and publishes an
//! [`Envelope`] for the other nodes. The envelope carries the event frame already encoded
//! (JSON text, once, by the origin node): a receiving node routes the same bytes to its
//! connections without parsing or re-encoding the event. Every node subscribes once and
//! ignores the envelopes of its own origin coming back.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::SendSyncOutsideWasm;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::protocol::ChangeKey;
use crate::sync::{Control, SyncCursor};

/// Names one gateway node (unique among the nodes sharing a backplane).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub String);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one node publishes for the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The node that published it (a node ignores its own envelopes).
    pub origin: NodeId,
    /// The origin's boot epoch (changes at every start of the node): with `seq`, tells a
    /// restart from a gap.
    pub epoch: u64,
    /// Per-origin sequence, from 1, +1 per envelope within one epoch.
    pub seq: u64,
    /// What the envelope carries.
    pub payload: Payload,
}

/// An envelope's content: a delivery for clients, or a control for nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// An event for connected clients.
    Delivery(EncodedDelivery),
    /// An instruction for every node.
    Control(Control),
    /// "This node is alive": published by every node at a fixed interval, so the others see
    /// a gap in its sequence even when it has nothing else to say.
    Heartbeat,
    /// A node's self-probe: published when nothing arrived for a while, to learn whether
    /// its own subscription still receives (other nodes ignore it). The number tells one
    /// probe from the next.
    Probe(u64),
}

/// A delivery whose event is already encoded as the frame clients receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedDelivery {
    /// Every connection of these users gets the frame; nobody else.
    pub recipients: Vec<UserId>,
    /// For a persistent change: its store position (`pos`, 0 when the producer did not
    /// know it) and its key (connections deliver each change once).
    pub change: Option<(SyncCursor, ChangeKey)>,
    /// The JSON text of the whole `event` server frame (docs/PROTOCOL.md), UTF-8.
    pub frame: Bytes,
}

/// What a subscription yields: envelopes from other nodes (and this one's own, which it
/// ignores), and the state of the link to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackplaneEvent {
    /// An envelope published by a node.
    Envelope(Envelope),
    /// The link to the broker is lost: envelopes published meanwhile do not arrive. The
    /// stream goes on and reports [`BackplaneEvent::LinkUp`] once it is back.
    LinkDown,
    /// The link is back (resubscribed) after a [`BackplaneEvent::LinkDown`].
    LinkUp,
}

/// A stream of what any node published, plus link reports. It does not end on a broker
/// failure; it ends only when the backplane itself is dropped.
pub type EventStream = BoxStream<'static, BackplaneEvent>;

/// The version of the envelope encoding ([`Envelope::encode`]).
pub const ENVELOPE_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    v: u8,
    origin: NodeId,
    epoch: u64,
    seq: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recipients: Vec<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    change: Option<(SyncCursor, ChangeKey)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    control: Option<Control>,
    /// Added in place (version 1): a node that predates them reads a heartbeat or a probe
    /// as a delivery to nobody.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    beat: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    probe: Option<u64>,
}

impl Envelope {
    /// Encodes the envelope for a broker: a one-line JSON header, `\n`, then the frame's
    /// bytes as they are (a delivery) or nothing (a control). The header never contains a
    /// raw newline (JSON escapes it), so the first `\n` ends it.
    pub fn encode(&self) -> Vec<u8> {
        let (recipients, change, control, frame) = match &self.payload {
            Payload::Delivery(d) => (d.recipients.clone(), d.change.clone(), None, &d.frame[..]),
            Payload::Control(c) => (Vec::new(), None, Some(c.clone()), &[][..]),
            Payload::Heartbeat | Payload::Probe(_) => (Vec::new(), None, None, &[][..]),
        };
        let header = Header {
            v: ENVELOPE_VERSION,
            origin: self.origin.clone(),
            epoch: self.epoch,
            seq: self.seq,
            recipients,
            change,
            control,
            beat: matches!(self.payload, Payload::Heartbeat),
            probe: match self.payload {
                Payload::Probe(n) => Some(n),
                _ => None,
            },
        };
        // Plain data: serialising cannot fail.
        let mut out = serde_json::to_vec(&header).unwrap_or_default();
        out.reserve(1 + frame.len());
        out.push(b'\n');
        out.extend_from_slice(frame);
        out
    }

    /// Decodes [`Envelope::encode`]'s output. The frame is a slice of `bytes` (no copy).
    pub fn decode(bytes: Bytes) -> Result<Envelope> {
        let bad = |why: &str| Error::invalid("envelope", why.to_owned());
        let nl = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| bad("no header line"))?;
        let header: Header = serde_json::from_slice(&bytes[..nl]).map_err(|e| bad(&format!("bad header: {e}")))?;
        if header.v != ENVELOPE_VERSION {
            return Err(bad(&format!("unknown version {}", header.v)));
        }
        let payload = match (header.control, header.probe) {
            (Some(c), _) => Payload::Control(c),
            (None, Some(n)) => Payload::Probe(n),
            (None, None) if header.beat => Payload::Heartbeat,
            (None, None) => Payload::Delivery(EncodedDelivery {
                recipients: header.recipients,
                change: header.change,
                frame: bytes.slice(nl + 1..),
            }),
        };
        Ok(Envelope {
            origin: header.origin,
            epoch: header.epoch,
            seq: header.seq,
            payload,
        })
    }
}

/// Fan-out between gateway nodes: in-process for one node, Redis or NATS for several.
///
/// Pub/sub may lose envelopes (a broker restart, a slow subscriber, a full queue); clients
/// never depend on it for completeness: resume always goes through the store's `sync`, and
/// each node re-validates its connections' sessions against the store periodically.
/// `publish` never waits for the broker: an implementation queues (bounded) and drops when
/// full.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait Backplane: SendSyncOutsideWasm {
    /// Publishes an envelope to every node subscribed (this one included).
    async fn publish(&self, envelope: Envelope) -> Result<()>;
    /// Subscribes to every envelope published from now on.
    async fn subscribe(&self) -> Result<EventStream>;
    /// Drops and re-opens the connection(s) to the broker. A node calls it when its
    /// subscription went silent without reporting [`BackplaneEvent::LinkDown`] (its own
    /// probes stopped coming back), before subscribing again. Default: nothing to re-open.
    async fn reconnect(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;

    fn user(n: u128) -> UserId {
        UserId(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn envelopes_round_trip_and_the_frame_is_carried_verbatim() {
        let frame = Bytes::from_static(b"{\"type\":\"event\",\"event\":{\"text\":\"a\\nb \xc3\xa9\"}}");
        let d = Envelope {
            origin: NodeId("n1".into()),
            epoch: 7,
            seq: 42,
            payload: Payload::Delivery(EncodedDelivery {
                recipients: vec![user(1), user(2)],
                change: Some((9, ChangeKey::ContactAdded(user(3)))),
                frame: frame.clone(),
            }),
        };
        let wire = d.encode();
        assert!(wire.ends_with(&frame));
        assert_eq!(Envelope::decode(Bytes::from(wire)).expect("decode"), d);

        let c = Envelope {
            origin: NodeId("n2".into()),
            epoch: 1,
            seq: 1,
            payload: Payload::Control(Control::SessionsRevoked {
                user_id: user(1),
                sessions: vec![SessionId(uuid::Uuid::from_u128(5))],
            }),
        };
        assert_eq!(Envelope::decode(Bytes::from(c.encode())).expect("decode"), c);

        for payload in [Payload::Heartbeat, Payload::Probe(3)] {
            let e = Envelope {
                origin: NodeId("n3".into()),
                epoch: 2,
                seq: 9,
                payload,
            };
            assert_eq!(Envelope::decode(Bytes::from(e.encode())).expect("decode"), e);
        }
    }

    #[test]
    fn malformed_envelopes_are_typed_errors() {
        for bad in [
            &b"no newline"[..],
            b"{}\nframe",
            b"{\"v\":9,\"origin\":\"x\",\"epoch\":1,\"seq\":1}\n",
        ] {
            let e = Envelope::decode(Bytes::copy_from_slice(bad)).expect_err("rejected");
            assert_eq!(e.code(), crate::error::ErrorCode::InvalidInput, "{e}");
        }
    }
}
