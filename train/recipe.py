"""Training recipes: TOML files in train/recipes/ (or any path), with command-line overrides.

A recipe either describes one model, or an ensemble: `members` (other recipes) with `weights`,
or `copies` of one model trained with seeds seed, seed + 1, ... and equal weights.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vocalstream.errors import VocalstreamError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RECIPES = Path(__file__).parent / "recipes"


TRAINABLE_REFERENCES = ("window", "mix")  # one channel each


class RecipeError(VocalstreamError):
    """A recipe is missing, malformed, or asks for something unknown."""


@dataclass(frozen=True)
class Recipe:
    name: str
    architecture: str = ""
    epochs: int = 1
    batch_size: int = 16
    optimizer: str = "adam"  # adam | sgd
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    scheduler: str = "multistep"  # multistep | plateau
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    patience: int = 2
    mixup_alpha: float = 0.0  # 0: no mixup
    time_mask_p: float = 0.5
    frequency_mask_p: float = 0.5
    mask_width: int = 10
    reverse_p: float = 0.3
    band_limit_p: float = 0.0  # augment.limit_bandwidth
    class_weighted: bool = True
    upsample_label0: int = 0
    validation_fraction: float = 0.2
    split_by_group: bool = True
    seed: int = 42
    separation: bool = True
    separator: str = "vocals"  # the separator variant whose vocals the model learns from
    reference: str = "window"  # the features' decibels below the window's maximum, or the mix's
    copies: int = 1
    members: tuple[str, ...] = ()
    weights: tuple[float, ...] = field(default=())

    def member_recipes(self, overrides: dict[str, object] | None = None) -> list[Recipe]:
        """The single-model recipes this one trains (overrides applied to each), named as their
        run sub-folders."""
        if self.members:
            return [load_recipe(member, overrides) for member in self.members]
        if self.copies > 1:
            return [
                dataclasses.replace(self, name=f"{self.name}-{i}", seed=self.seed + i, copies=1)
                for i in range(self.copies)
            ]
        return [self]

    def member_weights(self) -> list[float]:
        count = len(self.members) or self.copies
        return list(self.weights) if self.weights else [1.0 / count] * count


FIELDS = {f.name: f for f in dataclasses.fields(Recipe)}


def _coerce(key: str, value):
    if key not in FIELDS or key == "name":
        raise RecipeError(f"unknown recipe field {key!r}; known: {', '.join(sorted(FIELDS))}")
    kind = FIELDS[key].type
    if kind.startswith("tuple"):
        if not isinstance(value, list):
            raise RecipeError(f"recipe field {key!r} takes a list, got {value!r}")
        return tuple(value)
    expected = {"int": int, "float": (int, float), "bool": bool, "str": str}[kind]
    if not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool)):
        raise RecipeError(f"recipe field {key!r} takes a {kind}, got {value!r}")
    return float(value) if kind == "float" else value


def parse_override(text: str) -> tuple[str, object]:
    """`key=value` with a TOML value (`lr=0.01`, `milestones=[5, 10]`); bare words are strings."""
    key, separator, value = text.partition("=")
    if not separator:
        raise RecipeError(f"an override is key=value, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip(), parsed


def load_recipe(name_or_path: str, overrides: dict[str, object] | None = None) -> Recipe:
    """A bundled recipe by name (see RECIPES) or a TOML file by path, overrides applied."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.toml")))
        raise RecipeError(f"no recipe {name_or_path!r}; bundled recipes: {known}")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise RecipeError(f"{path}: not valid TOML ({error})") from error
    values.update(overrides or {})
    recipe = Recipe(name=path.stem, **{k: _coerce(k, v) for k, v in values.items()})
    _validate(recipe)
    return recipe


def _validate(recipe: Recipe) -> None:
    from vocalstream.models.classifiers import ARCHITECTURES

    if recipe.members:
        if recipe.weights and len(recipe.weights) != len(recipe.members):
            raise RecipeError(
                f"{recipe.name}: {len(recipe.members)} members but weights for "
                f"{len(recipe.weights)}"
            )
        return
    problems = []
    if recipe.architecture not in ARCHITECTURES:
        problems.append(f"architecture must be one of {', '.join(ARCHITECTURES)}")
    if recipe.optimizer not in ("adam", "sgd"):
        problems.append("optimizer must be adam or sgd")
    if recipe.scheduler not in ("multistep", "plateau"):
        problems.append("scheduler must be multistep or plateau")
    if recipe.epochs < 1 or recipe.batch_size < 1 or recipe.copies < 1:
        problems.append("epochs, batch_size and copies must be at least 1")
    if not 0.0 < recipe.validation_fraction < 1.0:
        problems.append("validation_fraction must lie between 0 and 1")
    if recipe.reference not in TRAINABLE_REFERENCES:
        problems.append(
            "reference must be window or mix (a two-channel bundle joins runs of each: "
            "vocalstream export RUN... --voice-gate RUN)"
        )
    if problems:
        raise RecipeError(f"{recipe.name}: " + "; ".join(problems))


def to_toml(recipe: Recipe) -> str:
    """The resolved recipe as TOML, written into every run folder."""
    lines = []
    for key, value in dataclasses.asdict(recipe).items():
        if key == "name":
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str):
            text = f'"{value}"'
        elif isinstance(value, (tuple, list)):
            text = "[" + ", ".join(f'"{v}"' if isinstance(v, str) else repr(v) for v in value) + "]"
        else:
            text = repr(value)
        lines.append(f"{key} = {text}")
    return f"# recipe {recipe.name}, resolved\n" + "\n".join(lines) + "\n"
