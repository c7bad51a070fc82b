from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.features import FeatureConfig


def test_yaml_and_overrides_build_a_config(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text("channels: [R, G, NDVI, spyndex.AVI]\nnormalization: z-score\n")
    config = load_config(FeatureConfig, path, ["fill_value=zero", "index_constants.alpha=0.2"])
    assert config.channels == ["R", "G", "NDVI", "spyndex.AVI"]
    assert config.adjustment == "zero-adjusted" and config.index_constants == {"alpha": 0.2}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("channels=[R, NDVII]", "unknown channel.*'NDVII'.*did you mean NDVI"),
        ("channels=[R, R]", "listed twice: R"),
        ("channels=[]", "at least one channel"),
        ("normalization=robust", "unknown normalization 'robust'"),
        ("quantiles=[0.9, 0.1]", "0 <= low < high <= 1"),
        ("index_constants.beta2=1", "unknown constant.*beta2"),
        ("fill_value=mean", "config key 'fill_value'"),
        ("colour=red", "config key 'colour': unknown key"),
    ],
)
def test_bad_settings_name_the_key(override: str, message: str) -> None:
    with pytest.raises(KelpsegError, match=message):
        load_config(FeatureConfig, None, [override])
