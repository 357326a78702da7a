"""Bulk decoding for replays: msgspec structs that mirror the pydantic event models.

A rebuild decodes every event on a topic, and pydantic builds a model instance for each nested
object: an enriched article's sixteen mentions cost two thirds of its 36 µs. msgspec decodes the
same JSON with the same checks into structs, about four times faster, and its structs are cheaper
to read and to free. The structs are generated from the models, which stay the one definition of
an event: same class names, fields, defaults and constraints. A mirror has the model's fields and
class variables and nothing else (no methods, no properties), so it is for code that only reads
events by attribute, such as the renderer.

:class:`ReplayDecoder` takes a record the mirror accepts and hands anything else to
:func:`~newsroom.common.events.decode_payload`: old versions to upcast, invalid records (whose error
the general path states), and any form where msgspec and pydantic could read a value differently
(times are taken in the RFC 3339 form our encoder writes, with at most six fractional digits; others
go to pydantic; so does any record with a field its model does not name, at any level). What the mirror
accepts, pydantic accepts too, with equal values.

A model the mirror cannot reproduce exactly is refused with :class:`Unmirrorable` at start-up:
validators, properties or methods of its own, aliases, model settings besides ``frozen``, ``extra`` and
``allow_inf_nan``, or a field type or constraint outside what :func:`mirror` knows.
"""

from __future__ import annotations

import re
import types
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import msgspec
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from newsroom.common.events import Envelope, EventDecodeError, Payload, decode_payload

# The times the mirror reads itself: RFC 3339 as our encoder writes it, a form whose reading Python's
# fromisoformat and pydantic agree on (fromisoformat also takes dates alone, week dates, offsets of
# +00:60 and more).
_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?", re.ASCII
)
# Model settings a struct reproduces (frozen, unknown fields refused; msgspec reads no inf or nan from JSON)
_CONFIG = frozenset({"frozen", "extra", "allow_inf_nan"})
_SCALARS: frozenset[Any] = frozenset({str, int, float, bool, type(None), uuid.UUID})
_CONSTRAINTS = {
    annotated_types.Ge: "ge",
    annotated_types.Gt: "gt",
    annotated_types.Le: "le",
    annotated_types.Lt: "lt",
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
}


_MIRRORS: dict[type[BaseModel], type[msgspec.Struct]] = {}  # every mirror made: a model has one


class Unmirrorable(TypeError):
    """A model whose checks or behaviour a msgspec struct would not reproduce exactly."""


def _meta(owner: str, metadata: Iterable[Any]) -> msgspec.Meta | None:
    """pydantic's constraints as msgspec's."""
    kwargs: dict[str, Any] = {}
    for item in metadata:
        name = _CONSTRAINTS.get(type(item))
        if name is None:
            raise Unmirrorable(f"{owner}: no msgspec counterpart for {item!r}")
        kwargs[name] = getattr(item, name)
    return msgspec.Meta(**kwargs) if kwargs else None


def _annotation(owner: str, tp: Any, *, outermost: bool = True) -> Any:
    """The msgspec type for a field of pydantic type ``tp``."""
    origin, args = get_origin(tp), get_args(tp)
    if tp in _SCALARS or origin is Literal:
        return tp
    if tp is datetime:
        if not outermost:  # the struct's __post_init__ converts the field's own value only
            raise Unmirrorable(f"{owner}: a time inside a container is not mirrored")
        return str  # checked and made a datetime by the struct's __post_init__
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return mirror(tp)
    if origin is Annotated:
        meta = _meta(owner, tp.__metadata__)
        inner = _annotation(owner, args[0], outermost=outermost)
        return Annotated[inner, meta] if meta else inner
    if origin in (Union, types.UnionType):
        members = (_annotation(owner, a, outermost=outermost) for a in args)
        return Union[tuple(members)]  # noqa: UP007 - built at run time
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple[_annotation(owner, args[0], outermost=False), ...]  # type: ignore[misc]  # run time
    raise Unmirrorable(f"{owner}: field type {tp!r} is not mirrored")


def _own_behaviour(model: type[BaseModel]) -> list[str]:
    """Names of the functions, properties and descriptors the model (or a base below BaseModel) defines."""
    found = []
    for cls in model.__mro__:
        if cls in (BaseModel, object) or not issubclass(cls, BaseModel):
            continue
        for name, value in vars(cls).items():
            if name.startswith("__") or name in ("model_config", "model_fields", "model_computed_fields"):
                continue
            if callable(value) or isinstance(value, property | classmethod | staticmethod):
                found.append(name)
    return found


def _is_time(tp: Any) -> bool:
    return tp is datetime or any(_is_time(a) for a in get_args(tp))


def _times_made(time_fields: tuple[str, ...]) -> Any:
    """A ``__post_init__`` turning the struct's time strings into datetimes, as pydantic would."""

    def __post_init__(self: Any) -> None:
        for name in time_fields:
            value = getattr(self, name)
            if isinstance(value, str):
                if _TIME.fullmatch(value) is None:
                    raise ValueError(f"{name}: not an RFC 3339 time with at most six fractional digits")
                msgspec.structs.force_setattr(self, name, datetime.fromisoformat(value))

    return __post_init__


def _field(owner: str, name: str, info: FieldInfo) -> tuple[Any, ...]:
    """A model field as a ``defstruct`` field: name, type (with constraints), default."""
    if info.alias or info.validation_alias:
        raise Unmirrorable(f"{owner}.{name}: has an alias")
    tp = _annotation(f"{owner}.{name}", info.annotation)
    meta = _meta(f"{owner}.{name}", info.metadata)
    if meta is not None:
        tp = Annotated[tp, meta]
    if info.is_required():
        return (name, tp)
    if info.default_factory is not None:
        return (name, tp, msgspec.field(default_factory=info.default_factory))  # type: ignore[arg-type]
    return (name, tp, info.default)


def _struct(name: str, fields: dict[str, FieldInfo], **options: Any) -> type[msgspec.Struct]:
    """A frozen struct of these model fields, refusing any other, whose times are made datetimes."""
    namespace = options.pop("namespace", {})
    times = tuple(field for field, info in fields.items() if _is_time(info.annotation))
    if times:
        namespace["__post_init__"] = _times_made(times)
    return msgspec.defstruct(
        name,
        [_field(name, field, info) for field, info in fields.items()],
        namespace=namespace,
        module=__name__,
        kw_only=True,
        frozen=True,
        # Even where the model ignores unknown fields: msgspec skips their values unchecked (pydantic
        # refuses bad UTF-8 or nesting in them), so a record with any goes to pydantic.
        forbid_unknown_fields=True,
        **options,
    )


def mirror(model: type[BaseModel]) -> type[Any]:  # made at run time: no static attributes
    """The msgspec struct mirroring ``model`` (and, inside it, every model its fields hold); made once."""
    if model in _MIRRORS:
        return _MIRRORS[model]
    owner = model.__name__
    decorators = model.__pydantic_decorators__
    if decorators.validators or decorators.field_validators or decorators.root_validators:
        raise Unmirrorable(f"{owner}: has validators")
    if decorators.model_validators:
        raise Unmirrorable(f"{owner}: has model validators")
    if behaviour := _own_behaviour(model):
        raise Unmirrorable(f"{owner}: defines {', '.join(behaviour)}")
    if settings := set(model.model_config) - _CONFIG:
        raise Unmirrorable(f"{owner}: model settings {sorted(settings)}")
    if model.model_config.get("extra") == "allow":
        raise Unmirrorable(f"{owner}: keeps unknown fields")
    namespace: dict[str, Any] = {name: getattr(model, name) for name in model.__class_vars__}
    namespace["__doc__"] = f"Mirror of {model.__module__}.{model.__qualname__} (see newsroom.common.mirror)."
    struct = _struct(owner, model.model_fields, namespace=namespace)
    _MIRRORS[model] = struct
    return struct


def _envelope(model: type[Payload]) -> type[msgspec.Struct]:
    """The envelope of ``model``'s current version, told apart by its ``type`` tag."""
    version = FieldInfo.from_annotation(Literal[model.VERSION])  # type: ignore[arg-type]  # a Literal made at run time
    data = FieldInfo.from_annotation(model)
    fields = {**Envelope.model_fields, "version": version, "data": data}
    del fields["type"]
    return _struct(f"{model.TYPE}Envelope", fields, tag_field="type", tag=model.TYPE)


_UNMATCHED = msgspec.defstruct("Unmatched", [], tag_field="type", tag="\x00", module=__name__)


class ReplayDecoder:
    """Record values to payloads: mirrors of the ``fast`` types, pydantic models of the rest.

    Only payloads of the ``accepted`` types are handed out (None for any other record, valid or
    not). ``fast`` types must be among them.
    """

    def __init__(self, fast: Iterable[type[Payload]], accepted: Iterable[type[Payload]]) -> None:
        self.accepted: tuple[type[Payload], ...] = tuple(accepted)
        fast = tuple(fast)
        if not set(fast) <= set(self.accepted):
            raise ValueError("every fast type must be accepted")
        # Never matched, but a union of one tagged struct would be that struct, which takes a record
        # without a "type" at all
        envelopes = [_envelope(model) for model in fast] + [_UNMATCHED]
        self._fast: msgspec.json.Decoder[Any] | None = (
            msgspec.json.Decoder(Union[tuple(envelopes)]) if fast else None  # noqa: UP007 - run time
        )

    def payload(self, raw: bytes | None) -> Any:
        """The record's payload if it is of an accepted type, else None (not an event, or another type)."""
        if raw is not None and self._fast is not None:
            try:
                return self._fast.decode(raw).data
            except (msgspec.DecodeError, ValueError, RecursionError):  # ValueError: bad UTF-8 among them
                pass  # the general path decides, and says why
        try:
            data = decode_payload(raw or b"")
        except EventDecodeError:
            return None
        return data if isinstance(data, self.accepted) else None
