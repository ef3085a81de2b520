//! `yomo._native`: the data path of YoMo for Python in Rust: QUIC (quinn + rustls),
//! Y3 framing, routing and forwarding. One file per Python concept: `connection.rs`
//! (`FrameConnection`), `zipper.rs` (`Zipper`'s data path), `router.rs` (`TagRouter`),
//! `mesh.rs` (mesh links), `tls.rs` (`TlsConfig`), `settings.rs` (`QuicSettings`),
//! `stats.rs` (the counters). The Python package is the public face; this module is
//! private and typed by `src/yomo/_native.pyi`.

use pyo3::prelude::*;

mod acked;
mod connection;
mod credit;
mod hold;
mod lane;
mod liveness;
mod mesh;
mod metadata;
mod outbox;
mod resend;
mod router;
mod runtime;
mod settings;
mod stats;
mod tls;
mod y3;
mod zipper;

/// The versions this module was built with, for `yomo version`.
#[pyfunction]
fn versions() -> Vec<(&'static str, &'static str)> {
    vec![("yomo-native", env!("CARGO_PKG_VERSION")), ("quinn", "0.11"), ("rustls", "0.23")]
}

/// Encode a DataFrame (for tests of the native codec against the Python one).
#[pyfunction]
fn encode_data_frame<'py>(
    py: Python<'py>,
    tag: u32,
    metadata: &[u8],
    payload: &[u8],
) -> Bound<'py, pyo3::types::PyBytes> {
    pyo3::types::PyBytes::new(py, &y3::encode_data(tag, metadata, payload))
}

/// Split a byte stream into frames as the native reader does: `(frames, error)`.
/// `chunk` > 0 feeds the reader `chunk` bytes at a time, as QUIC reads may cut them
/// (for the decoder fuzzer, `fuzz/fuzz_native.py`), each as its own `Bytes`, as the
/// zipper's reader gets them.
#[pyfunction]
#[pyo3(signature = (data, max_frame_size, chunk = 0))]
fn split_frames<'py>(
    py: Python<'py>,
    data: &[u8],
    max_frame_size: usize,
    chunk: usize,
) -> PyResult<(Bound<'py, pyo3::types::PyList>, Option<String>)> {
    let mut reader = y3::FrameReader::new(max_frame_size);
    let list = pyo3::types::PyList::empty(py);
    let mut offset = 0u64;
    let step = if chunk == 0 { data.len().max(1) } else { chunk };
    for piece in data.chunks(step) {
        reader.push_bytes(bytes::Bytes::copy_from_slice(piece));
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    let len = frame.len() as u64;
                    match connection::item(frame, offset) {
                        Ok(it) => list.append(connection::checked(it).to_py(py)?)?,
                        Err(e) => return Ok((list, Some(e.0))),
                    }
                    offset += len;
                }
                Ok(None) => break,
                Err(e) => return Ok((list, Some(e.0))),
            }
        }
    }
    Ok((list, None))
}

/// DataFrame metadata as the native zipper reads it: `(entries, target, error)`; with
/// `merge`, the map re-encoded with those entries set on top instead of the entries
/// (for the decoder fuzzer).
#[pyfunction]
#[pyo3(signature = (metadata, merge = None))]
fn read_metadata<'py>(
    py: Python<'py>,
    metadata: &[u8],
    merge: Option<Vec<(String, String)>>,
) -> PyResult<Bound<'py, PyAny>> {
    let none = || (py.None(), None::<String>);
    let (value, target, error) = match merge {
        None => match metadata::entries(metadata).and_then(|e| Ok((e, metadata::target(metadata)?))) {
            Ok((entries, target)) => (entries.into_pyobject(py)?.into_any().unbind(), target, None),
            Err(e) => (none().0, none().1, Some(e)),
        },
        Some(over) => match metadata::merge(metadata, &over) {
            Ok((md, target)) => (pyo3::types::PyBytes::new(py, &md).into_any().unbind(), target, None),
            Err(e) => (none().0, none().1, Some(e)),
        },
    };
    Ok((value, target, error).into_pyobject(py)?.into_any())
}

/// The native data path of YoMo for Python (private; see `yomo.transport.native`).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__doc__", "The native data path of YoMo for Python (private; see yomo.transport.native).")?;
    m.add_class::<connection::Connection>()?;
    m.add_class::<zipper::Zipper>()?;
    m.add_function(wrap_pyfunction!(versions, m)?)?;
    m.add_function(wrap_pyfunction!(encode_data_frame, m)?)?;
    m.add_function(wrap_pyfunction!(split_frames, m)?)?;
    m.add_function(wrap_pyfunction!(read_metadata, m)?)?;
    m.add("CLOSE_CODE", connection::CLOSE_CODE)?;
    m.add(
        "__all__",
        ["CLOSE_CODE", "Connection", "Zipper", "encode_data_frame", "read_metadata", "split_frames", "versions"],
    )?;
    Ok(())
}
