"""Action units used per dataset, in the order every table and tensor follows."""
from __future__ import annotations

from aubench.errors import ConfigError

BP4D_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 6, 9, 12, 25, 26)
#: Every AU SynthAU can animate: the union of the two sets above.
ALL_AUS: tuple[int, ...] = tuple(sorted(set(BP4D_AUS) | set(DISFA_AUS)))

#: AU list of each dataset layout; `videos` (unlabeled face videos for self-supervised pretraining) has none.
LAYOUT_AUS: dict[str, tuple[int, ...]] = {"bp4d": BP4D_AUS, "disfa": DISFA_AUS, "videos": ()}

#: Label value for "not coded / unknown": masked out of every loss and metric.
UNKNOWN = -1


def aus_for_layout(layout: str) -> tuple[int, ...]:
    """The AU list of a dataset layout ('bp4d', 'disfa', or 'videos': no AUs)."""
    try:
        return LAYOUT_AUS[layout]
    except KeyError:
        raise ConfigError(f"dataset.layout: unknown layout {layout!r}; use one of {sorted(LAYOUT_AUS)}") from None


def au_names(aus: tuple[int, ...]) -> list[str]:
    """Column names such as 'AU1', 'AU12'."""
    return [f"AU{au}" for au in aus]
