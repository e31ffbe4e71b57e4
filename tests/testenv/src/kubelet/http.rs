//! A deliberately tiny HTTP/1.1 server on loopback: `GET /metrics`, `GET /healthz`,
//! `POST /nodes/NAME/lose|restore`. One request per connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Kubelet;

pub(super) async fn serve(k: Kubelet) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", k.port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let k = k.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(k, stream).await {
                tracing::debug!(error = %e, "http connection failed");
            }
        });
    }
}

/// Method and target of a request; requests carry no body we care about, so this reads
/// only up to the end of the headers.
pub(super) async fn request_line<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<(String, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 32 * 1024 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    Ok((parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string()))
}

async fn handle(k: Kubelet, mut stream: TcpStream) -> std::io::Result<()> {
    let (method, target) = request_line(&mut stream).await?;
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (code, body) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["metrics"]) => (200, super::metrics::render(&k)),
        ("GET", ["healthz"]) => (200, "ok\n".to_string()),
        ("POST", ["nodes", node, verb @ ("lose" | "restore")]) => match super::nodes::set_lost(&k, node, *verb == "lose").await {
            Ok(()) => (200, "ok\n".to_string()),
            Err(e) => (409, format!("{e}\n")),
        },
        _ => (404, "not found\n".to_string()),
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        _ => "Conflict",
    };
    let resp = format!("HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}
