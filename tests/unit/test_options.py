"""The options objects: keywords land in one frozen object per component, defaults once.

``yomo.ClientOptions`` (sources, stream functions, the session core, mesh links),
``yomo.ZipperOptions`` and ``yomo.MeshOptions`` (``yomo.zipper.options``).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest

import yomo
import yomo.aio
from yomo.errors import ConfigError
from yomo.session import ClientKeywords, ClientOptions, ReconnectPolicy
from yomo.session import handshake as session_handshake
from yomo.transport import DEFAULT_CLIENT_SETTINGS, DEFAULT_HANDSHAKE_TIMEOUT, QuicSettings
from yomo.zipper.options import (
    DEFAULT_MESH_RECONNECT,
    MeshOptions,
    ZipperKeywords,
    ZipperOptions,
)


@pytest.mark.parametrize(
    ("options", "keywords"), [(ClientOptions, ClientKeywords), (ZipperOptions, ZipperKeywords)]
)
def test_the_keywords_are_the_fields(options: type, keywords: type) -> None:
    fields = [f.name for f in dataclasses.fields(options)]
    assert list(typing.get_type_hints(keywords)) == fields


@pytest.mark.parametrize("options", [ClientOptions, ZipperOptions, MeshOptions])
def test_options_are_frozen(options: type) -> None:
    made = options()
    name = dataclasses.fields(options)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, name, None)


def test_sync_and_async_front_doors_have_one_signature() -> None:
    for sync, aio in [
        (yomo.Source, yomo.aio.Source),
        (yomo.StreamFunction, yomo.aio.StreamFunction),
        (yomo.Zipper, yomo.aio.Zipper),
    ]:
        assert inspect.signature(sync) == inspect.signature(aio)


def test_a_sources_keywords_land_in_its_options() -> None:
    quic = QuicSettings(idle_timeout=7.0)
    source = yomo.aio.Source("s", "localhost:9000", credential="token:x", quic=quic)
    assert source.options == ClientOptions(credential="token:x", quic=quic)


def test_none_asks_for_the_default_as_before() -> None:
    source = yomo.aio.Source("s", credential=None, quic=None, reconnect=None)
    assert source.options == ClientOptions()
    assert source.options.quic is DEFAULT_CLIENT_SETTINGS


def test_keywords_change_fields_of_a_given_options_object() -> None:
    shared = ClientOptions(credential="token:x", write_timeout=5.0)
    fn = yomo.aio.StreamFunction("f", options=shared, write_timeout=1.0, concurrency=2)
    assert fn.options == dataclasses.replace(shared, write_timeout=1.0)
    assert shared.write_timeout == 5.0  # never changed in place


def test_an_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="write_timout"):
        yomo.aio.Source("s", write_timout=1.0)  # type: ignore[call-arg]


def test_the_zipper_keeps_its_options() -> None:
    z = yomo.aio.Zipper("z", port=0, stats_interval=0, slow_consumer="drop", monitor="127.0.0.1:0")
    assert z.options.slow_consumer == "drop" and z.slow_consumer == "drop"
    assert z.options.monitor == ("127.0.0.1", 0) == z.monitor_address
    assert z.options.mesh_options == MeshOptions()


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"slow_consumer": "never"}, "slow_consumer: expected 'block' or 'drop'"),
        ({"max_tag_stats": -1}, "max_tag_stats: expected 0 or more"),
        ({"mesh_options": {"send_timout": 1.0}}, "unknown option.*send_timout"),
        ({"mesh_options": MeshOptions.of({"send_timeout": 0.5})}, None),
    ],
)
def test_zipper_options_are_checked_when_made(
    keywords: dict[str, object], message: str | None
) -> None:
    if message is None:
        ZipperOptions(**keywords)  # type: ignore[arg-type]
        return
    with pytest.raises(ConfigError, match=message):
        ZipperOptions(**keywords)  # type: ignore[arg-type]


def test_mesh_options_from_a_mapping_as_before() -> None:
    options = ZipperOptions(mesh_options={"max_queue_bytes": 1024})  # type: ignore[arg-type]
    assert options.mesh_options == MeshOptions(max_queue_bytes=1024)
    assert options.mesh_options.reconnect is DEFAULT_MESH_RECONNECT
    with pytest.raises(ConfigError, match="send_timeout must be positive"):
        MeshOptions(send_timeout=0)


def test_sequences_are_kept_as_tuples() -> None:
    options = ZipperOptions(authenticators=[], frame_middleware=[])
    assert options.authenticators == () and options.frame_middleware == ()


def test_one_handshake_timeout() -> None:
    assert session_handshake.DEFAULT_HANDSHAKE_TIMEOUT is DEFAULT_HANDSHAKE_TIMEOUT
    assert ZipperOptions().handshake_timeout == DEFAULT_HANDSHAKE_TIMEOUT
    assert ReconnectPolicy() == ClientOptions().reconnect
