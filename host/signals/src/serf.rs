//! Serf's agent RPC (the protocol the `serf` CLI speaks), for membership and Vivaldi network
//! coordinates. mck8s ran `serf rtt -rpc-addr=… a b` once per candidate cluster (§3.2); this
//! talks to the agent directly over one connection instead.
//!
//! Wire format: MessagePack values back to back on a TCP stream, maps keyed by Go field names.
//! A request is a header `{Command, Seq}` followed by a body if the command takes one; a reply
//! is a header `{Seq, Error}` followed by a body if the command returns one. The first request
//! must be `handshake {Version: 1}`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::msgpack;

/// Default bound on connecting and on each request/reply exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A reply bigger than this is refused rather than buffered (a `members` reply for a thousand
/// nodes is well under 1 MiB).
const MAX_REPLY_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SerfError {
    #[error("serf {addr}: cannot connect: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("serf {addr}: {what} timed out after {after:?}")]
    Timeout { addr: String, what: String, after: Duration },
    #[error("serf {addr}: {what}: {source}")]
    Io { addr: String, what: String, source: std::io::Error },
    #[error("serf {addr}: connection closed by the other end during {what}")]
    Closed { addr: String, what: String },
    #[error("serf {addr}: {what}: not serf's RPC protocol: {detail}")]
    Protocol { addr: String, what: String, detail: String },
    #[error("serf {addr}: {command}: the agent answered: {message}")]
    Remote { addr: String, command: String, message: String },
    #[error("serf {addr}: the connection is unusable after an earlier error; reconnect")]
    Broken { addr: String },
    #[error("serf: coordinates of {a} ({a_dim} dimensions) and {b} ({b_dim}) are not comparable")]
    Dimensions { a: String, a_dim: usize, b: String, b_dim: usize },
}

/// A serf cluster member as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name; in mck8s, the cluster name.
    pub name: String,
    /// Gossip address, `ip:port` as `serf members` prints it.
    pub addr: String,
    /// `alive`, `leaving`, `left` or `failed`.
    pub status: String,
    pub tags: BTreeMap<String, String>,
}

/// A Vivaldi network coordinate; every field is in seconds except the dimensionless `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coordinate {
    #[serde(rename = "Vec", default, deserialize_with = "null_as_empty")]
    pub vec: Vec<f64>,
    #[serde(rename = "Error", default)]
    pub error: f64,
    #[serde(rename = "Adjustment", default)]
    pub adjustment: f64,
    #[serde(rename = "Height", default)]
    pub height: f64,
}

/// The RTT serf estimates between two coordinates: the Euclidean distance of the vectors plus
/// both heights, plus both adjustments when that sum stays positive; the same number
/// `serf rtt a b` prints (it formats this duration's milliseconds with three decimals).
///
/// Serf truncates the seconds to whole nanoseconds; so does this, so the printed value matches
/// to the last digit. Vectors of different lengths (never within one serf cluster; serf would
/// panic) are compared as if the shorter one were padded with zeros.
pub fn estimated_rtt(a: &Coordinate, b: &Coordinate) -> Duration {
    let n = a.vec.len().max(b.vec.len());
    let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
    let euclid = (0..n).map(|i| (at(&a.vec, i) - at(&b.vec, i)).powi(2)).sum::<f64>().sqrt();
    let raw = euclid + a.height + b.height;
    let adjusted = raw + a.adjustment + b.adjustment;
    let secs = if adjusted > 0.0 { adjusted } else { raw };
    // Go's float -> int conversion truncates toward zero; negative or NaN never happens with
    // serf's own coordinates (heights have a positive floor) and is clamped to zero here.
    let nanos = secs * 1e9;
    if nanos.is_nan() || nanos <= 0.0 { Duration::ZERO } else { Duration::from_nanos(nanos as u64) }
}

/// Milliseconds as f32, the unit the controller ranks by.
fn millis(d: Duration) -> f32 {
    (d.as_secs_f64() * 1000.0) as f32
}

#[derive(Serialize)]
struct RequestHeader<'a> {
    #[serde(rename = "Command")]
    command: &'a str,
    #[serde(rename = "Seq")]
    seq: u64,
}

#[derive(Deserialize)]
struct ResponseHeader {
    #[serde(rename = "Seq")]
    seq: u64,
    #[serde(rename = "Error", default)]
    error: String,
}

#[derive(Serialize)]
struct HandshakeRequest {
    #[serde(rename = "Version")]
    version: i32,
}

#[derive(Serialize)]
struct CoordinateRequest<'a> {
    #[serde(rename = "Node")]
    node: &'a str,
}

#[derive(Deserialize)]
struct CoordinateResponse {
    #[serde(rename = "Coord")]
    coord: Option<Coordinate>,
    #[serde(rename = "Ok", default)]
    ok: bool,
}

#[derive(Deserialize)]
struct MembersResponse {
    #[serde(rename = "Members", default, deserialize_with = "null_as_empty")]
    members: Vec<WireMember>,
}

#[derive(Deserialize)]
struct WireMember {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Addr", deserialize_with = "ip_bytes")]
    addr: Option<IpAddr>,
    #[serde(rename = "Port", default)]
    port: u16,
    #[serde(rename = "Tags", default, deserialize_with = "null_as_empty")]
    tags: BTreeMap<String, String>,
    #[serde(rename = "Status", default)]
    status: String,
}

/// Go encodes nil slices and maps as msgpack nil.
fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's `net.IP` is a byte slice (4 or 16 bytes; IPv4 usually in its 16-byte mapped form),
/// sent as msgpack bin (or str by encoders without the bin type).
fn ip_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<IpAddr>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an IP address as 4 or 16 bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            match v.len() {
                0 => Ok(None),
                4 => Ok(Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3])))),
                16 => {
                    let a: [u8; 16] = v.try_into().expect("length checked");
                    let v6 = Ipv6Addr::from(a);
                    Ok(Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)))
                }
                n => Err(E::custom(format!("IP address of {n} bytes"))),
            }
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            self.visit_bytes(v.as_bytes())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut bytes = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                bytes.push(b);
            }
            self.visit_bytes(&bytes)
        }
    }
    d.deserialize_any(V)
}

/// One connection to a serf agent's RPC port, handshake done. Not shared: requests are
/// strictly one at a time (`&mut self`). After any I/O, timeout or protocol error the
/// connection may be mid-reply, so it refuses further requests; reconnecting is the caller's
/// job (it knows how often to retry).
pub struct SerfClient {
    addr: String,
    stream: TcpStream,
    /// Bytes received but not yet consumed as a value.
    buf: Vec<u8>,
    seq: u64,
    timeout: Duration,
    broken: bool,
}

impl std::fmt::Debug for SerfClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerfClient").field("addr", &self.addr).field("seq", &self.seq).field("broken", &self.broken).finish()
    }
}

impl SerfClient {
    /// Connects to `addr` (e.g. `127.0.0.1:7373`) and performs the handshake, each bounded by
    /// [`DEFAULT_TIMEOUT`].
    pub async fn connect(addr: &str) -> Result<Self, SerfError> {
        Self::connect_with_timeout(addr, DEFAULT_TIMEOUT).await
    }

    /// As [`SerfClient::connect`]; `timeout` bounds the connect and every later exchange.
    pub async fn connect_with_timeout(addr: &str, timeout: Duration) -> Result<Self, SerfError> {
        let span = tracing::debug_span!("serf.connect", addr);
        async {
            let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Err(_) => return Err(SerfError::Timeout { addr: addr.into(), what: "connect".into(), after: timeout }),
                Ok(Err(source)) => return Err(SerfError::Connect { addr: addr.into(), source }),
                Ok(Ok(s)) => s,
            };
            // Requests are small and answered one by one; don't let Nagle hold them back.
            let _ = stream.set_nodelay(true);
            let mut client = SerfClient { addr: addr.into(), stream, buf: Vec::with_capacity(4096), seq: 0, timeout, broken: false };
            client.call::<_, ()>("handshake", Some(&HandshakeRequest { version: 1 }), false).await?;
            tracing::debug!("serf handshake done");
            Ok(client)
        }
        .instrument(span)
        .await
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every member the agent knows, in any status.
    pub async fn members(&mut self) -> Result<Vec<Member>, SerfError> {
        let span = tracing::debug_span!("serf.members", addr = %self.addr);
        async {
            let resp: Option<MembersResponse> = self.call::<(), _>("members", None, true).await?;
            let members: Vec<Member> = resp
                .map(|r| r.members)
                .unwrap_or_default()
                .into_iter()
                .map(|m| Member { addr: m.addr.map(|ip| SocketAddr::new(ip, m.port).to_string()).unwrap_or_default(), name: m.name, status: m.status, tags: m.tags })
                .collect();
            tracing::debug!(count = members.len(), "serf members");
            Ok(members)
        }
        .instrument(span)
        .await
    }

    /// The agent's cached coordinate for `node`; `None` if it has none (unknown node, or not
    /// yet measured).
    pub async fn coordinate(&mut self, node: &str) -> Result<Option<Coordinate>, SerfError> {
        let span = tracing::debug_span!("serf.coordinate", addr = %self.addr, node);
        async {
            let resp: Option<CoordinateResponse> = self.call("get-coordinate", Some(&CoordinateRequest { node }), true).await?;
            Ok(resp.filter(|r| r.ok).and_then(|r| r.coord))
        }
        .instrument(span)
        .await
    }

    /// One exchange: header (+ body), then reply header (+ body if `want_body`).
    async fn call<B: Serialize, R: DeserializeOwned>(&mut self, command: &str, body: Option<&B>, want_body: bool) -> Result<Option<R>, SerfError> {
        if self.broken {
            return Err(SerfError::Broken { addr: self.addr.clone() });
        }
        // Until the exchange completes the stream position is unknown: any early return leaves
        // the connection marked broken.
        self.broken = true;
        let timeout = self.timeout;
        let result = match tokio::time::timeout(timeout, self.exchange(command, body, want_body)).await {
            Ok(r) => r,
            Err(_) => Err(SerfError::Timeout { addr: self.addr.clone(), what: command.into(), after: timeout }),
        };
        // A reply that carried an error message was still read completely.
        if matches!(result, Ok(_) | Err(SerfError::Remote { .. })) {
            self.broken = false;
        }
        result
    }

    async fn exchange<B: Serialize, R: DeserializeOwned>(&mut self, command: &str, body: Option<&B>, want_body: bool) -> Result<Option<R>, SerfError> {
        self.seq += 1;
        let seq = self.seq;
        let mut out = rmp_serde::to_vec_named(&RequestHeader { command, seq }).map_err(|e| self.protocol(command, e))?;
        if let Some(b) = body {
            out.extend(rmp_serde::to_vec_named(b).map_err(|e| self.protocol(command, e))?);
        }
        self.stream.write_all(&out).await.map_err(|source| SerfError::Io { addr: self.addr.clone(), what: format!("sending {command}"), source })?;

        let header: ResponseHeader = self.read_value(command).await?;
        if header.seq != seq {
            return Err(self.protocol(command, format!("reply for request {} while waiting for {seq}", header.seq)));
        }
        if !header.error.is_empty() {
            // Serf sends no body with an error for the commands used here.
            return Err(SerfError::Remote { addr: self.addr.clone(), command: command.into(), message: header.error });
        }
        if want_body { self.read_value(command).await.map(Some) } else { Ok(None) }
    }

    /// Reads exactly one MessagePack value off the stream and decodes it.
    async fn read_value<R: DeserializeOwned>(&mut self, what: &str) -> Result<R, SerfError> {
        loop {
            match msgpack::value_len(&self.buf) {
                Err(e) => return Err(self.protocol(what, e.0)),
                Ok(Some(n)) => {
                    let value = rmp_serde::from_slice(&self.buf[..n]).map_err(|e| self.protocol(what, e));
                    self.buf.drain(..n);
                    return value;
                }
                Ok(None) if self.buf.len() > MAX_REPLY_BYTES => {
                    return Err(self.protocol(what, format!("reply larger than {MAX_REPLY_BYTES} bytes")));
                }
                Ok(None) => {}
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).await.map_err(|source| SerfError::Io { addr: self.addr.clone(), what: format!("reading the {what} reply"), source })?;
            if n == 0 {
                return Err(SerfError::Closed { addr: self.addr.clone(), what: what.into() });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn protocol(&self, what: &str, detail: impl std::fmt::Display) -> SerfError {
        SerfError::Protocol { addr: self.addr.clone(), what: what.into(), detail: detail.to_string() }
    }
}

/// RTTs in milliseconds between every pair of the given members (all members when `names` is
/// `None`), through one connection to the agent at `addr`. Only `alive` members with a
/// coordinate take part: a named cluster that is not a member, not alive or not yet measured
/// is left out (with a warning), so callers must treat a missing pair as "unknown", as mck8s
/// treated a failing `serf rtt`.
///
/// Both directions are listed, `(a, b, x)` and `(b, a, x)`, never `(a, a, _)`; sorted by name.
pub async fn rtt_matrix(addr: &str, names: Option<&[String]>) -> Result<Vec<(String, String, f32)>, SerfError> {
    let span = tracing::debug_span!("serf.rtt_matrix", addr, wanted = names.map(|n| n.len()));
    async {
        let started = Instant::now();
        let mut client = SerfClient::connect(addr).await?;
        let members = client.members().await?;
        let alive: BTreeMap<&str, &Member> = members.iter().filter(|m| m.status == "alive").map(|m| (m.name.as_str(), m)).collect();
        let mut chosen: Vec<&str> = match names {
            None => alive.keys().copied().collect(),
            Some(names) => {
                let mut v = Vec::new();
                for n in names {
                    if alive.contains_key(n.as_str()) {
                        v.push(n.as_str());
                    } else {
                        let status = members.iter().find(|m| &m.name == n).map_or("not a member", |m| m.status.as_str());
                        tracing::warn!(node = %n, status, "serf: no RTT for this cluster");
                    }
                }
                v
            }
        };
        chosen.sort_unstable();
        chosen.dedup();

        let mut coords: Vec<(&str, Coordinate)> = Vec::with_capacity(chosen.len());
        for name in chosen {
            match client.coordinate(name).await? {
                Some(c) => coords.push((name, c)),
                None => tracing::warn!(node = name, "serf: member has no coordinate yet; no RTT for it"),
            }
        }

        let mut out = Vec::with_capacity(coords.len() * coords.len().saturating_sub(1));
        for (i, (a, ca)) in coords.iter().enumerate() {
            for (b, cb) in &coords[i + 1..] {
                if ca.vec.len() != cb.vec.len() {
                    return Err(SerfError::Dimensions { a: a.to_string(), a_dim: ca.vec.len(), b: b.to_string(), b_dim: cb.vec.len() });
                }
                let ms = millis(estimated_rtt(ca, cb));
                out.push((a.to_string(), b.to_string(), ms));
                out.push((b.to_string(), a.to_string(), ms));
            }
        }
        out.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        tracing::debug!(clusters = coords.len(), pairs = out.len() / 2, elapsed_us = started.elapsed().as_micros() as u64, "serf RTT matrix");
        Ok(out)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn coord(vec: &[f64], adjustment: f64, height: f64) -> Coordinate {
        Coordinate { vec: vec.to_vec(), error: 1.5, adjustment, height }
    }

    #[test]
    fn rtt_is_euclidean_distance_plus_heights() {
        // 3-4-5 triangle in seconds: 5 s + heights 0.25 s + 0.5 s.
        let a = coord(&[0.0, 0.0, 0.0], 0.0, 0.25);
        let b = coord(&[3.0, 4.0, 0.0], 0.0, 0.5);
        assert_eq!(estimated_rtt(&a, &b), Duration::from_millis(5750));
        assert_eq!(estimated_rtt(&b, &a), estimated_rtt(&a, &b));
    }

    #[test]
    fn positive_adjustments_apply_and_a_non_positive_total_falls_back_to_raw() {
        let a = coord(&[0.001, 0.0], 0.0002, 0.0001);
        let b = coord(&[0.0, 0.0], -0.0001, 0.0001);
        // raw = 1 ms + 0.2 ms; adjusted = 1.2 + 0.2 - 0.1 = 1.3 ms.
        assert_eq!(estimated_rtt(&a, &b), Duration::from_nanos(1_300_000));
        // Adjustments that would make it negative are ignored: raw 1.2 ms.
        let c = coord(&[0.0, 0.0], -0.01, 0.0001);
        assert_eq!(estimated_rtt(&a, &c), Duration::from_nanos(1_200_000));
    }

    #[test]
    fn seconds_truncate_to_whole_nanoseconds_like_go() {
        // 1.9999999 ns -> 1 ns (Go's time.Duration(float) truncates).
        let a = coord(&[0.0], 0.0, 0.0);
        let b = coord(&[1.9999999e-9], 0.0, 0.0);
        assert_eq!(estimated_rtt(&a, &b), Duration::from_nanos(1));
        assert_eq!(format!("{:.3}", estimated_rtt(&a, &coord(&[0.000_543_4], 0.0, 0.0)).as_secs_f64() * 1000.0), "0.543");
    }

    #[test]
    fn identical_coordinates_are_twice_the_height_apart() {
        let a = coord(&[0.2, 0.1, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0], 0.0, 1e-5);
        assert_eq!(estimated_rtt(&a, &a), Duration::from_micros(20));
    }

    #[derive(Deserialize)]
    struct ReqHdr {
        #[serde(rename = "Command")]
        command: String,
        #[serde(rename = "Seq")]
        seq: u64,
    }

    async fn read_one(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
        loop {
            if let Some(n) = msgpack::value_len(buf).unwrap() {
                return buf.drain(..n).collect();
            }
            let mut c = [0u8; 1024];
            let n = s.read(&mut c).await.unwrap();
            assert!(n > 0, "client closed early");
            buf.extend_from_slice(&c[..n]);
        }
    }

    /// A fake agent that checks the handshake and answers `members` with Go's encoding
    /// (16-byte IPv4-mapped `Addr` as bin, nil tags), then an unknown-command error.
    #[tokio::test]
    async fn decodes_go_encoded_members_and_reports_agent_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            // handshake header + body
            let h: ReqHdr = rmp_serde::from_slice(&read_one(&mut s, &mut buf).await).unwrap();
            assert_eq!((h.command.as_str(), h.seq), ("handshake", 1));
            let body: BTreeMap<String, i32> = rmp_serde::from_slice(&read_one(&mut s, &mut buf).await).unwrap();
            assert_eq!(body.get("Version"), Some(&1));
            #[derive(Serialize)]
            struct Hdr {
                #[serde(rename = "Seq")]
                seq: u64,
                #[serde(rename = "Error")]
                error: String,
            }
            s.write_all(&rmp_serde::to_vec_named(&Hdr { seq: 1, error: String::new() }).unwrap()).await.unwrap();
            // members: header only, no body
            let h: ReqHdr = rmp_serde::from_slice(&read_one(&mut s, &mut buf).await).unwrap();
            assert_eq!((h.command.as_str(), h.seq), ("members", 2));
            #[derive(Serialize)]
            struct M {
                #[serde(rename = "Name")]
                name: &'static str,
                #[serde(rename = "Addr", serialize_with = "bytes")]
                addr: Vec<u8>,
                #[serde(rename = "Port")]
                port: u16,
                #[serde(rename = "Tags")]
                tags: Option<BTreeMap<String, String>>,
                #[serde(rename = "Status")]
                status: &'static str,
                #[serde(rename = "ProtocolMin")]
                pmin: u8,
            }
            fn bytes<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(v)
            }
            #[derive(Serialize)]
            struct Ms {
                #[serde(rename = "Members")]
                members: Vec<M>,
            }
            let mut mapped = vec![0u8; 10];
            mapped.extend([0xff, 0xff, 10, 0, 0, 7]);
            let body = Ms {
                members: vec![
                    M { name: "cluster1", addr: mapped, port: 7946, tags: None, status: "alive", pmin: 1 },
                    M { name: "cluster2", addr: vec![10, 0, 0, 8], port: 7947, tags: Some([("role".into(), "fog".into())].into()), status: "failed", pmin: 1 },
                ],
            };
            let mut out = rmp_serde::to_vec_named(&Hdr { seq: 2, error: String::new() }).unwrap();
            out.extend(rmp_serde::to_vec_named(&body).unwrap());
            // Split the reply in two writes so the client has to reassemble it.
            let (x, y) = out.split_at(out.len() / 2);
            s.write_all(x).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(y).await.unwrap();
            // get-coordinate: header + body, answered with an error and no body.
            let h: ReqHdr = rmp_serde::from_slice(&read_one(&mut s, &mut buf).await).unwrap();
            assert_eq!(h.command, "get-coordinate");
            let body: BTreeMap<String, String> = rmp_serde::from_slice(&read_one(&mut s, &mut buf).await).unwrap();
            assert_eq!(body.get("Node").map(String::as_str), Some("cluster1"));
            s.write_all(&rmp_serde::to_vec_named(&Hdr { seq: 3, error: "Unsupported command".into() }).unwrap()).await.unwrap();
            // Then a reply with the wrong sequence number.
            read_one(&mut s, &mut buf).await;
            s.write_all(&rmp_serde::to_vec_named(&Hdr { seq: 99, error: String::new() }).unwrap()).await.unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        });

        let mut client = SerfClient::connect(&addr).await.unwrap();
        let members = client.members().await.unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0], Member { name: "cluster1".into(), addr: "10.0.0.7:7946".into(), status: "alive".into(), tags: BTreeMap::new() });
        assert_eq!(members[1].addr, "10.0.0.8:7947");
        assert_eq!(members[1].tags.get("role").map(String::as_str), Some("fog"));
        match client.coordinate("cluster1").await {
            Err(SerfError::Remote { command, message, .. }) => assert_eq!((command.as_str(), message.as_str()), ("get-coordinate", "Unsupported command")),
            other => panic!("expected a remote error, got {other:?}"),
        }
        // An agent error leaves the connection usable; a sequence mismatch does not.
        match client.members().await {
            Err(SerfError::Protocol { detail, .. }) => assert!(detail.contains("99"), "{detail}"),
            other => panic!("expected a protocol error, got {other:?}"),
        }
        assert!(matches!(client.members().await, Err(SerfError::Broken { .. })));
        drop(client);
        server.await.unwrap();
    }
}
