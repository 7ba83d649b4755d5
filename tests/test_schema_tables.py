"""The TFLite schema tables typed into tinyprune/graph/ (operator codes, tensor types, enums, options
tables: union numbers, field numbers, defaults) against the schema the tflite-micro package ships, as its
generated Python: a table off by one would read every model wrongly without an error."""
import ast
import inspect
import re

import pytest

from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tinyprune.graph import reader
from tinyprune.graph.ir import TENSOR_TYPES


def _enum(cls) -> dict[str, int]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_") and isinstance(value, int)}


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def test_every_operator_code_names_the_schemas_operator():
    package = _enum(schema.BuiltinOperator)
    ours = {name: code for code, name in enumerate(reader.BUILTIN_OPERATORS)}
    assert len(ours) == len(reader.BUILTIN_OPERATORS) >= 200
    # the package's schema may be newer (more operators) but never renumbers ours
    assert {name: package.get(name) for name in ours} == ours


def test_tensor_types_and_option_enums_match():
    types = _enum(schema.TensorType)
    for code, (name, _, _) in TENSOR_TYPES.items():
        assert types[name.upper()] == code, name
    assert {name: code for code, name in enumerate(reader._TENSOR_TYPE_NAMES)} == {
        name: types[name] for name in reader._TENSOR_TYPE_NAMES}
    assert reader._PADDINGS == tuple(sorted(_enum(schema.Padding), key=_enum(schema.Padding).get))
    activations = _enum(schema.ActivationFunctionType)
    assert reader._ACTIVATIONS == tuple(sorted(activations, key=activations.get))
    formats = _enum(schema.FullyConnectedOptionsWeightsFormat)
    assert reader._WEIGHTS_FORMATS == tuple(sorted(formats, key=formats.get))


@pytest.mark.parametrize("opcode", sorted(reader.BUILTIN_OPTIONS))
def test_options_table_union_number_fields_and_defaults(opcode):
    union, fields = reader.BUILTIN_OPTIONS[opcode]
    tables = {value: name for name, value in _enum(schema.BuiltinOptions).items()}
    table = getattr(schema, tables[union])
    for number, field in enumerate(fields):
        accessor = getattr(table, _camel(field.name), None)
        assert accessor is not None, f"{tables[union]} has no field {field.name}"
        source = inspect.getsource(accessor)
        assert f"self._tab.Offset({4 + 2 * number})" in source, f"{tables[union]}.{field.name} is not field {number}"
        if not field.fmt.startswith("["):
            default = re.findall(r"return (\S+)\s*$", source)[-1]
            assert float(ast.literal_eval(default)) == float(field.default), f"{tables[union]}.{field.name}: {default}"
