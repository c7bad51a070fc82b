"""Every registry entry against an independent computation of its formula."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import spyndex
import torch

from kelpseg.errors import KelpsegError
from kelpseg.features import INDICES, ChannelStack, IndexEntry, available_channels
from kelpseg.features.bands import BASE_BANDS, BandSet
from kelpseg.features.firstplace import SPATIAL_ENTRIES
from kelpseg.features.indices import SHADOW_PREFIX
from kelpseg.features.spyndex_indices import landsat_constants

# Entries without a compilable formula: masks and clipped values, the author's clamped EVI and
# plain-power mCRIG (pinned in tests/fidelity), and the per-tile spatial channels
# (tested in test_firstplace).
MASK_ENTRIES = {
    "DEMWM",
    "NDVIWM",
    "NDWIWM",
    "kelpseg.DEMWM",
    "kelpseg.NDVIWM",
    "kelpseg.NDWIWM",
    "EVI",
    "mCRIG",
    "H",
    *SPATIAL_ENTRIES,
}
FORMULA_ENTRIES = sorted(set(INDICES) - MASK_ENTRIES)
SEED_INDICES = [
    "ATSAVI",
    "AFRI1600",
    "AVI",
    "ARVI",
    "BWDRVI",
    "CDOM",
    "CHLA",
    "CI",
    "ClGreen",
    "CYA",
    "DOC",
    "EVI",
    "EVI22",
    "GARI",
    "GBNDVI",
    "GDVI",
    "GVMI",
    "I",
    "IPVI",
    "KIVU",
    "Kab1",
    "LogR",
    "MCARI",
    "MSAVI",
    "MVI",
    "NDAVI",
    "NDVI",
    "NDWI",
    "NDWIWM",
    "NLI",
    "NormNIR",
    "NormR",
    "PNDVI",
    "RBNDVI",
    "SABI",
    "SRGR",
    "SRNIRR",
    "SRNIRSWIR",
    "TURB",
    "TVI",
    "WATERCOLOR",
    "WAVI",
    "WDRVI",
    "mCRIG",
    "DEMWM",
    "NDVIWM",
]
SYMBOL_BANDS = {"B": "B", "G": "G", "R": "R", "N": "NIR", "S1": "SWIR1"}
MATH = {"__builtins__": {}, "exp": math.exp, "ln": math.log, "sqrt": math.sqrt, "abs": abs}


def _pixels(seed: int) -> dict[str, np.ndarray]:
    """Band values: 64 DN-like pixels, then 192 edge-case pixels (0, negatives, NaN, 32767)."""
    rng = np.random.default_rng(seed)
    edge = np.array([0.0, 0.0, 1.0, -1.0, -5.0, 2.0, 7000.0, 32767.0, np.nan])
    out = {}
    for band in ("SWIR1", "NIR", "R", "G", "B"):
        out[band] = np.concatenate([rng.uniform(1, 32767, 64).round(), rng.choice(edge, 192)])
    out["NIR"][-3:] = out["R"][-3:]  # N == R: NDVI 0, N - R = 0
    return out


def _python_reference(
    entry: IndexEntry, px: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel evaluation with Python floats: undefined -> NaN; also which pixels overflowed."""
    code = compile(entry.formula, "<formula>", "eval")
    n = len(px["NIR"])
    values, overflow = np.full(n, np.nan), np.zeros(n, bool)
    for i in range(n):
        env: dict[str, float] = {s: float(px[b][i]) for s, b in SYMBOL_BANDS.items()}
        env.update(entry.constants)
        try:
            result = eval(code, MATH, env)
        except (ZeroDivisionError, ValueError):
            continue
        except OverflowError:
            overflow[i] = True
            continue
        if not isinstance(result, complex):
            values[i] = result
    return values, overflow


def _ours(name: str, px: dict[str, np.ndarray], dtype: torch.dtype = torch.float64) -> np.ndarray:
    bands = {
        b: torch.tensor(px.get(b, np.zeros_like(px["NIR"])), dtype=dtype)[None] for b in BASE_BANDS
    }
    return BandSet(bands, INDICES)[name][0].numpy()


def test_registry_holds_the_seed_indices_and_the_spyndex_catalogue() -> None:
    assert not [n for n in SEED_INDICES if n not in INDICES]
    from_spyndex = [e for e in INDICES.values() if e.source == "spyndex"]
    assert len(from_spyndex) >= 130
    assert available_channels()[:7] == list(BASE_BANDS)
    # Entries are their own names and formulas of spyndex's are spyndex's text, not retyped.
    for name, entry in INDICES.items():
        assert entry.name == name
        if entry.source == "spyndex":
            assert entry.formula == spyndex.indices[name.removeprefix(SHADOW_PREFIX)].formula


def test_shadowed_spyndex_indices_stay_reachable() -> None:
    for name in ("AVI", "GDVI", "MVI", "TVI", "ARVI", "AFRI1600", "GARI", "IPVI", "NDWI"):
        assert INDICES[name].source == "author"
        assert INDICES[SHADOW_PREFIX + name].formula == spyndex.indices[name].formula
    assert not [n for n in SEED_INDICES if INDICES[n].source != "author"]
    assert dict(INDICES["ATSAVI"].constants) == {}  # the author's soil line is in the formula
    assert dict(INDICES[SHADOW_PREFIX + "ATSAVI"].constants) == {"sla": 1.0, "slb": 0.0}
    for name in ("DEMWM", "NDVIWM", "NDWIWM"):
        assert INDICES["kelpseg." + name].source == "kelpseg"


def test_mask_entries_are_exactly_the_non_formula_entries() -> None:
    from kelpseg.features.expression import compile_formula

    non_formula = set()
    for name, entry in INDICES.items():
        try:
            compile_formula(entry.formula)
        except KelpsegError:
            non_formula.add(name)
    assert non_formula == MASK_ENTRIES


@pytest.mark.parametrize("name", FORMULA_ENTRIES)
def test_index_matches_its_formula_on_random_and_edge_inputs(name: str) -> None:
    entry = INDICES[name]
    px = _pixels(seed=len(name))
    ref, overflow = _python_reference(entry, px)
    ours = _ours(name, px)
    undefined = np.isnan(ref) & ~overflow
    assert np.isnan(ours[undefined]).all(), f"{name}: undefined pixels must be NaN"
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-9, atol=1e-12, err_msg=name)
    assert not np.isinf(ours[~overflow]).any(), f"{name}: inf without overflow"


@pytest.mark.parametrize("name", sorted(n for n, e in INDICES.items() if e.source == "spyndex"))
def test_spyndex_entry_agrees_with_spyndex_own_evaluation(name: str) -> None:
    entry = INDICES[name]
    rng = np.random.default_rng(7)
    px = {b: rng.uniform(5000, 25000, 50).round() for b in ("SWIR1", "NIR", "R", "G", "B")}
    params = {s: px[b] for s, b in SYMBOL_BANDS.items() if b in entry.bands}
    params.update(entry.constants)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ref = np.asarray(
            spyndex.computeIndex(name.removeprefix(SHADOW_PREFIX), params=params), float
        )
    ours = _ours(name, px)
    both = np.isfinite(ref) & np.isfinite(ours)
    assert (np.isfinite(ref) == np.isfinite(ours)).all() or np.isnan(ours[~np.isfinite(ref)]).all()
    np.testing.assert_allclose(ours[both], ref[both], rtol=1e-9, atol=1e-12, err_msg=name)


def _numpy_seed_formulas(
    S: np.ndarray, N: np.ndarray, R: np.ndarray, G: np.ndarray, B: np.ndarray
) -> dict[str, np.ndarray]:
    """The author's indices retyped from his definitions (EPS dropped: tiles have no zeros)."""
    ndvi = (N - R) / (N + R)
    return {
        "NDVI": ndvi,
        "NDWI": (N - G) / (N + G),
        "IPVI": (N / (N + R) / 2) * (((R - G) / R + G) + 1),
        "TVI": np.sqrt((R - G) / (R + G) + 0.5),
        "WDRVI": (0.1 * N - R) / (0.1 * N + R),
        "BWDRVI": (0.1 * N - B) / (0.1 * N + B),
        "GBNDVI": (N - (G + B)) / (N + G + B),
        "NormNIR": N / (N + G + R),
        "NormR": R / (N + G + R),
        "NLI": (N**2 - R) / (N**2 + R),
        "AFRI1600": N - 0.66 * S / (N + 0.66 * S),
        "EVI": np.clip(2.5 * (N - R) / (N + 6 * R - 7.5 * B + 1), -20000, 20000),
        "ARVI": -0.18 + 1.17 * ndvi,
        "GARI": (N - (G - (B - R))) / (N - (G + (B - R))),
        "MSAVI": (2 * N + 1 - np.sqrt((2 * N + 1) ** 2 - 8 * (N - R))) / 2,
        "ATSAVI": 1.22
        * (N - 1.22 * R - 0.03)
        / (1.22 * N + R - 1.22 * 0.03 + 0.08 * (1 + 1.22**2)),
        "AVI": 2 * N - R,
        "CDOM": 537 * np.exp(-2.93 * G / R),
        "CHLA": 4.23 * (G / B) ** 3.94,
        "CI": (R - B) / R,
        "ClGreen": N / G - 1,
        "CYA": (G * R / B / 65535) ** 2.38,
        "DOC": 432 * np.exp(-2.24 * G / R),
        "EVI22": 2.5 * (N - R) / (N + 2.4 * R + 1),
        "GDVI": N - G,
        "GVMI": ((N + 0.1) - (S + 0.02)) / ((N + 0.1) + (S + 0.02)),
        "I": (R + G + B) / 30.5,
        "KIVU": (B - R) / G,
        "Kab1": 1.67 - 3.94 * np.log(B) + 3.78 * np.log(G),
        "LogR": np.log(N / R),
        "MCARI": ((N - R) - 0.2 * (N - G)) * (N / R),
        "mCRIG": (1 / B - 1 / G) * N,
        "MVI": N / S,
        "NDAVI": (N - B) / (N + B),
        "PNDVI": (N - (G + R + B)) / (N + G + R + B),
        "RBNDVI": (N - (R + B)) / (N + R + B),
        "SABI": (N - R) / (B + G),
        "SRGR": G / R,
        "SRNIRR": N / R,
        "SRNIRSWIR": N / S,
        "TURB": 8.93 * (G / B) - 6.39,
        "WATERCOLOR": 25366 * np.exp(-4.53 * G / R),
        "WAVI": 1.5 * (N - B) / (N + B + 0.5),
    }


def test_seed_indices_on_int16_tiles_match_numpy_in_float32() -> None:
    rng = np.random.default_rng(3)
    raw = rng.integers(5000, 25000, (2, 7, 16, 16)).astype(np.int16)
    raw[:, 5:] = 0
    bands = raw[:, :5].astype(np.float64)
    with np.errstate(invalid="ignore"):
        refs = _numpy_seed_formulas(*(bands[:, i] for i in range(5)))
    names = sorted(refs)
    stack = ChannelStack(names, mask_using_qa=False, mask_using_water_mask=False)
    out = stack(torch.from_numpy(raw)).numpy()
    for i, name in enumerate(names):
        # float32 rounding of the formula's terms bounds the error where they cancel: Kab1's
        # logs (~35), MSAVI's sqrt((2N+1)**2 ...) (~4e4, so ~4e4 * 2**-24 * a few).
        atol = 5e-3 if name == "MSAVI" else 1e-5 * np.nanmax(np.abs(refs[name]))
        np.testing.assert_allclose(out[:, i], refs[name], rtol=2e-4, atol=atol, err_msg=name)


def test_missing_pixels_make_indices_nan_not_zero() -> None:
    raw = np.full((1, 7, 2, 2), 8000, np.int16)
    raw[0, 5:] = 0
    raw[0, 2, 0, 0] = -32768  # red missing
    out = ChannelStack(["NDVI", "NIR", "R"], mask_using_qa=False)(torch.from_numpy(raw))[0]
    assert torch.isnan(out[0, 0, 0]) and torch.isnan(out[2, 0, 0])
    assert out[1, 0, 0] == 8000 and out[0, 1, 1] == 0


def test_water_mask_channels() -> None:
    raw = np.zeros((1, 7, 1, 4), np.int16)
    raw[0, 6] = [-32768, -3, 0, 5]
    raw[0, 1] = [8000, 9000, 7000, 7000]  # NIR
    raw[0, 2] = [9000, 8000, 7000, -32768]  # R
    raw[0, 3] = [9000, 8000, 7000, 7000]  # G
    # The author's "water masks" are clipped values: max(DEM, 0), max(NDVI, 0), max(NDWI, 0).
    names = ["DEMWM", "NDVIWM", "NDWIWM"]
    clip = ChannelStack(names, mask_using_qa=False, mask_using_water_mask=False)
    out = clip(torch.from_numpy(raw))[0, :, 0].numpy()
    np.testing.assert_array_equal(out[0], [0, 0, 0, 5])
    np.testing.assert_allclose(out[1][:3], [0, 1000 / 17000, 0], rtol=1e-6)
    assert np.isnan(out[1][3])
    np.testing.assert_allclose(out[2], [0, 1000 / 17000, 0, 0], rtol=1e-6)
    no_clip = ChannelStack(["DEMWM", "DEM"], dem_clip_zero=False)(torch.from_numpy(raw))[0, :, 0]
    assert torch.isnan(no_clip[0, 0]) and no_clip[0, 1] == 0 and no_clip[0, 3] == 5
    assert torch.isnan(no_clip[1, 0]) and no_clip[1, 1] == -3
    # kelpseg's 0/1 masks stay under kelpseg.<name>.
    masks = ["kelpseg.DEMWM", "kelpseg.NDVIWM", "kelpseg.NDWIWM"]
    out = ChannelStack(masks, mask_using_qa=False, mask_using_water_mask=False)(
        torch.from_numpy(raw)
    )[0, :, 0].numpy()
    np.testing.assert_array_equal(out[0], [1, 1, 1, 0])
    np.testing.assert_array_equal(out[1][:3], [1, 0, 0])
    np.testing.assert_array_equal(out[2], [1, 0, 0, 0])
    raised = ChannelStack(
        masks[1:],
        mask_using_water_mask=False,
        index_constants={"ndvi_water_threshold": 0.1, "ndwi_water_threshold": -0.05},
    )
    out = raised(torch.from_numpy(raw))[0, :, 0].numpy()
    np.testing.assert_array_equal(out[0][:3], [1, 1, 1])
    np.testing.assert_array_equal(out[1], [1, 0, 1, 1])


def test_constant_overrides_reach_the_formula() -> None:
    raw = torch.full((1, 7, 1, 1), 8000, dtype=torch.int16)
    raw[:, 5:] = 0
    default = ChannelStack(["spyndex.WDRVI"])(raw).item()
    changed = ChannelStack(["spyndex.WDRVI"], index_constants={"alpha": 0.5})(raw).item()
    assert default == pytest.approx((0.1 - 1) / 1.1, rel=1e-6)
    assert changed == pytest.approx((0.5 - 1) / 1.5, rel=1e-6)


def test_a_spatial_channel_sees_the_whole_batch() -> None:
    """Later channel kinds (offset NIR ...) need per-tile statistics: the registry allows it."""

    def offset_nir(bands: BandSet) -> torch.Tensor:
        nir = torch.where(bands["kelpseg.DEMWM"] > 0, bands["NIR"], float("nan"))
        median = nir.flatten(1).nanmedian(dim=1).values
        return bands["NIR"] - median[:, None, None]

    entry = IndexEntry("NIROFF", offset_nir, ("NIR", "DEM"), "kelpseg", "test", "N - median(N)")
    registry = {**INDICES, "NIROFF": entry}
    rng = np.random.default_rng(0)
    raw = rng.integers(7000, 9000, (2, 7, 8, 8)).astype(np.int16)
    raw[:, 5] = 0
    raw[:, 6] = 0
    raw[1, 6, :, :3] = 50  # land in tile 1 is left out of its median
    out = ChannelStack(["NIROFF"], registry=registry, mask_using_water_mask=False)(
        torch.from_numpy(raw)
    )
    for t in range(2):
        water = raw[t, 6] <= 0
        nir = raw[t, 1].astype(np.float64)
        expected = nir - np.quantile(nir[water], 0.5, method="lower")
        np.testing.assert_allclose(out[t, 0].numpy(), expected, rtol=1e-6)


def test_landsat_wavelengths_are_supplied() -> None:
    consts = landsat_constants()
    assert 470 < consts["lambdaB"] < consts["lambdaG"] < consts["lambdaR"] < consts["lambdaN"] < 900
    assert 1500 < consts["lambdaS1"] < 1700
