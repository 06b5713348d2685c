//! Smoke test of the load tool: every scenario, tiny, against an in-process bench server
//! (the real gateway, engine and in-memory store on 127.0.0.1:0) and raw bound. It checks
//! that each report has runs with non-zero counts and well-formed figures; it asserts no
//! time (speed is measured by running the tool, see BENCHMARKS.md).

use std::sync::Arc;
use std::time::Duration;

use chatico_benches::load::chatico::Server;
use chatico_benches::load::otp::OtpLog;
use chatico_benches::load::{Common, fanout, idle, net, persist, resync, typing};
use chatico_benches::{raw, server};

async fn setup() -> (Common, std::path::PathBuf) {
    let otp_path = std::env::temp_dir().join(format!("chatico-smoke-otp-{}.log", rand::random::<u64>()));
    std::fs::write(&otp_path, "").expect("otp log");
    let running = server::start(server::ServerOptions {
        addr: "127.0.0.1:0".parse().expect("addr"),
        store: server::StoreChoice::Memory,
        otp_log: otp_path.clone(),
        gateway: server::bench_gateway_config(),
        config: server::bench_config(),
        backplane: None,
        redis_url: None,
        node_id: None,
        schema: None,
    })
    .await
    .expect("bench server");
    let (raw_addr, _raw) = raw::spawn("127.0.0.1:0".parse().expect("addr")).await.expect("raw");
    let otp = OtpLog::follow(otp_path.clone(), 6).expect("follow");
    let srv = Server::new(&format!("http://{}", running.addr), otp).expect("server");
    // The gateway keeps running for the test's lifetime.
    std::mem::forget(running);
    let common = Common {
        server: Some(Arc::new(srv)),
        raw_url: Some(format!("ws://{raw_addr}")),
        sources: net::Sources::loopback(2),
        concurrency: 8,
        runs: 2,
        // Both servers live in this process: the memory figures then are this process's.
        server_pid: Some(std::process::id()),
        raw_pid: Some(std::process::id()),
        payload_bytes: 100,
    };
    (common, otp_path)
}

fn positive(rep: &chatico_benches::load::Report, figure: &str) -> f64 {
    let s = rep
        .summary
        .get(figure)
        .unwrap_or_else(|| panic!("{}: no figure {figure}\n{}", rep.scenario, rep.table()));
    assert!(
        s.median > 0.0,
        "{}: {figure} is {}\n{}",
        rep.scenario,
        s.median,
        rep.table()
    );
    s.median
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_produces_a_report_with_nonzero_counts() {
    let (common, otp_path) = setup().await;

    let rep = idle::run(
        &common,
        &idle::IdleParams {
            connections: 40,
            hold: Duration::from_millis(200),
            subscribe: true,
            chatico: true,
            raw: true,
        },
    )
    .await
    .expect("idle");
    assert_eq!(rep.runs.len(), 2);
    assert_eq!(positive(&rep, "chatico_connections"), 40.0);
    assert_eq!(positive(&rep, "chatico_still_open_after_hold"), 40.0);
    assert_eq!(positive(&rep, "raw_connections"), 40.0);
    assert!(rep.summary.contains_key("chatico_bytes_per_connection"));

    let rep = fanout::run(
        &common,
        &fanout::FanoutParams {
            group_size: 10,
            groups: 3,
            senders_per_group: 1,
            window: 4,
            warmup: Duration::from_millis(100),
            measure: Duration::from_millis(300),
            latency_load: 0.5,
            chatico: true,
            raw: true,
        },
    )
    .await
    .expect("fanout");
    positive(&rep, "chatico_max_deliveries_per_s");
    positive(&rep, "raw_max_deliveries_per_s");
    positive(&rep, "ratio_chatico_to_raw");
    positive(&rep, "chatico_latency_samples");
    positive(&rep, "raw_latency_samples");
    let p50 = positive(&rep, "chatico_latency_p50_ms");
    let p999 = positive(&rep, "chatico_latency_p999_ms");
    assert!(p50 <= p999, "percentiles are ordered");
    assert_eq!(rep.summary["chatico_closed_connections"].max, 0.0);
    let json: serde_json::Value = serde_json::from_str(&rep.to_json()).expect("json report");
    assert_eq!(json["scenario"], "fanout-10");
    assert!(rep.table().contains("ratio_chatico_to_raw"));

    let rep = persist::run(
        &common,
        &persist::PersistParams {
            pairs: 3,
            window: 4,
            warmup: Duration::from_millis(100),
            measure: Duration::from_millis(300),
            store: "memory".into(),
        },
    )
    .await
    .expect("persist");
    positive(&rep, "persisted_sends_per_s");
    positive(&rep, "ack_latency_p99_ms");
    assert_eq!(rep.summary["errors"].max, 0.0);

    let rep = resync::run(
        &common,
        &resync::ResyncParams {
            missed: 20,
            iterations: 3,
        },
    )
    .await
    .expect("resync");
    assert_eq!(positive(&rep, "resync_samples"), 3.0);
    positive(&rep, "resync_p99_ms");
    assert_eq!(
        rep.summary["incomplete_resyncs"].max, 0.0,
        "every missed message arrives"
    );

    let rep = typing::run(
        &common,
        &typing::TypingParams {
            pairs: 2,
            iterations: 5,
        },
    )
    .await
    .expect("typing");
    assert_eq!(positive(&rep, "typing_samples"), 10.0);
    positive(&rep, "typing_p50_ms");

    let _ = std::fs::remove_file(otp_path);
}
