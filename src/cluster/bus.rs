//! The cluster bus wire format of Redis 7.0: a fixed 2256-byte header
//! (signature `RCmb`, every integer in network byte order) followed by a
//! body that depends on the message type. PING, PONG and MEET carry gossip
//! entries (104 bytes each) and then ping extensions; FAIL names a node;
//! UPDATE carries a node's config epoch and slots.

use super::state::{NodeId, SLOT_BYTES};

pub const SIGNATURE: &[u8; 4] = b"RCmb";
pub const VERSION: u16 = 1;
/// Length of the header (the message without its body).
pub const HEADER_LEN: usize = 2256;
/// One gossip entry.
pub const GOSSIP_LEN: usize = 104;
/// Length of an IP field (INET6_ADDRSTRLEN).
pub const IP_LEN: usize = 46;

pub const PING: u16 = 0;
pub const PONG: u16 = 1;
pub const MEET: u16 = 2;
pub const FAIL: u16 = 3;
pub const PUBLISH: u16 = 4;
pub const AUTH_REQUEST: u16 = 5;
pub const AUTH_ACK: u16 = 6;
pub const UPDATE: u16 = 7;
pub const MFSTART: u16 = 8;
pub const MODULE: u16 = 9;
pub const PUBLISHSHARD: u16 = 10;
/// Number of message types (for the statistics).
pub const TYPES: usize = 11;

/// The names CLUSTER INFO gives the message types.
pub fn type_name(t: usize) -> &'static str {
    ["ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module", "publishshard"]
        .get(t)
        .copied()
        .unwrap_or("unknown")
}

/// `mflags[0]`: the sender understands ping extensions.
pub const MFLAG0_EXT_DATA: u8 = 1 << 2;
/// Ping extension carrying the sender's hostname.
pub const EXT_HOSTNAME: u16 = 0;

// Offsets of the header fields.
const O_TOTLEN: usize = 4;
const O_VER: usize = 8;
const O_PORT: usize = 10;
const O_TYPE: usize = 12;
const O_COUNT: usize = 14;
const O_CURRENT_EPOCH: usize = 16;
const O_CONFIG_EPOCH: usize = 24;
const O_OFFSET: usize = 32;
const O_SENDER: usize = 40;
const O_MYSLOTS: usize = 80;
const O_SLAVEOF: usize = O_MYSLOTS + SLOT_BYTES;
const O_MYIP: usize = O_SLAVEOF + 40;
const O_EXTENSIONS: usize = O_MYIP + IP_LEN;
const O_PPORT: usize = O_EXTENSIONS + 2 + 30;
const O_CPORT: usize = O_PPORT + 2;
const O_FLAGS: usize = O_CPORT + 2;
const O_STATE: usize = O_FLAGS + 2;
const O_MFLAGS: usize = O_STATE + 1;
const _: () = assert!(O_MFLAGS + 3 == HEADER_LEN);

/// The header of a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub kind: u16,
    pub port: u16,
    pub count: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: NodeId,
    pub myslots: Box<[u8; SLOT_BYTES]>,
    /// The sender's master; all zeros for a master.
    pub slaveof: NodeId,
    /// The sender's announced IP (empty: use the connection's peer address).
    pub myip: String,
    pub extensions: u16,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    /// 0: the sender thinks the cluster is ok, 1: failed.
    pub state: u8,
    pub mflags: [u8; 3],
}

/// A gossip entry: what the sender knows of another node.
#[derive(Clone, Debug, PartialEq)]
pub struct Gossip {
    pub id: NodeId,
    /// Seconds (Unix time) the sender last pinged / heard from the node.
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// PING, PONG, MEET: gossip entries and the hostname extension (if any).
    Ping {
        gossip: Vec<Gossip>,
        hostname: Option<String>,
    },
    Fail {
        id: NodeId,
    },
    Update {
        config_epoch: u64,
        id: NodeId,
        slots: Box<[u8; SLOT_BYTES]>,
    },
    /// PUBLISH and PUBLISHSHARD: `channel_len`, `message_len` (32 bits
    /// each), then the channel's bytes followed by the message's.
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// A type this node does not act on (failover votes, ...).
    Other,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}
fn id_at(b: &[u8], at: usize) -> NodeId {
    let mut id = [0u8; 40];
    id.copy_from_slice(&b[at..at + 40]);
    id
}
/// A NUL-padded string field.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}
fn put_cstr(out: &mut [u8], s: &str) {
    let n = s.len().min(out.len() - 1);
    out[..n].copy_from_slice(&s.as_bytes()[..n]);
}

/// The total length a message announces, from its first 8 bytes; None when
/// the signature is wrong or the length is below a header's.
pub fn announced_len(first8: &[u8]) -> Option<usize> {
    if first8.len() < 8 || &first8[..4] != SIGNATURE {
        return None;
    }
    let len = be32(first8, O_TOTLEN) as usize;
    (len >= HEADER_LEN).then_some(len)
}

/// Decodes one whole message (`buf.len()` is its announced length). Errors
/// are messages Redis would drop as invalid.
pub fn decode(buf: &[u8]) -> Result<Message, &'static str> {
    if buf.len() < HEADER_LEN || &buf[..4] != SIGNATURE {
        return Err("bad signature or short message");
    }
    if be32(buf, O_TOTLEN) as usize != buf.len() {
        return Err("length mismatch");
    }
    if be16(buf, O_VER) != VERSION {
        return Err("unknown protocol version");
    }
    let mut myslots = Box::new([0u8; SLOT_BYTES]);
    myslots.copy_from_slice(&buf[O_MYSLOTS..O_MYSLOTS + SLOT_BYTES]);
    let header = Header {
        kind: be16(buf, O_TYPE),
        port: be16(buf, O_PORT),
        count: be16(buf, O_COUNT),
        current_epoch: be64(buf, O_CURRENT_EPOCH),
        config_epoch: be64(buf, O_CONFIG_EPOCH),
        offset: be64(buf, O_OFFSET),
        sender: id_at(buf, O_SENDER),
        myslots,
        slaveof: id_at(buf, O_SLAVEOF),
        myip: cstr(&buf[O_MYIP..O_MYIP + IP_LEN]),
        extensions: be16(buf, O_EXTENSIONS),
        pport: be16(buf, O_PPORT),
        cport: be16(buf, O_CPORT),
        flags: be16(buf, O_FLAGS),
        state: buf[O_STATE],
        mflags: [buf[O_MFLAGS], buf[O_MFLAGS + 1], buf[O_MFLAGS + 2]],
    };
    let data = &buf[HEADER_LEN..];
    let body = match header.kind {
        PING | PONG | MEET => {
            let count = header.count as usize;
            let gossip_end = count * GOSSIP_LEN;
            if data.len() < gossip_end {
                return Err("gossip section longer than the message");
            }
            let gossip = (0..count).map(|i| decode_gossip(&data[i * GOSSIP_LEN..(i + 1) * GOSSIP_LEN])).collect();
            let mut at = gossip_end;
            let mut hostname = None;
            if header.mflags[0] & MFLAG0_EXT_DATA != 0 {
                for _ in 0..header.extensions {
                    if data.len() - at < 8 {
                        return Err("truncated ping extension");
                    }
                    // Redis's clusterMsgPingExt: length (header included), type, unused.
                    let len = be32(data, at) as usize;
                    let kind = be16(data, at + 4);
                    if !len.is_multiple_of(8) || len < 8 || data.len() - at < len {
                        return Err("bad ping extension length");
                    }
                    if kind == EXT_HOSTNAME {
                        hostname = Some(cstr(&data[at + 8..at + len]));
                    }
                    at += len;
                }
            }
            if at != data.len() {
                return Err("length mismatch");
            }
            Body::Ping { gossip, hostname }
        }
        FAIL => {
            if data.len() != 40 {
                return Err("length mismatch");
            }
            Body::Fail { id: id_at(data, 0) }
        }
        UPDATE => {
            if data.len() != 8 + 40 + SLOT_BYTES {
                return Err("length mismatch");
            }
            let mut slots = Box::new([0u8; SLOT_BYTES]);
            slots.copy_from_slice(&data[48..48 + SLOT_BYTES]);
            Body::Update { config_epoch: be64(data, 0), id: id_at(data, 8), slots }
        }
        PUBLISH | PUBLISHSHARD => {
            if data.len() < 8 {
                return Err("length mismatch");
            }
            let channel_len = be32(data, 0) as usize;
            let message_len = be32(data, 4) as usize;
            if (data.len() - 8).checked_sub(channel_len) != Some(message_len) {
                return Err("length mismatch");
            }
            let channel = data[8..8 + channel_len].to_vec();
            let message = data[8 + channel_len..].to_vec();
            Body::Publish { channel, message }
        }
        _ => Body::Other,
    };
    Ok(Message { header, body })
}

fn decode_gossip(b: &[u8]) -> Gossip {
    Gossip {
        id: id_at(b, 0),
        ping_sent: be32(b, 40),
        pong_received: be32(b, 44),
        ip: cstr(&b[48..48 + IP_LEN]),
        port: be16(b, 94),
        cport: be16(b, 96),
        flags: be16(b, 98),
        pport: be16(b, 100),
    }
}

fn encode_header(h: &Header, totlen: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + HEADER_LEN, 0);
    let b = &mut out[start..];
    b[..4].copy_from_slice(SIGNATURE);
    b[O_TOTLEN..O_TOTLEN + 4].copy_from_slice(&(totlen as u32).to_be_bytes());
    b[O_VER..O_VER + 2].copy_from_slice(&VERSION.to_be_bytes());
    b[O_PORT..O_PORT + 2].copy_from_slice(&h.port.to_be_bytes());
    b[O_TYPE..O_TYPE + 2].copy_from_slice(&h.kind.to_be_bytes());
    b[O_COUNT..O_COUNT + 2].copy_from_slice(&h.count.to_be_bytes());
    b[O_CURRENT_EPOCH..O_CURRENT_EPOCH + 8].copy_from_slice(&h.current_epoch.to_be_bytes());
    b[O_CONFIG_EPOCH..O_CONFIG_EPOCH + 8].copy_from_slice(&h.config_epoch.to_be_bytes());
    b[O_OFFSET..O_OFFSET + 8].copy_from_slice(&h.offset.to_be_bytes());
    b[O_SENDER..O_SENDER + 40].copy_from_slice(&h.sender);
    b[O_MYSLOTS..O_MYSLOTS + SLOT_BYTES].copy_from_slice(&h.myslots[..]);
    b[O_SLAVEOF..O_SLAVEOF + 40].copy_from_slice(&h.slaveof);
    put_cstr(&mut b[O_MYIP..O_MYIP + IP_LEN], &h.myip);
    b[O_EXTENSIONS..O_EXTENSIONS + 2].copy_from_slice(&h.extensions.to_be_bytes());
    b[O_PPORT..O_PPORT + 2].copy_from_slice(&h.pport.to_be_bytes());
    b[O_CPORT..O_CPORT + 2].copy_from_slice(&h.cport.to_be_bytes());
    b[O_FLAGS..O_FLAGS + 2].copy_from_slice(&h.flags.to_be_bytes());
    b[O_STATE] = h.state;
    b[O_MFLAGS..O_MFLAGS + 3].copy_from_slice(&h.mflags);
}

fn encode_gossip(g: &Gossip, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + GOSSIP_LEN, 0);
    let b = &mut out[start..];
    b[..40].copy_from_slice(&g.id);
    b[40..44].copy_from_slice(&g.ping_sent.to_be_bytes());
    b[44..48].copy_from_slice(&g.pong_received.to_be_bytes());
    put_cstr(&mut b[48..48 + IP_LEN], &g.ip);
    b[94..96].copy_from_slice(&g.port.to_be_bytes());
    b[96..98].copy_from_slice(&g.cport.to_be_bytes());
    b[98..100].copy_from_slice(&g.flags.to_be_bytes());
    b[100..102].copy_from_slice(&g.pport.to_be_bytes());
}

/// Encodes a message; the header's `count`, `extensions` and the
/// extension flag are set from the body.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut h = msg.header.clone();
    let mut body = Vec::new();
    match &msg.body {
        Body::Ping { gossip, hostname } => {
            h.count = gossip.len() as u16;
            for g in gossip {
                encode_gossip(g, &mut body);
            }
            h.mflags[0] |= MFLAG0_EXT_DATA;
            h.extensions = 0;
            if let Some(name) = hostname.as_deref().filter(|n| !n.is_empty()) {
                // Length (header included), type, unused, then the name
                // NUL-terminated and padded to 8 bytes.
                let padded = (name.len() + 1).div_ceil(8) * 8;
                body.extend_from_slice(&((8 + padded) as u32).to_be_bytes());
                body.extend_from_slice(&EXT_HOSTNAME.to_be_bytes());
                body.extend_from_slice(&0u16.to_be_bytes());
                body.extend_from_slice(name.as_bytes());
                body.resize(body.len() + padded - name.len(), 0);
                h.extensions = 1;
            }
        }
        Body::Fail { id } => body.extend_from_slice(id),
        Body::Update { config_epoch, id, slots } => {
            body.extend_from_slice(&config_epoch.to_be_bytes());
            body.extend_from_slice(id);
            body.extend_from_slice(&slots[..]);
        }
        Body::Publish { channel, message } => {
            body.reserve(8 + channel.len() + message.len());
            body.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            body.extend_from_slice(&(message.len() as u32).to_be_bytes());
            body.extend_from_slice(channel);
            body.extend_from_slice(message);
        }
        Body::Other => {}
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    encode_header(&h, HEADER_LEN + body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u16) -> Header {
        let mut myslots = Box::new([0u8; SLOT_BYTES]);
        myslots[0] = 0b1000_0001;
        myslots[SLOT_BYTES - 1] = 0x80;
        Header {
            kind,
            port: 7000,
            count: 0,
            current_epoch: 5,
            config_epoch: 3,
            offset: 0,
            sender: [b'a'; 40],
            myslots,
            slaveof: [0; 40],
            myip: "10.0.0.1".into(),
            extensions: 0,
            pport: 0,
            cport: 17000,
            flags: 1,
            state: 0,
            mflags: [0; 3],
        }
    }

    #[test]
    fn header_layout_matches_redis() {
        let msg = Message { header: header(PING), body: Body::Ping { gossip: vec![], hostname: None } };
        let b = encode(&msg);
        assert_eq!(b.len(), HEADER_LEN);
        assert_eq!(&b[..4], b"RCmb");
        assert_eq!(&b[4..8], &(HEADER_LEN as u32).to_be_bytes());
        assert_eq!(&b[8..10], &[0, 1]);
        assert_eq!(&b[10..12], &7000u16.to_be_bytes());
        assert_eq!(&b[16..24], &5u64.to_be_bytes());
        assert_eq!(&b[24..32], &3u64.to_be_bytes());
        assert_eq!(&b[40..80], &[b'a'; 40]);
        assert_eq!(b[80], 0b1000_0001);
        assert_eq!(&b[2168..2176], b"10.0.0.1");
        assert_eq!(&b[2248..2250], &17000u16.to_be_bytes());
        assert_eq!(&b[2250..2252], &1u16.to_be_bytes());
        assert_eq!(b[2253] & MFLAG0_EXT_DATA, MFLAG0_EXT_DATA);
    }

    #[test]
    fn ping_round_trip_with_gossip_and_hostname() {
        let g = Gossip {
            id: [b'b'; 40],
            ping_sent: 1,
            pong_received: 2,
            ip: "127.0.0.1".into(),
            port: 7001,
            cport: 17001,
            flags: 1,
            pport: 0,
        };
        let msg = Message {
            header: header(MEET),
            body: Body::Ping { gossip: vec![g.clone(), g], hostname: Some("host-1".into()) },
        };
        let b = encode(&msg);
        assert_eq!(b.len(), HEADER_LEN + 2 * GOSSIP_LEN + 16);
        // Redis's layout: a 32-bit length (header included), the 16-bit type, 16 unused bits,
        // then the NUL-terminated name padded to 8 bytes.
        let ext = &b[HEADER_LEN + 2 * GOSSIP_LEN..];
        assert_eq!(ext, b"\0\0\0\x10\0\0\0\0host-1\0\0");
        let back = decode(&b).unwrap();
        assert_eq!(back.body, msg.body);
        assert_eq!(back.header.count, 2);
        assert_eq!(back.header.extensions, 1);
        assert_eq!(back.header.myslots, msg.header.myslots);
    }

    #[test]
    fn fail_and_update_round_trip() {
        for body in [
            Body::Fail { id: [b'c'; 40] },
            Body::Update { config_epoch: 9, id: [b'd'; 40], slots: Box::new([0xff; SLOT_BYTES]) },
        ] {
            let kind = if matches!(body, Body::Fail { .. }) { FAIL } else { UPDATE };
            let msg = Message { header: header(kind), body };
            assert_eq!(decode(&encode(&msg)).unwrap().body, msg.body);
        }
    }

    #[test]
    fn publish_layout_matches_redis() {
        let body = Body::Publish { channel: b"news".to_vec(), message: b"hello!".to_vec() };
        let msg = Message { header: header(PUBLISHSHARD), body };
        let b = encode(&msg);
        // clusterMsgDataPublish: two 32-bit lengths, then channel and message.
        assert_eq!(b.len(), HEADER_LEN + 8 + 4 + 6);
        assert_eq!(&b[12..14], &PUBLISHSHARD.to_be_bytes());
        assert_eq!(&b[HEADER_LEN..HEADER_LEN + 8], &[0, 0, 0, 4, 0, 0, 0, 6]);
        assert_eq!(&b[HEADER_LEN + 8..], b"newshello!");
        assert_eq!(decode(&b).unwrap().body, msg.body);
        // Lengths that disagree with the message's are refused.
        let mut bad = b.clone();
        bad[HEADER_LEN + 3] = 5;
        assert!(decode(&bad).is_err());
        let mut bad = b;
        bad[HEADER_LEN + 3] = 200;
        assert!(decode(&bad).is_err());
    }

    #[test]
    fn invalid_messages_are_refused() {
        let msg = Message { header: header(PING), body: Body::Ping { gossip: vec![], hostname: None } };
        let mut b = encode(&msg);
        assert!(announced_len(&b[..8]).is_some());
        b[0] = b'X';
        assert!(announced_len(&b[..8]).is_none());
        assert!(decode(&b).is_err());
        b[0] = b'R';
        b[15] = 3; // count 3 without gossip bytes
        assert!(decode(&b).is_err());
        assert!(decode(&b[..100]).is_err());
    }
}
