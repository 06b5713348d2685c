//! Slowloris: half-sent requests are closed after the header-read timeout, at most
//! `max_connections` are open at once, and a normal request is still served.

use std::time::{Duration, Instant};

use chatico_transport::gateway::ServeConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{PATIENCE, TestServer};

const CAP: usize = 16;
const ATTACKERS: usize = 48;
const HEADER_TIMEOUT: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_and_a_normal_request_is_still_served() {
    let srv = TestServer::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let gw = srv.gateway.clone();
    let config = ServeConfig {
        header_read_timeout: HEADER_TIMEOUT,
        max_connections: CAP,
        drain_timeout: Duration::from_secs(1),
    };
    tokio::spawn(async move {
        let app = gw.router();
        gw.serve(listener, app, config, std::future::pending())
            .await
            .expect("serve");
    });

    // Many sockets each send a request header without its final empty line, then nothing.
    let t0 = Instant::now();
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a request");
        // Each one reports when the server closed it.
        attackers.push(tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return t0.elapsed(),
                    Ok(_) => {}
                }
            }
        }));
    }

    // A normal request is served (after the slots ahead of it free up).
    let resp = tokio::time::timeout(PATIENCE, reqwest::get(format!("http://{addr}/v1/openapi.json")))
        .await
        .expect("a normal request was served in time")
        .expect("http");
    assert_eq!(resp.status(), 200);

    let mut closed_at = Vec::new();
    for a in attackers {
        let t = tokio::time::timeout(PATIENCE, a)
            .await
            .expect("the server closed every half-sent request")
            .expect("reader");
        closed_at.push(t);
    }
    // Nobody is closed before the timeout, and never more than CAP connections were open:
    // a connection accepted after a slot freed (at >= HEADER_TIMEOUT) is closed no sooner
    // than 2 * HEADER_TIMEOUT.
    assert!(closed_at.iter().all(|t| *t >= HEADER_TIMEOUT), "{closed_at:?}");
    let first_round = closed_at.iter().filter(|t| **t < HEADER_TIMEOUT * 2).count();
    assert!(
        first_round <= CAP,
        "{first_round} closed in the first round: {closed_at:?}"
    );

    // And afterwards the server serves normally.
    let resp = reqwest::get(format!("http://{addr}/v1/openapi.json"))
        .await
        .expect("http");
    assert_eq!(resp.status(), 200);
}

#[test]
fn the_default_cap_follows_the_open_file_limit() {
    let cap = ServeConfig::default().connection_cap();
    #[cfg(unix)]
    {
        let soft = soft_nofile();
        assert!(cap as u64 <= soft.max(64 + 128), "cap {cap} vs soft limit {soft}");
        assert!(cap >= 64);
    }
    assert_eq!(
        ServeConfig {
            max_connections: 7,
            ..ServeConfig::default()
        }
        .connection_cap(),
        7
    );
}

#[cfg(unix)]
fn soft_nofile() -> u64 {
    // /proc/self/limits: "Max open files  <soft>  <hard>  files"
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX)
}
