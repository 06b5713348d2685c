//! Two gateways (nodes) in one process, sharing one in-process backplane: a delivery published
//! on one reaches the listeners of both exactly once — the origin's own connections directly
//! (local first), never a second time when its own envelope comes back — and a control
//! (revocation) published on one closes the matching connections on the other.

use std::sync::Arc;
use std::time::Duration;

use chatico_core::config::Config;
use chatico_core::engine::Engine;
use chatico_core::ids::UserId;
use chatico_core::memory::MemoryStore;
use chatico_core::model::Presence;
use chatico_core::ports::{Backplane, ManualClock, NodeId};
use chatico_core::sync::{Control, Delivery, Event};
use chatico_transport::backplane::InProcessBackplane;
use chatico_transport::gateway::Gateway;

async fn node(name: &str, bp: Arc<dyn Backplane>) -> Gateway {
    let engine = Engine::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(1_750_000_000_000)),
        Config::default(),
    )
    .expect("engine");
    Gateway::builder(Arc::new(engine))
        .backplane(bp)
        .node_id(NodeId(name.into()))
        .start()
        .await
        .expect("gateway")
}

fn presence(user: UserId, n: i64) -> Delivery {
    Delivery {
        recipients: vec![user],
        event: Event::Presence(Presence {
            user_id: user,
            online: true,
            last_seen_at: Some(n),
        }),
    }
}

#[tokio::test]
async fn a_delivery_reaches_each_node_once_and_controls_cross_nodes() {
    let bp: Arc<dyn Backplane> = Arc::new(InProcessBackplane::new(64));
    let a = node("a", bp.clone()).await;
    let b = node("b", bp.clone()).await;
    let user = UserId(uuid::Uuid::from_u128(7));
    let mut on_a = a.listen(user);
    let mut on_b = b.listen(user);

    a.publish(vec![presence(user, 1), presence(user, 2)]).await;
    for l in [&mut on_a, &mut on_b] {
        for n in [1, 2] {
            let f = tokio::time::timeout(Duration::from_secs(5), l.next())
                .await
                .expect("in time")
                .expect("open");
            assert!(f.contains(&format!("\"last_seen_at\":{n}")), "{f}");
        }
    }
    // Nothing more: the origin's own envelopes came back and were ignored.
    for l in [&mut on_a, &mut on_b] {
        assert!(
            tokio::time::timeout(Duration::from_millis(200), l.next())
                .await
                .is_err(),
            "a delivery arrived twice"
        );
    }

    // A revocation on node a closes the user's listener on node b too.
    a.control(vec![Control::UserRevoked { user_id: user }]).await;
    let closed = tokio::time::timeout(Duration::from_secs(5), on_b.next())
        .await
        .expect("closed in time");
    assert_eq!(closed, None);
}
