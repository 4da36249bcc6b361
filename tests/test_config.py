"""Config loading: strict keys and types, base inheritance, overrides, round trip, every recipe."""
from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import yaml

from stsampler.config import (
    COMPONENTS,
    KEYS,
    RECIPES_DIR,
    Config,
    DataConfig,
    ModelConfig,
    SamplerConfig,
    config_to_dict,
    flatten,
    list_recipes,
    load_config,
    load_saved_config,
    resolve_recipe,
    save_config,
)
from stsampler.data.splits import BENCHMARKS
from stsampler.errors import ConfigError
from stsampler.models.backbones import BACKBONES
from stsampler.models.heads import HEADS

CONFIGS = RECIPES_DIR


def write(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    return write(tmp_path / "run.yaml", {"name": "tiny", "data": {"split_dir": "splits"}})


def test_defaults_fill_missing_keys(minimal: Path) -> None:
    cfg = load_config(minimal)
    assert cfg.name == "tiny"
    assert cfg.data.split_dir == "splits"
    assert cfg.data.num_frames == 16 and cfg.sampler.num_frames == 8
    assert cfg.train.tasks_per_batch == 16 and cfg.train.lr == pytest.approx(1e-3)


def test_unknown_key_names_path_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", {"data": {"split_dir": "s"}, "train": {"lr": 0.1, "tasks_per_bacth": 4}})
    with pytest.raises(ConfigError, match=r"train\.tasks_per_bacth.*did you mean 'train\.tasks_per_batch'"):
        load_config(path)


def test_unknown_section_suggests(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", {"data": {"split_dir": "s"}, "sampeler": {"kind": "uniform"}})
    with pytest.raises(ConfigError, match=r"'sampeler'.*did you mean 'sampler'"):
        load_config(path)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("train.way", "five", "int"),
        ("train.way", True, "int"),
        ("data.flip", "yes please", "bool or null"),
        ("train.lr", "fast", "float"),
        ("sampler.kind", "magic", "one of 'uniform'"),
        ("model.head_args", [1, 2], "dict"),
    ],
)
def test_wrong_type_names_key_type_and_value(minimal: Path, key: str, value, expected: str) -> None:
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    with pytest.raises(ConfigError) as info:
        load_config(minimal, [f"{key}={text}"])
    message = str(info.value)
    assert key in message and expected in message and repr(value) in message


def test_overrides_parse_yaml_values(minimal: Path) -> None:
    cfg = load_config(
        minimal,
        ["train.lr=1e-2", "data.flip=null", "sampler.kind=uniform", "model.head_args={temperature: 2.5}",
         "train.clip_grad=5"],
    )
    assert cfg.train.lr == pytest.approx(0.01)
    assert cfg.data.flip is None
    assert cfg.sampler.kind == "uniform"
    assert cfg.model.head_args == {"temperature": 2.5}
    assert cfg.train.clip_grad == 5.0 and isinstance(cfg.train.clip_grad, float)


def test_override_errors(minimal: Path) -> None:
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(minimal, ["train.lr"])
    with pytest.raises(ConfigError, match=r"train\.learning_rate"):
        load_config(minimal, ["train.learning_rate=0.1"])


def test_base_inheritance_deep_merges(tmp_path: Path) -> None:
    (tmp_path / "bases").mkdir()
    write(tmp_path / "bases" / "root.yaml", {
        "data": {"benchmark": "ucf101", "num_frames": 12},
        "model": {"head": "otam", "head_args": {"a": 1, "b": 2}},
        "train": {"lr": 0.5, "way": 3},
    })
    write(tmp_path / "bases" / "mid.yaml", {"base": "root.yaml", "train": {"way": 4}})
    child = write(tmp_path / "child.yaml", {
        "base": "bases/mid.yaml", "model": {"head_args": {"b": 3}}, "train": {"shot": 5},
    })
    cfg = load_config(child, ["train.way=6"])
    assert cfg.data.benchmark == "ucf101" and cfg.data.num_frames == 12
    assert cfg.model.head == "otam" and cfg.model.head_args == {"a": 1, "b": 3}
    assert (cfg.train.lr, cfg.train.way, cfg.train.shot) == (0.5, 6, 5)


def test_base_cycle_and_missing_file(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"base": "b.yaml"})
    write(tmp_path / "b.yaml", {"base": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_cross_field_checks(minimal: Path) -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        load_config(minimal, ["data.benchmark=ucf101"])
    with pytest.raises(ConfigError, match="cannot exceed"):
        load_config(minimal, ["sampler.num_frames=32"])
    with pytest.raises(ConfigError, match="sampler.selector_warmup"):
        load_config(minimal, ["sampler.selector_warmup=100000"])
    with pytest.raises(ConfigError, match="data.eval_cache_mb"):
        load_config(minimal, ["data.eval_cache_mb=-1"])
    with pytest.raises(ConfigError, match="sampler.scanner_shares_backbone.*'shufflenet_v2_x0_5' and 'resnet50'"):
        load_config(minimal, ["sampler.scanner_shares_backbone=true"])
    shared = [
        "sampler.scanner_shares_backbone=true", "sampler.scanner_arch=smallcnn", "sampler.scanner_pretrained=false"
    ]
    assert load_config(minimal, [*shared, "model.backbone=smallcnn_max"]).sampler.scanner_shares_backbone
    with pytest.raises(ConfigError, match="scanner_freeze_bn"):
        load_config(minimal, [*shared, "model.backbone=smallcnn_max", "sampler.experimental.scanner_freeze_bn=true"])
    assert load_config(minimal, [*shared, "model.backbone=resnet50", "sampler.kind=uniform"]).sampler.kind == "uniform"


def test_round_trip(minimal: Path, tmp_path: Path) -> None:
    cfg = load_config(
        minimal, ["train.shot=5", "model.head_args={temperature: 3.0}", "sampler.experimental.noise=gumbel"]
    )
    out = save_config(cfg, tmp_path / "out" / "config.yaml")
    again = load_config(out)
    assert isinstance(again, Config)
    assert config_to_dict(again) == config_to_dict(cfg)


def test_every_shipped_config_loads() -> None:
    files = sorted(p for p in CONFIGS.rglob("*.yaml") if not p.name.startswith("_"))
    assert files, f"no configs under {CONFIGS}"
    for path in files:
        cfg = load_config(path)
        assert cfg.model.head in HEADS and cfg.model.backbone in BACKBONES, path
        assert cfg.data.benchmark is None or cfg.data.benchmark in BENCHMARKS, path
        assert cfg.sampler.num_frames <= cfg.data.num_frames, path


def test_paper_recipes_follow_the_protocol() -> None:
    recipes = sorted(p for p in CONFIGS.glob("*/*.yaml") if not p.name.startswith("_") and p.parent.name != "synthetic")
    assert len(recipes) == 30  # 5 datasets x 3 heads x with / without the sampler
    for path in recipes:
        cfg = load_config(path)
        model = (cfg.model.backbone, cfg.data.crop_size, cfg.data.num_frames, cfg.sampler.num_frames)
        assert model == ("resnet50", 224, 16, 8)
        schedule = (cfg.train.optimizer, cfg.train.lr, cfg.train.tasks_per_batch, cfg.train.query, cfg.eval.query)
        assert schedule == ("sgd", 1e-3, 16, 5, 1)
        assert cfg.model.head == path.stem.split("_")[0]
        assert (cfg.sampler.kind == "learned") == path.stem.endswith("_sampler")
        assert cfg.data.flip == (not cfg.data.benchmark.startswith("ssv2"))


def test_recipes_are_addressed_by_name_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    by_name = load_config("ucf101/protonet_sampler")
    by_path = load_config(RECIPES_DIR / "ucf101" / "protonet_sampler.yaml")
    assert config_to_dict(by_name) == config_to_dict(by_path)
    assert by_name.name == "ucf101-protonet-sampler"
    assert resolve_recipe("ucf101/protonet_sampler.yaml") == RECIPES_DIR / "ucf101" / "protonet_sampler.yaml"


def test_unknown_recipe_name_suggests_close_ones() -> None:
    with pytest.raises(ConfigError, match="ucf101/protonet_sampler"):
        load_config("ucf101/protonet_samplr")


def test_fragments_are_not_recipes() -> None:
    recipes = list_recipes()
    assert "ucf101/protonet" in recipes and "synthetic/sampler" in recipes
    assert not any(name.rsplit("/", 1)[-1].startswith("_") for name in recipes)
    assert all(summary for summary in recipes.values()), "every recipe opens with a comment line saying what it is"
    with pytest.raises(ConfigError):
        resolve_recipe("_paper")


def _is_number(tp) -> bool:
    return tp in (int, float) or any(a in (int, float) for a in get_args(tp))


def test_every_key_describes_itself() -> None:
    """Each key has a role, a reading component only where it is a sampler key, and a range exactly
    when it is a number; its default lies in that range."""
    assert len(KEYS) > 60 and "sampler.experimental.pe_scale" in KEYS and "model.head_args" in KEYS
    defaults = config_to_dict(Config())
    for path, key in KEYS.items():
        assert key.info is not None, f"config key {path} has no KeyInfo: declare it with key(...)"
        assert key.info.role in ("architecture", "training", "runtime"), path
        if path.startswith("sampler."):
            assert key.info.reads is None or key.info.reads in COMPONENTS, path
        else:
            assert key.info.reads is None, f"{path} is not a sampler key but names a sampler component"
        assert (key.info.within is not None) == _is_number(key.type), f"{path}: a number needs a range, only a number"
        default = flatten(defaults)[path]
        assert key.info.within is None or default is None or default in key.info.within, path


@pytest.mark.parametrize(
    ("override", "interval", "shown"),
    [
        ("train.lr=-1", "(0, inf)", "-1.0"),
        ("sampler.num_samples=0", "[1, inf)", "0"),
        ("sampler.max_zoom=0", "[1, inf)", "0.0"),
        ("data.max_bad_fraction=1", "[0, 1)", "1.0"),
        ("train.way=1", "[2, inf)", "1"),
        ("eval.shot=0", "[1, inf)", "0"),
        ("train.clip_grad=0", "(0, inf)", "0.0"),
        ("sampler.experimental.pe_scale=-0.5", "[0, inf)", "-0.5"),
    ],
)
def test_out_of_range_values_name_the_key_the_range_and_the_value(
    minimal: Path, override: str, interval: str, shown: str
) -> None:
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as info:
        load_config(minimal, [override])
    assert str(info.value) == f"config key '{key}' must be in {interval}, got {shown}"


def test_keys_of_components_a_run_does_not_use_are_not_checked(minimal: Path) -> None:
    # A warm-up longer than training is refused only where a selector reads it.
    short = ["train.episodes=50", "sampler.selector_warmup=80"]
    cfg = load_config("synthetic/uniform", [*short, "sampler.max_zoom=0", "sampler.num_samples=0"])
    assert cfg.sampler.kind == "uniform" and cfg.sampler.selector_warmup == 80
    with pytest.raises(ConfigError, match="selector_warmup"):
        load_config("synthetic/sampler", short)
    no_amplifier = ["sampler.spatial=false", "sampler.max_zoom=0"]
    assert load_config(minimal, no_amplifier).sampler.max_zoom == 0
    with pytest.raises(ConfigError, match=r"sampler\.max_zoom"):
        load_config(minimal, no_amplifier[1:])
    with pytest.raises(ConfigError, match=r"sampler\.num_frames"):  # every sampler reads it
        load_config(minimal, ["sampler.kind=uniform", "sampler.num_frames=0"])


def test_a_moved_key_in_a_users_config_names_its_new_path(minimal: Path, tmp_path: Path) -> None:
    moved = r"'sampler\.control_variate' is now 'sampler\.experimental\.control_variate'"
    with pytest.raises(ConfigError, match=moved):
        load_config(minimal, ["sampler.control_variate=false"])
    flat = write(tmp_path / "flat.yaml", {"data": {"split_dir": "s"}, "sampler": {"noise": "gumbel"}})
    with pytest.raises(ConfigError, match=r"sampler\.experimental\.noise"):
        load_config(flat)
    assert load_config(minimal, ["sampler.experimental.noise=gumbel"]).sampler.experimental.noise == "gumbel"


def test_a_saved_config_from_before_the_move_loads(minimal: Path, tmp_path: Path) -> None:
    values = config_to_dict(load_config(minimal))
    experimental = values["sampler"].pop("experimental")
    values["sampler"].update({**experimental, "pe_scale": 0.5, "noise": "gumbel", "scanner_freeze_bn": False})
    saved = write(tmp_path / "config.yaml", values)
    cfg = load_saved_config(saved)
    assert (cfg.sampler.experimental.pe_scale, cfg.sampler.experimental.noise) == (0.5, "gumbel")
    assert cfg.sampler.experimental.scanner_freeze_bn is False
    assert config_to_dict(load_saved_config(save_config(cfg, tmp_path / "again.yaml"))) == config_to_dict(cfg)


def test_the_defaults_are_the_methods() -> None:
    """method.md 2-4 and 7: M = 16, T = 8, N = 500 samples, sigma 0.05 * 0.8 every 1000 episodes down
    to 0.01, normal noise, zoom cap 4, ShuffleNet-v2 x0.5 at 64 px, auxiliary weight 0.1."""
    sampler = SamplerConfig()
    assert (DataConfig().num_frames, sampler.num_frames, sampler.num_samples) == (16, 8, 500)
    assert (sampler.sigma0, sampler.sigma_decay, sampler.sigma_every, sampler.sigma_min) == (0.05, 0.8, 1000, 0.01)
    assert (sampler.experimental.noise, sampler.max_zoom, sampler.scanner_arch, sampler.scan_size) == (
        "normal", 4.0, "shufflenet_v2_x0_5", 64
    )
    assert sampler.kind == "learned" and sampler.temporal and sampler.spatial and sampler.task_adaptive
    assert sampler.saliency == "paper" and sampler.scanner_pretrained and ModelConfig().aux_weight == 0.1
