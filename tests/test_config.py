"""BuildConfig: defaults, the pipeline file, CLI overrides and validation."""
import pytest

from tinyprune.config import BuildConfig, load_config
from tinyprune.errors import TinypruneError


def test_pipeline_file_then_overrides(tmp_path):
    path = tmp_path / "tinyprune.toml"
    path.write_text('model = "m.keras"\nsparsity = 0.5\nfine_tune_epochs = 3\n'
                    'layer_sparsity = { dense_1 = 0.9 }\n')
    config = load_config(path, sparsity=0.8, board=None)
    assert config.model == "m.keras"
    assert config.sparsity == 0.8  # the flag wins over the file
    assert config.fine_tune_epochs == 3
    assert config.layer_sparsity == {"dense_1": 0.9}
    assert config.board == BuildConfig().board  # None means "not given"


def test_integer_where_float_expected_is_accepted(tmp_path):
    assert load_config(None, learning_rate=1).learning_rate == 1.0


@pytest.mark.parametrize("overrides, words", [
    ({"sparsity": 1.0}, "outside [0, 1)"),
    ({"sparsity": -0.1}, "outside [0, 1)"),
    ({"layer_sparsity": {"dense": 1.5}}, "dense=1.5"),
    ({"method": "random"}, "unknown pruning method"),
    ({"fine_tune_epochs": "3"}, "is not a int"),
    ({"batch_size": 0}, "batch_size"),
    ({"colour": "red"}, "unknown option colour"),
])
def test_bad_options_name_the_problem(overrides, words):
    with pytest.raises(TinypruneError) as caught:
        load_config(None, **overrides)
    assert words in str(caught.value)
    assert caught.value.fix


def test_bad_pipeline_files(tmp_path):
    with pytest.raises(TinypruneError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("sparsity = = 0.5\n")
    with pytest.raises(TinypruneError, match="not valid TOML"):
        load_config(broken)
