//! Shared state for several gateway nodes on Redis (feature `redis`): [`RedisPresence`]
//! (presence, typing, node leases, the reaper) and [`RedisOtpCache`] (OTP codes and the rate
//! counters). Every multi-key change is one Lua script, so it is atomic with respect to
//! every node.
//!
//! One Redis (a primary, with replicas if wanted), not Redis Cluster: the presence scripts
//! reach keys they compute from the data (a user's typing, a dead node's users).
//!
//! # Keys (under a prefix, default `chatico`)
//!
//! | key | type | what |
//! |---|---|---|
//! | `P:epoch` | string | the state's incarnation; gone or changed = Redis lost its data |
//! | `P:nodes` | sorted set | node incarnation → lease expiry (ms) |
//! | `P:n:NODE` | hash | user → connections on that node |
//! | `P:u:USER` | hash | node → connections of that user (gone = offline) |
//! | `P:t:CONV` | sorted set | user → typing expiry (ms) |
//! | `P:tu:USER` | set | conversations the user types in |
//! | `P:reaped:NODE` | string, 1 h TTL | the node was reaped |
//! | `P:otp:KEY` | hash, TTL | a pending code: hash `h`, `s`ent, `e`xpires, `a`ttempts |
//! | `P:c:KEY` | hash, TTL | a window counter: `n` hits, window `e`nd |
//!
//! Times are the callers' clocks (ms since the epoch): the nodes' clocks must agree to well
//! within a lease (NTP). TTLs are set from differences of those times, so Redis only ever
//! drops a key after the callers consider it expired.
//!
//! # Failures
//!
//! Security state fails closed: every [`RedisOtpCache`] call answers `unavailable` while
//! Redis cannot be reached. Presence and typing degrade: [`RedisPresence`] keeps this
//! node's own view ([`MemoryPresence`]) and answers from it while Redis is unreachable (a
//! user is online if connected *here*); its next successful lease renewal re-registers
//! this node's connections and reports the transitions that produced.

use std::sync::LazyLock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chatico_core::ids::{ConversationId, Timestamp, UserId};
use chatico_core::model::Typing;
use chatico_core::ports::{OtpCache, OtpCheck, OtpEntry, PresenceChanges, PresenceTracker};
use chatico_core::{Error, MemoryPresence, Result};
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::RwLock;

/// How to reach Redis and name the keys.
#[derive(Debug, Clone)]
pub struct RedisStateConfig {
    /// Prefix of every key (several deployments can share one Redis).
    pub prefix: String,
    /// How long a node's presence lease lasts without renewal (default 15 s). Renew it
    /// (the gateway's presence tick) well within this, e.g. every 5 s.
    pub lease: Duration,
    /// How long a command may take before it counts as a failure (default 1 s).
    pub response_timeout: Duration,
}

impl Default for RedisStateConfig {
    fn default() -> Self {
        RedisStateConfig {
            prefix: "chatico".into(),
            lease: Duration::from_secs(15),
            response_timeout: Duration::from_secs(1),
        }
    }
}

/// A connection to the Redis holding the shared state (reconnects by itself). Cheap to
/// clone; give it to [`RedisPresence::new`] and [`RedisOtpCache::new`].
#[derive(Clone)]
pub struct RedisState {
    conn: ConnectionManager,
    config: RedisStateConfig,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.config.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::unavailable(format!("shared state (redis): {e}"))
}

impl RedisState {
    /// Connects to `url` (`redis://HOST:PORT[/DB]`); `unavailable` if Redis cannot be
    /// reached now. Later outages are survived: the connection comes back by itself.
    pub async fn connect(url: &str, config: RedisStateConfig) -> Result<Self> {
        if config.prefix.is_empty() || config.lease < Duration::from_secs(1) {
            return Err(Error::invalid(
                "redis state config",
                "prefix must not be empty; lease >= 1 s",
            ));
        }
        let client = redis::Client::open(url).map_err(|e| Error::invalid("redis url", e.to_string()))?;
        let cm = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(config.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, cm)
            .await
            .map_err(unavailable)?;
        Ok(RedisState { conn, config })
    }

    fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}:{kind}:{id}", self.config.prefix)
    }
}

// ---- presence -------------------------------------------------------------------------------

/// KEYS: u:USER, n:NODE. ARGV: node, user. Returns 1 when the user was offline.
static CONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local before = redis.call('HLEN', KEYS[1])
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if before == 0 then return 1 end
return 0
",
    )
});

/// Ends a user's typing everywhere (Lua helper, prepended to the scripts that need it).
const END_TYPING: &str = r"
local function end_typing(P, u)
  local tu = P .. ':tu:' .. u
  for _, cv in ipairs(redis.call('SMEMBERS', tu)) do redis.call('ZREM', P .. ':t:' .. cv, u) end
  redis.call('DEL', tu)
end
";

/// KEYS: u:USER, n:NODE. ARGV: node, user, prefix. Returns 1 when the user went offline.
static DISCONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{END_TYPING}
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local nc = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
if nc <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if c > 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
end_typing(ARGV[3], ARGV[2])
return 1
"
    ))
});

/// KEYS: t:CONV, tu:USER. ARGV: user, conv, expires_at, now.
static SET_TYPING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
local ttl = tonumber(ARGV[3]) - tonumber(ARGV[4]) + 1000
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
return 1
",
    )
});

/// KEYS: t:CONV, tu:USER. ARGV: user, conv.
static CLEAR_TYPING: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 1
",
    )
});

/// KEYS: epoch, nodes, reaped:NODE. ARGV: node, lease expiry, the epoch this node knows ('' at
/// first), a fresh epoch. Renews the lease; returns {status, epoch}: `new` (first
/// registration), `ok`, `lost` (Redis lost its data: re-register silently) or `reaped` (this
/// node was reaped while alive: re-register and report).
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local e = redis.call('GET', KEYS[1])
local status = 'ok'
if ARGV[3] == '' then status = 'new' end
if not e then
  redis.call('SET', KEYS[1], ARGV[4])
  e = ARGV[4]
  if ARGV[3] ~= '' then status = 'lost' end
elseif ARGV[3] ~= '' and e ~= ARGV[3] then
  status = 'lost'
end
if status == 'ok' and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  if redis.call('EXISTS', KEYS[3]) == 1 then status = 'reaped' else status = 'lost' end
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return {status, e}
",
    )
});

/// KEYS: n:NODE. ARGV: prefix, node, then user, count pairs: this node's connections as it
/// knows them. Makes Redis agree; returns {number of users who came online, those users...,
/// users who went offline...}.
static REREGISTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{END_TYPING}
local P, node = ARGV[1], ARGV[2]
local want = {{}}
for i = 3, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end
local on, off = {{}}, {{}}
for _, u in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not want[u] then
    local uk = P .. ':u:' .. u
    redis.call('HDEL', uk, node)
    redis.call('HDEL', KEYS[1], u)
    if redis.call('HLEN', uk) == 0 then
      table.insert(off, u)
      end_typing(P, u)
    end
  end
end
for i = 3, #ARGV, 2 do
  local u = ARGV[i]
  local uk = P .. ':u:' .. u
  if redis.call('HLEN', uk) == 0 then table.insert(on, u) end
  redis.call('HSET', uk, node, ARGV[i + 1])
  redis.call('HSET', KEYS[1], u, ARGV[i + 1])
end
local out = {{tostring(#on)}}
for _, u in ipairs(on) do table.insert(out, u) end
for _, u in ipairs(off) do table.insert(out, u) end
return out
"
    ))
});

/// KEYS: nodes. ARGV: prefix, now. Reaps one node whose lease expired: {node, lease expiry,
/// users who went offline...}, or {} when none.
static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{END_TYPING}
local P = ARGV[1]
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'WITHSCORES', 'LIMIT', 0, 1)
if #dead == 0 then return {{}} end
local node, exp = dead[1], dead[2]
local nk = P .. ':n:' .. node
local out = {{node, exp}}
for _, u in ipairs(redis.call('HKEYS', nk)) do
  local uk = P .. ':u:' .. u
  redis.call('HDEL', uk, node)
  if redis.call('HLEN', uk) == 0 then
    table.insert(out, u)
    end_typing(P, u)
  end
end
redis.call('DEL', nk)
redis.call('ZREM', KEYS[1], node)
redis.call('SET', P .. ':reaped:' .. node, '1', 'PX', 3600000)
return out
"
    ))
});

/// Most dead nodes one tick reaps.
const REAP_PER_TICK: usize = 64;

/// Cluster-wide presence and typing on Redis. See the module docs.
///
/// A node is named by its incarnation, `NODE_ID/RANDOM`: a restarted node (same node id)
/// is a new incarnation, and its previous one is reaped when its lease lapses, so a rolling
/// restart neither keeps stale connections nor drops live ones.
pub struct RedisPresence {
    state: RedisState,
    node: String,
    /// This node's own connections and typing: the fallback, and what re-registration sends.
    local: MemoryPresence,
    /// False after a failed Redis call, until the next successful renewal.
    healthy: AtomicBool,
    /// A connection change did not reach Redis: the next renewal re-registers and reports.
    dirty: AtomicBool,
    retired: AtomicBool,
    /// The state epoch this node registered under ("" before the first renewal).
    epoch: Mutex<String>,
    /// Connection changes hold it shared; re-registration exclusively (so the view it sends
    /// is not overtaken by a change in flight).
    rereg: RwLock<()>,
}

impl std::fmt::Debug for RedisPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPresence")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn parse_user(s: &str) -> Option<UserId> {
    s.parse().ok()
}

impl RedisPresence {
    /// The tracker of node `node_id` (unique among the nodes; the gateway's node id). Call
    /// [`PresenceTracker::maintain`] once before serving to register the lease, then every
    /// few seconds.
    pub fn new(state: RedisState, node_id: &str) -> Self {
        let incarnation = format!("{node_id}/{:016x}", rand::random::<u64>());
        RedisPresence {
            state,
            node: incarnation,
            local: MemoryPresence::new(),
            healthy: AtomicBool::new(true),
            dirty: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            epoch: Mutex::new(String::new()),
            rereg: RwLock::new(()),
        }
    }

    /// This node's incarnation name in Redis.
    pub fn incarnation(&self) -> &str {
        &self.node
    }

    /// Whether the last Redis call worked (false: answering from this node's own view).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    fn conn(&self) -> ConnectionManager {
        self.state.conn.clone()
    }

    fn failed(&self, what: &str, e: &redis::RedisError) {
        if self.healthy.swap(false, Ordering::SeqCst) {
            tracing::warn!(target: "chatico::presence", error = %e, what, node = %self.node,
                "redis unreachable: presence and typing fall back to this node's own view");
        }
    }

    fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        self.state.key(kind, id)
    }

    async fn renew(&self, now: Timestamp) -> redis::RedisResult<(String, String)> {
        let known = self.epoch.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let expiry = now + i64::try_from(self.state.config.lease.as_millis()).unwrap_or(i64::MAX / 2);
        let fresh = format!("{:032x}", rand::random::<u128>());
        let (status, epoch): (String, String) = RENEW
            .key(format!("{}:epoch", self.state.config.prefix))
            .key(format!("{}:nodes", self.state.config.prefix))
            .key(self.key("reaped", &self.node))
            .arg(&self.node)
            .arg(expiry)
            .arg(&known)
            .arg(&fresh)
            .invoke_async(&mut self.conn())
            .await?;
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) = epoch.clone();
        Ok((status, epoch))
    }

    /// Makes Redis hold exactly this node's connections; (came online, went offline).
    async fn reregister(&self) -> Result<(Vec<UserId>, Vec<UserId>)> {
        let _exclusive = self.rereg.write().await;
        let counts = self.local.connection_counts()?;
        let mut inv = REREGISTER.key(self.key("n", &self.node));
        inv.arg(&self.state.config.prefix).arg(&self.node);
        for (u, c) in &counts {
            inv.arg(u.to_string()).arg(*c);
        }
        let out: Vec<String> = inv.invoke_async(&mut self.conn()).await.map_err(unavailable)?;
        let n_on: usize = out.first().and_then(|n| n.parse().ok()).unwrap_or(0);
        let users: Vec<UserId> = out.iter().skip(1).filter_map(|u| parse_user(u)).collect();
        let split = n_on.min(users.len());
        Ok((users[..split].to_vec(), users[split..].to_vec()))
    }

    async fn reap(&self, now: Timestamp) -> Result<Vec<(UserId, Timestamp)>> {
        let mut offline = Vec::new();
        for _ in 0..REAP_PER_TICK {
            let out: Vec<String> = REAP
                .key(format!("{}:nodes", self.state.config.prefix))
                .arg(&self.state.config.prefix)
                .arg(now)
                .invoke_async(&mut self.conn())
                .await
                .map_err(unavailable)?;
            if out.len() < 2 {
                break;
            }
            let expiry = out[1].parse::<f64>().map(|f| f as i64).unwrap_or(now);
            let users: Vec<UserId> = out[2..].iter().filter_map(|u| parse_user(u)).collect();
            tracing::info!(target: "chatico::presence", dead = %out[0], offline = users.len(), "reaped a node whose lease expired");
            offline.extend(users.into_iter().map(|u| (u, expiry)));
        }
        Ok(offline)
    }
}

#[async_trait]
impl PresenceTracker for RedisPresence {
    async fn connect(&self, user: UserId, connection: u64, _now: Timestamp) -> Result<bool> {
        let _shared = self.rereg.read().await;
        let (inserted, first_here) = self.local.add(user, connection)?;
        if !inserted || self.retired.load(Ordering::SeqCst) {
            return Ok(false);
        }
        if !self.is_healthy() {
            self.dirty.store(true, Ordering::SeqCst);
            return Ok(first_here);
        }
        let r: redis::RedisResult<i64> = CONNECT
            .key(self.key("u", user))
            .key(self.key("n", &self.node))
            .arg(&self.node)
            .arg(user.to_string())
            .invoke_async(&mut self.conn())
            .await;
        match r {
            Ok(t) => Ok(t == 1),
            Err(e) => {
                self.failed("connect", &e);
                self.dirty.store(true, Ordering::SeqCst);
                Ok(first_here)
            }
        }
    }

    async fn disconnect(&self, user: UserId, connection: u64, _now: Timestamp) -> Result<bool> {
        let _shared = self.rereg.read().await;
        let (removed, last_here) = self.local.remove(user, connection)?;
        if !removed || self.retired.load(Ordering::SeqCst) {
            // Retired: the lease lapses and the reaper decides (no flap on a restart).
            return Ok(false);
        }
        if !self.is_healthy() {
            self.dirty.store(true, Ordering::SeqCst);
            return Ok(last_here);
        }
        let r: redis::RedisResult<i64> = DISCONNECT
            .key(self.key("u", user))
            .key(self.key("n", &self.node))
            .arg(&self.node)
            .arg(user.to_string())
            .arg(&self.state.config.prefix)
            .invoke_async(&mut self.conn())
            .await;
        match r {
            Ok(t) => Ok(t == 1),
            Err(e) => {
                self.failed("disconnect", &e);
                self.dirty.store(true, Ordering::SeqCst);
                Ok(last_here)
            }
        }
    }

    async fn online(&self, users: &[UserId]) -> Result<Vec<UserId>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_healthy() {
            let mut pipe = redis::pipe();
            for u in users {
                pipe.cmd("EXISTS").arg(self.key("u", u));
            }
            match pipe.query_async::<Vec<i64>>(&mut self.conn()).await {
                Ok(exists) => {
                    let mut seen = std::collections::HashSet::new();
                    return Ok(users
                        .iter()
                        .zip(exists)
                        .filter(|(u, e)| *e == 1 && seen.insert(**u))
                        .map(|(u, _)| *u)
                        .collect());
                }
                Err(e) => self.failed("online", &e),
            }
        }
        self.local.online(users).await
    }

    async fn set_typing(
        &self,
        conversation: ConversationId,
        user: UserId,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        self.local.set_typing(conversation, user, expires_at, now).await?;
        if self.is_healthy() {
            let r: redis::RedisResult<i64> = SET_TYPING
                .key(self.key("t", conversation))
                .key(self.key("tu", user))
                .arg(user.to_string())
                .arg(conversation.to_string())
                .arg(expires_at)
                .arg(now)
                .invoke_async(&mut self.conn())
                .await;
            if let Err(e) = r {
                self.failed("set typing", &e);
            }
        }
        Ok(())
    }

    async fn clear_typing(&self, conversation: ConversationId, user: UserId) -> Result<()> {
        self.local.clear_typing(conversation, user).await?;
        if self.is_healthy() {
            let r: redis::RedisResult<i64> = CLEAR_TYPING
                .key(self.key("t", conversation))
                .key(self.key("tu", user))
                .arg(user.to_string())
                .arg(conversation.to_string())
                .invoke_async(&mut self.conn())
                .await;
            if let Err(e) = r {
                self.failed("clear typing", &e);
            }
        }
        Ok(())
    }

    async fn typing(&self, conversations: &[ConversationId], now: Timestamp) -> Result<Vec<Typing>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_healthy() {
            let mut pipe = redis::pipe();
            for c in conversations {
                pipe.cmd("ZRANGEBYSCORE")
                    .arg(self.key("t", c))
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .arg("WITHSCORES");
            }
            match pipe.query_async::<Vec<Vec<(String, f64)>>>(&mut self.conn()).await {
                Ok(per_conv) => {
                    let mut out: Vec<Typing> = conversations
                        .iter()
                        .zip(per_conv)
                        .flat_map(|(c, entries)| {
                            entries.into_iter().filter_map(move |(u, exp)| {
                                Some(Typing {
                                    conversation_id: *c,
                                    user_id: parse_user(&u)?,
                                    expires_at: exp as i64,
                                })
                            })
                        })
                        .collect();
                    out.sort_by_key(|t| (t.conversation_id, t.user_id));
                    out.dedup_by_key(|t| (t.conversation_id, t.user_id));
                    return Ok(out);
                }
                Err(e) => self.failed("typing", &e),
            }
        }
        self.local.typing(conversations, now).await
    }

    async fn maintain(&self, now: Timestamp) -> Result<PresenceChanges> {
        self.local.maintain(now).await?;
        if self.retired.load(Ordering::SeqCst) {
            return Ok(PresenceChanges::default());
        }
        // A connection broken by a Redis restart shows on its first use: one retry at once.
        let renewed = match self.renew(now).await {
            Ok(r) => Ok(r),
            Err(_) => self.renew(now).await,
        };
        let (status, _) = match renewed {
            Ok(r) => r,
            Err(e) => {
                self.failed("lease renewal", &e);
                return Err(unavailable(e));
            }
        };
        if !self.healthy.swap(true, Ordering::SeqCst) {
            tracing::info!(target: "chatico::presence", node = %self.node, "redis reachable again: presence is cluster-wide again");
        }
        let dirty = self.dirty.swap(false, Ordering::SeqCst);
        let mut changes = PresenceChanges::default();
        if status == "lost" || status == "reaped" || dirty {
            let (on, off) = match self.reregister().await {
                Ok(r) => r,
                Err(e) => {
                    self.dirty.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            if status == "lost" {
                // What clients were last told still holds: re-register without events.
                tracing::info!(target: "chatico::presence", node = %self.node, "redis lost the shared state; re-registered this node's connections");
            } else {
                tracing::info!(target: "chatico::presence", node = %self.node, status = %status, dirty, online = on.len(), offline = off.len(), "re-registered this node's connections");
                changes.online = on;
                changes.offline = off.into_iter().map(|u| (u, now)).collect();
            }
        }
        changes.offline.extend(self.reap(now).await?);
        Ok(changes)
    }

    async fn retire(&self, _now: Timestamp) -> Result<()> {
        self.retired.store(true, Ordering::SeqCst);
        tracing::info!(target: "chatico::presence", node = %self.node, "retiring: this node's users stay online until its lease lapses");
        Ok(())
    }
}

// ---- OTP cache ------------------------------------------------------------------------------

/// KEYS: otp:KEY. ARGV: hash, sent_at, expires_at, ttl ms.
static OTP_PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 's', ARGV[2], 'e', ARGV[3], 'a', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
",
    )
});

/// KEYS: otp:KEY. ARGV: candidate hash, now, max attempts. Returns {0} missing, {1} match,
/// {2, attempts left} mismatch. The hashes compared are HMACs under the server's key, so the
/// comparison's timing tells a guesser nothing about the code.
static OTP_CHECK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'h', 'e', 'a')
if not v[1] then return {0} end
if tonumber(v[2]) <= tonumber(ARGV[2]) or tonumber(v[3]) >= tonumber(ARGV[3]) then
  redis.call('DEL', KEYS[1])
  return {0}
end
if v[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1}
end
local a = redis.call('HINCRBY', KEYS[1], 'a', 1)
local left = tonumber(ARGV[3]) - a
if left <= 0 then
  redis.call('DEL', KEYS[1])
  left = 0
end
return {2, left}
",
    )
});

/// KEYS: c:KEY. ARGV: now, window ms, now + window. Returns {count, window end}.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local e = redis.call('HGET', KEYS[1], 'e')
if (not e) or tonumber(e) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  e = ARGV[3]
  redis.call('HSET', KEYS[1], 'e', e)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
return {n, e}
",
    )
});

/// The [`OtpCache`] on Redis: codes and counters shared by every node, so a code sent
/// through one node is checked on any other and the attempt limit holds across nodes
/// (check-and-consume is one script). Fails closed: `unavailable` while Redis is down.
#[derive(Debug, Clone)]
pub struct RedisOtpCache {
    state: RedisState,
}

impl RedisOtpCache {
    /// The cache over `state`.
    pub fn new(state: RedisState) -> Self {
        RedisOtpCache { state }
    }
}

#[async_trait]
impl OtpCache for RedisOtpCache {
    async fn put(&self, key: &str, entry: OtpEntry) -> Result<()> {
        let ttl = (entry.expires_at - entry.sent_at).max(1);
        let _: i64 = OTP_PUT
            .key(self.state.key("otp", key))
            .arg(&entry.code_hash[..])
            .arg(entry.sent_at)
            .arg(entry.expires_at)
            .arg(ttl)
            .invoke_async(&mut self.state.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &str, now: Timestamp) -> Result<Option<OtpEntry>> {
        let (h, s, e, a): (Option<Vec<u8>>, Option<i64>, Option<i64>, Option<u32>) = redis::cmd("HMGET")
            .arg(self.state.key("otp", key))
            .arg("h")
            .arg("s")
            .arg("e")
            .arg("a")
            .query_async(&mut self.state.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match (h, s, e, a) {
            (Some(code_hash), Some(sent_at), Some(expires_at), Some(attempts)) if expires_at > now => Some(OtpEntry {
                code_hash,
                sent_at,
                expires_at,
                attempts,
            }),
            _ => None,
        })
    }

    async fn check_and_consume(
        &self,
        key: &str,
        candidate_hash: &[u8],
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<OtpCheck> {
        let r: Vec<i64> = OTP_CHECK
            .key(self.state.key("otp", key))
            .arg(candidate_hash)
            .arg(now)
            .arg(max_attempts)
            .invoke_async(&mut self.state.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match r.as_slice() {
            [1] => OtpCheck::Match,
            [2, left] => OtpCheck::Mismatch {
                attempts_left: u32::try_from(*left).unwrap_or(0),
            },
            _ => OtpCheck::Missing,
        })
    }

    async fn hit(&self, key: &str, now: Timestamp, window_ms: i64) -> Result<(u32, Timestamp)> {
        let window = window_ms.max(1);
        let (n, end): (u32, i64) = HIT
            .key(self.state.key("c", key))
            .arg(now)
            .arg(window)
            .arg(now + window)
            .invoke_async(&mut self.state.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok((n, end))
    }
}
