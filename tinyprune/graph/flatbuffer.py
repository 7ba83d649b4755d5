"""A small, bounds-checked reader for the FlatBuffers binary format: tables, scalars, strings and vectors.

Every read is checked against the buffer, so a corrupt or hostile file raises FlatbufferError (which the
TFLite reader turns into a TinypruneError) instead of IndexError, struct.error or a huge allocation.
Format: a table starts with an int32 offset back to its vtable; the vtable lists, per field index, the
field's offset inside the table (0 = absent, use the schema default). Strings, vectors and sub-tables
are reached through uint32 offsets relative to where the offset is stored.
"""
from __future__ import annotations

import struct

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")


class FlatbufferError(Exception):
    """The bytes do not form the structure the schema describes; the message says where."""


class Table:
    """One table inside `data`, starting at `position`; `path` names it in error messages."""

    __slots__ = ("data", "position", "path", "_vtable", "_vtable_size", "_table_size")

    def __init__(self, data: bytes, position: int, path: str):
        self.data = data
        self.position = position
        self.path = path
        _require(data, position, 4, path)
        vtable = position - _I32.unpack_from(data, position)[0]
        _require(data, vtable, 4, f"{path} vtable")
        vtable_size, table_size = struct.unpack_from("<HH", data, vtable)
        if vtable_size < 4 or vtable_size % 2:
            raise FlatbufferError(f"{path}: vtable size {vtable_size} is invalid")
        _require(data, vtable, vtable_size, f"{path} vtable")
        _require(data, position, max(table_size, 4), path)
        self._vtable = vtable
        self._vtable_size = vtable_size
        self._table_size = table_size

    def _field_position(self, field: int, width: int) -> int | None:
        """Absolute position of field number `field` (schema order, from 0), None when absent."""
        entry = 4 + 2 * field
        if entry + 2 > self._vtable_size:
            return None
        offset = _U16.unpack_from(self.data, self._vtable + entry)[0]
        if offset == 0:
            return None
        if offset + width > self._table_size:
            raise FlatbufferError(f"{self.path}: field {field} lies outside its table")
        return self.position + offset

    def has(self, field: int) -> bool:
        return self._field_position(field, 1) is not None

    def scalar(self, field: int, fmt: str, default):
        """A scalar field (`fmt` a struct code such as "i", "B", "f", "?"), or the schema default."""
        layout = struct.Struct("<" + fmt)
        position = self._field_position(field, layout.size)
        if position is None:
            return default
        return layout.unpack_from(self.data, position)[0]

    def _target(self, field: int) -> int | None:
        """Where an offset field (string, vector, table) points, None when absent."""
        position = self._field_position(field, 4)
        if position is None:
            return None
        target = position + _U32.unpack_from(self.data, position)[0]
        _require(self.data, target, 4, f"{self.path} field {field}")
        return target

    def table(self, field: int, name: str) -> Table | None:
        target = self._target(field)
        return None if target is None else Table(self.data, target, f"{self.path}.{name}")

    def string(self, field: int, default: str = "") -> str:
        target = self._target(field)
        if target is None:
            return default
        return _string_at(self.data, target, self.path).decode("utf-8", errors="replace")

    def vector(self, field: int, fmt: str) -> tuple:
        """A vector of scalars as a tuple (empty when absent)."""
        target = self._target(field)
        if target is None:
            return ()
        layout = struct.Struct("<" + fmt)
        count = _vector_length(self.data, target, layout.size, f"{self.path} field {field}")
        return struct.unpack_from(f"<{count}{fmt}", self.data, target + 4)

    def raw_bytes(self, field: int) -> bytes | None:
        """A [ubyte] vector as bytes, None when absent."""
        target = self._target(field)
        if target is None:
            return None
        count = _vector_length(self.data, target, 1, f"{self.path} field {field}")
        return bytes(self.data[target + 4 : target + 4 + count])

    def _offset_vector(self, field: int, what: str) -> list[int]:
        """The absolute positions a vector of offsets (to tables or strings) points at."""
        target = self._target(field)
        if target is None:
            return []
        count = _vector_length(self.data, target, 4, what)
        slots = (target + 4 + 4 * index for index in range(count))
        return [slot + _U32.unpack_from(self.data, slot)[0] for slot in slots]

    def tables(self, field: int, name: str) -> list[Table]:
        """A vector of tables (empty when absent)."""
        return [Table(self.data, position, f"{self.path}.{name}[{index}]")
                for index, position in enumerate(self._offset_vector(field, f"{self.path}.{name}"))]

    def strings(self, field: int) -> list[str]:
        return [_string_at(self.data, position, self.path).decode("utf-8", errors="replace")
                for position in self._offset_vector(field, f"{self.path} field {field}")]


def with_int32_vector(data: bytes, table: Table, field: int, values: list[int]) -> bytes:
    """`data` with a present vector field of `table` pointing at a new int32 vector holding `values`,
    appended at the end (uoffsets point forward, so the old vector simply becomes unreferenced)."""
    position = table._field_position(field, 4)
    if position is None:
        raise FlatbufferError(f"{table.path}: field {field} is absent, so it cannot be repointed")
    start = len(data) + (-len(data) % 4)
    vector = _U32.pack(len(values)) + b"".join(_I32.pack(v) for v in values)
    patched = bytearray(data) + bytes(start - len(data)) + vector
    _U32.pack_into(patched, position, start - position)
    return bytes(patched)


def root_table(data: bytes, name: str) -> Table:
    """The root table: the file starts with its uint32 offset (then, by convention, a 4-byte identifier)."""
    _require(data, 0, 4, "flatbuffer header")
    return Table(data, _U32.unpack_from(data, 0)[0], name)


def _require(data: bytes, position: int, size: int, what: str) -> None:
    if position < 0 or size < 0 or position + size > len(data):
        raise FlatbufferError(
            f"{what}: {size} bytes at offset {position} lie outside the {len(data)}-byte file"
        )


def _vector_length(data: bytes, position: int, element_size: int, what: str) -> int:
    """The length of the vector at `position`, checked so that all its elements lie in the file."""
    count = _U32.unpack_from(data, position)[0]
    _require(data, position + 4, count * element_size, f"{what} ({count} elements)")
    return count


def _string_at(data: bytes, position: int, what: str) -> bytes:
    _require(data, position, 4, f"{what} string")
    count = _vector_length(data, position, 1, f"{what} string")
    return bytes(data[position + 4 : position + 4 + count])
