//! Frame encode/decode for each codec of the wire protocol. Protocol v1 has one codec, JSON
//! (`chatico.v1.json`); a second codec would add its own group here.
//!
//! `cargo bench -p chatico-benches --bench codec`

use std::hint::black_box;

use chatico_core::ids::{ConversationId, MessageId, UserId};
use chatico_core::model::{Content, Message};
use chatico_core::protocol::{AckResult, ClientFrame, ServerFrame};
use chatico_core::sync::{Change, ChangeKind, Event};
use chatico_transport::gateway::hub::event_frame;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn message() -> Message {
    Message {
        id: MessageId(uuid::Uuid::from_u128(0x0190_a0b0_0000_7000_8000_0000_0000_0003)),
        conversation_id: ConversationId(uuid::Uuid::from_u128(0x0190_a0b0_0000_7000_8000_0000_0000_0001)),
        seq: 12_345,
        sender_id: UserId(uuid::Uuid::from_u128(0x0190_a0b0_0000_7000_8000_0000_0000_0002)),
        client_msg_id: "L123456-17-9876".into(),
        // 100 bytes of text, as the load tool sends.
        content: Some(Content::text("x".repeat(100))),
        reply_to_seq: None,
        created_at: 1_750_000_000_000,
        deleted_at: None,
        edited_at: None,
        reactions: Vec::new(),
    }
}

fn send_frame_text() -> String {
    format!(
        r#"{{"id":"17","type":"send","conversation_id":"0190a0b0-0000-7000-8000-000000000001","client_msg_id":"L123456-17-9876","content":{{"type":"text","text":"{}"}}}}"#,
        "x".repeat(100)
    )
}

fn json(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/json");
    let change = Event::Change(Change {
        pos: 99_999,
        conversation_id: Some(message().conversation_id),
        kind: ChangeKind::Message { message: message() },
    });
    let event_text = event_frame(&change).text.as_str().to_owned();
    let send_text = send_frame_text();
    let ack = ServerFrame::Ack {
        id: "17".into(),
        result: AckResult::Send { message: message() },
    };
    g.throughput(Throughput::Elements(1));
    // Server side: the fan-out frame (serialised once per delivery batch) and the ack.
    g.bench_function("encode_event_frame", |b| b.iter(|| event_frame(black_box(&change))));
    g.bench_function("encode_ack_send", |b| {
        b.iter(|| serde_json::to_string(black_box(&ack)).expect("encode"))
    });
    // Server side: a client's send frame, as the gateway parses it.
    g.bench_function("decode_client_send", |b| {
        b.iter(|| serde_json::from_str::<ClientFrame>(black_box(&send_text)).expect("decode"))
    });
    // Client side: encoding a send and decoding the event frame.
    let client_frame: ClientFrame = serde_json::from_str(&send_text).expect("decode");
    g.bench_function("encode_client_send", |b| {
        b.iter(|| serde_json::to_string(black_box(&client_frame)).expect("encode"))
    });
    g.bench_function("decode_event_frame", |b| {
        b.iter(|| serde_json::from_str::<ServerFrame>(black_box(&event_text)).expect("decode"))
    });
    g.finish();
    eprintln!(
        "codec/json sizes: event frame {} B, send frame {} B, ack {} B",
        event_text.len(),
        send_text.len(),
        serde_json::to_string(&ack).map(|s| s.len()).unwrap_or(0)
    );
}

criterion_group!(benches, json);
criterion_main!(benches);
