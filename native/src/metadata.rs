//! DataFrame metadata (docs/protocol section 4): a MessagePack map of string to string.
//! The zipper only needs `yomo-target` and, for connections with values of their own, a
//! merge; everything else is forwarded as the bytes it came in. Go: core/metadata.

use rmp::Marker;

pub const TARGET: &str = "yomo-target";

/// One key or value: a msgpack str, or a bin holding UTF-8 (Go's decoder takes both).
fn read_text<'a>(buf: &mut &'a [u8]) -> Result<&'a str, String> {
    let marker =
        rmp::decode::read_marker(buf).map_err(|_| "metadata is not valid MessagePack: truncated".to_string())?;
    let len = match marker {
        Marker::FixStr(n) => n as usize,
        Marker::Str8 | Marker::Bin8 => take(buf, 1)?[0] as usize,
        Marker::Str16 | Marker::Bin16 => u16::from_be_bytes(take(buf, 2)?.try_into().unwrap()) as usize,
        Marker::Str32 | Marker::Bin32 => u32::from_be_bytes(take(buf, 4)?.try_into().unwrap()) as usize,
        Marker::Reserved => return Err(invalid()),
        other => {
            return Err(format!(
                "metadata must be a MessagePack map of strings to strings, got a {} entry",
                kind(other)
            ))
        }
    };
    let bytes = take(buf, len)?;
    std::str::from_utf8(bytes).map_err(|_| "metadata holds a string that is not valid UTF-8".to_string())
}

fn invalid() -> String {
    "metadata is not valid MessagePack: the byte 0xc1 is never used".into()
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if buf.len() < n {
        return Err("metadata is not valid MessagePack: truncated".into());
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn kind(m: Marker) -> &'static str {
    match m {
        Marker::Null => "nil",
        Marker::True | Marker::False => "bool",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "list",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "map",
        Marker::F32 | Marker::F64 => "float",
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "int",
        _ => "non-string",
    }
}

/// Every entry of the map, in order; empty bytes and nil are the empty map.
pub fn entries(md: &[u8]) -> Result<Vec<(&str, &str)>, String> {
    let mut buf = md;
    if buf.is_empty() {
        return Ok(vec![]);
    }
    let n = match rmp::decode::read_marker(&mut buf).map_err(|_| "metadata is not valid MessagePack".to_string())? {
        Marker::Null => 0,
        Marker::FixMap(n) => n as usize,
        Marker::Map16 => u16::from_be_bytes(take(&mut buf, 2)?.try_into().unwrap()) as usize,
        Marker::Map32 => u32::from_be_bytes(take(&mut buf, 4)?.try_into().unwrap()) as usize,
        Marker::Reserved => return Err(invalid()),
        other => return Err(format!("metadata must be a MessagePack map of strings, got {}", kind(other))),
    };
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let k = read_text(&mut buf)?;
        let v = read_text(&mut buf)?;
        out.push((k, v));
    }
    if !buf.is_empty() {
        return Err(format!("metadata has {} bytes after the MessagePack map", buf.len()));
    }
    Ok(out)
}

/// The values of `yomo-target` and of `key` (the last ones win), checking the whole map.
pub fn target_and(md: &[u8], key: &str) -> Result<(Option<String>, Option<String>), String> {
    let (mut target, mut other) = (None, None);
    for (k, v) in entries(md)? {
        if k == TARGET {
            target = Some(v.to_string());
        } else if k == key {
            other = Some(v.to_string());
        }
    }
    Ok((target, other))
}

/// The value of `yomo-target` (the last one wins), checking the whole map on the way.
pub fn target(md: &[u8]) -> Result<Option<String>, String> {
    Ok(entries(md)?.into_iter().rev().find(|(k, _)| *k == TARGET).map(|(_, v)| v.to_string()))
}

/// The map with `over` merged on top (Go's `Set`: an empty value deletes, an empty key
/// is skipped), encoded again; empty bytes when nothing is left (Go's `Encode`).
pub fn merge(md: &[u8], over: &[(String, String)]) -> Result<(Vec<u8>, Option<String>), String> {
    let mut map: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: &str, map: &mut Vec<(String, String)>| {
        if k.is_empty() {
            return;
        }
        let at = map.iter().position(|(x, _)| x == k);
        match (at, v.is_empty()) {
            (Some(i), true) => {
                map.remove(i);
            }
            (Some(i), false) => map[i].1 = v.to_string(),
            (None, false) => map.push((k.to_string(), v.to_string())),
            (None, true) => {}
        }
    };
    for (k, v) in entries(md)? {
        set(k, v, &mut map);
    }
    for (k, v) in over {
        set(k, v, &mut map);
    }
    let target = map.iter().find(|(k, _)| k == TARGET).map(|(_, v)| v.clone());
    if map.is_empty() {
        return Ok((vec![], target));
    }
    let mut out = Vec::with_capacity(md.len() + 32);
    rmp::encode::write_map_len(&mut out, map.len() as u32).expect("vec write");
    for (k, v) in &map {
        rmp::encode::write_str(&mut out, k).expect("vec write");
        rmp::encode::write_str(&mut out, v).expect("vec write");
    }
    Ok((out, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = vec![];
        rmp::encode::write_map_len(&mut out, pairs.len() as u32).unwrap();
        for (k, v) in pairs {
            rmp::encode::write_str(&mut out, k).unwrap();
            rmp::encode::write_str(&mut out, v).unwrap();
        }
        out
    }

    #[test]
    fn finds_the_target_and_merges_with_set_semantics() {
        let md = enc(&[("yomo-tid", "t1"), ("yomo-target", "a")]);
        assert_eq!(target(&md).unwrap().as_deref(), Some("a"));
        assert_eq!(target(b"").unwrap(), None);
        let (out, t) = merge(&md, &[("yomo-target".into(), "".into()), ("k".into(), "v".into())]).unwrap();
        assert_eq!(t, None);
        assert_eq!(entries(&out).unwrap(), vec![("yomo-tid", "t1"), ("k", "v")]);
        assert!(merge(b"", &[]).unwrap().0.is_empty());
    }

    #[test]
    fn refuses_what_is_not_a_map_of_strings() {
        assert!(entries(&[0x93, 1, 2, 3]).is_err());
        assert!(entries(&[0x81, 0xA1, b'k', 0x01]).is_err());
        assert!(entries(&[0x81, 0xA1, b'k']).is_err());
        let mut extra = enc(&[("a", "b")]);
        extra.push(0);
        assert!(entries(&extra).unwrap_err().contains("after the MessagePack map"));
    }
}
