"""Typed --set overrides, presets and their errors."""

import dataclasses
from typing import ClassVar, Optional

import pytest

from common.config import BaseConfig, ConfigError


@dataclasses.dataclass(frozen=True)
class ExampleConfig(BaseConfig):
    units: int = 8
    rate: float = 0.5
    name: str = "lstm"
    flag: bool = False
    key: Optional[str] = None
    sizes: tuple[int, ...] = (1, 2)
    PRESETS: ClassVar[dict] = {"tiny": {"units": 2}}


def test_overrides_are_parsed_with_the_field_type():
    config = ExampleConfig.from_preset(
        "tiny", ["rate=1e-3", "name=gru", "flag=true", "key=DE", "sizes=3,4,5", "epochs=7"]
    )
    assert config.units == 2  # from the preset
    assert config.rate == pytest.approx(1e-3) and isinstance(config.rate, float)
    assert (config.name, config.flag, config.key, config.sizes, config.epochs) == ("gru", True, "DE", (3, 4, 5), 7)


def test_seeds_default_to_one_run_and_parse_as_a_tuple():
    assert ExampleConfig().seeds == ()
    assert ExampleConfig.from_preset("tiny", ["seeds=3, 1,2"]).seeds == (3, 1, 2)
    assert ExampleConfig.from_preset("tiny", ["seeds="]).seeds == ()


def test_override_wins_over_preset_and_none_clears_optional():
    config = ExampleConfig.from_preset("tiny", ["units=5", "key=none"])
    assert config.units == 5 and config.key is None


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("units=many", "expected an integer"),
        ("rate=fast", "expected a number"),
        ("flag=maybe", "expected a boolean"),
        ("colour=red", "Unknown config key 'colour'"),
        ("units", "expected key=value"),
        ("strategy=parallel", "expected one of"),
        ("epochs=0", "at least 1"),
        ("learning_rate=-1", "must be positive"),
        ("seeds=1,1", "expected distinct non-negative integers"),
        ("seeds=-3", "expected distinct non-negative integers"),
        ("seed=-1", "seed: -1 is out of range; expected an integer from 0 to 4294967295"),
        ("seed=4294967296", "seed: 4294967296 is out of range"),
        ("seeds=1,4294967296", "seeds: 4294967296 is out of range"),
        ("sizes=3,x", "--set sizes='3,x': expected comma-separated int values; 'x' is not one"),
    ],
)
def test_bad_overrides_name_the_key_and_the_expectation(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ExampleConfig.from_preset("default", [override])


def test_the_seed_range_ends_are_accepted():
    assert ExampleConfig.from_preset("default", ["seed=0"]).seed == 0
    assert ExampleConfig.from_preset("default", ["seed=4294967295"]).seed == 2**32 - 1


def test_unknown_preset_is_an_error():
    with pytest.raises(ConfigError, match="Unknown preset 'huge'"):
        ExampleConfig.from_preset("huge")


def test_configs_are_frozen():
    config = ExampleConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.units = 3
