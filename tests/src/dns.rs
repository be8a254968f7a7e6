//! A small authoritative DNS server on loopback (UDP), so the egress
//! address filter can be tested through a real resolver and a real DNS
//! exchange, the way a provider name that resolves to a private or
//! metadata address would reach Ward in production.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::UdpSocket;

/// A DNS server answering A/AAAA queries from a fixed table.
pub struct DnsStandIn {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

impl DnsStandIn {
    /// Serves `records` (lower-case name → addresses) on `127.0.0.1:0`;
    /// other names get NXDOMAIN.
    pub async fn start(records: BTreeMap<String, Vec<IpAddr>>) -> std::io::Result<DnsStandIn> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let socket = Arc::new(socket);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = answer(&buf[..n], &records) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Ok(DnsStandIn { addr, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Builds the response to one query (RFC 1035 §4.1), or `None` for
/// something that is not a single-question query.
fn answer(query: &[u8], records: &BTreeMap<String, Vec<IpAddr>>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    let name = labels.join(".");
    let found = records.get(&name);
    let answers: Vec<&IpAddr> = found
        .map(|ips| {
            ips.iter()
                .filter(|ip| match ip {
                    IpAddr::V4(_) => qtype == TYPE_A,
                    IpAddr::V6(_) => qtype == TYPE_AAAA,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[0..2]); // id
    let rcode = if found.is_some() { 0 } else { 3 }; // NOERROR / NXDOMAIN
    out.extend_from_slice(&[0x84 | (query[2] & 0x01), 0x80 | rcode]); // QR AA RD, RA
    out.extend_from_slice(&[0, 1]); // one question
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // no authority, no additional
    out.extend_from_slice(query.get(12..question_end)?);
    for ip in answers {
        out.extend_from_slice(&[0xC0, 0x0C]); // the question's name
        match ip {
            IpAddr::V4(v4) => {
                out.extend_from_slice(&TYPE_A.to_be_bytes());
                out.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, 4]);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.extend_from_slice(&TYPE_AAAA.to_be_bytes());
                out.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, 16]);
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    Some(out)
}
