"""The pure parts of the ClickHouse HTTP interface: ClickHouse's compressed blocks, content negotiation, the
password policy. The interface itself is tested against a running worker (tests/integration/test_clickhouse_http.py)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import lz4.block
import lz4.frame
import pytest
from clickhouse_cityhash.cityhash import CityHash128

from streams.clickhouse_http import _compress, native_lz4
from streams.errors import ConfigError
from streams.settings import Settings


def _unframe(data: bytes) -> bytes:
    """Read ClickHouse's compressed blocks back, checking each checksum the way its readers do."""
    out, pos = bytearray(), 0
    while pos < len(data):
        first, second = struct.unpack_from("<QQ", data, pos)  # the hash's two halves, as CityHash_v1_0_2 orders them
        method, size, raw_size = struct.unpack_from("<BII", data, pos + 16)
        framed = data[pos + 16 : pos + 16 + size]
        assert method == 0x82 and CityHash128(framed) == (first << 64) | second
        out += lz4.block.decompress(framed[9:], uncompressed_size=raw_size)
        pos += 16 + size
    return bytes(out)


@pytest.mark.parametrize("size", [0, 1, 1000, 3 * 1024 * 1024 + 7])
def test_native_lz4_blocks_round_trip(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    framed = native_lz4(body)
    assert _unframe(framed) == body
    assert (framed == b"") == (size == 0)


def test_compression_follows_accept_encoding_and_compress() -> None:
    body = b"type\tn\n" * 1000
    assert _compress(body, False, "", 3) == (body, None)
    data, encoding = _compress(body, False, "br, gzip;q=0.9", 3)
    assert encoding == "gzip" and gzip.decompress(data) == body
    data, encoding = _compress(body, False, "lz4, zstd", 3)
    assert encoding == "lz4" and lz4.frame.decompress(data) == body
    data, encoding = _compress(body, True, "gzip", 3)
    assert encoding is None and _unframe(data) == body


def test_a_password_is_required_off_loopback(tmp_path: Path) -> None:
    assert Settings().clickhouse_http_secret() == ""
    with pytest.raises(ConfigError, match="ALARMFLOW_CLICKHOUSE_HTTP_PASSWORD"):
        Settings(clickhouse_http_bind="0.0.0.0").clickhouse_http_secret()
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    assert Settings(clickhouse_http_bind="0.0.0.0", clickhouse_http_password_file=secret).clickhouse_http_secret() == (
        "from-a-file"
    )
    assert "s3cret" not in repr(Settings(clickhouse_http_password="s3cret"))
