//! Y3 framing (docs/protocol: section 2 and 3): a bounded incremental frame reader, the
//! DataFrame's children, and the DataFrame encoder. Error texts match `yomo.wire`'s, so a
//! peer that sends bad bytes reads the same close reason from either data path.

use bytes::{Bytes, BytesMut};

/// Frame type codes (the wire byte is `type | 0x80`). Go: core/frame/frame.go.
pub const DATA: u8 = 0x3F;
pub const HANDSHAKE: u8 = 0x31;
pub const HANDSHAKE_ACK: u8 = 0x29;
pub const REJECTED: u8 = 0x39;
pub const GOAWAY: u8 = 0x2E;
pub const CONNECT_TO: u8 = 0x3E;

/// A frame's header is its tag byte plus a length varint of at most 5 bytes.
const MAX_LENGTH_BYTES: usize = 5;

/// The Python class name of a frame type, for messages ("unexpected frame ...").
pub fn frame_name(kind: u8) -> &'static str {
    match kind {
        DATA => "DataFrame",
        HANDSHAKE => "HandshakeFrame",
        HANDSHAKE_ACK => "HandshakeAckFrame",
        REJECTED => "RejectedFrame",
        GOAWAY => "GoawayFrame",
        CONNECT_TO => "ConnectToFrame",
        _ => "unknown frame",
    }
}

fn known(first: u8) -> bool {
    first & 0x80 != 0
        && matches!(first & 0x3F, DATA | HANDSHAKE | HANDSHAKE_ACK | REJECTED | GOAWAY | CONNECT_TO)
        && first & 0x40 == 0
}

/// Bytes that break the protocol; the text is the close reason (offset included).
#[derive(Debug, Clone)]
pub struct ProtoError(pub String);

impl ProtoError {
    fn at(message: String, offset: u64) -> Self {
        ProtoError(format!("{message} (at offset {offset})"))
    }
}

fn bad_first_byte(b: u8, at: u64) -> ProtoError {
    if b & 0x80 == 0 {
        return ProtoError::at(
            format!("expected a frame (a node packet), got a primitive packet tag byte {b:#04x}"),
            at,
        );
    }
    ProtoError::at(format!("unknown frame type {:#04x} (tag byte {b:#04x})", b & 0x7F), at)
}

/// Read a length varint at `buf[pos..]`: `Ok(None)` when more bytes are needed.
/// The sign is returned as is; callers decide what a negative length means.
pub fn read_length(buf: &[u8], pos: usize, base: u64) -> Result<Option<(i64, usize)>, ProtoError> {
    let Some(&b) = buf.get(pos) else { return Ok(None) };
    if b < 0x80 {
        let v = if b & 0x40 != 0 { b as i64 - 0x80 } else { b as i64 };
        return Ok(Some((v, pos + 1)));
    }
    let mut value: i64 = if b & 0x40 != 0 { (b & 0x7F) as i64 - 0x80 } else { (b & 0x7F) as i64 };
    let mut p = pos + 1;
    while p < pos + MAX_LENGTH_BYTES {
        let Some(&b) = buf.get(p) else { return Ok(None) };
        p += 1;
        value = (value << 7) | (b & 0x7F) as i64;
        if b < 0x80 {
            if value < i32::MIN as i64 || value > i32::MAX as i64 {
                return Err(ProtoError::at(
                    format!("length varint value {value} does not fit in 32 bits"),
                    base + pos as u64,
                ));
            }
            return Ok(Some((value, p)));
        }
    }
    Err(ProtoError::at(format!("length varint longer than {MAX_LENGTH_BYTES} bytes"), base + pos as u64))
}

/// Encode a length varint with the fewest groups that keep the sign (non-negative only).
pub fn write_length(out: &mut Vec<u8>, n: usize) {
    let mut groups = 1;
    while groups < MAX_LENGTH_BYTES && (n >> (7 * groups - 1)) != 0 {
        groups += 1;
    }
    for i in (0..groups).rev() {
        let g = ((n >> (7 * i)) & 0x7F) as u8;
        out.push(if i == 0 { g } else { g | 0x80 });
    }
}

/// Turns a byte stream cut anywhere into whole frames, refusing a frame longer than
/// `max` from its length prefix alone. Poisoned after an error (the stream cannot be
/// resynchronised), like `yomo.wire.FrameDecoder`.
pub struct FrameReader {
    /// Bytes of an incomplete frame, copied from the pieces pushed.
    buf: BytesMut,
    /// A piece pushed as `Bytes` while `buf` was empty: its whole frames are handed out
    /// as slices of it, without a copy (a frame per QUIC packet, as Go clients send, or a
    /// packet's run of small frames); only a frame it leaves incomplete goes to `buf`.
    cur: Bytes,
    max: usize,
    offset: u64,
    error: Option<ProtoError>,
}

impl FrameReader {
    pub fn new(max: usize) -> Self {
        FrameReader { buf: BytesMut::new(), cur: Bytes::new(), max, offset: 0, error: None }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.spill();
        self.buf.extend_from_slice(data);
    }

    /// Like `push`, without copying `data` when no incomplete frame is buffered.
    pub fn push_bytes(&mut self, data: Bytes) {
        if self.buf.is_empty() && self.cur.is_empty() {
            self.cur = data;
        } else {
            self.push(&data);
        }
    }

    /// Move what is left of `cur` into `buf` (from then on bytes are copied until `buf`
    /// runs empty again).
    fn spill(&mut self) {
        if !self.cur.is_empty() {
            self.buf.extend_from_slice(&self.cur);
            self.cur = Bytes::new();
        }
    }

    /// Bytes held for an incomplete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.cur.len()
    }

    /// The next whole frame (header included), `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ProtoError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let in_place = !self.cur.is_empty();
        let data: &[u8] = if in_place { &self.cur } else { &self.buf };
        match frame_end(data, self.max, self.offset) {
            Ok(Some(end)) if data.len() >= end => {
                self.offset += end as u64;
                Ok(Some(if in_place { self.cur.split_to(end) } else { self.buf.split_to(end).freeze() }))
            }
            Ok(end) => {
                // an incomplete frame: wait for the rest in `buf`, room made for all of it
                self.buf.reserve(end.unwrap_or(0).saturating_sub(self.buf.len()));
                self.spill();
                Ok(None)
            }
            Err(e) => {
                self.error = Some(e.clone());
                self.buf = BytesMut::new();
                self.cur = Bytes::new();
                Err(e)
            }
        }
    }
}

/// Where the first frame in `data` ends (perhaps past `data`'s end), `Ok(None)` if `data`
/// does not hold its header yet (`base`: the stream offset of `data`, for messages).
fn frame_end(data: &[u8], max: usize, base: u64) -> Result<Option<usize>, ProtoError> {
    let Some(&first) = data.first() else { return Ok(None) };
    if !known(first) {
        return Err(bad_first_byte(first, base));
    }
    let Some((length, body)) = read_length(data, 1, base)? else {
        return Ok(None);
    };
    if length < 0 {
        return Err(ProtoError::at(format!("negative frame length {length}"), base + 1));
    }
    let length = length as usize;
    if length > max {
        return Err(ProtoError::at(format!("frame of {length} bytes exceeds the limit of {max} bytes"), base + 1));
    }
    Ok(Some(body + length))
}

/// Where a DataFrame's parts are inside its encoded bytes.
pub struct DataView {
    pub tag: u32,
    pub metadata: std::ops::Range<usize>,
    pub payload: std::ops::Range<usize>,
}

fn body_start(frame: &[u8]) -> usize {
    // the header was checked by the reader
    match read_length(frame, 1, 0) {
        Ok(Some((_, p))) => p,
        _ => frame.len(),
    }
}

/// The children of a DataFrame (any order; the last of a repeated child wins; unknown
/// children ignored). `base` is the frame's offset in the stream, for messages.
pub fn parse_data(frame: &[u8], base: u64) -> Result<DataView, ProtoError> {
    const WHAT: &str = "DataFrame";
    let end = frame.len();
    let mut p = body_start(frame);
    let mut view = DataView { tag: 0, metadata: 0..0, payload: 0..0 };
    while p < end {
        let t = frame[p];
        if t & 0x80 != 0 {
            return Err(ProtoError::at(
                format!("{WHAT}: child tag byte {t:#04x} is a node packet; frame children must be primitive"),
                base + p as u64,
            ));
        }
        p += 1;
        let (n, q) = match read_length(frame, p, base)? {
            None => {
                return Err(ProtoError::at(
                    format!("{WHAT}: child length runs past the end of the frame"),
                    base + p as u64,
                ))
            }
            Some((n, _)) if n < 0 => {
                return Err(ProtoError::at(format!("{WHAT}: negative child length {n}"), base + p as u64))
            }
            Some((n, q)) => (n as usize, q),
        };
        if q + n > end {
            return Err(ProtoError::at(
                format!(
                    "{WHAT}: child {:#04x} length {n} runs past the end of the frame ({} bytes left)",
                    t & 0x3F,
                    end - q
                ),
                base + q as u64,
            ));
        }
        match t & 0x3F {
            0x01 => view.tag = decode_uint32(&frame[q..q + n], base + q as u64)?,
            0x02 => view.payload = q..q + n,
            0x03 => view.metadata = q..q + n,
            _ => {}
        }
        p = q + n;
    }
    Ok(view)
}

fn decode_uint32(b: &[u8], at: u64) -> Result<u32, ProtoError> {
    if b.is_empty() {
        return Err(ProtoError::at("empty uint32 value".into(), at));
    }
    if b.len() > 4 {
        return Err(ProtoError::at(format!("uint32 value is {} bytes long, at most 4 allowed", b.len()), at));
    }
    let mut v: i64 = b[0] as i8 as i64;
    for &x in &b[1..] {
        v = (v << 8) | x as i64;
    }
    Ok((v & 0xFFFF_FFFF) as u32)
}

fn encode_uint32(tag: u32) -> ([u8; 4], usize) {
    let v = tag as i32;
    let bytes = v.to_be_bytes();
    let mut n = 4;
    // drop leading bytes that sign extension restores
    while n > 1 {
        let lead = bytes[4 - n];
        let next = bytes[4 - n + 1];
        if (lead == 0x00 && next & 0x80 == 0) || (lead == 0xFF && next & 0x80 != 0) {
            n -= 1;
        } else {
            break;
        }
    }
    (bytes, n)
}

/// `BF len 01 len tag 03 len metadata 02 len payload`, Go's child order.
pub fn encode_data(tag: u32, metadata: &[u8], payload: &[u8]) -> Bytes {
    let (tb, tn) = encode_uint32(tag);
    let mut body = Vec::with_capacity(16 + metadata.len() + payload.len());
    body.push(0x01);
    write_length(&mut body, tn);
    body.extend_from_slice(&tb[4 - tn..]);
    body.push(0x03);
    write_length(&mut body, metadata.len());
    body.extend_from_slice(metadata);
    body.push(0x02);
    write_length(&mut body, payload.len());
    body.extend_from_slice(payload);
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(0x80 | DATA);
    write_length(&mut out, body.len());
    out.extend_from_slice(&body);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_protocol_examples() {
        for (n, want) in [
            (63usize, vec![0x3F]),
            (64, vec![0x80, 0x40]),
            (127, vec![0x80, 0x7F]),
            (128, vec![0x81, 0x00]),
            (8192, vec![0x80, 0xC0, 0x00]),
        ] {
            let mut out = vec![];
            write_length(&mut out, n);
            assert_eq!(out, want, "{n}");
            assert_eq!(read_length(&out, 0, 0).unwrap(), Some((n as i64, out.len())));
        }
    }

    #[test]
    fn uint32_matches_the_protocol_examples() {
        for (v, want) in [
            (1u32, vec![0x01]),
            (127, vec![0x7F]),
            (128, vec![0x00, 0x80]),
            (255, vec![0x00, 0xFF]),
            (1048576, vec![0x10, 0, 0]),
            (0xFFFF_FFFF, vec![0xFF]),
            (0x8000_0000, vec![0x80, 0, 0, 0]),
        ] {
            let (b, n) = encode_uint32(v);
            assert_eq!(&b[4 - n..], &want[..], "{v}");
            assert_eq!(decode_uint32(&want, 0).unwrap(), v);
        }
    }

    #[test]
    fn reader_cuts_frames_anywhere_and_bounds_them() {
        let frame = encode_data(0x33, b"", &[7u8; 300]);
        let mut r = FrameReader::new(1024);
        let two = [frame.as_ref(), frame.as_ref()].concat();
        let mut got = vec![];
        for b in two.chunks(7) {
            r.push(b);
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got.len(), 2);
        // pieces as Bytes: whole frames are slices of them, cut frames are copied
        for step in [1, 7, 300, 301, 305, 610, 1000] {
            let mut r = FrameReader::new(1024);
            let mut same = vec![];
            for b in two.chunks(step) {
                r.push_bytes(Bytes::copy_from_slice(b));
                while let Some(f) = r.next_frame().unwrap() {
                    same.push(f);
                }
            }
            assert_eq!((same.as_slice(), r.buffered()), (got.as_slice(), 0), "{step}");
        }
        let v = parse_data(&got[1], 0).unwrap();
        assert_eq!((v.tag, v.payload.len()), (0x33, 300));
        let mut small = FrameReader::new(100);
        small.push(&frame[..4]);
        let e = small.next_frame().unwrap_err();
        assert!(e.0.contains("exceeds the limit of 100 bytes"), "{}", e.0);
        let mut bad = FrameReader::new(100);
        bad.push(b"GET /");
        assert!(bad.next_frame().unwrap_err().0.contains("0x47"));
    }
}
